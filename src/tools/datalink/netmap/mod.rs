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

use std::path::Path;
use std::time::Duration;

use super::{Datalink, DatalinkError, OpenOptions, Received};
use io::{Rings, TransferError};
use port::{Port, PortKind};

/// The netmap control device.
pub const DEVICE: &str = "/dev/netmap";

/// Where the netmap module tells which adapters it uses: 0 native where
/// the driver supports netmap, else emulated; 1 native only; 2 emulated.
const ADMODE: &str = "/sys/module/netmap/parameters/admode";

/// Checks that this host can run netmap: `/dev/netmap` exists, is a
/// character device, and opens. labctl calls it before creating anything
/// for a lab with netmap interfaces; the tools call it through
/// [`Netmap::open`]. The error is one line naming `/dev/netmap` and the
/// netmap kernel module.
pub fn preflight() -> Result<(), DatalinkError> {
    port::open_device(Path::new(DEVICE)).map(drop)
}

/// Packet I/O through netmap rings on one interface.
#[derive(Debug)]
pub struct Netmap {
    // Declared before the port: the rings point into its mapping.
    rings: Rings,
    port: Port,
    kind: PortKind,
    description: String,
}

// SAFETY: a Netmap owns its file and mapping, and the raw pointers in its
// rings point only into that mapping, which moves with it. netmap has no
// thread affinity: any thread may make the syscalls, one at a time, which
// `&mut self` on every operation ensures.
unsafe impl Send for Netmap {}

impl Netmap {
    /// Registers `iface` (`netmap:IFACE`) in netmap mode, or, for a
    /// capture, opens a copy monitor of both its directions
    /// (`netmap:IFACE/rt`), which needs another program to hold `iface` in
    /// netmap mode (it waits a few seconds for one).
    pub fn open(iface: &str, options: &OpenOptions) -> Result<Self, DatalinkError> {
        let device = port::open_device(Path::new(DEVICE))?;
        ensure_interface_exists(iface)?;
        let kind = if options.capture {
            PortKind::Monitor
        } else {
            PortKind::Nic
        };
        let port = Port::open(device, iface, kind)?;
        let interface = port.interface()?;
        let rings = Rings::new(interface);
        let description = describe(&port, &rings, kind, read_admode());
        Ok(Netmap {
            rings,
            port,
            kind,
            description,
        })
    }

    fn error(&self, op: &'static str, err: TransferError) -> DatalinkError {
        DatalinkError::Io {
            op,
            iface: self.port.name().to_owned(),
            source: std::io::Error::other(err),
        }
    }
}

/// How long closing waits for the last frames to leave the TX rings.
const FLUSH_ON_CLOSE: Duration = Duration::from_millis(200);

impl Drop for Netmap {
    fn drop(&mut self) {
        // Leaving netmap mode may drop what is still in the TX rings; a
        // failure here has no one left to report to.
        if self.kind == PortKind::Nic {
            let _ = self.rings.flush(&mut self.port, FLUSH_ON_CLOSE);
        }
    }
}

impl Datalink for Netmap {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), DatalinkError> {
        if self.kind == PortKind::Monitor {
            return Err(DatalinkError::Io {
                op: "send",
                iface: self.port.name().to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a netmap monitor only watches; it cannot send",
                ),
            });
        }
        match self.rings.send(&mut self.port, frame) {
            Ok(()) => Ok(()),
            Err(err) => Err(self.error("send", err)),
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Received<'_>>, DatalinkError> {
        let iface = self.port.name().to_owned();
        self.rings
            .recv(&mut self.port, timeout)
            .map_err(|err| DatalinkError::Io {
                op: "receive",
                iface,
                source: std::io::Error::other(err),
            })
    }
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

fn read_admode() -> Option<u32> {
    std::fs::read_to_string(ADMODE).ok()?.trim().parse().ok()
}

/// For the tools' "listening on" / "capturing on" lines: the port, its
/// rings, and which adapter mode the module was told to use.
fn describe(port: &Port, rings: &Rings, kind: PortKind, admode: Option<u32>) -> String {
    let slots = |ring: Option<&ring::Ring>| {
        ring.map_or(String::new(), |r| {
            format!(" of {} slots x {} bytes", r.num_slots(), r.buf_size())
        })
    };
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

    #[test]
    #[cfg_attr(labctl_has_netmap, ignore = "this machine has /dev/netmap")]
    fn without_dev_netmap_preflight_says_what_is_missing() {
        assert_names_device_and_module(&preflight().unwrap_err());
    }

    #[test]
    #[cfg_attr(labctl_has_netmap, ignore = "this machine has /dev/netmap")]
    fn without_dev_netmap_open_says_the_same() {
        for capture in [false, true] {
            let err = Netmap::open("lo", &OpenOptions { capture }).unwrap_err();
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
