//! The steps' [`Launcher`] over several hosts: a command starts by
//! `docker exec` on its node's host; a signal to it and a link-state step
//! go through a helper on that host.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::plan::Op;
use super::{helper, Hosts, HostsBackend};
use crate::runtime::docker::forward;
use crate::runtime::error::RuntimeError;
use crate::runtime::names;
use crate::runtime::process::{Control, Launched, Launcher, ProcessError, Signal};
use crate::runtime::ExecHandle;

pub struct HostsLauncher {
    hosts: Arc<Hosts>,
    backend: HostsBackend,
    instance: String,
}

impl HostsLauncher {
    pub(super) fn new(hosts: Arc<Hosts>, instance: &str) -> Self {
        HostsLauncher {
            backend: HostsBackend::new(hosts.clone()),
            hosts,
            instance: instance.to_owned(),
        }
    }
}

impl HostsLauncher {
    fn owner(&self) -> helper::Owner {
        let known = self.hosts.owner.lock().unwrap_or_else(|e| e.into_inner());
        known.clone().unwrap_or_else(|| helper::Owner {
            lab: String::new(),
            instance: self.instance.clone(),
            run: String::new(),
        })
    }
}

/// A step's process on another host: its exit code through Docker, a
/// signal through a helper there (its pid means nothing here).
struct RemoteControl {
    handle: ExecHandle,
    hosts: Arc<Hosts>,
    host: String,
    owner: helper::Owner,
}

impl Control for RemoteControl {
    fn signal(&self, signal: Signal) -> BoxFuture<'_, Result<(), ProcessError>> {
        let number = match signal {
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        };
        async move {
            let failed = |e: RuntimeError| ProcessError::Signal(e.to_string());
            let Some(pid) = self.handle.host_pid().await.map_err(failed)? else {
                return Ok(());
            };
            let host = self
                .hosts
                .index(&self.host)
                .expect("the launcher's own host");
            let op = Op::Signal {
                pid,
                signal: number,
            };
            self.hosts
                .submit(host, &self.owner, op)
                .await
                .map(|_| ())
                .map_err(failed)
        }
        .boxed()
    }

    fn exit_code(&self) -> BoxFuture<'_, Result<i64, ProcessError>> {
        async move {
            self.handle
                .exit_code()
                .await
                .map_err(|e| ProcessError::ExitCode(e.to_string()))
        }
        .boxed()
    }
}

impl Launcher for HostsLauncher {
    fn launch<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<Launched, ProcessError>> {
        async move {
            let failed = |reason: String| ProcessError::Launch {
                node: node.to_owned(),
                argv: argv.to_vec(),
                reason,
            };
            let host = self
                .backend
                .host_of(&self.instance, node)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let (_, backend) = host.docker().map_err(|e| failed(e.to_string()))?;
            let (handle, stream) = backend
                .exec(&self.instance, node, argv)
                .await
                .map_err(|e| failed(format!("on host {} ({}): {e}", host.name, host.endpoint)))?;
            Ok(Launched {
                output: forward(stream),
                control: Arc::new(RemoteControl {
                    handle,
                    hosts: self.hosts.clone(),
                    host: host.name.clone(),
                    owner: self.owner(),
                }),
            })
        }
        .boxed()
    }

    fn set_link<'a>(
        &'a self,
        node: &'a str,
        interface: &'a str,
        up: bool,
    ) -> BoxFuture<'a, Result<(), ProcessError>> {
        async move {
            let failed = |reason: String| ProcessError::LinkState {
                node: node.to_owned(),
                interface: interface.to_owned(),
                state: if up { "up" } else { "down" },
                reason,
            };
            let host = self
                .backend
                .host_of(&self.instance, node)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let (_, backend) = host.docker().map_err(|e| failed(e.to_string()))?;
            let container = names::container_name(&self.instance, node);
            let pid = backend
                .pid(&container)
                .await
                .map_err(|e| failed(e.to_string()))?
                .ok_or_else(|| failed(format!("{container} is not running")))?;
            let owner = self.owner();
            let op = Op::LinkState {
                pid,
                interface: interface.to_owned(),
                up,
            };
            let index = self.hosts.index(&host.name).expect("a host of the lab");
            self.hosts
                .submit(index, &owner, op)
                .await
                .map(|_| ())
                .map_err(|e| failed(e.to_string()))
        }
        .boxed()
    }
}
