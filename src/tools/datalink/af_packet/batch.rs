//! Receiving in batches with `recvmmsg`, for lab-sink: up to [`SLOTS`]
//! frames per system call, each handed out in turn. Unlike the capture's
//! ring, a frame is readable as soon as the kernel queued it (the ring hands
//! a block over only when it is full or after its retire timeout, which
//! would add up to that much to every one-way latency at low rates).

use std::io;
use std::mem;
use std::os::fd::RawFd;

use super::super::Direction;

/// Frames taken per call.
pub const SLOTS: usize = 64;
/// Bytes per frame: any frame of a 9000-byte MTU. A longer one (a GSO frame
/// on veth) comes truncated and is handed out as such (MSG_TRUNC), which
/// the tools count as malformed.
pub const SLOT_BYTES: usize = 16 * 1024;

pub struct Batch {
    buffer: Vec<u8>,
    frames: Vec<(usize, Direction)>,
    next: usize,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            buffer: vec![0; SLOTS * SLOT_BYTES],
            frames: Vec::with_capacity(SLOTS),
            next: 0,
        }
    }

    /// The next queued frame, as (slot, length, direction); reads a new
    /// batch from `fd` when the last one is used up. `None` when nothing
    /// is queued.
    pub fn next(&mut self, fd: RawFd) -> io::Result<Option<(usize, usize, Direction)>> {
        if self.next >= self.frames.len() {
            self.fill(fd)?;
        }
        let Some(&(len, direction)) = self.frames.get(self.next) else {
            return Ok(None);
        };
        let slot = self.next;
        self.next += 1;
        Ok(Some((slot, len, direction)))
    }

    /// The bytes of a frame `next` returned.
    pub fn bytes(&self, slot: usize, len: usize) -> &[u8] {
        let start = slot * SLOT_BYTES;
        &self.buffer[start..start + len.min(SLOT_BYTES)]
    }

    fn fill(&mut self, fd: RawFd) -> io::Result<()> {
        self.frames.clear();
        self.next = 0;
        // SAFETY: all-zero sockaddr_ll and mmsghdr are valid values.
        let mut from: [libc::sockaddr_ll; SLOTS] = unsafe { mem::zeroed() };
        let mut iovecs: Vec<libc::iovec> = self
            .buffer
            .chunks_exact_mut(SLOT_BYTES)
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT_BYTES,
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .zip(from.iter_mut())
            .map(|(iovec, from)| {
                // SAFETY: as above.
                let mut header: libc::mmsghdr = unsafe { mem::zeroed() };
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                header.msg_hdr.msg_name = (from as *mut libc::sockaddr_ll).cast();
                header.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as u32;
                header
            })
            .collect();
        // SAFETY: every header points at one live iovec (a slot of the
        // buffer, of the length given) and one live sockaddr_ll; a null
        // timeout with MSG_DONTWAIT returns at once.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                SLOTS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
                _ => Err(err),
            };
        }
        for (header, from) in headers.iter().zip(from.iter()).take(got as usize) {
            let direction = if from.sll_pkttype == libc::PACKET_OUTGOING {
                Direction::Out
            } else {
                Direction::In
            };
            self.frames.push((header.msg_len as usize, direction));
        }
        Ok(())
    }
}
