//! Holding an interface in promiscuous mode while lab-fwd runs: frames for
//! the far side's MACs must reach it on a real NIC too (a veth hands every
//! frame over anyway). An AF_PACKET socket of protocol 0 receives nothing;
//! its `PACKET_MR_PROMISC` membership is counted by the kernel and dropped
//! when the socket closes, however the process ends.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub struct Promiscuous {
    _socket: OwnedFd,
}

impl Promiscuous {
    pub fn hold(ifindex: u32) -> io::Result<Promiscuous> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let request = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: a packet_mreq of the size given, for the call only.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&request as *const libc::packet_mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Promiscuous { _socket: socket })
    }
}
