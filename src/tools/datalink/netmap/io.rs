//! Sending and receiving whole frames over a port's rings.
//!
//! This is the logic of the netmap datalink, written against
//! [`KernelSync`] (the four system calls it needs) rather than against
//! the device, so that the unit tests run it over a fake kernel
//! (`ring/fake.rs`) exactly as it runs over `/dev/netmap`.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use super::super::wait::{Next, WaitPolicy};
use super::super::{Direction, Received};
use super::abi::{NS_MOREFRAG, NS_TXMON};
use super::ring::{Interface, Ring, RingError};

/// The kernel side of a port: what netmap does at each system call.
pub trait KernelSync {
    /// `ioctl(NIOCTXSYNC)`: sends the TX slots handed over since the last
    /// sync and reports the slots freed since (moves `tail`).
    fn txsync(&mut self) -> io::Result<()>;
    /// `ioctl(NIOCRXSYNC)`: takes back the RX slots released since the
    /// last sync and reports new frames (moves `tail`).
    fn rxsync(&mut self) -> io::Result<()>;
    /// `poll(POLLIN)`: an RX sync that waits up to `timeout` for frames.
    /// True when some RX ring has frames.
    fn poll_rx(&mut self, timeout: Duration) -> io::Result<bool>;
    /// `poll(POLLOUT)`: a TX sync that waits up to `timeout` for a free
    /// slot. True when some TX ring has one.
    fn poll_tx(&mut self, timeout: Duration) -> io::Result<bool>;
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("netmap ring: {0}")]
    Ring(#[from] RingError),
    #[error("{op}: {source}")]
    Kernel {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no TX slot became free within {0:?}: the kernel is not draining the TX rings")]
    TxRingsFull(Duration),
}

fn kernel(op: &'static str) -> impl FnOnce(io::Error) -> TransferError {
    move |source| TransferError::Kernel { op, source }
}

/// How long [`Rings::flush`] waits for a frame to leave before it takes
/// the rest for stuck.
pub const FLUSH_STALL: Duration = Duration::from_millis(20);

/// The bound rings of one port, and the receive state.
#[derive(Debug)]
pub struct Rings {
    tx: Vec<Ring>,
    rx: Vec<Ring>,
    /// Where the next search for a received frame starts, so that one
    /// busy ring does not starve the others.
    next_rx: usize,
    /// The RX ring and slot count of the frame handed out by the last
    /// `recv`: the caller borrows those slots until the next call.
    lent: Option<(usize, u32)>,
    /// A frame that spans several slots (NS_MOREFRAG) is joined here.
    joined: Vec<u8>,
    send_timeout: Duration,
    /// How `recv` waits: non-blocking RX syncs first, then `poll`.
    wait: WaitPolicy,
    /// Frames `recv_queued` took since the last RX sync, and how many it
    /// takes before it gives their slots back without waiting for the
    /// rings to run dry: a quarter of the smallest RX ring.
    taken_since_sync: u32,
    release_every: u32,
}

impl Rings {
    pub fn new(interface: Interface) -> Rings {
        let release_every = interface
            .rx
            .iter()
            .map(|ring| ring.num_slots() / 4)
            .min()
            .unwrap_or(0)
            .max(1);
        Rings {
            taken_since_sync: 0,
            release_every,
            tx: interface.tx,
            rx: interface.rx,
            next_rx: 0,
            lent: None,
            joined: Vec::new(),
            send_timeout: Duration::from_secs(1),
            wait: WaitPolicy::default(),
        }
    }

    /// How `recv` waits from now on.
    pub fn set_wait(&mut self, wait: WaitPolicy) {
        self.wait = wait;
    }

    pub fn tx_rings(&self) -> &[Ring] {
        &self.tx
    }

    pub fn rx_rings(&self) -> &[Ring] {
        &self.rx
    }

    /// Copies `frame` into a free TX slot and syncs, so that the frame has
    /// been handed to the kernel when this returns: a frame left in a ring
    /// without a sync never leaves. Waits (up to a second) for a free slot
    /// when every TX ring is full.
    pub fn send(
        &mut self,
        kernel: &mut impl KernelSync,
        frame: &[u8],
    ) -> Result<(), TransferError> {
        let deadline = Instant::now() + self.send_timeout;
        loop {
            for ring in &mut self.tx {
                if ring.push(frame)? {
                    return kernel.txsync().map_err(self::kernel("NIOCTXSYNC"));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !kernel
                .poll_tx(left)
                .map_err(self::kernel("poll for a free TX slot"))?
            {
                return Err(TransferError::TxRingsFull(self.send_timeout));
            }
        }
    }

    /// Copies as many of `frames` as fit into free TX slots, then syncs
    /// once (one `NIOCTXSYNC` for the lot); returns how many went. Waits
    /// (up to a second) for a free slot when every TX ring is full.
    pub fn send_batch(
        &mut self,
        kernel: &mut impl KernelSync,
        frames: &[&[u8]],
    ) -> Result<usize, TransferError> {
        if frames.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + self.send_timeout;
        loop {
            let mut sent = 0;
            'rings: for ring in &mut self.tx {
                while let Some(frame) = frames.get(sent) {
                    if !ring.push(frame)? {
                        continue 'rings;
                    }
                    sent += 1;
                }
                break;
            }
            if sent > 0 {
                kernel.txsync().map_err(self::kernel("NIOCTXSYNC"))?;
                return Ok(sent);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !kernel
                .poll_tx(left)
                .map_err(self::kernel("poll for a free TX slot"))?
            {
                return Err(TransferError::TxRingsFull(self.send_timeout));
            }
        }
    }

    /// The TX slots there are to fill: what one [`Rings::send_filled`]
    /// takes at most.
    pub fn tx_capacity(&self) -> usize {
        // The kernel keeps one slot of each ring.
        self.tx
            .iter()
            .map(|ring| ring.num_slots() as usize - 1)
            .sum()
    }

    /// Fills up to `max` free TX slots in place, frame `nth` of the call
    /// written by `fill(nth, buffer)` straight into its slot's buffer
    /// (`len` bytes), every ring's free slots in one go, then syncs once;
    /// returns how many went. Waits (up to a second) for a free slot when
    /// every TX ring is full.
    pub fn send_filled(
        &mut self,
        kernel: &mut impl KernelSync,
        max: usize,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]),
    ) -> Result<usize, TransferError> {
        if max == 0 {
            return Ok(0);
        }
        let deadline = Instant::now() + self.send_timeout;
        loop {
            let mut done = 0;
            for ring in &mut self.tx {
                let left = u32::try_from(max - done).unwrap_or(u32::MAX);
                let base = done;
                done +=
                    ring.fill(left, len, |nth, buffer| fill(base + nth as usize, buffer))? as usize;
                if done == max {
                    break;
                }
            }
            if done > 0 {
                kernel.txsync().map_err(self::kernel("NIOCTXSYNC"))?;
                return Ok(done);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !kernel
                .poll_tx(left)
                .map_err(self::kernel("poll for a free TX slot"))?
            {
                return Err(TransferError::TxRingsFull(self.send_timeout));
            }
        }
    }

    /// Takes up to `max` frames without waiting: every frame the RX rings
    /// hold, each handed to `each` straight from its slot, the slots of a
    /// ring given back together; an RX sync (which gives the slots back to
    /// the kernel and brings what arrived since) every quarter ring of
    /// frames taken and when the rings run dry before `max`, and on while
    /// a sync brings frames. `synced` is called after each sync that
    /// brought frames, before the frames that follow (so a frame's last
    /// `synced` came after the sync that brought it). Returns how many.
    ///
    /// The sync every quarter ring is for a pipe (a native veth): its
    /// sender fills only the slots the receiver gave back, so a receiver
    /// that gave them back only when dry kept the sender waiting while it
    /// read the whole ring, and the two took turns instead of working at
    /// once (a receiver doing nothing a frame took 0.27x pkt-gen's rate so,
    /// 0.65x with a sync every 256 frames; docs/netmap.md).
    pub fn recv_queued(
        &mut self,
        kernel: &mut impl KernelSync,
        max: usize,
        synced: &mut dyn FnMut(),
        each: &mut dyn FnMut(Received<'_>),
    ) -> Result<usize, TransferError> {
        self.give_back_lent()?;
        let mut taken = 0;
        while taken < max {
            let index = match self.ready_ring()? {
                Some(index) if self.taken_since_sync < self.release_every => index,
                ready => {
                    let held = self.rx_owned()?;
                    self.rxsync(kernel)?;
                    if self.rx_owned()? > held {
                        synced();
                    } else if ready.is_none() {
                        break;
                    }
                    continue;
                }
            };
            self.next_rx = (index + 1) % self.rx.len();
            let left = u32::try_from(max - taken)
                .unwrap_or(u32::MAX)
                .min(self.release_every - self.taken_since_sync);
            let got = self.rx[index].take_received(left, |slot| {
                each(Received {
                    frame: slot.data,
                    direction: direction_of(slot.flags),
                })
            })? as usize;
            taken += got;
            // `got` <= `left`, a u32.
            self.taken_since_sync += got as u32;
            if got == 0 {
                // A frame over several slots at the head: joined, as recv
                // does, then given back at once.
                if let Some(direction) = self.take(index)? {
                    each(self.lent_frame(direction)?);
                    taken += 1;
                }
                self.give_back_lent()?;
            }
        }
        Ok(taken)
    }

    /// The next received frame, waiting up to `timeout`. The frame stays in
    /// its ring slot (no copy) until the next call, which gives the slot
    /// back to the kernel.
    pub fn recv(
        &mut self,
        kernel: &mut impl KernelSync,
        timeout: Duration,
    ) -> Result<Option<Received<'_>>, TransferError> {
        self.give_back_lent()?;
        let wait = self.wait.start(timeout);
        let mut synced = false;
        loop {
            if let Some(ring) = self.ready_ring()? {
                if let Some(direction) = self.take(ring)? {
                    return Ok(Some(self.lent_frame(direction)?));
                }
                continue;
            }
            let arrived = match wait.next() {
                // A non-blocking look at what arrived (at least one, for a
                // zero timeout), spinning while the policy says so.
                Next::Spin => {
                    kernel.rxsync().map_err(self::kernel("NIOCRXSYNC"))?;
                    synced = true;
                    continue;
                }
                Next::Done if !synced => {
                    kernel.rxsync().map_err(self::kernel("NIOCRXSYNC"))?;
                    synced = true;
                    self.ready_ring()?.is_some()
                }
                Next::Done => false,
                Next::Sleep(left) => kernel
                    .poll_rx(left)
                    .map_err(self::kernel("poll for received frames"))?,
            };
            if !arrived {
                return Ok(None);
            }
        }
    }

    /// Waits up to `timeout` until every frame handed to the kernel has
    /// left the TX rings (`next(tail) == head` on each), so that closing
    /// the port does not cut the last frames off. True when they all left.
    ///
    /// Gives up sooner, after [`FLUSH_STALL`] in which no frame left (no
    /// ring's `tail` moved): the peer is not reading (its RX ring is full,
    /// or it is not in netmap mode), and the rest would not leave within
    /// `timeout` either.
    pub fn flush(
        &mut self,
        kernel: &mut impl KernelSync,
        timeout: Duration,
    ) -> Result<bool, TransferError> {
        let deadline = Instant::now() + timeout;
        let mut tails = Vec::new();
        let mut last_progress = Instant::now();
        loop {
            kernel.txsync().map_err(self::kernel("NIOCTXSYNC"))?;
            if self.tx.iter().try_fold(true, |all, ring| {
                Ok::<_, RingError>(all && ring.transmissions_complete()?)
            })? {
                return Ok(true);
            }
            let now = Instant::now();
            let seen = self
                .tx
                .iter()
                .map(Ring::tail)
                .collect::<Result<Vec<u32>, RingError>>()?;
            if seen != tails {
                tails = seen;
                last_progress = now;
            }
            let left = deadline
                .min(last_progress + FLUSH_STALL)
                .saturating_duration_since(now);
            if left.is_zero() {
                return Ok(false);
            }
            thread::sleep(left.min(Duration::from_millis(5)));
        }
    }

    /// An RX sync, from which `recv_queued` counts frames taken anew.
    fn rxsync(&mut self, kernel: &mut impl KernelSync) -> Result<(), TransferError> {
        self.taken_since_sync = 0;
        kernel.rxsync().map_err(self::kernel("NIOCRXSYNC"))
    }

    /// Frames the RX rings hold for the program.
    fn rx_owned(&self) -> Result<u32, RingError> {
        self.rx
            .iter()
            .try_fold(0, |sum, ring| Ok(sum + ring.owned()?))
    }

    fn give_back_lent(&mut self) -> Result<(), RingError> {
        if let Some((ring, slots)) = self.lent.take() {
            self.rx[ring].release(slots)?;
        }
        Ok(())
    }

    /// The first RX ring with a frame, round-robin from `next_rx`.
    fn ready_ring(&self) -> Result<Option<usize>, RingError> {
        let count = self.rx.len();
        for step in 0..count {
            let index = (self.next_rx + step) % count;
            if !self.rx[index].is_empty()? {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// Lends the frame at the head of RX ring `index` (joining it when it
    /// spans several slots); `None` when the ring's slots end in the middle
    /// of a frame, which is then dropped.
    fn take(&mut self, index: usize) -> Result<Option<Direction>, RingError> {
        self.next_rx = (index + 1) % self.rx.len();
        let ring = &mut self.rx[index];
        let Some(first) = ring.received(0)? else {
            return Ok(None);
        };
        let direction = direction_of(first.flags);
        self.joined.clear();
        let mut slots = 0;
        while let Some(slot) = ring.received(slots)? {
            slots += 1;
            if slot.flags & NS_MOREFRAG == 0 {
                if slots > 1 {
                    self.joined.extend_from_slice(slot.data);
                }
                self.lent = Some((index, slots));
                return Ok(Some(direction));
            }
            self.joined.extend_from_slice(slot.data);
        }
        // The frame's last fragment is not there: drop what came.
        ring.release(slots)?;
        Ok(None)
    }

    /// The frame [`Rings::take`] lent: in its slot, or joined.
    fn lent_frame(&self, direction: Direction) -> Result<Received<'_>, RingError> {
        let frame = match self.lent {
            Some((index, 1)) => self.rx[index].received(0)?.map(|slot| slot.data),
            _ => Some(&self.joined[..]),
        };
        Ok(Received {
            frame: frame.unwrap_or_default(),
            direction,
        })
    }
}

/// On a monitor port, slots copied from the monitored TX rings carry
/// NS_TXMON: the frame left the interface.
fn direction_of(flags: u16) -> Direction {
    if flags & NS_TXMON != 0 {
        Direction::Out
    } else {
        Direction::In
    }
}

#[cfg(test)]
mod tests {
    use super::super::abi::{NR_RX, NR_TX};
    use super::super::ring::fake::{FakeKernel, FakeRegion};
    use super::*;

    fn rings(region: &FakeRegion) -> Rings {
        Rings::new(region.region().interface(region.nifp_offset()).unwrap())
    }

    #[test]
    fn send_syncs_so_the_frame_leaves_at_once() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        rings.send(&mut kernel, b"one frame").unwrap();
        assert_eq!(kernel.wire(), [b"one frame".to_vec()]);
        assert_eq!(kernel.txsyncs, 1);
    }

    #[test]
    fn a_batch_goes_out_with_one_sync() {
        let region = FakeRegion::new(1, 1, 64, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        let frames: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 60]).collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        assert_eq!(rings.send_batch(&mut kernel, &slices).unwrap(), 20);
        assert_eq!(kernel.txsyncs, 1);
        assert_eq!(kernel.wire(), frames);
    }

    #[test]
    fn a_batch_bigger_than_the_rings_sends_what_fits() {
        let region = FakeRegion::new(2, 1, 4, 128);
        let mut kernel = FakeKernel::new(&region);
        kernel.complete_transmissions(false);
        let mut rings = rings(&region);
        let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        // A ring of 4 slots holds 3 frames (one slot stays empty).
        assert_eq!(rings.send_batch(&mut kernel, &slices).unwrap(), 6);
        assert_eq!(kernel.txsyncs, 1);
        assert_eq!(kernel.wire().len(), 6);
    }

    #[test]
    fn the_last_frame_is_not_left_in_the_ring() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        for i in 0..20u8 {
            rings.send(&mut kernel, &[i]).unwrap();
            assert_eq!(
                kernel.wire().last(),
                Some(&vec![i]),
                "frame {i} still queued"
            );
        }
        assert!(rings.tx_rings()[0].transmissions_complete().unwrap());
        assert_eq!(rings.tx_rings()[0].head().unwrap(), 20 % 8);
    }

    #[test]
    fn send_waits_for_the_kernel_then_gives_up_on_full_rings() {
        let region = FakeRegion::new(1, 1, 4, 128);
        let mut kernel = FakeKernel::new(&region);
        kernel.complete_transmissions(false);
        let mut rings = rings(&region);
        for i in 0..3u8 {
            rings.send(&mut kernel, &[i]).unwrap();
        }
        let err = rings.send(&mut kernel, b"no room").unwrap_err();
        assert!(matches!(err, TransferError::TxRingsFull(_)), "{err}");
        assert!(kernel.polls > 0, "it asked the kernel for room first");
        kernel.complete_transmissions(true);
        rings.send(&mut kernel, b"room again").unwrap();
        assert_eq!(kernel.wire().len(), 4);
    }

    #[test]
    fn send_uses_the_next_ring_when_one_is_full() {
        let region = FakeRegion::new(2, 1, 2, 128);
        let mut kernel = FakeKernel::new(&region);
        kernel.complete_transmissions(false);
        let mut rings = rings(&region);
        rings.send(&mut kernel, b"ring 0").unwrap();
        rings.send(&mut kernel, b"ring 1").unwrap();
        assert_eq!(region.slot(NR_TX, 1, 0).len, 6);
        assert_eq!(kernel.wire().len(), 2);
    }

    #[test]
    fn filled_slots_go_out_with_one_sync_and_a_full_ring_waits_for_room() {
        // Two rings of 8 slots: 14 free; 20 asked, 14 go in one sync.
        let region = FakeRegion::new(2, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        kernel.complete_transmissions(false);
        let mut rings = rings(&region);
        assert_eq!(rings.tx_capacity(), 14);
        let mut calls = Vec::new();
        let went = rings
            .send_filled(&mut kernel, 20, 60, &mut |nth, buffer| {
                calls.push(nth);
                buffer.fill(nth as u8);
            })
            .unwrap();
        assert_eq!(went, 14);
        assert_eq!(calls, (0..14).collect::<Vec<_>>(), "in order, once each");
        assert_eq!(kernel.txsyncs, 1);
        let expected: Vec<Vec<u8>> = (0..14u8).map(|i| vec![i; 60]).collect();
        assert_eq!(kernel.wire(), expected);
        // No room: it waits for the kernel, then gives up.
        let err = rings
            .send_filled(&mut kernel, 1, 60, &mut |_, buffer| buffer.fill(0))
            .unwrap_err();
        assert!(matches!(err, TransferError::TxRingsFull(_)), "{err}");
        kernel.complete_transmissions(true);
        assert_eq!(
            rings
                .send_filled(&mut kernel, 3, 60, &mut |_, buffer| buffer.fill(9))
                .unwrap(),
            3
        );
        assert_eq!(kernel.wire().len(), 17);
    }

    #[test]
    fn filling_in_place_writes_whole_frames_over_swapped_buffers() {
        // A native veth swaps buffers: every byte must be written anew.
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        kernel.swap_buffers(true);
        let mut rings = rings(&region);
        let mut sent = 0u8;
        while sent < 40 {
            sent += rings
                .send_filled(&mut kernel, 5, 64, &mut |nth, buffer| {
                    buffer.copy_from_slice(&[sent + nth as u8; 64])
                })
                .unwrap() as u8;
        }
        let expected: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 64]).collect();
        assert_eq!(kernel.wire(), expected);
        let err = rings
            .send_filled(&mut kernel, 1, 129, &mut |_, _| unreachable!())
            .unwrap_err();
        assert!(
            matches!(err, TransferError::Ring(RingError::FrameTooLarge { .. })),
            "{err}"
        );
    }

    /// What `recv_queued` handed out, in order: `None` for a `synced`.
    fn queued(
        rings: &mut Rings,
        kernel: &mut FakeKernel<'_>,
        max: usize,
    ) -> (usize, Vec<Option<Vec<u8>>>) {
        let events = std::cell::RefCell::new(Vec::new());
        let taken = rings
            .recv_queued(
                kernel,
                max,
                &mut || events.borrow_mut().push(None),
                &mut |got| events.borrow_mut().push(Some(got.frame.to_vec())),
            )
            .unwrap();
        (taken, events.into_inner())
    }

    #[test]
    fn recv_queued_takes_every_frame_once_from_every_ring() {
        let region = FakeRegion::new(1, 2, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        for i in 0..30u8 {
            kernel.deliver(u32::from(i % 2), &[i % 2, i]);
        }
        let (taken, events) = queued(&mut rings, &mut kernel, 1000);
        assert_eq!(taken, 30);
        assert_eq!(events[0], None, "a sync before the first frame");
        let mut sorted: Vec<Vec<u8>> = events.iter().flatten().cloned().collect();
        sorted.sort_by_key(|frame| frame[1]);
        let expected: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i % 2, i]).collect();
        assert_eq!(sorted, expected, "every frame once");
        for ring in 0..2 {
            let order: Vec<u8> = events
                .iter()
                .flatten()
                .filter(|frame| frame[0] == ring)
                .map(|frame| frame[1])
                .collect();
            assert!(order.is_sorted(), "ring {ring} in order: {order:?}");
        }
        for ring in rings.rx_rings() {
            assert!(ring.is_empty().unwrap(), "every slot given back");
        }
        // `max` is kept; what is left stays for the next call. Frames
        // there came with an earlier sync: a sync that brings new ones
        // behind them is announced before the next frame taken (so a
        // frame's last `synced` always came after the sync that brought
        // it, and one of the earlier sync's may share the new reading).
        for i in 0..5u8 {
            kernel.deliver(0, &[i]);
        }
        let (taken, events) = queued(&mut rings, &mut kernel, 3);
        assert_eq!(taken, 3);
        assert_eq!(events, [None, Some(vec![0]), Some(vec![1]), Some(vec![2])]);
        kernel.deliver(0, &[5]);
        let (taken, events) = queued(&mut rings, &mut kernel, 10);
        assert_eq!(taken, 3);
        assert_eq!(events, [Some(vec![3]), None, Some(vec![4]), Some(vec![5])]);
        kernel.deliver(0, &[6]);
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!(got.frame, [6]);
    }

    #[test]
    fn recv_queued_gives_slots_back_every_quarter_ring_so_a_pipe_keeps_filling() {
        // A sender with 100 frames for a ring of 16 slots, as a native
        // veth's peer: it can fill only the slots given back.
        let region = FakeRegion::new(1, 1, 16, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        for i in 0..100u8 {
            kernel.deliver(0, &[i]);
        }
        let (taken, events) = queued(&mut rings, &mut kernel, 1000);
        assert_eq!(taken, 100);
        let frames: Vec<u8> = events.iter().flatten().map(|frame| frame[0]).collect();
        assert_eq!(frames, (0..100).collect::<Vec<u8>>());
        // The first sync brings 15 frames; after every 4 taken, a sync
        // gives their slots back and the sender's next 4 come in, while
        // 11 are still to be read; the last sync that brings any brings
        // the 100th, and the 12 frames then held keep its reading.
        let batches: Vec<usize> = events
            .split(Option::is_none)
            .map(<[Option<Vec<u8>>]>::len)
            .collect();
        let mut expected = vec![0];
        expected.extend([4; 22]);
        expected.push(12);
        assert_eq!(batches, expected);
        // 23 syncs brought frames, 2 more gave slots back and found none,
        // and one found the ring dry.
        assert_eq!(kernel.rxsyncs, 26);
    }

    #[test]
    fn recv_queued_joins_a_frame_over_several_slots() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.deliver(0, b"one");
        kernel.deliver_with_flags(0, &[1; 128], NS_MOREFRAG);
        kernel.deliver(0, &[2; 10]);
        kernel.deliver(0, b"two");
        let (taken, events) = queued(&mut rings, &mut kernel, 10);
        assert_eq!(taken, 3);
        assert_eq!(events[0], None, "one sync, before its frames");
        let seen: Vec<Vec<u8>> = events[1..].iter().flatten().cloned().collect();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], b"one");
        assert_eq!(seen[1].len(), 138);
        assert_eq!(seen[2], b"two");
        assert!(rings.rx_rings()[0].is_empty().unwrap());
    }

    #[test]
    fn recv_on_empty_rings_returns_none() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        assert!(rings.recv(&mut kernel, Duration::ZERO).unwrap().is_none());
        assert_eq!(
            (kernel.rxsyncs, kernel.polls),
            (1, 0),
            "no wait: one RX sync"
        );
        assert!(rings
            .recv(&mut kernel, Duration::from_millis(50))
            .unwrap()
            .is_none());
        assert_eq!(kernel.polls, 1, "a wait is a poll");
    }

    #[test]
    fn busy_poll_syncs_without_sleeping() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        rings.set_wait(WaitPolicy::busy_poll());
        assert!(rings
            .recv(&mut kernel, Duration::from_millis(5))
            .unwrap()
            .is_none());
        assert_eq!(kernel.polls, 0, "busy-poll never sleeps in poll");
        assert!(kernel.rxsyncs > 1, "it kept looking: {}", kernel.rxsyncs);
    }

    #[test]
    fn recv_with_time_to_wait_polls_for_frames() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        rings.set_wait(WaitPolicy {
            spin: Duration::ZERO,
            busy_poll: false,
        });
        kernel.deliver(0, b"after a wait");
        let got = rings
            .recv(&mut kernel, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(got.frame, b"after a wait");
        assert_eq!(kernel.polls, 1);
    }

    #[test]
    fn a_spin_finds_a_frame_without_sleeping() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        rings.set_wait(WaitPolicy {
            spin: Duration::from_millis(1),
            busy_poll: false,
        });
        kernel.deliver(0, b"while spinning");
        let got = rings
            .recv(&mut kernel, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(got.frame, b"while spinning");
        assert_eq!(kernel.polls, 0, "found by an RX sync, no poll");
    }

    #[test]
    fn flush_waits_until_every_transmission_completed() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.complete_transmissions(false);
        rings.send(&mut kernel, b"slow").unwrap();
        assert!(!rings.flush(&mut kernel, Duration::from_millis(20)).unwrap());
        kernel.complete_transmissions(true);
        assert!(rings.flush(&mut kernel, Duration::from_millis(20)).unwrap());
        assert!(rings.tx_rings()[0].transmissions_complete().unwrap());
    }

    #[test]
    fn flush_gives_up_when_no_frame_leaves_for_a_while() {
        // A native veth whose peer does not read: the frames stay.
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.complete_transmissions(false);
        rings.send(&mut kernel, b"stuck").unwrap();
        let started = Instant::now();
        assert!(!rings.flush(&mut kernel, Duration::from_secs(2)).unwrap());
        let took = started.elapsed();
        assert!(took >= FLUSH_STALL, "{took:?}");
        assert!(
            took < Duration::from_millis(500),
            "{took:?}: the whole timeout"
        );
    }

    #[test]
    fn flush_waits_past_the_stall_for_frames_that_keep_leaving() {
        // A peer that reads slowly: one frame leaves per sync, the syncs
        // 5 ms apart, so the last of 7 leaves after 30 ms, past FLUSH_STALL.
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.complete_transmissions(false);
        for _ in 0..7 {
            rings.send(&mut kernel, b"slow").unwrap();
        }
        kernel.complete_at_most(1);
        let started = Instant::now();
        assert!(rings.flush(&mut kernel, Duration::from_secs(2)).unwrap());
        assert!(started.elapsed() > FLUSH_STALL, "{:?}", started.elapsed());
        assert!(rings.tx_rings()[0].transmissions_complete().unwrap());
    }

    #[test]
    fn recv_lends_the_slot_until_the_next_call() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.deliver(0, b"first");
        kernel.deliver(0, b"second");
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!((got.frame, got.direction), (&b"first"[..], Direction::In));
        assert_eq!(rings.rx_rings()[0].head().unwrap(), 0, "still lent");
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!(got.frame, b"second");
        assert_eq!(rings.rx_rings()[0].head().unwrap(), 1);
        assert!(rings.recv(&mut kernel, Duration::ZERO).unwrap().is_none());
        let ring = &rings.rx_rings()[0];
        assert_eq!((ring.head().unwrap(), ring.cur().unwrap()), (2, 2));
    }

    #[test]
    fn recv_drains_a_ring_across_wrap_around_and_refills() {
        let region = FakeRegion::new(1, 1, 4, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        let frames: Vec<Vec<u8>> = (0..25u8).map(|i| vec![i; 3]).collect();
        for frame in &frames {
            kernel.deliver(0, frame);
        }
        let mut seen = Vec::new();
        while let Some(got) = rings.recv(&mut kernel, Duration::ZERO).unwrap() {
            seen.push(got.frame.to_vec());
        }
        assert_eq!(
            seen, frames,
            "every frame once, in order, through a 4-slot ring"
        );
    }

    #[test]
    fn recv_takes_turns_between_rings() {
        let region = FakeRegion::new(1, 2, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        for i in 0..3u8 {
            kernel.deliver(0, &[0, i]);
            kernel.deliver(1, &[1, i]);
        }
        let mut seen = Vec::new();
        while let Some(got) = rings.recv(&mut kernel, Duration::ZERO).unwrap() {
            seen.push(got.frame.to_vec());
        }
        let expected: Vec<Vec<u8>> = (0..3u8).flat_map(|i| [vec![0, i], vec![1, i]]).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_frame_over_several_slots_is_joined() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.deliver_with_flags(0, &[1; 128], NS_MOREFRAG);
        kernel.deliver_with_flags(0, &[2; 128], NS_MOREFRAG);
        kernel.deliver(0, &[3; 10]);
        kernel.deliver(0, b"next");
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!(got.frame.len(), 266);
        assert_eq!((got.frame[0], got.frame[128], got.frame[265]), (1, 2, 3));
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!(got.frame, b"next");
    }

    #[test]
    fn a_frame_cut_short_is_dropped_not_returned() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.deliver_with_flags(0, b"half", NS_MOREFRAG);
        assert!(rings.recv(&mut kernel, Duration::ZERO).unwrap().is_none());
        kernel.deliver(0, b"whole");
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!(got.frame, b"whole");
    }

    #[test]
    fn monitor_slots_tell_the_direction() {
        let region = FakeRegion::new(1, 1, 8, 128);
        let mut kernel = FakeKernel::new(&region);
        let mut rings = rings(&region);
        kernel.deliver_with_flags(0, b"left", NS_TXMON);
        kernel.deliver(0, b"arrived");
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!((got.frame, got.direction), (&b"left"[..], Direction::Out));
        let got = rings.recv(&mut kernel, Duration::ZERO).unwrap().unwrap();
        assert_eq!((got.frame, got.direction), (&b"arrived"[..], Direction::In));
        assert_eq!(region.slot(NR_RX, 0, 1).len, 7);
    }
}
