//! Shards: each owns one sans-IO [`Proxy`] behind a mutex. The thread that
//! received a packet drives the shard directly (no hop to another thread);
//! an event loop ([`super::event_loop`]) fires each shard's timers at its
//! `poll_timeout` and is woken (eventfd) only when another thread moves a
//! deadline earlier than the one it sleeps on. Transmits are performed
//! after the lock is released; per-flow order holds because each socket
//! has exactly one reader thread.
//!
//! Each shard also owns a [`MediaPlane`] (its own lock): after every proxy
//! input the B2BUA's media commands are queued under the proxy lock and
//! applied once it is released; media events come back as
//! [`ShardInput::MediaEvent`] from the plane's control task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::net::UdpSocket;

use crate::b2bua::CallInfo;
use crate::dialplan::DialPlan;
use crate::media::{DirectionStats, Event, SessionId};
use crate::proxy::{Proxy, ProxyConfig, ProxyStats};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Flow, Transmit, Transport};

use super::event_loop::LoopWake;
use super::media::{EventSink, IoChoice, MediaCounters, MediaPlane, start_io};
use super::net::Bound;
use super::tcp::TcpHub;

thread_local! {
    /// Transmits collected under a shard lock, sent once it is released.
    static OUT: std::cell::Cell<Vec<Transmit>> = const { std::cell::Cell::new(Vec::new()) };
}

/// What a shard is asked to do.
pub(super) enum ShardInput {
    /// A UDP datagram.
    Datagram { flow: Flow, data: Bytes },
    /// One message framed from a TCP stream.
    Stream { flow: Flow, data: Bytes },
    /// A transmit of client transaction `tx` could not be delivered.
    TransportError { tx: TxId },
    /// A reloaded dial plan.
    Reload(Arc<DialPlan>),
    /// Start draining.
    Drain,
    /// The media plane reports an event of a B2BUA call's media session.
    MediaEvent { session: SessionId, event: Event },
}

struct Shard {
    proxy: Mutex<Proxy>,
    media: Arc<MediaPlane>,
    /// Deadline its event loop waits for, in ns since `base` (u64::MAX =
    /// none); written only with `proxy` locked.
    scheduled: AtomicU64,
}

/// Every shard plus what is needed to perform their transmits.
#[derive(Clone)]
pub(super) struct Shards {
    shards: Arc<Vec<Shard>>,
    udp: Arc<Vec<Option<Arc<UdpSocket>>>>,
    hub: TcpHub,
    base: Instant,
    /// One per event loop; loop `i % len` fires shard `i`'s timers.
    wakes: Arc<Vec<LoopWake>>,
}

impl Shards {
    /// The shard owning a Call-ID.
    pub fn pick(&self, call_id: &[u8]) -> usize {
        crate::proxy::shard_of(call_id, self.shards.len())
    }

    /// Feed an input to a shard and perform what it wants sent.
    pub fn send(&self, shard: usize, input: ShardInput) {
        let Some(s) = self.shards.get(shard) else {
            return;
        };
        if let ShardInput::Reload(plan) = &input {
            s.media.set_address(plan.media.address);
        }
        self.drive(shard, false, |p| handle(p, input));
    }

    /// Send to every shard.
    pub fn broadcast(&self, mk: impl Fn() -> ShardInput) {
        for i in 0..self.shards.len() {
            self.send(i, mk());
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base)
            .as_nanos()
            .min(u128::from(u64::MAX - 1)) as u64
    }

    /// Record the proxy's next deadline and wake the event loop firing this
    /// shard's timers if it now needs it earlier than planned. Called with
    /// the shard locked.
    fn reschedule(&self, shard: usize, s: &Shard, next: Option<Instant>) {
        let Some(next) = next else { return };
        let n = self.nanos(next);
        let current = s.scheduled.load(Ordering::Acquire);
        // Only an earlier grid slot needs the loop woken.
        if n < current && (current == u64::MAX || grid(n) < grid(current)) {
            s.scheduled.store(n, Ordering::Release);
            self.wakes[self.timer_loop_of(shard)].wake();
        }
    }

