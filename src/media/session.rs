//! [`RelaySession`]: the sans-IO RTP/RTCP relay of one call (two legs, A and B).
//!
//! Inputs are datagrams with the local port they arrived on and `now`; outputs are
//! [`Transmit`]s, [`Event`]s and the next deadline. The session never reads a clock
//! or touches a socket; `runtime/` binds the ports and drives it.
//!
//! Each direction (A→B, B→A) is a `Direction` (private module `direction`):
//! plain header rewriting when both legs share the codec, transcoding
//! otherwise, DTMF interworking per the legs' [`DtmfMode`]s, and the tones the
//! relay plays itself (ringback, digits). Those are timed: [`RelaySession::poll_timeout`] then asks for a
//! call every packet time (20 ms), and [`RelaySession::handle_timeout`] may
//! queue [`Transmit`]s.
//!
//! A leg told to use SRTP ([`RelaySession::set_srtp`]) has its packets
//! unprotected as they arrive, before anything else looks at them, and
//! what the relay sends it protected last, just before the [`Transmit`]:
//! the relay in between only ever sees plain RTP/RTCP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::dtmf::{Digit, RingbackPlan};

use super::direction::Direction;
use super::error::DropReason;
use super::latch::{Latch, LatchOutcome};
use super::ports::PortPair;
use super::rewrite::Codec;
use super::rtp::{
    RtcpRewrite, fraction_lost_about, is_rtcp, parse_rtcp, parse_rtp, rewrite_rtcp, rtp_payload,
};
use super::srtp::{LegSrtp, SrtpKeys};
use super::types::{
    Component, DirectionStats, DtmfMode, Event, Leg, LegConfig, RelayConfig, Transmit,
};

#[derive(Debug)]
struct LegState {
    cfg: LegConfig,
    rtp: Latch,
    rtcp: Latch,
    /// This leg's DTMF mode.
    mode: DtmfMode,
    /// The direction from this leg to the other (its stream, its counters).
    dir: Direction,
    /// SRTP contexts when the leg speaks SRTP.
    srtp: Option<Box<LegSrtp>>,
}

/// The relay of one call. Leg X's state includes the direction X→other.
#[derive(Debug)]
pub struct RelaySession {
    config: RelayConfig,
    legs: [LegState; 2],
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    last_activity: Instant,
    inactive_fired: bool,
    on_hold: bool,
    unknown_port: u64,
}

