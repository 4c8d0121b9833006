//! Responses (RFC 3261 §16.7): relay provisionals and every 2xx at once,
//! collect non-2xx finals, fail over to the next trunk on 503/408/timeout,
//! and answer the caller with the best response when every branch is done.

use std::time::Instant;

use crate::sip::message::{HeaderName, Message, Method};
use crate::sip::transaction::{TxId, TxState};

use super::context::{BranchState, is_failover_status};
use super::stats::ProxyStats;
use super::{Proxy, ProxyTimer};

impl Proxy {
    pub(super) fn on_response(&mut self, now: Instant, tx: TxId, mut msg: Message) {
        let Some(&ctx_tx) = self.branch_owner.get(&tx) else {
            // The context is gone (final answer sent, every branch done): a
            // 2xx to an INVITE — a retransmission, or a late answer of another
            // fork — is still forwarded, statelessly along the Vias (§16.7
            // step 5). Anything else (e.g. the 200 to our own CANCEL) ends here.
            let is_invite = msg.cseq().is_some_and(|c| c.method == Method::Invite);
            if is_invite && msg.code().is_some_and(|c| (200..300).contains(&c)) {
                self.forward_stray_response(msg);
            }
            return;
        };
        let code = msg.code().unwrap_or(500);
        // §16.7 step 3: the top Via is ours.
        msg.pop_first_value(HeaderName::Via);
        if code == 100 {
            self.mark_proceeding(now, ctx_tx, tx);
            return;
        }
        if code < 200 {
            self.mark_proceeding(now, ctx_tx, tx);
            self.note_dialog(now, ctx_tx, tx, &msg, false);
            let Some(ctx) = self.contexts.get(&ctx_tx) else {
                return;
            };
            if !ctx.final_sent {
                self.count_out(&msg);
                self.endpoint.send_response(now, ctx_tx, msg);
            }
            return;
        }
        if code < 300 {
            self.note_dialog(now, ctx_tx, tx, &msg, true);
            let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
                return;
            };
            if let Some(b) = ctx.branch_mut(tx) {
                b.state = BranchState::Done;
            }
            if !ctx.final_sent {
                ctx.final_sent = true;
                self.stats
                    .pending_requests
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            let is_bye = ctx.request.method() == Some(&Method::Bye);
            self.count_out(&msg);
            if is_bye {
                self.forget_dialog_of(&msg);
            }
            self.endpoint.send_response(now, ctx_tx, msg);
            // §16.7 step 10: a 2xx ends every other pending branch.
            self.cancel_pending_branches(now, ctx_tx);
            self.release_if_finished(ctx_tx);
            return;
        }
        self.on_branch_final(now, ctx_tx, tx, Some(msg), code);
    }

    /// A branch failed without a response (Timer B/F, transport error): it
    /// counts as a 408 (§16.7 step 2, §16.8).
    pub(super) fn on_branch_failed(&mut self, now: Instant, tx: TxId) {
        let Some(&ctx_tx) = self.branch_owner.get(&tx) else {
            return;
        };
        self.on_branch_final(now, ctx_tx, tx, None, 408);
    }

    fn on_branch_final(
        &mut self,
        now: Instant,
        ctx_tx: TxId,
        tx: TxId,
        resp: Option<Message>,
        code: u16,
    ) {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        let mut code = code;
        if let Some(b) = ctx.branch_mut(tx) {
            if b.state == BranchState::Done {
                return;
            }
            b.state = BranchState::Done;
            if b.timed_out {
                code = 408;
            }
        }
        let resp = match resp {
            Some(r) if r.code() == Some(code) => r,
            _ => crate::sip::message::response_to(&ctx.request, code, reason_for(code), Vec::new()),
        };
        let is_bye = ctx.request.method() == Some(&Method::Bye);
        ctx.offer_best(resp);
        let retry = is_failover_status(code)
            && !ctx.canceled
            && !ctx.final_sent
            && !ctx.remaining.is_empty();
        if is_bye && let Some(best) = ctx.best.clone() {
            self.forget_dialog_of(&best);
        }
        if retry {
            ProxyStats::bump(&self.stats.failovers);
            self.start_next_branch(now, ctx_tx);
            return;
        }
        self.finish_if_done(now, ctx_tx);
        self.release_if_finished(ctx_tx);
    }