    fn transmit(&self, shard: usize, t: Transmit) {
        match t.flow.transport {
            Transport::Udp => {
                let Some(Some(sock)) = self.udp.get(t.flow.listener) else {
                    tracing::warn!(listener = t.flow.listener, "no UDP socket for transmit");
                    return;
                };
                // Blocking send on UDP only waits when the 8 MiB send buffer is full.
                match sock.send_to(&t.bytes, t.flow.remote) {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(remote = %t.flow.remote, error = %e, "udp send failed");
                        if let Some(tx) = t.tx {
                            let this = self.clone();
                            // Not re-entrant under the lock: report from a task.
                            tokio::spawn(async move {
                                this.send(shard, ShardInput::TransportError { tx })
                            });
                        }
                    }
                }
            }
            Transport::Tcp => self.hub.send(t, shard, self.clone()),
        }
    }

    /// Snapshots of every shard's B2BUA calls with their media counters
    /// (`[A→B, B→A]`, when anchored). Each lock is taken in turn, never both.
    pub fn calls(&self) -> Vec<(usize, CallInfo, Option<[DirectionStats; 2]>)> {
        let mut all = Vec::new();
        for (i, s) in self.shards.iter().enumerate() {
            let calls = lock_shard(&s.proxy).calls();
            all.extend(calls.into_iter().map(|c| {
                let stats = c.media_session.and_then(|m| s.media.stats(m));
                (i, c, stats)
            }));
        }
        all
    }

    /// Per-trunk B2BUA attempts/answers/failures summed over shards.
    pub fn trunk_counters(&self) -> Vec<(String, crate::b2bua::TrunkCounters)> {
        let mut sum: std::collections::BTreeMap<String, crate::b2bua::TrunkCounters> =
            std::collections::BTreeMap::new();
        for s in self.shards.iter() {
            for (name, c) in lock_shard(&s.proxy).trunk_counters() {
                let e = sum.entry(name).or_default();
                e.attempts += c.attempts;
                e.answers += c.answers;
                e.failures += c.failures;
            }
        }
        sum.into_iter().collect()
    }

    /// B2BUA calls alive across shards.
    pub fn active_calls(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock_shard(&s.proxy).active_calls())
            .sum()
    }

    /// Media counters summed over shards.
    pub fn media_counters(&self) -> MediaCounters {
        self.shards.iter().map(|s| s.media.counters()).fold(
            MediaCounters::default(),
            |mut acc, c| {
                acc.add(&c);
                acc
            },
        )
    }

    /// Close every media socket (process exit).
    pub fn close_media(&self) {
        for s in self.shards.iter() {
            s.media.close_all();
        }
    }

    /// Run shard `shard`'s due timers and perform what they send.
    pub(super) fn fire_timers(&self, shard: usize) {
        self.drive(shard, true, |p| p.handle_timeout(Instant::now()));
    }

    /// Run `f` on a shard's proxy under its lock, then perform what it
    /// wants sent. The deadline is recorded under the lock, so one computed
    /// by one thread is never overwritten by an older one from another:
    /// replaced outright after `fired` timers, otherwise only moved earlier
    /// (and the owning event loop woken).
    fn drive(&self, shard: usize, fired: bool, f: impl FnOnce(&mut Proxy)) {
        let Some(s) = self.shards.get(shard) else {
            return;
        };
        // Transmits are performed after the lock is released: the lock is
        // only held for protocol work, so the two cores rarely meet on it
        // (futex contention measured at 4 syscalls per call when sends were
        // made under it). Order is still kept: each socket has one reader,
        // so one flow's messages are produced and sent by one thread in turn.
        // The transmit list is reused per thread (one allocation per message
        // otherwise). A nested call (none today) would take an empty one.
        let mut out = OUT.take();
        let media = {
            let mut proxy = lock_shard(&s.proxy);
            guarded(&mut proxy, f);
            while let Some(t) = proxy.poll_transmit() {
                out.push(t);
            }
            let media = s
                .media
                .queue(std::iter::from_fn(|| proxy.poll_media_command()));
            let next = proxy.poll_timeout();
            if fired {
                s.scheduled
                    .store(next.map_or(u64::MAX, |n| self.nanos(n)), Ordering::Release);
            } else {
                self.reschedule(shard, s, next);
            }
            media
        };
        if media {
            // Binds the ports the SDP in `out` advertises, before it leaves.
            s.media.apply_pending();
        }
        for t in out.drain(..) {
            self.transmit(shard, t);
        }
        OUT.set(out);
    }

    /// Number of event loops (see [`super::event_loop`]).
    pub fn loops(&self) -> usize {
        self.wakes.len()
    }

    /// The wake-up eventfd of event loop `k`.
    pub fn wake(&self, k: usize) -> &LoopWake {
        &self.wakes[k]
    }

    /// The event loop that fires shard `shard`'s timers.
    fn timer_loop_of(&self, shard: usize) -> usize {
        shard % self.wakes.len()
    }

    /// For event loop `k`: fire every shard of its own that is due now and
    /// return the time until the earliest of them is due again (on the
    /// timer grid); `None` when none has a timer.
    pub(super) fn fire_due_timers(&self, k: usize) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        for (i, s) in self.shards.iter().enumerate() {
            if self.timer_loop_of(i) != k {
                continue;
            }
            if self.left(s).is_some_and(|l| l.is_zero()) {
                self.fire_timers(i);
            }
            if let Some(left) = self.left(s) {
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        wait
    }

    /// Time until a shard's recorded deadline (on the timer grid) is due,
    /// zero when it is; `None` when it has none.
    fn left(&self, s: &Shard) -> Option<Duration> {
        let at = s.scheduled.load(Ordering::Acquire);
        (at != u64::MAX).then(|| Duration::from_nanos(grid(at)).saturating_sub(self.base.elapsed()))
    }
}

