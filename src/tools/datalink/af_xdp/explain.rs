//! Turns a failed setup step and its errno into one line that says what is
//! missing and what to do about it.

use std::io;

use super::bpf::LoadError;
use super::xsk::{SetupError, Sizes, Step};
use crate::tools::datalink::{DatalinkError, DatalinkKind};

/// What went wrong while opening, before it is explained.
#[derive(Debug)]
pub(super) enum Failure {
    CreateMap(io::Error),
    LoadProgram(LoadError),
    Socket(SetupError),
    UpdateMap(io::Error),
    /// Opening the map labctl pinned for the interface.
    OpenPin(std::path::PathBuf, io::Error),
    /// Both modes were tried when the native one was unsupported; the
    /// error kept is the one to report.
    Attach(io::Error),
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Native (driver) XDP failed in a way generic XDP may not.
pub(super) fn native_unsupported(e: &io::Error) -> bool {
    !matches!(
        errno(e),
        libc::EPERM | libc::EACCES | libc::ENODEV | libc::EBUSY | libc::EEXIST
    )
}

impl Failure {
    /// The interface's XDP hook or queue 0 is taken, perhaps by a previous
    /// owner still being released: worth retrying for a moment.
    pub(super) fn is_busy(&self) -> bool {
        match self {
            Failure::Socket(SetupError {
                step: Step::Bind,
                error,
            }) => errno(error) == libc::EBUSY,
            Failure::Attach(error) => matches!(errno(error), libc::EBUSY | libc::EEXIST),
            // labctl's map has another live socket at the queue.
            Failure::UpdateMap(error) => errno(error) == libc::EEXIST,
            _ => false,
        }
    }

    pub(super) fn explain(self, iface: &str) -> DatalinkError {
        let unavailable = |missing: String| DatalinkError::Unavailable {
            kind: DatalinkKind::AfXdp,
            missing,
        };
        let io = |op: &'static str, source: io::Error| DatalinkError::Io {
            op,
            iface: iface.to_owned(),
            source,
        };
        match self {
            Failure::CreateMap(e) => match errno(&e) {
                libc::EPERM | libc::EACCES => unavailable(bpf_refused(&e)),
                libc::ENOSYS => unavailable(NO_BPF.into()),
                libc::EINVAL => unavailable(
                    "the kernel has no XSKMAP for AF_XDP sockets (it needs \
                     CONFIG_XDP_SOCKETS, Linux 5.9 or later)"
                        .into(),
                ),
                _ => io("create the XSKMAP", e),
            },
            Failure::LoadProgram(LoadError { error, verifier }) => {
                match errno(&error) {
                    libc::EPERM | libc::EACCES if verifier.is_none() => {
                        unavailable(bpf_refused(&error))
                    }
                    libc::ENOSYS => unavailable(NO_BPF.into()),
                    _ => unavailable(format!(
                    "the kernel refused labctl's XDP program ({}{}): it needs Linux 5.9 or later",
                    error_name(&error),
                    verifier.map(|v| format!(", verifier: {v}")).unwrap_or_default()
                )),
                }
            }
            Failure::Socket(SetupError { step, error }) => explain_socket(step, error, iface)
                .unwrap_or_else(|error| io(socket_op(step), error)),
            Failure::UpdateMap(e) if errno(&e) == libc::EEXIST => unavailable(format!(
                "queue 0 of {iface} already has an AF_XDP socket in labctl's XSKMAP (another \
                 tool on {iface} is running): one af_xdp tool per interface at a time"
            )),
            Failure::UpdateMap(e) => io("put the AF_XDP socket in the XSKMAP", e),
            Failure::OpenPin(pin, e) => match errno(&e) {
                libc::EPERM | libc::EACCES => unavailable(format!(
                    "opening labctl's XSKMAP {} was refused ({}): without CAP_BPF it needs \
                     Linux 6.5 or later (or kernel.unprivileged_bpf_disabled = 0), and under \
                     Docker a seccomp profile that allows bpf(BPF_OBJ_GET), as labctl's own does",
                    pin.display(),
                    error_name(&e)
                )),
                libc::ENOSYS => unavailable(NO_BPF.into()),
                _ => io("open labctl's pinned XSKMAP", e),
            },
            Failure::Attach(e) => match errno(&e) {
                libc::EBUSY | libc::EEXIST => unavailable(format!(
                    "{iface} already has an XDP program attached (see `ip link show {iface}`); \
                     the af_xdp datalink needs the interface's XDP hook for itself"
                )),
                libc::EPERM | libc::EACCES => unavailable(format!(
                    "attaching the XDP program to {iface} was refused ({}): the process needs \
                     CAP_NET_ADMIN with CAP_BPF (or CAP_SYS_ADMIN where CAP_BPF cannot be granted)",
                    error_name(&e)
                )),
                libc::EINVAL => unavailable(format!(
                    "the kernel could not attach an XDP program to {iface} through a BPF link \
                     (EINVAL): it needs Linux 5.9 or later"
                )),
                libc::ENODEV => DatalinkError::NoSuchInterface(iface.to_owned()),
                _ => io("attach the XDP program", e),
            },
        }
    }
}

