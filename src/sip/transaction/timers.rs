//! Transaction timers (RFC 3261 §17, Table 4 of Appendix A; RFC 6026 L/M).
//!
//! Each transaction keeps a fixed table of `Option<Instant>`, a slot per
//! timer of its machine; the endpoint keeps one queue of `(instant, tx,
//! timer)` ([`TimerHeap`]: a FIFO per fixed delay plus a min-heap) with
//! lazy deletion: cancelling only clears the table slot, and a heap entry is
//! acted on only when it still equals its slot. `poll_timeout` is then a
//! heap peek (the endpoint prunes stale tops after every input) and
//! `handle_timeout` visits due entries only.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
}

/// Most fixed-delay FIFOs a [`TimerHeap`] keeps (one per distinct delay).
const MAX_FIFOS: usize = 8;

/// A queued timer: when, which transaction, which timer.
type Entry = (Instant, TxId, Timer);

/// The endpoint-wide queue of armed timers, with lazy deletion.
///
/// Most timers are armed a fixed delay after `now` (64·T1 for B, F, H, J,
/// L and M; T4 for I and K; 32 s for D) and `now` only grows, so the timers
/// of one delay come in deadline order: each delay gets a FIFO (O(1) to arm
/// and to pop). What comes out of order (a timer re-armed from the instant
/// it was due, behind one armed from a later `now`) or past
/// [`MAX_FIFOS`] delays goes to a binary heap; the earliest entry is the
/// least of the heap's top and the FIFOs' fronts. At 2000 calls/s the queue
/// holds ~500,000 entries (32 s of lingering): as one binary heap, each pop
/// walked ~19 levels of a 16 MB array (`BinaryHeap::pop` was 8% of the
/// in-process proxy's CPU in perf).
#[derive(Debug, Default)]
pub(super) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
    fifos: Vec<(Duration, VecDeque<Entry>)>,
}

impl TimerHeap {
    /// Arm `t` of transaction `tx` (in `table`) `after` from `now`,
    /// replacing any previous arming of the same timer.
    pub fn arm(
        &mut self,
        table: &mut TimerTable,
        tx: TxId,
        t: Timer,
        now: Instant,
        after: Duration,
    ) {
        let at = now + after;
        table.0[slot(t)] = Some(at);
        let entry = (at, tx, t);
        let fifo = match self.fifos.iter().position(|(d, _)| *d == after) {
            Some(i) => Some(i),
            None if self.fifos.len() < MAX_FIFOS => {
                self.fifos.push((after, VecDeque::new()));
                Some(self.fifos.len() - 1)
            }
            None => None,
        };
        if let Some((_, q)) = fifo.and_then(|i| self.fifos.get_mut(i))
            && q.back().is_none_or(|b| b.0 <= at)
        {
            q.push_back(entry);
            return;
        }
        self.heap.push(Reverse(entry));
    }

    /// The earliest entry and where it is (`None`: the heap, else a FIFO).
    fn earliest(&self) -> Option<(Entry, Option<usize>)> {
        let mut best = self.heap.peek().map(|Reverse(e)| (*e, None));
        for (i, (_, q)) in self.fifos.iter().enumerate() {
            if let Some(&e) = q.front()
                && best.is_none_or(|(b, _)| e < b)
            {
                best = Some((e, Some(i)));
            }
        }
        best
    }

    /// The earliest entry (possibly stale).
    pub fn peek(&self) -> Option<Entry> {
        self.earliest().map(|(e, _)| e)
    }

    /// Remove the earliest entry.
    pub fn pop(&mut self) -> Option<Entry> {
        match self.earliest()?.1 {
            None => self.heap.pop().map(|Reverse(e)| e),
            Some(i) => self.fifos.get_mut(i)?.1.pop_front(),
        }
    }

    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len() + self.fifos.iter().map(|(_, q)| q.len()).sum::<usize>()
    }

    /// Drop every entry for which `live` says false (compaction).
    pub fn retain(&mut self, mut live: impl FnMut(Instant, TxId, Timer) -> bool) {
        self.heap.retain(|Reverse((at, tx, t))| live(*at, *tx, *t));
        for (_, q) in &mut self.fifos {
            q.retain(|&(at, tx, t)| live(at, tx, t));
        }
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
        h.arm(&mut tab, TxId(1), Timer::B, t0, Duration::from_secs(32));
        h.arm(&mut tab, TxId(1), Timer::A, t0, Duration::from_millis(500));
        h.arm(&mut tab, TxId(1), Timer::A, t0, Duration::from_secs(1));
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

    /// Fixed delays go to FIFOs, out-of-order arming to the heap; pops come
    /// in (instant, tx, timer) order whatever holds them.
    #[test]
    fn fifos_and_heap_pop_in_deadline_order() {
        let t0 = super::super::test_epoch();
        let ms = Duration::from_millis;
        let mut h = TimerHeap::default();
        let mut tab = TimerTable::default();
        // 64·T1 from three `now`s in order, then one re-armed from an
        // earlier instant (as a timer firing late re-arms from its due time):
        // it belongs before the last and cannot join that FIFO's back.
        for (i, now) in [0, 10, 20].into_iter().enumerate() {
            h.arm(&mut tab, TxId(i as u64), Timer::F, t0 + ms(now), ms(32_000));
        }
        h.arm(&mut tab, TxId(9), Timer::F, t0 + ms(15), ms(32_000));
        // other delays, and more distinct delays than FIFOs
        for d in 1..=(MAX_FIFOS as u64 + 2) {
            h.arm(&mut tab, TxId(100 + d), Timer::E, t0, ms(d * 700));
        }
        h.arm(&mut tab, TxId(50), Timer::K, t0 + ms(1), ms(5000));
        assert_eq!(h.len(), 4 + MAX_FIFOS + 2 + 1);
        let mut popped = Vec::new();
        while let Some(e) = h.pop() {
            popped.push(e);
        }
        let mut sorted = popped.clone();
        sorted.sort();
        assert_eq!(popped, sorted, "popped in order");
        assert_eq!(popped.len(), 4 + MAX_FIFOS + 2 + 1);
        let f: Vec<u64> = popped
            .iter()
            .filter(|e| e.2 == Timer::F)
            .map(|e| e.1.0)
            .collect();
        assert_eq!(f, [0, 1, 9, 2]);
        assert_eq!(h.len(), 0);
        assert!(h.peek().is_none());
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