/// Lock a shard; a poisoned lock is taken over (the panic was already
/// caught and counted by [`guarded`]). No extra spinning: a 4,000-try spin
/// removed the futex calls (strace: 5,875 -> 128 per 3 s) but burnt more user
/// time than it saved and lost the 6000 cps step of `make bench-cps`.
fn lock_shard(m: &Mutex<Proxy>) -> std::sync::MutexGuard<'_, Proxy> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Timer resolution of the shard timer tasks. SIP timers are multiples of
/// T1 (500 ms by default); waking at every individual deadline (most of
/// them Timer A/E entries cancelled by the next response) cost thousands
/// of wake-ups a second under load. Deadlines are rounded up to this grid,
/// so expiries batch and none fires early. Kamailio ticks at 1/16 s.
const TIMER_GRID_NS: u64 = 20_000_000;

/// Round a deadline (ns since the shard base) up to the timer grid.
fn grid(ns: u64) -> u64 {
    ns.div_ceil(TIMER_GRID_NS).saturating_mul(TIMER_GRID_NS)
}

/// Find the Call-ID value in raw message bytes without a full parse
/// (`Call-ID:` or compact `i:` at a line start, any case). Empty when
/// absent (such messages fail parsing anyway).
pub fn call_id_of(data: &[u8]) -> &[u8] {
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &data[pos..]) {
        let line_start = pos + nl + 1;
        let rest = &data[line_start..];
        let name_len = if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"call-id") {
            7
        } else if !rest.is_empty() && (rest[0] == b'i' || rest[0] == b'I') {
            1
        } else {
            pos = line_start;
            if rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n' {
                break;
            }
            continue;
        };
        let mut i = name_len;
        while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
            i += 1;
        }
        if rest.get(i) == Some(&b':') {
            i += 1;
            while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
                i += 1;
            }
            let end = rest[i..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .map_or(rest.len(), |p| i + p);
            return &rest[i..end];
        }
        pos = line_start;
    }
    &[]
}