const NO_BPF: &str = "the kernel has no bpf() system call (CONFIG_BPF_SYSCALL), \
                      or a seccomp profile hides it";

fn bpf_refused(e: &io::Error) -> String {
    format!(
        "bpf() was refused ({}): the process needs CAP_BPF and CAP_NET_ADMIN (labctl grants \
         both to af_xdp nodes; under Docker the seccomp profile must allow bpf(), as labctl's \
         own does and Docker's default does only with CAP_SYS_ADMIN), or CAP_SYS_ADMIN where \
         CAP_BPF cannot be granted (Linux before 5.8, Docker before 23.0)",
        error_name(e)
    )
}

/// The setup steps of the socket whose errors mean something is missing.
fn explain_socket(step: Step, error: io::Error, iface: &str) -> Result<DatalinkError, io::Error> {
    let unavailable = |missing: String| {
        Ok(DatalinkError::Unavailable {
            kind: DatalinkKind::AfXdp,
            missing,
        })
    };
    match (step, errno(&error)) {
        (Step::Socket, libc::EAFNOSUPPORT) => unavailable(
            "the kernel has no AF_XDP sockets (it needs CONFIG_XDP_SOCKETS, Linux 5.9 or later)"
                .into(),
        ),
        (Step::Socket, libc::EPERM | libc::EACCES) => unavailable(format!(
            "socket(AF_XDP) was refused ({}): the process needs CAP_NET_RAW",
            error_name(&error)
        )),
        (Step::RegisterUmem, libc::ENOBUFS | libc::ENOMEM | libc::EPERM) => unavailable(format!(
            "the packet buffer (UMEM: {} MiB, {} MiB for lab-capture, {} MiB for lab-gen, \
             lab-sink and lab-fwd) does not fit the locked-memory limit ({}; the kernel \
             counts it across all processes of this user): add CAP_IPC_LOCK (docker run \
             --cap-add IPC_LOCK) or raise the limit (ulimit -l)",
            Sizes::TOOL.umem_bytes() >> 20,
            Sizes::CAPTURE.umem_bytes() >> 20,
            Sizes::BULK.umem_bytes() >> 20,
            memlock_limit()
        )),
        (Step::Bind, libc::EBUSY) => unavailable(format!(
            "queue 0 of {iface} is already bound to another AF_XDP socket (a program \
             outside labctl's tools, or one that has not finished closing)"
        )),
        (Step::Bind, libc::ENODEV) => Ok(DatalinkError::NoSuchInterface(iface.to_owned())),
        _ => Err(error),
    }
}

fn socket_op(step: Step) -> &'static str {
    match step {
        Step::Socket => "create the AF_XDP socket",
        Step::RegisterUmem => "register the UMEM",
        Step::Rings => "size the AF_XDP rings",
        Step::MapRings => "map the AF_XDP rings",
        Step::Bind => "bind the AF_XDP socket",
    }
}

/// "EPERM" and the like, for messages that name the errno.
fn error_name(e: &io::Error) -> String {
    let name = match errno(e) {
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::E2BIG => "E2BIG",
        libc::ENOMEM => "ENOMEM",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return e.to_string(),
    };
    name.to_owned()
}

