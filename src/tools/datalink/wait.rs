//! How a datalink waits for the next frame: spin first, then sleep.
//!
//! Sleeping in `poll` costs a wake-up per frame, which across CPUs is an
//! inter-processor interrupt to an idle CPU (tens of µs in a VM,
//! docs/performance.md). A wait can therefore first look for a frame
//! without sleeping — the ring (AF_XDP, netmap) or a non-blocking receive
//! (AF_PACKET) — for [`WaitPolicy::spin`] (`--spin`; none by default, as
//! measured), and only then sleep in the kernel. `--busy-poll` never sleeps: it spins for the whole wait, one
//! core per tool, and asks the kernel to busy-poll the device too
//! (`SO_BUSY_POLL`) where the socket allows it.
//!
//! A spinning wait is not interrupted by a signal the way `poll` is, so
//! the tools count SIGINT and SIGTERM here ([`count_signals`]) and every
//! spin looks at the count: a signal still ends a wait at once, as the
//! [`Datalink::recv`](super::Datalink::recv) contract says. Since the
//! tools stop on the first one, every wait after it ends at once too
//! (after one look for a frame, which is what a draining tool asks for):
//! a signal that lands between the tool's look at its stop flag and the
//! start of a wait would otherwise be missed for the whole wait.

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a wait spins before it sleeps, unless `--busy-poll` (which
/// spins for all of it) or `--spin` says otherwise: not at all. Measured
/// (docs/performance.md): on a machine whose CPUs other work shares, a
/// 50 µs spin before every sleep made a flood 10 to 16 times slower and
/// the median RTT 2.5 times longer, at 8 to 12 times the CPU per round
/// trip: the spinning tool holds the CPU its peer (or whoever the peer
/// waits behind) needs. Spinning pays only on CPUs of its own, which is
/// what `--busy-poll` (or `--spin`) asks for.
pub const DEFAULT_SPIN: Duration = Duration::ZERO;

/// What `SO_BUSY_POLL` asks for: how long the kernel busy-polls the
/// device's queue inside one receive or poll call.
pub const KERNEL_BUSY_POLL_USEC: libc::c_int = 50;

/// How a datalink waits for frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitPolicy {
    /// How long a wait looks for a frame without sleeping before it
    /// sleeps in the kernel (zero: sleep at once).
    pub spin: Duration,
    /// Never sleep: spin for the whole wait, and ask the kernel to
    /// busy-poll the device where the socket supports it.
    pub busy_poll: bool,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            spin: DEFAULT_SPIN,
            busy_poll: false,
        }
    }
}

impl WaitPolicy {
    /// `--busy-poll`.
    pub fn busy_poll() -> Self {
        WaitPolicy {
            spin: Duration::MAX,
            busy_poll: true,
        }
    }

    /// Starts a wait of `timeout` from now.
    pub fn start(&self, timeout: Duration) -> Wait {
        self.start_at(Instant::now(), timeout)
    }

    /// Starts a wait of `timeout` from `now` (the tests give the clock).
    fn start_at(&self, now: Instant, timeout: Duration) -> Wait {
        let deadline = now.checked_add(timeout);
        let spin_end = if self.busy_poll {
            deadline
        } else {
            now.checked_add(self.spin).map(|end| match deadline {
                Some(deadline) => end.min(deadline),
                None => end,
            })
        };
        Wait { deadline, spin_end }
    }
}

/// One wait in progress: until when it spins, when it ends.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    /// None: beyond the clock's range (wait "for ever").
    deadline: Option<Instant>,
    /// None: spins for ever (busy-poll without a deadline).
    spin_end: Option<Instant>,
}

/// What a wait does after a look found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Look again without sleeping.
    Spin,
    /// Sleep in the kernel for at most this long.
    Sleep(Duration),
    /// The wait is over: its time is up, or a signal came.
    Done,
}

impl Wait {
    /// After a look that found nothing: spin again, sleep, or give up.
    pub fn next(&self) -> Next {
        self.next_at(Instant::now())
    }

    /// [`Wait::next`] at `now` (the tests give the clock).
    fn next_at(&self, now: Instant) -> Next {
        if self.interrupted() {
            return Next::Done;
        }
        let left = match self.deadline {
            Some(deadline) if now >= deadline => return Next::Done,
            Some(deadline) => deadline - now,
            None => Duration::MAX,
        };
        match self.spin_end {
            Some(end) if now >= end => Next::Sleep(left),
            _ => {
                std::hint::spin_loop();
                Next::Spin
            }
        }
    }

    /// The time left, for a wait that sleeps without spinning.
    pub fn left(&self) -> Duration {
        match self.deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }

    /// True once SIGINT or SIGTERM came (see the module's comment).
    pub fn interrupted(&self) -> bool {
        signals_seen() != 0
    }
}

