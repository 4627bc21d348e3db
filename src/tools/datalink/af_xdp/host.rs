//! The host side of the af_xdp datalink, for a node that may not load BPF
//! programs itself (a Docker node where CAP_BPF cannot be granted): labctl,
//! root on the host, creates the XSKMAP, loads the same redirect program
//! the datalink loads, attaches it to the node's interface, and pins
//! - the map in the node's own pin directory (bind-mounted at
//!   [`super::PIN_DIR`]), where the datalink opens it
//!   ([`super::pinned_map`]) and puts its socket in;
//! - the link where only the host sees it, so the program stays attached
//!   after labctl exits (`labctl deploy`) until labctl removes the pin at
//!   teardown, or the interface goes with the node.

use std::io;
use std::path::Path;

use super::bpf::{RedirectProgram, XdpLink, XskMap};
use super::explain::{self, Failure};
use super::{generic_marker, ifindex, XdpMode};
use crate::tools::datalink::DatalinkError;

/// Attaches labctl's program to `iface`, pins its map as `<iface>` in
/// `map_dir` and its link as `<iface>` in `link_dir`. Must run on a
/// thread inside the node's network namespace (the interface is looked up
/// there). Returns the mode the program runs in.
pub fn attach_and_pin(
    iface: &str,
    map_dir: &Path,
    link_dir: &Path,
) -> Result<XdpMode, DatalinkError> {
    let index = ifindex(iface)?;
    let map = XskMap::create().map_err(|e| Failure::CreateMap(e).explain(iface))?;
    let program =
        RedirectProgram::load(&map).map_err(|e| Failure::LoadProgram(e).explain(iface))?;
    let (link, mode) = match XdpLink::attach(&program, index, XdpMode::Native) {
        Ok(link) => (link, XdpMode::Native),
        Err(native) if explain::native_unsupported(&native) => {
            let link = XdpLink::attach(&program, index, XdpMode::Generic)
                .map_err(|e| Failure::Attach(e).explain(iface))?;
            (link, XdpMode::Generic)
        }
        Err(native) => return Err(Failure::Attach(native).explain(iface)),
    };
    let io_error = |op: &'static str| {
        move |source: io::Error| DatalinkError::Io {
            op,
            iface: iface.to_owned(),
            source,
        }
    };
    link.pin(&link_dir.join(iface))
        .map_err(io_error("pin the XDP link"))?;
    if mode == XdpMode::Generic {
        std::fs::create_dir(map_dir.join(generic_marker(iface)))
            .map_err(io_error("mark the XDP mode"))?;
    }
    // Last: the pin's existence tells the datalink everything is ready.
    map.pin(&map_dir.join(iface))
        .map_err(io_error("pin the XSKMAP"))?;
    Ok(mode)
}
