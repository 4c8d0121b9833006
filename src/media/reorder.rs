//! A small reorder window for the packets a transcoding direction decodes.
//!
//! A decoder needs its packets in order: a packet that arrives out of order
//! is held until the gap before it fills, for at most `window` packets or
//! `max_wait`, whichever comes first; then the missing sequence numbers are
//! declared lost (the decoder conceals them) and what was held is released.
//! A packet arriving after its place was given up (or a duplicate) is late
//! and dropped. A jump of more than [`RESTART_JUMP`] either way is a restart
//! of the sender's numbering, not loss: the window flushes and starts over.
//!
//! In order, nothing waits: a packet is released the moment it arrives, so
//! the window adds no delay unless packets are really missing.

use std::time::{Duration, Instant};

/// A sequence jump this large (either way) is a restart, not loss or lateness.
pub const RESTART_JUMP: u16 = 1000;

/// What the window hands on, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released<T> {
    /// The next packet.
    Packet(T),
    /// This many sequence numbers are missing before the next packet.
    Lost(u16),
    /// The sender restarted its numbering: forget the stream's history.
    Restart,
}

/// Why a packet was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late;

/// The reorder window of one stream.
#[derive(Debug, Clone)]
pub struct Reorder<T> {
    next: Option<u16>,
    /// Held packets, sorted by distance from `next`.
    held: Vec<(u16, Instant, T)>,
    window: usize,
    max_wait: Duration,
    ready: Vec<Released<T>>,
}

impl<T> Reorder<T> {
    /// A window holding at most `window` packets for at most `max_wait`.
    pub fn new(window: usize, max_wait: Duration) -> Self {
        Reorder {
            next: None,
            held: Vec::with_capacity(window + 1),
            window: window.max(1),
            max_wait,
            ready: Vec::with_capacity(window + 2),
        }
    }

    /// Forgets everything (a new source): the next packet starts the stream.
    pub fn reset(&mut self) {
        self.next = None;
        self.held.clear();
    }

    /// Takes packet `seq` received at `now`. What it releases (maybe
    /// nothing, maybe several) is then drained with [`Self::drain`].
    pub fn push(&mut self, now: Instant, seq: u16, item: T) -> Result<(), Late> {
        let Some(next) = self.next else {
            self.next = Some(seq.wrapping_add(1));
            self.ready.push(Released::Packet(item));
            return Ok(());
        };
        let d = seq.wrapping_sub(next);
        if (RESTART_JUMP..=u16::MAX - RESTART_JUMP).contains(&d) {
            // A restart: release what was held, then start over at `seq`.
            self.flush();
            self.ready.push(Released::Restart);
            self.next = Some(seq.wrapping_add(1));
            self.ready.push(Released::Packet(item));
            return Ok(());
        }
        if d > u16::MAX - RESTART_JUMP {
            return Err(Late); // behind `next`: its place was given up
        }
        if d == 0 {
            self.next = Some(seq.wrapping_add(1));
            self.ready.push(Released::Packet(item));
            self.release_in_order();
            return Ok(());
        }
        let pos = self.held.partition_point(|h| h.0.wrapping_sub(next) < d);
        if self.held.get(pos).is_some_and(|h| h.0 == seq) {
            return Err(Late); // duplicate of a held packet
        }
        self.held.insert(pos, (seq, now, item));
        while self.held.len() > self.window {
            self.give_up_one();
        }
        Ok(())
    }

