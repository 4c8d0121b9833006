//! Transaction timers (RFC 3261 §17, Table 4 of Appendix A; RFC 6026 L/M).
//!
//! Each transaction keeps a fixed table of `Option<Instant>`, a slot per
//! timer of its machine; the endpoint keeps one min-heap of `(instant, tx, timer)` with
//! lazy deletion: cancelling only clears the table slot, and a heap entry is
//! acted on only when it still equals its slot. `poll_timeout` is then a
//! heap peek (the endpoint prunes stale tops after every input) and
//! `handle_timeout` visits due entries only.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{TimerConfig, TxId};

/// The RFC 3261 / RFC 6026 transaction timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Timer {
    /// ICT request retransmit (Calling), T1 doubling (§17.1.1.2).
    A,
    /// ICT transaction timeout, 64·T1 (§17.1.1.2).
    B,
    /// ICT wait for response retransmits, 32 s UDP / 0 reliable (§17.1.1.2).
    D,
    /// NICT request retransmit, T1 doubling capped at T2 (§17.1.2.2).
    E,
    /// NICT transaction timeout, 64·T1 (§17.1.2.2).
    F,
    /// IST response retransmit, T1 doubling capped at T2 (§17.2.1).
    G,
    /// IST wait for ACK, 64·T1 (§17.2.1).
    H,
    /// IST wait for ACK retransmits, T4 UDP / 0 reliable (§17.2.1).
    I,
    /// NIST wait for request retransmits, 64·T1 UDP / 0 reliable (§17.2.2).
    J,
    /// NICT wait for response retransmits, T4 UDP / 0 reliable (§17.1.2.2).
    K,
    /// IST Accepted: wait for 2xx-related retransmits, 64·T1 (RFC 6026 §7.1).
    L,
    /// ICT Accepted: wait for 2xx retransmits, 64·T1 (RFC 6026 §7.2).
    M,
}

/// Slots in a transaction's table: the most timers one machine has.
const SLOTS: usize = 4;

/// A timer's slot in its transaction's table. Each machine's timers have
/// slots of their own (ICT A B D M, NICT E F K, IST G H I L, NIST J) and a
/// transaction runs one machine, so four slots hold every timer it can arm
/// (the table is 64 bytes instead of 192 for twelve; it lingers 32 s in
/// hundreds of thousands of transactions at high call rates).
const fn slot(t: Timer) -> usize {
    match t {
        Timer::A | Timer::E | Timer::G | Timer::J => 0,
        Timer::B | Timer::F | Timer::H => 1,
        Timer::D | Timer::K | Timer::I => 2,
        Timer::M | Timer::L => 3,
    }
}

/// One transaction's armed timers.
#[derive(Debug, Default, Clone)]
pub(super) struct TimerTable([Option<Instant>; SLOTS]);

impl TimerTable {
    /// When `t` is due, if armed.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.0[slot(t)]
    }

    /// Disarm `t` (its heap entry goes stale).
    pub fn clear(&mut self, t: Timer) {
        self.0[slot(t)] = None;
    }

    /// Disarm everything.
    pub fn clear_all(&mut self) {
        self.0 = [None; SLOTS];
    }
}

/// The endpoint-wide min-heap of armed timers.
#[derive(Debug, Default)]
pub(super) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, TxId, Timer)>>,
}

impl TimerHeap {
    /// Arm `t` of transaction `tx` (in `table`) at `at`, replacing any
    /// previous arming of the same timer.
    pub fn arm(&mut self, table: &mut TimerTable, tx: TxId, t: Timer, at: Instant) {
        table.0[slot(t)] = Some(at);
        self.heap.push(Reverse((at, tx, t)));
    }

    /// The earliest entry (possibly stale).
    pub fn peek(&self) -> Option<(Instant, TxId, Timer)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Remove the earliest entry.
    pub fn pop(&mut self) -> Option<(Instant, TxId, Timer)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drop every entry for which `live` says false (compaction).
    pub fn retain(&mut self, mut live: impl FnMut(Instant, TxId, Timer) -> bool) {
        self.heap.retain(|Reverse((at, tx, t))| live(*at, *tx, *t));
    }
}

/// Timer durations derived from a [`TimerConfig`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Durations {
    /// T1.
    pub t1: Duration,
    /// T2.
    pub t2: Duration,
    /// T4.
    pub t4: Duration,
    /// 64·T1: Timers B, F, H, J, L, M.
    pub t1x64: Duration,
}

/// Timer D for unreliable transports: "at least 32 seconds" (§17.1.1.2).
pub(super) const TIMER_D_UDP: Duration = Duration::from_secs(32);

/// Smallest timer base accepted: a zero T1 would make Timer A fire forever.
const MIN_BASE: Duration = Duration::from_millis(1);

impl Durations {
    /// Derive the durations, clamping each base to at least 1 ms.
    pub fn new(cfg: TimerConfig) -> Durations {
        let t1 = cfg.t1.max(MIN_BASE);
        Durations {
            t1,
            t2: cfg.t2.max(t1),
            t4: cfg.t4.max(MIN_BASE),
            t1x64: t1 * 64,
        }
    }

    /// The "wait for retransmissions" duration of D/I/J/K: `unreliable` on
    /// UDP, zero on reliable transports.
    pub fn linger(reliable: bool, unreliable: Duration) -> Duration {
        if reliable { Duration::ZERO } else { unreliable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_orders_and_table_tracks() {
        let t0 = super::super::test_epoch();
        let mut h = TimerHeap::default();
        let mut tab = TimerTable::default();
        h.arm(&mut tab, TxId(1), Timer::B, t0 + Duration::from_secs(32));
        h.arm(&mut tab, TxId(1), Timer::A, t0 + Duration::from_millis(500));
        h.arm(&mut tab, TxId(1), Timer::A, t0 + Duration::from_secs(1));
        assert_eq!(tab.get(Timer::A), Some(t0 + Duration::from_secs(1)));
        let first = h.pop().unwrap();
        assert_eq!(first, (t0 + Duration::from_millis(500), TxId(1), Timer::A));
        // That entry is stale: the slot now says 1 s.
        assert_ne!(tab.get(first.2), Some(first.0));
        tab.clear(Timer::B);
        h.retain(|at, _, t| tab.get(t) == Some(at));
        assert_eq!(h.len(), 1);
        assert_eq!(h.peek().unwrap().2, Timer::A);
    }

    #[test]
    fn durations_clamp() {
        let d = Durations::new(TimerConfig {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        });
        assert_eq!(d.t1, Duration::from_millis(1));
        assert_eq!(d.t2, Duration::from_millis(1));
        assert_eq!(d.t1x64, Duration::from_millis(64));
        let d = Durations::new(TimerConfig::default());
        assert_eq!(d.t1x64, Duration::from_secs(32));
        assert_eq!(Durations::linger(true, d.t4), Duration::ZERO);
        assert_eq!(Durations::linger(false, d.t4), Duration::from_secs(5));
    }
}

#[cfg(test)]
mod slot_tests {
    use super::{Timer, slot};

    /// No two timers of one machine share a slot.
    #[test]
    fn each_machines_timers_have_their_own_slots() {
        use Timer::*;
        for machine in [&[A, B, D, M][..], &[E, F, K], &[G, H, I, L], &[J]] {
            let mut slots: Vec<usize> = machine.iter().map(|&t| slot(t)).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), machine.len(), "{machine:?}");
        }
    }
}
