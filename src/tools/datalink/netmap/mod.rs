//! The netmap datalink: labctl's own binding of netmap (API 14).
//!
//! - [`abi`]: the kernel's structures and ioctl numbers, with layout tests.
//! - [`ring`]: the rings inside the shared memory, bounds-checked.
//! - [`io`]: sending and receiving frames over the rings, written against
//!   the four syscalls it needs so the tests can play the kernel.
//! - [`port`]: `/dev/netmap`, registration, mmap, the real syscalls.
//!
//! Without the netmap kernel module there is no `/dev/netmap`: [`preflight`]
//! and [`Netmap::open`] then fail with one line that says so. See
//! docs/netmap.md for the modes, the both-ends rule on veth, and capture.

mod abi;
mod io;
mod port;
mod ring;

/// The rings over memory laid out as netmap lays it out, for the fuzz
/// target `ring_netmap`, which then writes anything anywhere in it.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use super::ring::fake::FakeRegion;
    pub use super::ring::{Interface, Region, Ring, RingError, RxSlot};
}

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Datalink, DatalinkError, OpenOptions, Received, WaitPolicy};
use io::{Rings, TransferError};
use port::{Port, PortKind};

/// The netmap control device.
pub const DEVICE: &str = "/dev/netmap";

/// Where sysfs is mounted; the netmap module's parameters are under it.
pub const SYSFS: &str = "/sys";

/// The netmap module's parameters, relative to [`SYSFS`].
const PARAMETERS: &str = "module/netmap/parameters";

/// Which adapters the module uses (`admode`): 0 native where the driver
/// supports netmap, else emulated; 1 native only; 2 emulated.
const ADMODE: &str = "admode";

/// Ethernet header bytes on top of the MTU: the largest frame a tool sends
/// or receives on a link (no VLAN tag, no FCS).
const ETHERNET_HEADER: u32 = 14;

/// Checks that this host can run netmap: `/dev/netmap` exists, is a
/// character device, and opens. labctl calls it before creating anything
/// for a lab with netmap interfaces; the tools call it through
/// [`Netmap::open`]. The error is one line naming `/dev/netmap` and the
/// netmap kernel module.
pub fn preflight() -> Result<(), DatalinkError> {
    port::open_device(Path::new(DEVICE)).map(drop)
}

/// The sizes of netmap's packet buffers, from the module's parameters:
/// `buf_size` for the rings of an interface in netmap mode (the kernel
/// refuses to register an interface whose MTU exceeds it, with EINVAL),
/// `priv_buf_size` for a monitor's private rings (frames longer than it
/// are cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    pub buf_size: u32,
    pub priv_buf_size: u32,
}

/// A link's frames do not fit netmap's buffers; says which parameter to
/// raise, and to what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "MTU {mtu} needs netmap buffers of {needed} bytes, but {parameter} is {size}: set \
     /sys/module/netmap/parameters/{parameter} to {needed} or more (before netmap is in use)"
)]
pub struct BufferTooSmall {
    pub mtu: u32,
    pub parameter: &'static str,
    pub size: u32,
    pub needed: u32,
}

impl BufferSizes {
    /// Reads `buf_size` and `priv_buf_size` under `sysfs` (`/sys` on a
    /// host; a test's own directory in the unit tests).
    pub fn read(sysfs: &Path) -> std::io::Result<BufferSizes> {
        Ok(BufferSizes {
            buf_size: read_parameter(sysfs, "buf_size")?,
            priv_buf_size: read_parameter(sysfs, "priv_buf_size")?,
        })
    }

    /// Whether frames on a link of `mtu` fit both kinds of buffers (an
    /// interface's rings, and a capture's).
    pub fn check(&self, mtu: u32) -> Result<(), BufferTooSmall> {
        self.check_nic(mtu)?;
        Self::fits(mtu, "priv_buf_size", self.priv_buf_size)
    }

    /// Whether frames on a link of `mtu` fit an interface's rings.
    pub fn check_nic(&self, mtu: u32) -> Result<(), BufferTooSmall> {
        Self::fits(mtu, "buf_size", self.buf_size)
    }

    fn fits(mtu: u32, parameter: &'static str, size: u32) -> Result<(), BufferTooSmall> {
        let needed = mtu.saturating_add(ETHERNET_HEADER);
        if size >= needed {
            return Ok(());
        }
        Err(BufferTooSmall {
            mtu,
            parameter,
            size,
            needed,
        })
    }
}