    /// When every branch is done and no final went upstream, send the best
    /// response (503 becomes 500, §16.7 step 6; a cancelled INVITE gets 487).
    fn finish_if_done(&mut self, now: Instant, ctx_tx: TxId) {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        if ctx.final_sent || !ctx.all_done() {
            return;
        }
        ctx.final_sent = true;
        self.stats
            .pending_requests
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let (is_invite, canceled) = (ctx.is_invite, ctx.canceled);
        let request = ctx.request.clone();
        let early = std::mem::take(&mut ctx.early_tags);
        let mut best = ctx.best.take().unwrap_or_else(|| {
            crate::sip::message::response_to(&request, 408, "Request Timeout", Vec::new())
        });
        if canceled && is_invite {
            best =
                crate::sip::message::response_to(&request, 487, "Request Terminated", Vec::new());
        } else if best.code() == Some(503) {
            best = crate::sip::message::response_to(
                &request,
                500,
                "Server Internal Error",
                Vec::new(),
            );
        }
        if is_invite {
            let caller_tag = request.from_tag_ref().unwrap_or_default();
            for callee_tag in &early {
                self.dialogs
                    .remove_early(request.call_id(), caller_tag, callee_tag);
            }
        }
        self.count_out(&best);
        self.endpoint.send_response(now, ctx_tx, best);
    }

    fn mark_proceeding(&mut self, now: Instant, ctx_tx: TxId, tx: TxId) {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        let is_invite = ctx.is_invite;
        let Some(b) = ctx.branch_mut(tx) else { return };
        if b.state == BranchState::Calling {
            b.state = BranchState::Proceeding;
        }
        if b.cancel_pending {
            b.cancel_pending = false;
            let flow = b.flow;
            self.cancel_branch(now, tx, flow);
            self.release_if_finished(ctx_tx);
        } else if is_invite {
            // §16.7 step 2: a provisional resets Timer C (the branch's heap
            // entry sees the later deadline when it surfaces).
            b.timer_c_at = Some(now + self.plan.timers.timer_c);
        }
    }

    /// Remember the dialog a response to an INVITE establishes.
    fn note_dialog(
        &mut self,
        now: Instant,
        ctx_tx: TxId,
        tx: TxId,
        resp: &Message,
        confirmed: bool,
    ) {
        let Some(ctx) = self.contexts.get(&ctx_tx) else {
            return;
        };
        if !ctx.is_invite || resp.to_tag_ref().is_none() || ctx.request.to_tag_ref().is_some() {
            return;
        }
        let Some(branch) = ctx.branches.iter().find(|b| b.tx == tx) else {
            return;
        };
        let (caller, callee) = (ctx.ingress, branch.flow);
        let call_id = resp.call_id();
        let caller_tag = resp.from_tag_ref().unwrap_or_default();
        let callee_tag = resp.to_tag_ref().unwrap_or_default();
        self.dialogs.upsert(
            now, call_id, caller_tag, callee_tag, caller, callee, confirmed,
        );
        if !confirmed
            && let Some(ctx) = self.contexts.get_mut(&ctx_tx)
            && !ctx.early_tags.iter().any(|t| t == callee_tag)
        {
            ctx.early_tags
                .push(bytes::Bytes::copy_from_slice(callee_tag));
        }
        if self.dialogs.len() == 1 {
            let at = now + self.cfg.dialog_idle;
            self.schedule(at, ProxyTimer::DialogSweep);
        }
    }

    fn forget_dialog_of(&mut self, resp: &Message) {
        let (a, b) = (
            resp.from_tag_ref().unwrap_or_default(),
            resp.to_tag_ref().unwrap_or_default(),
        );
        self.dialogs.remove(resp.call_id(), a, b);
    }

