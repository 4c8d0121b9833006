//! Response contexts (RFC 3261 §16.7): one per proxied server transaction,
//! holding its client branches, the failover list and the best final
//! response so far.
//!
//! ```text
//!   branch:  Calling ──1xx──▶ Proceeding ──final──▶ Done
//!               │                                   ▲
//!               └──── Timer B / transport error ────┘   (counts as 408)
//! ```

use std::collections::VecDeque;

use crate::sip::message::{Message, Uri};
use crate::sip::transaction::TxId;
use crate::sip::transport::Flow;

/// Where a branch goes: the flow and, when the dial plan rewrote it, the
/// Request-URI to use.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Trunk name (or `dialog`) for logs.
    pub name: String,
    /// The flow to send on.
    pub flow: Flow,
    /// Request-URI for this branch; `None` keeps the received one.
    pub uri: Option<Uri>,
}

/// Progress of one client branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BranchState {
    /// Sent, nothing heard yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived, or the branch failed.
    Done,
}

/// One forwarded copy of the request.
#[derive(Debug)]
pub(super) struct Branch {
    /// The client transaction.
    pub tx: TxId,
    /// The flow it was sent on (the CANCEL is built from the INVITE its
    /// client transaction holds, §9.1).
    pub flow: Flow,
    /// Progress.
    pub state: BranchState,
    /// CANCEL as soon as a provisional arrives (§9.1: not before).
    pub cancel_pending: bool,
    /// Timer C fired: the final answer counts as 408 (§16.8).
    pub timed_out: bool,
    /// When Timer C expires: pushed later by every provisional (§16.7 step
    /// 2); the one heap entry of the branch re-arms itself until then.
    pub timer_c_at: Option<std::time::Instant>,
}

/// State of one proxied request.
#[derive(Debug)]
pub(super) struct Context {
    /// The incoming request after Route preprocessing.
    pub request: Message,
    /// Where it came from.
    pub ingress: Flow,
    /// INVITE (Timer C, 100 Trying, dialogs).
    pub is_invite: bool,
    /// Insert Record-Route into branches.
    pub record_route: bool,
    /// Targets not tried yet, in failover order.
    pub remaining: VecDeque<Target>,
    /// Branches sent.
    pub branches: Vec<Branch>,
    /// Best final response among finished branches (§16.7 step 6).
    pub best: Option<Message>,
    /// A final response (any 2xx, or the chosen best) went upstream.
    pub final_sent: bool,
    /// The caller cancelled.
    pub canceled: bool,
    /// Loop-detection hash of the request (§16.6 step 8), put in every branch id.
    pub loop_hash: u32,
    /// To tags of the early dialogs this INVITE's provisional responses
    /// created in the dialog table: the ones to forget if it fails.
    pub early_tags: Vec<bytes::Bytes>,
}

impl Context {
    /// A new context for `request` arriving on `ingress`.
    pub fn new(
        request: Message,
        ingress: Flow,
        is_invite: bool,
        record_route: bool,
        targets: Vec<Target>,
    ) -> Self {
        Context {
            request,
            ingress,
            is_invite,
            record_route,
            remaining: targets.into(),
            branches: Vec::new(),
            best: None,
            final_sent: false,
            canceled: false,
            loop_hash: 0,
            early_tags: Vec::new(),
        }
    }

    /// The branch of a client transaction.
    pub fn branch_mut(&mut self, tx: TxId) -> Option<&mut Branch> {
        self.branches.iter_mut().find(|b| b.tx == tx)
    }

    /// Client transaction ids of every branch.
    pub fn branch_ids(&self) -> Vec<TxId> {
        self.branches.iter().map(|b| b.tx).collect()
    }

    /// Drop a terminated branch that is finished (keeps unfinished ones).
    pub fn forget_branch(&mut self, tx: TxId) {
        self.branches
            .retain(|b| b.tx != tx || b.state != BranchState::Done);
    }

    /// True when no branch is still waiting for a final response.
    pub fn all_done(&self) -> bool {
        self.branches.iter().all(|b| b.state == BranchState::Done)
    }

    /// Keep the better of the stored and the new final response.
    pub fn offer_best(&mut self, resp: Message) {
        let better = match &self.best {
            None => true,
            Some(old) => rank(resp.code().unwrap_or(500)) < rank(old.code().unwrap_or(500)),
        };
        if better {
            self.best = Some(resp);
        }
    }
}

/// Preference order among final non-2xx responses (§16.7 step 6): 6xx
/// first, then the lowest class; within 5xx, 503 last (it becomes 500).
fn rank(code: u16) -> u32 {
    match code {
        600..=699 => 0,
        503 => 900,
        408 => 800,
        c => u32::from(c),
    }
}

/// Failures that move a call to the next trunk (interop: 503, 408, timeout,
/// transport error); other final answers are passed back as they are.
pub(super) fn is_failover_status(code: u16) -> bool {
    matches!(code, 408 | 503)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_prefers_6xx_then_lowest_class() {
        assert!(rank(603) < rank(486));
        assert!(rank(486) < rank(503));
        assert!(rank(404) < rank(408));
        assert!(rank(500) < rank(503));
        assert!(is_failover_status(503) && is_failover_status(408));
        assert!(!is_failover_status(486) && !is_failover_status(404));
    }
}