fn read_parameter(sysfs: &Path, name: &str) -> std::io::Result<u32> {
    let path = sysfs.join(PARAMETERS).join(name);
    let text = std::fs::read_to_string(&path)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {text:?} is not a number", path.display()),
        )
    })
}

/// Packet I/O through netmap rings on one interface.
#[derive(Debug)]
pub struct Netmap {
    state: State,
    /// The monitored port went away during the last receive; the state
    /// becomes `Ended` at the next call (the frame borrow rules out doing
    /// it at once).
    gone: bool,
    iface: String,
    kind: PortKind,
    description: String,
    /// How receives wait (`--busy-poll`), for rings opened later too.
    wait: WaitPolicy,
}

// One per open datalink: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum State {
    /// The port is registered and its rings found.
    Open(Open),
    /// A monitor whose interface is not in netmap mode yet: it registers
    /// at a later receive, so a capture may start before the program whose
    /// port it watches.
    Waiting(std::fs::File),
    /// A monitor whose port left netmap mode: no frame will come.
    Ended,
}

#[derive(Debug)]
struct Open {
    // Declared before the port: the rings point into its mapping.
    rings: Rings,
    port: Port,
}

impl Open {
    fn new(port: Port, wait: WaitPolicy) -> Result<Open, DatalinkError> {
        let mut rings = Rings::new(port.interface()?);
        rings.set_wait(wait);
        Ok(Open { rings, port })
    }
}

// SAFETY: a Netmap owns its file and mapping, and the raw pointers in its
// rings point only into that mapping, which moves with it. netmap has no
// thread affinity: any thread may make the syscalls, one at a time, which
// `&mut self` on every operation ensures.
unsafe impl Send for Netmap {}

/// How often a monitor that waits for its interface tries again.
const MONITOR_RETRY: Duration = Duration::from_millis(50);

impl Netmap {
    /// Registers `iface` (`netmap:IFACE`) in netmap mode, or, for a
    /// capture, opens a copy monitor of both its directions
    /// (`netmap:IFACE/rt`), which watches the port of another program
    /// holding `iface` in netmap mode. A monitor opened before that program
    /// waits for it in [`Datalink::recv`], as long as its caller waits.
    pub fn open(iface: &str, options: &OpenOptions) -> Result<Self, DatalinkError> {
        let device = port::open_device(Path::new(DEVICE))?;
        ensure_interface_exists(iface)?;
        let sysfs = Path::new(SYSFS);
        let (kind, state) = if options.capture {
            // A copy monitor's buffers are priv_buf_size: refuse rather
            // than cut frames.
            if let (Ok(mtu), Ok(sizes)) = (port::interface_mtu(iface), BufferSizes::read(sysfs)) {
                sizes.check(mtu).map_err(|too_small| DatalinkError::Io {
                    op: "open a monitor",
                    iface: format!("netmap:{iface}/rt"),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, too_small),
                })?;
            }
            let state = match Port::monitor(device, iface)? {
                Ok(port) => State::Open(Open::new(port, options.wait)?),
                Err(device) => State::Waiting(device),
            };
            (PortKind::Monitor, state)
        } else {
            (
                PortKind::Nic,
                State::Open(Open::new(Port::open(device, iface)?, options.wait)?),
            )
        };
        let description = describe(iface, &state, kind, read_admode(sysfs));
        Ok(Netmap {
            state,
            gone: false,
            iface: iface.to_owned(),
            kind,
            description,
            wait: options.wait,
        })
    }

    fn name(&self) -> String {
        format!("netmap:{}{}", self.iface, self.kind.suffix())
    }

    /// A waiting monitor tries to register once more. True when it is open.
    fn attach(&mut self) -> Result<bool, DatalinkError> {
        if let State::Waiting(_) = self.state {
            let State::Waiting(device) = std::mem::replace(&mut self.state, State::Ended) else {
                unreachable!("matched just above");
            };
            self.state = match Port::monitor(device, &self.iface)? {
                Ok(port) => State::Open(Open::new(port, self.wait)?),
                Err(device) => State::Waiting(device),
            };
        }
        Ok(matches!(self.state, State::Open(_)))
    }
}

/// How long closing waits at most for the last frames to leave the TX
/// rings; it stops sooner once they stop leaving (`io::FLUSH_STALL`: the
/// peer is not reading).
const FLUSH_ON_CLOSE: Duration = Duration::from_millis(200);

