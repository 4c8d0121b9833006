//! The replay list of RFC 3711 §3.3.2: a sliding window over packet indices
//! (48-bit SRTP, 31-bit SRTCP) — the highest index received plus a bitmap
//! of the [`WINDOW`] indices below it.

/// Window size in packets (RFC 3711 asks for at least 64).
pub(crate) const WINDOW: u64 = 128;

/// Which indices of the window were received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    /// Highest authenticated index, if any yet.
    top: Option<u64>,
    /// Bit `n` set: index `top - n` was received.
    bits: u128,
}

impl ReplayWindow {
    /// Whether `index` may be accepted (new, and not older than the window).
    /// Call before the tag check; [`Self::accept`] after it.
    pub(crate) fn check(&self, index: u64) -> bool {
        let Some(top) = self.top else {
            return true;
        };
        if index > top {
            return true;
        }
        let age = top - index;
        age < WINDOW && self.bits & (1u128 << age) == 0
    }

    /// Records an authenticated `index`.
    pub(crate) fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => {
                let age = top - index;
                if age < WINDOW {
                    self.bits |= 1u128 << age;
                }
            }
            Some(top) => {
                let shift = index - top;
                self.bits = if shift >= WINDOW {
                    0
                } else {
                    self.bits << shift
                } | 1;
                self.top = Some(index);
            }
            None => {
                self.top = Some(index);
                self.bits = 1;
            }
        }
    }

    /// The highest index accepted.
    pub(crate) fn top(&self) -> Option<u64> {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_old_packets_are_refused() {
        let mut w = ReplayWindow::default();
        assert!(w.check(1000));
        w.accept(1000);
        assert!(!w.check(1000), "duplicate");
        assert!(w.check(999), "reordered, inside the window");
        w.accept(999);
        assert!(!w.check(999));
        assert!(w.check(1001));
        w.accept(1003);
        assert!(w.check(1001) && w.check(1002));
        assert!(!w.check(1000) && !w.check(1003));
        assert!(w.check(1003 - (WINDOW - 1)));
        assert!(!w.check(1003 - WINDOW), "older than the window");
        w.accept(1003 + 500);
        assert!(!w.check(1003), "fell out of the window after a jump");
        assert!(w.check(1003 + 499));
        assert_eq!(w.top(), Some(1503));
    }
}