/// Now plus `timeout`, or a year from now for a timeout past the clock's
/// range: a deadline for a wait of any `--timeout`.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Counts `signals` as they come, so that spinning waits end on them.
/// The tools call it for SIGINT and SIGTERM (`cli::stop_on_signals`).
pub fn count_signals(signals: &[libc::c_int]) -> io::Result<()> {
    for &signal in signals {
        // SAFETY: the handler only increments an atomic, which is
        // async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal, || {
                SIGNALS.fetch_add(1, Ordering::Relaxed);
            })?;
        }
    }
    Ok(())
}

fn signals_seen() -> u32 {
    SIGNALS.load(Ordering::Relaxed)
}

/// What the kernel granted of its own busy polling on a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelBusyPoll {
    /// `SO_BUSY_POLL` (and `SO_PREFER_BUSY_POLL`) set.
    On,
    /// Only `SO_BUSY_POLL`: preferring busy polling over interrupts was
    /// refused (why).
    WithoutPrefer(String),
    /// Refused (why): the wait spins in user space only.
    Refused(String),
}

impl KernelBusyPoll {
    /// For the datalink's description: "busy-poll" and what the kernel
    /// refused, if anything.
    pub fn describe(&self) -> String {
        match self {
            KernelBusyPoll::On => "busy-poll".to_owned(),
            KernelBusyPoll::WithoutPrefer(why) => {
                format!("busy-poll (SO_PREFER_BUSY_POLL refused: {why})")
            }
            KernelBusyPoll::Refused(why) => {
                format!("busy-poll in user space only (SO_BUSY_POLL refused: {why})")
            }
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, KernelBusyPoll::Refused(_))
    }
}

/// Asks the kernel to busy-poll the device queue behind `fd` in receive
/// and poll calls. A refusal is not an error: it is reported, and the
/// tool still spins in user space.
pub fn enable_kernel_busy_poll(fd: RawFd) -> KernelBusyPoll {
    if let Err(error) = set_socket_int(fd, libc::SO_BUSY_POLL, KERNEL_BUSY_POLL_USEC) {
        return KernelBusyPoll::Refused(explain(&error));
    }
    match set_socket_int(fd, libc::SO_PREFER_BUSY_POLL, 1) {
        Ok(()) => KernelBusyPoll::On,
        Err(error) => KernelBusyPoll::WithoutPrefer(explain(&error)),
    }
}

fn explain(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EPERM) => "needs CAP_NET_ADMIN".to_owned(),
        Some(libc::ENOPROTOOPT) => "the kernel has no CONFIG_NET_RX_BUSY_POLL".to_owned(),
        _ => error.to_string(),
    }
}

fn set_socket_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the value is a c_int that outlives the call, passed with its
    // size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clock is given (start_at, next_at), never slept on: a loaded
    // machine cannot move a look past the spin it was meant to fall in.

    #[test]
    fn a_spin_spins_briefly_then_sleeps() {
        let spin = Duration::from_millis(2);
        let start = Instant::now();
        let wait = WaitPolicy {
            spin,
            busy_poll: false,
        }
        .start_at(start, Duration::from_secs(5));
        assert_eq!(wait.next_at(start), Next::Spin);
        assert_eq!(
            wait.next_at(start + spin - Duration::from_nanos(1)),
            Next::Spin
        );
        assert_eq!(
            wait.next_at(start + spin),
            Next::Sleep(Duration::from_secs(5) - spin)
        );
    }

    #[test]
    fn the_default_sleeps_at_once() {
        assert!(matches!(
            WaitPolicy::default().start(Duration::from_secs(1)).next(),
            Next::Sleep(_)
        ));
    }

    #[test]
    fn busy_poll_spins_to_the_deadline_then_stops() {
        let timeout = Duration::from_millis(20);
        let start = Instant::now();
        let wait = WaitPolicy::busy_poll().start_at(start, timeout);
        assert_eq!(wait.next_at(start), Next::Spin);
        assert_eq!(
            wait.next_at(start + timeout - Duration::from_nanos(1)),
            Next::Spin
        );
        assert_eq!(wait.next_at(start + timeout), Next::Done);
    }

    #[test]
    fn no_spin_sleeps_at_once_and_a_zero_timeout_only_looks() {
        let none = WaitPolicy {
            spin: Duration::ZERO,
            busy_poll: false,
        };
        assert!(matches!(
            none.start(Duration::from_secs(1)).next(),
            Next::Sleep(_)
        ));
        for policy in [WaitPolicy::default(), WaitPolicy::busy_poll()] {
            assert_eq!(policy.start(Duration::ZERO).next(), Next::Done);
        }
    }

    #[test]
    fn a_wait_without_end_spins_or_sleeps_for_ever() {
        let wait = WaitPolicy::busy_poll().start(Duration::MAX);
        assert_eq!(wait.next(), Next::Spin);
        assert_eq!(wait.left(), Duration::MAX);
    }

    #[test]
    fn refusals_are_explained() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(explain(&eperm), "needs CAP_NET_ADMIN");
        let refused = KernelBusyPoll::Refused(explain(&eperm));
        assert!(!refused.is_on());
        assert_eq!(
            refused.describe(),
            "busy-poll in user space only (SO_BUSY_POLL refused: needs CAP_NET_ADMIN)"
        );
    }
}
