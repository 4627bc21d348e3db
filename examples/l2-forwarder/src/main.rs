//! `l2-forwarder WEST EAST`: every Ethernet frame received on one
//! interface is sent out of the other, both ways, unchanged: a wire made
//! of user-space code, on pnet's datalink channels (AF_PACKET).

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use pnet_datalink::{self as datalink, Channel, Config, NetworkInterface};

fn interface(name: &str) -> Result<NetworkInterface, String> {
    datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| format!("no interface {name}"))
}

/// PACKET_IGNORE_OUTGOING (linux/if_packet.h, Linux 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A packet socket that does not see the frames it sends itself: a
/// forwarder that saw them would send each frame back where it came from,
/// forever.
fn packet_socket() -> Result<i32, String> {
    // SAFETY: plain system calls; the descriptor is handed to pnet, which
    // owns it from then on.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            (libc::ETH_P_ALL as u16).to_be() as libc::c_int,
        );
        if fd < 0 {
            return Err(format!(
                "opening a packet socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        let on: libc::c_int = 1;
        if libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("ignoring outgoing frames: {e}"));
        }
        Ok(fd)
    }
}

type Ports = (
    Box<dyn datalink::DataLinkSender>,
    Box<dyn datalink::DataLinkReceiver>,
);

fn open(iface: &NetworkInterface) -> Result<Ports, String> {
    let config = Config {
        socket_fd: Some(packet_socket()?),
        ..Config::default()
    };
    match datalink::channel(iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok((tx, rx)),
        Ok(_) => Err(format!("{}: not an Ethernet channel", iface.name)),
        Err(e) => Err(format!("{}: opening a packet socket: {e}", iface.name)),
    }
}

/// Frames from `rx` to `tx`, for ever. A receive error (the interface
/// went down: ENETDOWN) is said once and waited out, so the forwarder
/// carries on when the link comes back up.
fn forward(
    from: String,
    mut rx: Box<dyn datalink::DataLinkReceiver>,
    mut tx: Box<dyn datalink::DataLinkSender>,
) {
    let mut failing = false;
    loop {
        match rx.next() {
            Ok(frame) => {
                failing = false;
                // A frame the other side cannot take (too big, link down)
                // is dropped, as a wire would.
                let _ = tx.send_to(frame, None);
            }
            Err(e) => {
                if !failing {
                    eprintln!("l2-forwarder: {from}: receiving: {e}");
                    failing = true;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn run(west: &str, east: &str) -> Result<(), String> {
    let (west_tx, west_rx) = open(&interface(west)?)?;
    let (east_tx, east_rx) = open(&interface(east)?)?;
    println!("forwarding between {west} and {east}");
    let w = west.to_owned();
    thread::spawn(move || forward(w, west_rx, east_tx));
    forward(east.to_owned(), east_rx, west_tx);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [west, east] = args.as_slice() else {
        eprintln!("usage: l2-forwarder WEST EAST");
        return ExitCode::from(2);
    };
    match run(west, east) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2-forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}