impl Drop for Netmap {
    fn drop(&mut self) {
        // Leaving netmap mode may drop what is still in the TX rings; a
        // failure here has no one left to report to.
        if let (PortKind::Nic, State::Open(open)) = (self.kind, &mut self.state) {
            let _ = open.rings.flush(&mut open.port, FLUSH_ON_CLOSE);
        }
    }
}

impl Datalink for Netmap {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        let iface = self.name();
        let unsupported = |why: &str| DatalinkError::Io {
            op: "send",
            iface: iface.clone(),
            source: std::io::Error::new(std::io::ErrorKind::Unsupported, why.to_owned()),
        };
        match (self.kind, &mut self.state) {
            (PortKind::Nic, State::Open(open)) => {
                open.rings
                    .send(&mut open.port, frame)
                    .map_err(|err| DatalinkError::Io {
                        op: "send",
                        iface,
                        source: std::io::Error::other(err),
                    })
            }
            _ => Err(unsupported("a netmap monitor only watches; it cannot send")),
        }
    }

    fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
        let iface = self.name();
        match (self.kind, &mut self.state) {
            (PortKind::Nic, State::Open(open)) => open
                .rings
                .send_batch(&mut open.port, frames)
                .map_err(|err| DatalinkError::Io {
                    op: "send",
                    iface,
                    source: std::io::Error::other(err),
                }),
            // What `send` says (a monitor cannot send, a port not open).
            _ => self
                .send(frames.first().copied().unwrap_or_default())
                .map(|()| 1),
        }
    }

    fn in_place_capacity(&self) -> Option<usize> {
        match (self.kind, &self.state) {
            (PortKind::Nic, State::Open(open)) => Some(open.rings.tx_capacity()),
            _ => None,
        }
    }

    fn send_in_place(
        &mut self,
        max: usize,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]),
    ) -> Result<usize, DatalinkError> {
        let iface = self.name();
        match (self.kind, &mut self.state) {
            (PortKind::Nic, State::Open(open)) => open
                .rings
                .send_filled(&mut open.port, max, len, fill)
                .map_err(|err| DatalinkError::Io {
                    op: "send",
                    iface,
                    source: std::io::Error::other(err),
                }),
            _ => Err(DatalinkError::Io {
                op: "send",
                iface,
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a netmap monitor only watches; it cannot send",
                ),
            }),
        }
    }

    fn recv_queued_by_sync(
        &mut self,
        max: usize,
        synced: &mut dyn FnMut(),
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, DatalinkError> {
        let iface = self.name();
        match (self.kind, &mut self.state) {
            // Straight off the rings, their slots given back a ring at a
            // time, `synced` once per RX sync. (A monitor, which may wait
            // or end, goes frame by frame.)
            (PortKind::Nic, State::Open(open)) => open
                .rings
                .recv_queued(&mut open.port, max, synced, each)
                .map_err(|err| DatalinkError::Io {
                    op: "receive",
                    iface,
                    source: std::io::Error::other(err),
                }),
            _ => super::recv_one_by_one(self, max, &mut |received| {
                synced();
                each(received);
            }),
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let iface = self.name();
        let deadline = Instant::now() + timeout;
        if self.gone {
            // Unmap and close: the port is gone for good.
            self.state = State::Ended;
        }
        while !self.attach()? {
            if let State::Ended = self.state {
                return Err(DatalinkError::Ended {
                    iface,
                    why: port::MONITORED_PORT_GONE.to_owned(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !nap(left.min(MONITOR_RETRY)) {
                return Ok(None);
            }
        }
        let State::Open(open) = &mut self.state else {
            unreachable!("attach() said it is open");
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match open.rings.recv(&mut open.port, left) {
            Ok(received) => Ok(received),
            Err(TransferError::Kernel { source, .. })
                if self.kind == PortKind::Monitor
                    && source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                self.gone = true;
                Err(DatalinkError::Ended {
                    iface,
                    why: source.to_string(),
                })
            }
            Err(err) => Err(DatalinkError::Io {
                op: "receive",
                iface,
                source: std::io::Error::other(err),
            }),
        }
    }

    fn poll_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        // netmap syncs the RX rings when the port's descriptor is polled.
        // A monitor still waiting for its port has none: it is looked at
        // periodically, and registers at a receive.
        match &self.state {
            State::Open(open) => vec![open.port.as_fd()],
            State::Waiting(_) | State::Ended => Vec::new(),
        }
    }
}

/// Sleeps for `time`; false when a signal cut the sleep short (the
/// caller then returns, as `Datalink::recv` promises).
fn nap(time: Duration) -> bool {
    let millis = time.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: poll on no descriptor is a sleep that a signal interrupts.
    let rc = unsafe { libc::poll(std::ptr::null_mut(), 0, millis) };
    rc == 0
}

fn ensure_interface_exists(iface: &str) -> Result<(), DatalinkError> {
    let missing = || DatalinkError::NoSuchInterface(iface.to_owned());
    let name = std::ffi::CString::new(iface).map_err(|_| missing())?;
    // SAFETY: name is a valid NUL-terminated string for the call.
    if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
        return Err(missing());
    }
    Ok(())
}

fn read_admode(sysfs: &Path) -> Option<u32> {
    read_parameter(sysfs, ADMODE).ok()
}

/// For the tools' "listening on" / "capturing on" lines: the port, its
/// rings, and which adapter mode the module was told to use.
fn describe(iface: &str, state: &State, kind: PortKind, admode: Option<u32>) -> String {
    let slots = |ring: Option<&ring::Ring>| {
        ring.map_or(String::new(), |r| {
            format!(" of {} slots x {} bytes", r.num_slots(), r.buf_size())
        })
    };
    let open = match state {
        State::Open(open) => open,
        State::Waiting(_) | State::Ended => {
            return format!(
                "netmap, copy monitor netmap:{iface}/rt, waiting for a program to put {iface} \
                 in netmap mode"
            )
        }
    };
    let (port, rings) = (&open.port, &open.rings);
    let rx = rings.rx_rings();
    match kind {
        PortKind::Monitor => format!(
            "netmap, copy monitor {}, {} RX rings{}",
            port.name(),
            rx.len(),
            slots(rx.first())
        ),
        PortKind::Nic => {
            let tx = rings.tx_rings();
            let mode = match admode {
                Some(0) => ", native or emulated (admode 0)",
                Some(1) => ", native (admode 1)",
                Some(2) => ", emulated (admode 2)",
                _ => "",
            };
            format!(
                "netmap, {}, {} TX + {} RX rings{}{mode}",
                port.name(),
                tx.len(),
                rx.len(),
                slots(tx.first())
            )
        }
    }
}

/// A netmap port over the fake kernel (`ring/fake.rs`), as a datalink,
/// for the tools' unit tests: the same ring code as [`Netmap`] runs,
/// against a kernel that behaves as netmap's does.
#[cfg(test)]
pub(crate) mod fake_link {
    use std::time::Duration;

    use super::io::Rings;
    use super::ring::fake::{FakeKernel, FakeRegion};
    use crate::tools::datalink::{Datalink, DatalinkError, Received};

    pub struct FakeNetmap {
        rings: Rings,
        kernel: FakeKernel<'static>,
    }

    fn io(op: &'static str) -> impl Fn(super::io::TransferError) -> DatalinkError {
        move |err| DatalinkError::Io {
            op,
            iface: "netmap:fake".into(),
            source: std::io::Error::other(err),
        }
    }

    impl FakeNetmap {
        pub fn new(tx_rings: u32, rx_rings: u32, num_slots: u32, buf_size: u32) -> FakeNetmap {
            // Leaked: the kernel borrows the region for the test's life.
            let region: &'static FakeRegion = Box::leak(Box::new(FakeRegion::new(
                tx_rings, rx_rings, num_slots, buf_size,
            )));
            FakeNetmap {
                rings: Rings::new(region.region().interface(region.nifp_offset()).unwrap()),
                kernel: FakeKernel::new(region),
            }
        }

        pub fn kernel(&mut self) -> &mut FakeKernel<'static> {
            &mut self.kernel
        }
    }

    impl Datalink for FakeNetmap {
        fn describe(&self) -> String {
            "netmap (fake kernel)".into()
        }

        fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
            self.rings.send(&mut self.kernel, frame).map_err(io("send"))
        }

        fn send_batch(&mut self, frames: &[&[u8]]) -> Result<usize, DatalinkError> {
            self.rings
                .send_batch(&mut self.kernel, frames)
                .map_err(io("send"))
        }

        fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
            self.rings
                .recv(&mut self.kernel, timeout)
                .map_err(io("receive"))
        }

        fn recv_queued_by_sync(
            &mut self,
            max: usize,
            synced: &mut dyn FnMut(),
            each: &mut dyn FnMut(Received<'_>),
        ) -> Result<usize, DatalinkError> {
            self.rings
                .recv_queued(&mut self.kernel, max, synced, each)
                .map_err(io("receive"))
        }

        fn in_place_capacity(&self) -> Option<usize> {
            Some(self.rings.tx_capacity())
        }

        fn send_in_place(
            &mut self,
            max: usize,
            len: usize,
            fill: &mut dyn FnMut(usize, &mut [u8]),
        ) -> Result<usize, DatalinkError> {
            self.rings
                .send_filled(&mut self.kernel, max, len, fill)
                .map_err(io("send"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::DatalinkKind;
    use super::*;

    fn assert_names_device_and_module(err: &DatalinkError) {
        assert!(
            matches!(
                err,
                DatalinkError::Unavailable {
                    kind: DatalinkKind::Netmap,
                    ..
                }
            ),
            "{err:?}"
        );
        let line = err.to_string();
        assert!(line.contains("/dev/netmap"), "{line}");
        assert!(line.contains("netmap kernel module"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    /// A sysfs tree with the netmap module's parameters.
    pub(crate) fn fake_sysfs(buf_size: &str, priv_buf_size: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(PARAMETERS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("buf_size"), buf_size).unwrap();
        std::fs::write(dir.join("priv_buf_size"), priv_buf_size).unwrap();
        std::fs::write(dir.join("admode"), "2\n").unwrap();
        root
    }

    #[test]
    fn buffer_sizes_are_read_from_the_module_parameters() {
        let sysfs = fake_sysfs("2048\n", "4096\n");
        let sizes = BufferSizes::read(sysfs.path()).unwrap();
        assert_eq!(
            sizes,
            BufferSizes {
                buf_size: 2048,
                priv_buf_size: 4096
            }
        );
        assert_eq!(read_admode(sysfs.path()), Some(2));
        let garbage = fake_sysfs("big\n", "4096\n");
        let err = BufferSizes::read(garbage.path()).unwrap_err().to_string();
        assert!(
            err.contains("buf_size") && err.contains("not a number"),
            "{err}"
        );
        let none = tempfile::tempdir().unwrap();
        assert!(BufferSizes::read(none.path()).is_err());
    }

    #[test]
    fn an_mtu_needs_its_frame_and_ethernet_header_in_each_buffer() {
        let sizes = BufferSizes {
            buf_size: 2048,
            priv_buf_size: 2048,
        };
        assert!(sizes.check(1500).is_ok());
        assert!(sizes.check(2034).is_ok(), "2034 + 14 fits exactly");
        let err = sizes.check(2035).unwrap_err();
        assert_eq!((err.parameter, err.needed), ("buf_size", 2049));
        assert_eq!(
            sizes.check(3000).unwrap_err().to_string(),
            "MTU 3000 needs netmap buffers of 3014 bytes, but buf_size is 2048: set \
             /sys/module/netmap/parameters/buf_size to 3014 or more (before netmap is in use)"
        );
        // A capture's buffers are the private ones.
        let small_private = BufferSizes {
            buf_size: 4096,
            priv_buf_size: 2048,
        };
        assert!(small_private.check_nic(3000).is_ok());
        let err = small_private.check(3000).unwrap_err();
        assert_eq!(
            (err.parameter, err.size, err.needed),
            ("priv_buf_size", 2048, 3014)
        );
    }

    #[test]
    #[cfg_attr(labctl_has_netmap, ignore = "this machine has /dev/netmap")]
    fn without_dev_netmap_preflight_says_what_is_missing() {
        assert_names_device_and_module(&preflight().unwrap_err());
    }

    #[test]
    #[cfg_attr(labctl_has_netmap, ignore = "this machine has /dev/netmap")]
    fn without_dev_netmap_open_says_the_same() {
        for capture in [false, true] {
            let err = Netmap::open(
                "lo",
                &OpenOptions {
                    capture,
                    ..OpenOptions::default()
                },
            )
            .unwrap_err();
            assert_names_device_and_module(&err);
        }
        let err = super::super::open(DatalinkKind::Netmap, "lo", &OpenOptions::default())
            .err()
            .expect("no netmap here");
        assert_names_device_and_module(&err);
    }

    #[test]
    #[cfg_attr(
        not(labctl_has_netmap),
        ignore = "needs /dev/netmap: the netmap kernel module is not loaded on this machine"
    )]
    fn an_unknown_interface_is_named() {
        let err = Netmap::open("nosuchif0", &OpenOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DatalinkError::NoSuchInterface(name) if name == "nosuchif0"),
            "{err:?}"
        );
    }
}