/// SplitMix64 finalizer: spreads a caller-provided seed into SSRCs (the
/// B2BUA uses it for Call-IDs, tags and branches too).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RelaySession {
    /// A session relaying between `a` and `b`, starting its inactivity timer at
    /// `now`. The two outgoing SSRCs are derived from `ssrc_seed` (take it from the
    /// call's seeded RNG or a counter: RFC 3550 §8 wants them random-looking).
    pub fn new(
        now: Instant,
        config: RelayConfig,
        a: LegConfig,
        b: LegConfig,
        ssrc_seed: u64,
    ) -> Self {
        let ssrc_a = mix(ssrc_seed) as u32;
        let mut ssrc_b = mix(ssrc_seed ^ 0x5555_5555_5555_5555) as u32;
        if ssrc_b == ssrc_a {
            ssrc_b = !ssrc_a;
        }
        let leg = |from: Leg, cfg: LegConfig, other: &LegConfig, ssrc| LegState {
            rtp: Latch::new(cfg.remote_rtp, config.relatch_after),
            rtcp: Latch::new(rtcp_addr(&cfg), config.relatch_after),
            mode: DtmfMode::default(),
            dir: Direction::new(from, ssrc, mix(ssrc_seed ^ u64::from(ssrc)), &cfg, other),
            srtp: None,
            cfg,
        };
        let leg_a = leg(Leg::A, a.clone(), &b, ssrc_a);
        let leg_b = leg(Leg::B, b, &a, ssrc_b);
        Self {
            config,
            legs: [leg_a, leg_b],
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_activity: now,
            inactive_fired: false,
            on_hold: false,
            unknown_port: 0,
        }
    }

    /// Feeds one datagram received at `now` on local port `local_port` from `from`.
    /// Returns why it was dropped, if it was (the drop is also counted).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        local_port: u16,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let found = [Leg::A, Leg::B].into_iter().find_map(|leg| {
            let p = self.legs[leg.idx()].cfg.ports;
            if p.rtp == local_port {
                // RFC 5761 §4: demultiplex by the second byte on the RTP port.
                Some((
                    leg,
                    if is_rtcp(bytes) {
                        Component::Rtcp
                    } else {
                        Component::Rtp
                    },
                ))
            } else if p.rtcp == Some(local_port) {
                Some((leg, Component::Rtcp))
            } else {
                None
            }
        });
        let Some((leg, component)) = found else {
            self.unknown_port += 1;
            return Err(DropReason::UnknownPort(local_port));
        };
        // RFC 3711 §3.3/§3.4: authenticate and decrypt first (the RTP/RTCP
        // demultiplexing above reads the second byte, which SRTP leaves clear).
        let plain;
        let bytes = match self.legs[leg.idx()].srtp.as_mut() {
            None => bytes,
            Some(srtp) => {
                let mut buf = bytes.to_vec();
                let r = match component {
                    Component::Rtp => srtp.unprotect_rtp(&mut buf),
                    Component::Rtcp => srtp.unprotect_rtcp(&mut buf),
                };
                if let Err(e) = r {
                    self.legs[leg.idx()].dir.stats.dropped_srtp += 1;
                    return Err(DropReason::Srtp(e));
                }
                plain = buf;
                &plain[..]
            }
        };
        let result = match component {
            Component::Rtp => self.relay_rtp(now, leg, from, bytes),
            Component::Rtcp => {
                // The latch is the flow's: RTCP on the RTP port shares the RTP 5-tuple.
                let on_rtcp_port = self.legs[leg.idx()].cfg.ports.rtcp == Some(local_port);
                let flow = if on_rtcp_port {
                    Component::Rtcp
                } else {
                    Component::Rtp
                };
                self.relay_rtcp(now, leg, flow, from, bytes)
            }
        };
        if let Err(reason) = result {
            let s = &mut self.legs[leg.idx()].dir.stats;
            match reason {
                DropReason::Malformed(_) => s.dropped_malformed += 1,
                DropReason::UnexpectedSource => s.dropped_source += 1,
                DropReason::UnknownPayloadType(_) => s.dropped_payload_type += 1,
                DropReason::NoDestination => s.dropped_no_destination += 1,
                DropReason::UnknownPort(_) => self.unknown_port += 1,
                DropReason::Srtp(_) => s.dropped_srtp += 1,
            }
        }
        result
    }

    fn latch(
        &mut self,
        now: Instant,
        leg: Leg,
        component: Component,
        from: SocketAddr,
    ) -> Result<(), DropReason> {
        let st = &mut self.legs[leg.idx()];
        let latch = match component {
            Component::Rtcp => &mut st.rtcp,
            Component::Rtp => &mut st.rtp,
        };
        match latch.check(now, from) {
            LatchOutcome::Accepted => Ok(()),
            LatchOutcome::Latched => {
                self.events.push_back(Event::Latched {
                    leg,
                    component,
                    addr: from,
                });
                Ok(())
            }
            LatchOutcome::Rejected => Err(DropReason::UnexpectedSource),
        }
    }

    fn relay_rtp(
        &mut self,
        now: Instant,
        leg: Leg,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let h = parse_rtp(bytes).map_err(DropReason::Malformed)?;
        self.latch(now, leg, Component::Rtp, from)?;
        // Any valid RTP from the accepted source is activity, even if not relayed.
        self.last_activity = now;
        self.inactive_fired = false;
        let payload = rtp_payload(bytes);
        let result = self.legs[leg.idx()].dir.handle_rtp(now, &h, bytes, payload);
        let unsent = self.flush(now, leg);
        match result {
            Ok(()) if unsent > 0 => Err(DropReason::NoDestination),
            r => r,
        }
    }

    /// Sends what the direction from `leg` produced toward the other leg and
    /// passes its events on; returns how many packets had no destination.
    fn flush(&mut self, now: Instant, leg: Leg) -> usize {
        let dst = &self.legs[leg.other().idx()];
        let (to, from_port) = (dst.rtp.destination(), dst.cfg.ports.rtp);
        let mut packets = self.legs[leg.idx()].dir.take_packets();
        self.events.extend(self.legs[leg.idx()].dir.take_events());
        let unsent = match to {
            Some(to) => {
                for p in packets.drain(..) {
                    self.emit(now, leg, Component::Rtp, from_port, to, p);
                }
                0
            }
            None => {
                let n = packets.len();
                packets.clear();
                n
            }
        };
        self.legs[leg.idx()].dir.return_packets(packets);
        unsent
    }

    /// Count a relayed packet against the leg it came from and queue it.
    fn emit(
        &mut self,
        now: Instant,
        leg: Leg,
        kind: Component,
        from_port: u16,
        to: SocketAddr,
        mut out: Vec<u8>,
    ) {
        // The packet goes to the other leg: protect it last, with our key
        // for that leg (RFC 3711 §3.3).
        if let Some(srtp) = self.legs[leg.other().idx()].srtp.as_mut() {
            let r = match kind {
                Component::Rtp => srtp.protect_rtp(&mut out),
                Component::Rtcp => srtp.protect_rtcp(&mut out),
            };
            if r.is_err() {
                self.legs[leg.idx()].dir.stats.dropped_srtp += 1;
                return;
            }
        }
        let s = &mut self.legs[leg.idx()].dir.stats;
        match kind {
            Component::Rtp => {
                s.rtp_packets += 1;
                s.rtp_bytes += out.len() as u64;
            }
            Component::Rtcp => {
                s.rtcp_packets += 1;
                s.rtcp_bytes += out.len() as u64;
            }
        }
        s.last_packet = Some(now);
        self.transmits.push_back(Transmit {
            from_port,
            to,
            bytes: out.into(),
        });
    }

    fn relay_rtcp(
        &mut self,
        now: Instant,
        leg: Leg,
        flow: Component,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        parse_rtcp(bytes).map_err(DropReason::Malformed)?;
        self.latch(now, leg, flow, from)?;
        // What `leg` reports on the stream we send it: the encoders of the
        // direction toward it adapt (Opus in-band FEC, see `Direction`).
        let toward = &mut self.legs[leg.other().idx()].dir;
        if let Some(lost) = fraction_lost_about(bytes, toward.stream().ssrc()) {
            toward.note_receiver_report(lost);
        }
        let [src, dst] = match leg {
            Leg::A => [&self.legs[0], &self.legs[1]],
            Leg::B => [&self.legs[1], &self.legs[0]],
        };
        let (to, from_port) = match dst.cfg.ports.rtcp {
            // Not latched and no SDP address: RTP destination + 1 (RFC 3550 §11).
            Some(port) => (
                dst.rtcp
                    .destination()
                    .or_else(|| plus_one(dst.rtp.destination()?)),
                port,
            ),
            None => (dst.rtp.destination(), dst.cfg.ports.rtp),
        };
        let to = to.ok_or(DropReason::NoDestination)?;
        let (src_stream, dst_stream) = (src.dir.stream(), dst.dir.stream());
        let rw = RtcpRewrite {
            sender_ssrc: src_stream.ssrc(),
            timestamp_offset: src_stream.timestamp_offset(),
            report_ssrc: dst_stream.source_ssrc().map(|s| (dst_stream.ssrc(), s)),
            report_seq_offset: dst_stream.sequence_offset(),
        };
        let mut out = bytes.to_vec();
        rewrite_rtcp(&mut out, &rw);
        self.emit(now, leg, Component::Rtcp, from_port, to, out);
        Ok(())
    }

    /// Next datagram to send, until `None`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event, until `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next: the earliest of the
    /// inactivity deadline (none on hold or after [`Event::Inactive`] until
    /// RTP flows again, nor for a timeout too large to represent, i.e.
    /// "disabled") and the media timers of both directions (the next packet
    /// of a tone or digit the relay plays, a reorder gap given up, a digit
    /// whose end packets never came).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.inactivity_deadline(),
            self.legs[0].dir.poll_timeout(),
            self.legs[1].dir.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn inactivity_deadline(&self) -> Option<Instant> {
        if self.on_hold || self.inactive_fired {
            return None;
        }
        self.last_activity
            .checked_add(self.config.inactivity_timeout)
    }

    /// Runs the timers due at `now`: media timers of both directions (which
    /// may queue [`Transmit`]s) and [`Event::Inactive`] once the inactivity
    /// deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for leg in [Leg::A, Leg::B] {
            if self.legs[leg.idx()]
                .dir
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.legs[leg.idx()].dir.handle_timeout(now);
                let unsent = self.flush(now, leg);
                self.legs[leg.idx()].dir.stats.dropped_no_destination += unsent as u64;
            }
        }
        if self
            .inactivity_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            self.inactive_fired = true;
            self.events.push_back(Event::Inactive {
                since: self.last_activity,
            });
        }
    }

    /// How DTMF travels on `leg` (RFC 4733 until told otherwise).
    pub fn set_dtmf_mode(&mut self, leg: Leg, mode: DtmfMode) {
        self.legs[leg.idx()].mode = mode;
        self.reconfigure();
    }

    /// The DTMF mode of `leg`.
    pub fn dtmf_mode(&self, leg: Leg) -> DtmfMode {
        self.legs[leg.idx()].mode
    }

    /// Plays `digit` (`0`–`9`, `*`, `#`, `A`–`D`; anything else is ignored)
    /// for `duration_ms` toward `leg` in its DTMF mode: telephone-events, or
    /// tones in its codec (digits queue behind each other, at least 40 ms on
    /// and 40 ms apart). Toward an INFO leg it does nothing: the B2BUA sends
    /// the INFO. The leg's own audio toward it is muted while a digit plays.
    pub fn send_dtmf(&mut self, now: Instant, leg: Leg, digit: char, duration_ms: u32) {
        let Some(d) = Digit::from_char(digit) else {
            return;
        };
        let from = leg.other();
        self.legs[from.idx()].dir.send_dtmf(now, d, duration_ms);
        let unsent = self.flush(now, from);
        self.legs[from.idx()].dir.stats.dropped_no_destination += unsent as u64;
    }

    /// Starts (`Some`) or stops (`None`) ringback toward `leg`, in its first
    /// codec at its ptime, from our own SSRC. RTP from the other leg stops it
    /// too (early media wins).
    pub fn ringback(&mut self, now: Instant, leg: Leg, plan: Option<&RingbackPlan>) {
        let from = leg.other();
        self.legs[from.idx()].dir.ringback(now, plan);
        let unsent = self.flush(now, from);
        self.legs[from.idx()].dir.stats.dropped_no_destination += unsent as u64;
    }

    /// Whether ringback plays toward `leg`.
    pub fn ringback_playing(&self, leg: Leg) -> bool {
        self.legs[leg.other().idx()].dir.ringback_playing()
    }

    fn reconfigure(&mut self) {
        let [a, b] = &mut self.legs;
        a.dir.configure(&a.cfg, a.mode, &b.cfg, b.mode);
        b.dir.configure(&b.cfg, b.mode, &a.cfg, a.mode);
    }

    /// Suspends (hold: `a=sendonly`/`inactive`) or resumes the inactivity timer;
    /// on resume the full timeout starts again at `now`.
    pub fn set_on_hold(&mut self, now: Instant, on_hold: bool) {
        if self.on_hold && !on_hold {
            self.last_activity = now;
            self.inactive_fired = false;
        }
        self.on_hold = on_hold;
    }

    /// SDES-SRTP on `leg` with `keys`, or plain RTP (`None`). New keys for
    /// a leg already on SRTP keep the state of a context whose key did not
    /// change ([`LegSrtp::rekey`]).
    pub fn set_srtp(&mut self, leg: Leg, keys: Option<SrtpKeys>) {
        let st = &mut self.legs[leg.idx()];
        st.srtp = match (st.srtp.take(), keys) {
            (Some(mut cur), Some(k)) => {
                cur.rekey(k);
                Some(cur)
            }
            (None, Some(k)) => Some(Box::new(LegSrtp::new(k))),
            (_, None) => None,
        };
    }

    /// The SRTP keys of `leg`, when it speaks SRTP.
    pub fn srtp_keys(&self, leg: Leg) -> Option<&SrtpKeys> {
        self.legs[leg.idx()].srtp.as_ref().map(|s| s.keys())
    }

    /// Lets the next valid packet on `leg` latch at once (re-INVITE, forked early
    /// media switching branches: RFC 4961 latching restarted by signalling).
    pub fn relatch(&mut self, leg: Leg) {
        let st = &mut self.legs[leg.idx()];
        st.rtp.unlatch();
        st.rtcp.unlatch();
    }

    /// Applies a new offer/answer for `leg`: new remote addresses (the latches
    /// reopen) and codecs (payload type maps of both directions are rebuilt).
    pub fn update_leg(
        &mut self,
        leg: Leg,
        remote_rtp: Option<SocketAddr>,
        remote_rtcp: Option<SocketAddr>,
        codecs: Vec<Codec>,
    ) {
        let st = &mut self.legs[leg.idx()];
        st.cfg.remote_rtp = remote_rtp;
        st.cfg.remote_rtcp = remote_rtcp;
        st.cfg.codecs = codecs;
        st.rtp.set_signalled(remote_rtp);
        st.rtcp.set_signalled(rtcp_addr(&st.cfg));
        self.reconfigure();
    }

    /// Counters of the direction from `leg` to the other leg.
    pub fn stats(&self, from: Leg) -> &DirectionStats {
        &self.legs[from.idx()].dir.stats
    }

    /// Datagrams received on a port of neither leg.
    pub fn unknown_port_drops(&self) -> u64 {
        self.unknown_port
    }

    /// The SSRC the relay sends the stream from `from` under.
    pub fn outgoing_ssrc(&self, from: Leg) -> u32 {
        self.legs[from.idx()].dir.stream().ssrc()
    }

    /// Where RTP for `leg` is sent now (latched source, else SDP address).
    pub fn rtp_destination(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.idx()].rtp.destination()
    }

    /// Local ports of both legs (A, B).
    pub fn ports(&self) -> [PortPair; 2] {
        [self.legs[0].cfg.ports, self.legs[1].cfg.ports]
    }

    /// Ends the session and hands back its ports, to give to
    /// [`super::PortAllocator::release`] whatever ended the call.
    pub fn into_ports(self) -> [PortPair; 2] {
        self.ports()
    }
}

/// RTCP address of a leg: explicit (`a=rtcp`), else RTP port + 1 unless muxed.
fn rtcp_addr(cfg: &LegConfig) -> Option<SocketAddr> {
    cfg.ports.rtcp?;
    cfg.remote_rtcp.or_else(|| plus_one(cfg.remote_rtp?))
}

fn plus_one(mut a: SocketAddr) -> Option<SocketAddr> {
    a.set_port(a.port().checked_add(1)?);
    Some(a)
}
