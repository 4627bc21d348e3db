//! The typed plan a wiring helper carries out on one host: what labctl
//! cannot do there itself, since it reaches a remote host only through its
//! Docker API. The helper is labctl's own static binary (`labctl wire`) in
//! a short-lived container on that host, with the host's PID and network
//! namespaces (`helper.rs`); the plan reaches it as JSON in its
//! environment and the outcomes come back as one JSON line on its stdout.
//! Never a shell string: every field is data, and the helper runs nothing
//! but the netlink requests below ([`execute`], the same `links` code as a
//! one-host lab's).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::lab::Route;
use crate::links::{self, LinkError, Netlink, VethEnd, VethPlan, VxlanEnd, Wiring as _};

/// The environment variable that carries the plan into the helper.
pub const PLAN_ENV: &str = "LABCTL_WIRE_PLAN";

/// What one helper does on its host: independent operations (the work of
/// several callers, gathered), each carried out whatever became of the
/// others, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub ops: Vec<Op>,
}

/// One piece of netlink work in the host's namespaces. A node is named by
/// the host pid of its init (the helper shares the host's PID namespace).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The host's underlay: the interface that holds `underlay`, its MTU.
    Probe { underlay: IpAddr },
    /// A veth between two nodes of this host.
    Veth { plan: VethPlan, pids: [u32; 2] },
    /// One end of a link across hosts.
    Vxlan { end: VxlanEnd, pid: u32 },
    /// A node's routes, once its links are up.
    Routes {
        node: String,
        routes: Vec<Route>,
        pid: u32,
    },
    /// One end's impairments, once the link is wired.
    Impair {
        end: VethEnd,
        mtu: Option<u32>,
        pid: u32,
    },
    /// A signal to a step's process (its host pid, as Docker reports
    /// it): labctl cannot `kill(2)` a process on another host.
    Signal { pid: u32, signal: i32 },
    /// A link-state step: one interface of a node down or up.
    LinkState {
        pid: u32,
        interface: String,
        up: bool,
    },
}

impl Op {
    /// Whether carrying it out may write a node's interface sysctls, which
    /// Docker's read-only /proc/sys would refuse.
    pub fn writes_sysctls(&self) -> bool {
        match self {
            Op::Veth { plan, .. } => plan.ends.iter().any(|e| !e.sysctls.is_empty()),
            Op::Vxlan { end, .. } => !end.end.sysctls.is_empty(),
            _ => false,
        }
    }

    /// Whether it loads a BPF program (the loss impairment's filter).
    pub fn loads_bpf(&self) -> bool {
        matches!(self, Op::Impair { end, .. } if end.impair.is_some_and(|i| i.loss.is_some()))
    }
}

/// What one operation gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// The underlay's interface and MTU; `None`: no interface of this host
    /// holds the address.
    Probed {
        underlay: Option<(String, u32)>,
    },
    /// The operation failed; the ones after it were not tried.
    Failed {
        error: String,
    },
}

/// The outcomes of a plan's operations, in order, up to the first failure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// The first failure, if any.
    pub fn failure(&self) -> Option<&str> {
        self.outcomes.iter().find_map(|o| match o {
            Outcome::Failed { error } => Some(error.as_str()),
            _ => None,
        })
    }
}

/// Carries out every operation of `plan` in this process's namespaces
/// (the helper's: the host's), one outcome each.
pub async fn execute(plan: &Plan) -> Report {
    let mut report = Report::default();
    let netlink = match Netlink::connect() {
        Ok(n) => n,
        Err(e) => {
            let error = e.to_string();
            report.outcomes = plan
                .ops
                .iter()
                .map(|_| Outcome::Failed {
                    error: error.clone(),
                })
                .collect();
            return report;
        }
    };
    for op in &plan.ops {
        report.outcomes.push(match one(&netlink, op).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Failed {
                error: e.to_string(),
            },
        });
    }
    report
}

async fn one(netlink: &Netlink, op: &Op) -> Result<Outcome, LinkError> {
    let ns = links::pid_path;
    match op {
        Op::Probe { underlay } => Ok(Outcome::Probed {
            underlay: netlink.holder_of(*underlay).await?,
        }),
        Op::Veth { plan, pids } => {
            let [a, b] = pids.map(ns);
            netlink.wire(plan, [&a, &b]).await.map(|()| Outcome::Done)
        }
        Op::Vxlan { end, pid } => netlink
            .wire_vxlan(end, &ns(*pid))
            .await
            .map(|()| Outcome::Done),
        Op::Routes { node, routes, pid } => netlink
            .add_routes(node, routes, &ns(*pid))
            .await
            .map(|()| Outcome::Done),
        Op::Impair { end, mtu, pid } => links::impair_end(end, *mtu, &ns(*pid))
            .await
            .map(|()| Outcome::Done),
        Op::Signal { pid, signal } => {
            let pid = libc::pid_t::try_from(*pid).map_err(|_| {
                LinkError::io(format!("signalling pid {pid}"))(std::io::Error::from(
                    std::io::ErrorKind::InvalidInput,
                ))
            })?;
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(pid, *signal) } == 0 {
                Ok(Outcome::Done)
            } else {
                let e = std::io::Error::last_os_error();
                // Gone already is what the caller wanted.
                if e.raw_os_error() == Some(libc::ESRCH) {
                    Ok(Outcome::Done)
                } else {
                    Err(LinkError::io(format!("signalling pid {pid}"))(e))
                }
            }
        }
        Op::LinkState { pid, interface, up } => links::set_link_state(&ns(*pid), interface, *up)
            .await
            .map(|()| Outcome::Done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_its_json_and_says_what_it_needs() {
        let end = VethEnd {
            node: "a".into(),
            interface: "eth1".into(),
            ipv4: Some("198.18.0.1/24".parse().unwrap()),
            mac: Some([2, 0, 0, 0, 0, 1]),
            sysctls: vec![("net.ipv4.conf.eth1.rp_filter".into(), "0".into())],
            impair: None,
        };
        let vxlan = VxlanEnd {
            alias: "labctl:x:r".into(),
            mtu: Some(1450),
            end: end.clone(),
            vni: 1001,
            port: 4789,
            local: "198.19.0.1".parse().unwrap(),
            remote: "198.19.0.2".parse().unwrap(),
        };
        let lossy = VethEnd {
            impair: Some(crate::lab::Impairment {
                loss: Some(0.1),
                ..Default::default()
            }),
            ..end.clone()
        };
        let plan = Plan {
            ops: vec![
                Op::Probe {
                    underlay: "198.19.0.1".parse().unwrap(),
                },
                Op::Vxlan { end: vxlan, pid: 7 },
                Op::Impair {
                    end: lossy,
                    mtu: None,
                    pid: 7,
                },
            ],
        };
        let json = serde_json::to_string(&plan).unwrap();
        assert!(json.contains(r#""op":"vxlan""#), "{json}");
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        assert!(!plan.ops[0].writes_sysctls() && plan.ops[1].writes_sysctls());
        assert!(plan.ops[2].loads_bpf() && !plan.ops[1].loads_bpf());
    }

    #[test]
    fn a_report_names_its_first_failure() {
        let report = Report {
            outcomes: vec![
                Outcome::Done,
                Outcome::Failed {
                    error: "no such pid".into(),
                },
            ],
        };
        assert_eq!(report.failure(), Some("no such pid"));
        assert_eq!(Report::default().failure(), None);
    }
}