    /// Cancel every branch still pending (after a 2xx, or the caller's CANCEL).
    fn cancel_pending_branches(&mut self, now: Instant, ctx_tx: TxId) {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        ctx.remaining.clear();
        let mut to_cancel = Vec::new();
        for b in ctx.branches.iter_mut() {
            match b.state {
                BranchState::Proceeding => to_cancel.push((b.tx, b.flow)),
                BranchState::Calling => b.cancel_pending = true,
                BranchState::Done => {}
            }
        }
        for (tx, flow) in to_cancel {
            self.cancel_branch(now, tx, flow);
        }
    }

    /// The caller cancelled the INVITE of `ctx_tx` (§16.10).
    pub(super) fn cancel_context(&mut self, now: Instant, ctx_tx: TxId) {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        if ctx.final_sent {
            return;
        }
        ctx.canceled = true;
        self.cancel_pending_branches(now, ctx_tx);
        // Branches that never heard a provisional cannot be cancelled yet;
        // the caller gets its 487 now and they are cleaned up when they end.
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        if ctx
            .branches
            .iter()
            .all(|b| b.state != BranchState::Proceeding)
        {
            for b in ctx.branches.iter_mut() {
                b.state = BranchState::Done;
            }
            self.finish_if_done(now, ctx_tx);
            self.release_if_finished(ctx_tx);
        }
    }

    /// Timer C fired for a branch (§16.8): CANCEL it if it is ringing,
    /// otherwise treat it as a 408 now.
    pub(super) fn on_timer_c(&mut self, now: Instant, tx: TxId) {
        let Some(&ctx_tx) = self.branch_owner.get(&tx) else {
            return;
        };
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return;
        };
        let Some(b) = ctx.branch_mut(tx) else { return };
        if b.timed_out {
            return;
        }
        if let Some(at) = b.timer_c_at
            && at > now
        {
            // Reset by a provisional since this entry was pushed: re-arm.
            self.schedule(at, ProxyTimer::TimerC(tx));
            return;
        }
        match b.state {
            BranchState::Done => {}
            BranchState::Proceeding => {
                b.timed_out = true;
                let flow = b.flow;
                self.cancel_branch(now, tx, flow);
            }
            BranchState::Calling => {
                b.timed_out = true;
                b.cancel_pending = true;
                self.on_branch_final(now, ctx_tx, tx, None, 408);
            }
        }
    }
}

impl Proxy {
    /// Forget a context whose final answer went upstream and whose branches
    /// are all done: nothing but stateless 2xx forwarding can happen to it
    /// any more, and its transactions linger 32 s in their wait states —
    /// keeping every forwarded copy alive that long cost ~5 KiB per call.
    pub(super) fn release_if_finished(&mut self, ctx_tx: TxId) {
        // A branch still owed a CANCEL (no provisional yet, §9.1) keeps the
        // context: its first 1xx must trigger that CANCEL.
        let finished = self.contexts.get(&ctx_tx).is_some_and(|c| {
            c.final_sent && c.all_done() && c.branches.iter().all(|b| !b.cancel_pending)
        });
        if !finished {
            return;
        }
        if let Some(ctx) = self.contexts.remove(&ctx_tx) {
            for b in ctx.branch_ids() {
                self.branch_owner.remove(&b);
            }
        }
    }

    /// 64·T1 after a CANCEL the INVITE branch still has no final response:
    /// RFC 3261 §9.1 says to consider it cancelled and destroy its client
    /// transaction (an INVITE client transaction in Proceeding has no timer
    /// of its own and would live forever).
    pub(super) fn on_cancel_give_up(&mut self, now: Instant, tx: TxId) {
        if !matches!(
            self.endpoint.state_of(tx),
            Some(TxState::Calling | TxState::Proceeding)
        ) {
            return;
        }
        if let Some(&ctx_tx) = self.branch_owner.get(&tx) {
            let code = self
                .contexts
                .get(&ctx_tx)
                .map_or(408, |c| if c.canceled { 487 } else { 408 });
            self.on_branch_final(now, ctx_tx, tx, None, code);
        }
        self.endpoint.abandon_client(tx);
    }
}

/// Reason phrases for responses the proxy synthesizes.
fn reason_for(code: u16) -> &'static str {
    match code {
        408 => "Request Timeout",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