/// Create the shards, with `loops` signaling event loops to fire their
/// timers and `media_threads` media driver threads (io_uring) for their
/// planes, and start each plane's control task.
pub(super) fn start(
    plan: &Arc<DialPlan>,
    bound: &Bound,
    stats: &[Arc<ProxyStats>],
    hub: TcpHub,
    cores: &[tokio::runtime::Handle],
    loops: usize,
    media_threads: usize,
) -> std::io::Result<Shards> {
    let wakes = (0..loops.max(1))
        .map(LoopWake::new)
        .collect::<std::io::Result<Vec<_>>>()?;
    let shards: Vec<Shard> = stats
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let cfg = ProxyConfig {
                shard: i as u16,
                shards: stats.len() as u16,
                seed: rand::random(),
                srtp_entropy: Some(rand::random()),
                ..ProxyConfig::new(bound.sockets.clone())
            };
            Shard {
                proxy: Mutex::new(Proxy::new(cfg, plan.clone(), st.clone())),
                media: MediaPlane::new(plan.media.address, cores[i % cores.len()].clone()),
                scheduled: AtomicU64::new(u64::MAX),
            }
        })
        .collect();
    let planes: Vec<Arc<MediaPlane>> = shards.iter().map(|s| s.media.clone()).collect();
    start_io(&planes, media_threads, IoChoice::from_env());
    let shards = Shards {
        shards: Arc::new(shards),
        udp: Arc::new(bound.udp.clone()),
        hub,
        base: Instant::now(),
        wakes: Arc::new(wakes),
    };
    for i in 0..shards.shards.len() {
        let core = &cores[i % cores.len()];
        // Media events re-enter the shard like any input (from the plane's
        // control task, with no lock held).
        let this = shards.clone();
        let sink: EventSink = Arc::new(move |session, event| {
            this.send(i, ShardInput::MediaEvent { session, event });
        });
        core.spawn(shards.shards[i].media.clone().run(sink));
    }
    Ok(shards)
}

/// Run one input through the proxy; a bug that panics costs that input,
/// never the process (the panic is logged and counted in
/// `callgate_internal_errors_total`). Network input must not panic — the
/// parsers are fuzzed and `tests/sim_proxy_robustness.rs` storms the proxy
/// with mutated traffic — this is the last line of defence.
fn guarded(proxy: &mut Proxy, f: impl FnOnce(&mut Proxy)) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(proxy)));
    if outcome.is_err() {
        proxy.note_internal_error();
        tracing::error!(
            "internal error while handling a message (panic caught); gateway continues"
        );
    }
}

fn handle(proxy: &mut Proxy, input: ShardInput) {
    let now = Instant::now();
    match input {
        ShardInput::Datagram { flow, data } => proxy.handle_datagram(now, flow, data),
        ShardInput::Stream { flow, data } => proxy.handle_stream_message(now, flow, data),
        ShardInput::TransportError { tx } => proxy.handle_transport_error(now, tx),
        ShardInput::Reload(plan) => proxy.set_plan(plan),
        ShardInput::Drain => proxy.set_draining(true),
        ShardInput::MediaEvent { session, event } => {
            proxy.handle_media_event(now, session, event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::call_id_of;

    #[test]
    fn finds_call_id_in_long_and_compact_forms() {
        assert_eq!(
            call_id_of(b"INVITE x SIP/2.0\r\nVia: a\r\nCall-ID: abc@h\r\n\r\n"),
            b"abc@h"
        );
        assert_eq!(call_id_of(b"INVITE x SIP/2.0\r\ni:  k1\r\n\r\n"), b"k1");
        assert_eq!(call_id_of(b"INVITE x SIP/2.0\r\nCALL-ID : z\r\n\r\n"), b"z");
        assert_eq!(
            call_id_of(b"INVITE x SIP/2.0\r\nIdentity: q\r\n\r\nbody\ni: no"),
            b""
        );
    }
}