    /// Releases everything whose wait is over at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self
            .oldest()
            .is_some_and(|t| t.checked_add(self.max_wait).is_some_and(|d| d <= now))
        {
            self.give_up_one();
        }
    }

    /// When [`Self::handle_timeout`] has something to release.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.oldest()?.checked_add(self.max_wait)
    }

    /// Hands out what was released, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Released<T>> {
        self.ready.drain(..)
    }

    /// Packets held waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn oldest(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.1).min()
    }

    /// The gap before the first held packet will not fill: declare it lost.
    fn give_up_one(&mut self) {
        let (Some(next), false) = (self.next, self.held.is_empty()) else {
            return;
        };
        let first = self.held[0].0;
        self.ready.push(Released::Lost(first.wrapping_sub(next)));
        self.next = Some(first);
        self.release_in_order();
    }

    fn release_in_order(&mut self) {
        while let (Some(next), Some(h)) = (self.next, self.held.first()) {
            if h.0 != next {
                break;
            }
            let (_, _, item) = self.held.remove(0);
            self.ready.push(Released::Packet(item));
            self.next = Some(next.wrapping_add(1));
        }
    }

    /// Releases every held packet in order, declaring the gaps lost.
    fn flush(&mut self) {
        while !self.held.is_empty() {
            self.give_up_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Reorder<u16>, now: Instant, seq: u16) -> Vec<Released<u16>> {
        let late = r.push(now, seq, seq).is_err();
        let mut v: Vec<_> = r.drain().collect();
        if late {
            v.push(Released::Lost(0xdead));
        }
        v
    }

    use Released::{Lost, Packet, Restart};

    #[test]
    fn in_order_passes_at_once_and_reordering_is_undone() {
        let t = crate::media::test_epoch();
        let mut r = Reorder::new(3, Duration::from_millis(60));
        assert_eq!(run(&mut r, t, 65534), [Packet(65534)]);
        assert_eq!(run(&mut r, t, 65535), [Packet(65535)]);
        // 1 before 0, across the wrap.
        assert_eq!(run(&mut r, t, 1), []);
        assert_eq!(r.poll_timeout(), Some(t + Duration::from_millis(60)));
        assert_eq!(run(&mut r, t, 0), [Packet(0), Packet(1)]);
        assert_eq!(r.poll_timeout(), None);
        // Duplicate and late.
        assert_eq!(run(&mut r, t, 1), [Lost(0xdead)]);
        assert_eq!(run(&mut r, t, 3), []);
        assert_eq!(run(&mut r, t, 3), [Lost(0xdead)], "duplicate of a held one");
    }

    #[test]
    fn gives_up_by_count_and_by_time() {
        let t = crate::media::test_epoch();
        let ms = Duration::from_millis;
        let mut r = Reorder::new(3, ms(60));
        run(&mut r, t, 10);
        // 11 and 12 lost: 13, 14, 15 wait; the fourth (16) forces the gap.
        for s in [13, 14, 15] {
            assert_eq!(run(&mut r, t, s), []);
        }
        assert_eq!(
            run(&mut r, t, 16),
            [Lost(2), Packet(13), Packet(14), Packet(15), Packet(16)]
        );
        // 17 lost; 18 waits 60 ms at most.
        assert_eq!(run(&mut r, t, 18), []);
        r.handle_timeout(t + ms(59));
        assert_eq!(r.drain().count(), 0);
        r.handle_timeout(t + ms(60));
        assert_eq!(r.drain().collect::<Vec<_>>(), [Lost(1), Packet(18)]);
        // 17 comes now: too late.
        assert_eq!(run(&mut r, t, 17), [Lost(0xdead)]);
    }

    #[test]
    fn a_big_jump_is_a_restart() {
        let t = crate::media::test_epoch();
        let mut r = Reorder::new(3, Duration::from_millis(60));
        run(&mut r, t, 100);
        assert_eq!(run(&mut r, t, 102), []);
        assert_eq!(
            run(&mut r, t, 40000),
            [Lost(1), Packet(102), Restart, Packet(40000)]
        );
        assert_eq!(run(&mut r, t, 40001), [Packet(40001)]);
        // Backwards by more than the restart jump is a restart too.
        assert_eq!(run(&mut r, t, 30000), [Restart, Packet(30000)]);
        r.reset();
        assert_eq!(run(&mut r, t, 5), [Packet(5)]);
    }
}