fn memlock_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return "unknown".into();
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        format!("{} KiB", limit.rlim_cur / 1024)
    }
}

/// The af_xdp datalink binds one socket to queue 0. On an interface with
/// more receive queues, frames on the others would miss the tools (the
/// program lets them through to the kernel), so refuse it. Drivers that
/// do not report their channels (lo, ...) have one queue.
pub(super) fn check_single_queue(iface: &str) -> Result<(), DatalinkError> {
    match rx_queues(iface) {
        Ok(queues) if queues > 1 => Err(DatalinkError::Unavailable {
            kind: DatalinkKind::AfXdp,
            missing: format!(
                "{iface} has {queues} receive queues and the af_xdp datalink reads queue 0 \
                 only: give it one (ethtool -L {iface} combined 1, or a veth created with \
                 numrxqueues 1)"
            ),
        }),
        _ => Ok(()),
    }
}

/// struct ethtool_channels (include/uapi/linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// The interface's receive queues, from ETHTOOL_GCHANNELS (a query that
/// needs no capability, answered in this network namespace).
fn rx_queues(iface: &str) -> io::Result<u32> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    // SAFETY: plain socket(2) call.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: ifreq is plain data; all zero is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request
        .ifr_name
        .iter_mut()
        .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    // SAFETY: request names the interface and points to a live
    // ethtool_channels that the kernel fills.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut request) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(channels.rx_count + channels.combined_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn each_missing_piece_is_named() {
        let cases: Vec<(Failure, &str)> = vec![
            (
                Failure::CreateMap(os(libc::EPERM)),
                "needs CAP_BPF and CAP_NET_ADMIN",
            ),
            (Failure::CreateMap(os(libc::ENOSYS)), "CONFIG_BPF_SYSCALL"),
            (Failure::CreateMap(os(libc::EINVAL)), "CONFIG_XDP_SOCKETS"),
            (
                Failure::Socket(SetupError {
                    step: Step::Socket,
                    error: os(libc::EAFNOSUPPORT),
                }),
                "no AF_XDP sockets",
            ),
            (
                Failure::Socket(SetupError {
                    step: Step::Socket,
                    error: os(libc::EPERM),
                }),
                "CAP_NET_RAW",
            ),
            (
                Failure::Socket(SetupError {
                    step: Step::RegisterUmem,
                    error: os(libc::ENOBUFS),
                }),
                "CAP_IPC_LOCK",
            ),
            (
                Failure::Attach(os(libc::EBUSY)),
                "already has an XDP program",
            ),
            (Failure::Attach(os(libc::EINVAL)), "Linux 5.9"),
            (
                Failure::LoadProgram(LoadError {
                    error: os(libc::EPERM),
                    verifier: None,
                }),
                "the seccomp profile must allow bpf()",
            ),
        ];
        for (failure, expected) in cases {
            let text = failure.explain("eth1").to_string();
            assert!(text.starts_with("af_xdp is not available: "), "{text}");
            assert!(
                text.contains(expected),
                "{text:?} should mention {expected:?}"
            );
            assert!(!text.contains('\n'), "one line: {text:?}");
        }
    }

    #[test]
    fn other_errors_say_what_was_being_done() {
        let text = Failure::UpdateMap(os(libc::EOPNOTSUPP))
            .explain("eth1")
            .to_string();
        assert!(
            text.starts_with("put the AF_XDP socket in the XSKMAP on eth1"),
            "{text}"
        );
    }

    #[test]
    fn busy_is_only_the_hook_or_the_queue() {
        assert!(Failure::Attach(os(libc::EBUSY)).is_busy());
        assert!(Failure::Socket(SetupError {
            step: Step::Bind,
            error: os(libc::EBUSY)
        })
        .is_busy());
        assert!(!Failure::CreateMap(os(libc::EBUSY)).is_busy());
        assert!(!native_unsupported(&os(libc::EPERM)));
        assert!(native_unsupported(&os(libc::EOPNOTSUPP)));
    }

    #[test]
    fn loopback_counts_as_one_queue() {
        // lo reports no channels; the check must let it through.
        assert!(check_single_queue("lo").is_ok());
    }
}
