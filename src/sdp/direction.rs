//! The stream direction attributes and their offer/answer rules (RFC 3264 §5.1, §6.1).

/// Stream direction attribute (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The answerer's direction for an offered one (RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Keeps only what both directions allow (`self` and `other` seen from the same side).
    pub fn intersect(self, other: Direction) -> Direction {
        let send = self.sends() && other.sends();
        let recv = self.receives() && other.receives();
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;

    #[test]
    fn reversed_per_rfc3264() {
        assert_eq!(SendOnly.reversed(), RecvOnly);
        assert_eq!(RecvOnly.reversed(), SendOnly);
        assert_eq!(SendRecv.reversed(), SendRecv);
        assert_eq!(Inactive.reversed(), Inactive);
    }

    #[test]
    fn intersect_and_flags() {
        assert_eq!(SendRecv.intersect(SendOnly), SendOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(RecvOnly.intersect(SendRecv), RecvOnly);
        assert!(SendRecv.sends() && SendRecv.receives());
        assert!(!Inactive.sends() && !Inactive.receives());
        assert_eq!(RecvOnly.as_str(), "recvonly");
    }
}
