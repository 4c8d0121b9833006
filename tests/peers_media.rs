//! The media plane with real peers (issue 4): transcoding, DTMF interworking
//! and ringback, checked on the wire, through `dialplans/loopback.yaml`
//! (B2BUA, media anchored on 127.0.0.1:20000–20999) with per-test trunk and
//! route options added to the test's copy of the plan:
//!
//! * transcoding: baresip offering Opus only -> callgate -> carrier-a with
//!   `codecs: [PCMA]` (SIPp `media_uas.xml` answering PCMA). The trunk's
//!   media is a UDP socket of the test ([`RtpEndpoint`]): it must receive
//!   PCMA carrying baresip's 1000 Hz tone, and what it sends (PCMA, 440 Hz)
//!   must reach baresip as Opus that baresip decodes to a 440 Hz tone;
//! * DTMF from the caller: baresip sends RFC 4733 digits (`sndcode`) to a
//!   PCMU trunk in each `dtmf:` mode: `rfc4733` -> telephone-events at the
//!   trunk, `inband` -> tones in its audio (callgate's Q.24 detector run
//!   over the decoded RTP), `info` -> SIP INFO application/dtmf-relay;
//! * DTMF to the caller: the trunk sends digits as telephone-events, as
//!   in-band tones, or as SIP INFO (`media_uas_send_info.xml`); baresip must
//!   receive telephone-events (captured on the wire with a raw socket) and
//!   report the digits itself;
//! * ringback: route `ringback: us`, a trunk ringing 3 s without early
//!   media (`media_uas_ringback.xml`), a SIPp caller
//!   (`media_uac_ringback.xml`) whose RTP port is a socket of the test: a
//!   183 with SDP, then 440+480 Hz at -19 dBm0 for 2 s and silence, packets
//!   20 ms apart, then the trunk's audio in the same stream.
//!
//! Digits must arrive exactly once and in order. Every test ends with the
//! peers' calls completed, `GET /calls` == `[]` and no port of the media
//! range bound.
//!
//! Run them alone: `cargo test --release --test peers_media -- --test-threads=1`
//! (root: the raw-socket capture). `CALLGATE_PEERS_PORT_OFFSET` moves them to
//! other ports (see `tests/support/net.rs`); a plan without a `mode: b2bua`
//! route (`CALLGATE_PEERS_DIALPLAN`) has no media plane: the tests say so
//! and end there.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::audio::{Wav, analyse_tone, analyse_tone_with, read_wav};
    use super::support::baresip::{Baresip, BaresipCodecs};
    use super::support::media::*;
    use super::support::net::*;
    use super::support::*;
    use std::path::PathBuf;
    use std::thread;
    use std::time::{Duration, Instant};

    /// The trunk's RTP port in its answer: a socket of the test.
    const TRUNK_RTP: u16 = 6300;
    /// SIPp trunk's own media port (unused: the answer names TRUNK_RTP).
    const SIPP_UAS_MP: u16 = 6320;
    /// The SIPp caller's RTP port in its offer: a socket of the test.
    const CALLER_RTP: u16 = 6400;
    /// SIPp caller's own media port (unused).
    const SIPP_UAC_MP: u16 = 6420;

    /// baresip's tone (ausine) and the trunk's (the test's socket).
    const CALLER_TONE_HZ: u32 = 1000;
    const TRUNK_TONE_HZ: f64 = 440.0;
    /// Digits keyed in each DTMF test (a repeated digit included); the
    /// INFO trunk scenario `media_uas_send_info.xml` sends the same ones.
    const DIGITS: &str = "1559*#0";
    /// Time between two `sndcode` commands: a 180 ms digit and a pause.
    const DIGIT_GAP: Duration = Duration::from_millis(400);
    /// baresip's telephone-event payload type (baresip 1.0: always 101).
    const BARESIP_TE_PT: u8 = 101;
    /// The trunks' telephone-event payload type (in `-set pts`).
    const TRUNK_TE_PT: u8 = 101;
    const CLEANUP: Duration = Duration::from_secs(10);
    /// Tone over noise a block of Opus that callgate encoded needs (see the
    /// transcoding test).
    const OPUS_MIN_SNR_DB: f64 = 12.0;

    // ---------------------------------------------------------- set-up ---

    /// [`media_setup`] naming what these tests skip without a B2BUA route.
    fn setup(test: &str, options: &[(&str, &str)]) -> Option<Setup> {
        media_setup(
            test,
            options,
            "every media check (transcoding, DTMF, ringback)",
        )
    }

    impl Setup {
        /// A trunk SIPp on carrier-a's port running `scenario` for one call
        /// (it exits after it), its answer naming `rtp` (a socket of the
        /// test) and payload types `pts`.
        fn trunk(&self, scenario: &str, rtp: u16, pts: &str) -> SippProc {
            let spare = self.net.port(SIPP_UAS_MP);
            assert_ports_free(&[spare, spare + 2], &[]);
            Sipp::uas("carrier_a", &self.work, self.net.carrier_a())
                .scenario(scenario)
                .calls(1)
                .trace_msg()
                .arg("-mp")
                .arg(&spare.to_string())
                .arg("-set")
                .arg("mport")
                .arg(&rtp.to_string())
                .arg("-set")
                .arg("pts")
                .arg(pts)
                .spawn()
        }

        /// baresip A, the caller, sending a `CALLER_TONE_HZ` sine.
        fn caller(&self, codecs: &BaresipCodecs) -> Baresip {
            self.baresip_a(codecs, CALLER_TONE_HZ)
        }

        fn caller_rtp_ports(&self) -> Vec<u16> {
            (self.net.port(BARESIP_A_RTP.0)..=self.net.port(BARESIP_A_RTP.1)).collect()
        }

        /// The one call of `/calls` (waits at most 5 s for it).
        fn the_call(&self) -> serde_json::Value {
            let mut last = Vec::new();
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                last = self.gw.calls().unwrap_or_default();
                last.len() == 1
            });
            assert_eq!(
                last.len(),
                1,
                "GET /calls must show the one call in progress, got {last:?}"
            );
            last.remove(0)
        }

        fn finish(mut self, what: &str) {
            assert_gateway_clean(&mut self.gw, &self.plan, CLEANUP, what);
            self.gw.stop(Duration::from_secs(10));
        }
    }

    /// The relay's port for the trunk leg: where its first datagram to the
    /// trunk's socket came from (at most 5 s, fails otherwise), checked
    /// against `/calls`.
    fn relay_port_toward(s: &Setup, rtp: &RtpEndpoint, ctx: &dyn Fn() -> String) -> u16 {
        let src = s.first_relay_port(rtp, ctx);
        let call = s.the_call();
        assert_eq!(
            call["legs"][1]["media_port"].as_u64(),
            Some(u64::from(src)),
            "the relay must send to the trunk from the trunk leg's media port of /calls: {call}\n{}",
            ctx()
        );
        src
    }

    /// Spacing of a stream's packets, the repeated end packets of each
    /// telephone-event left out (they go out back to back on purpose).
    fn stream_spacing(d: &[Datagram]) -> Spacing {
        let mut last_end: Option<(u32, u32)> = None;
        let arrivals: Vec<Instant> = d
            .iter()
            .filter(|g| {
                let Some(r) = g.rtp() else { return false };
                let end = r.payload.len() >= 4 && r.payload[1] & 0x80 != 0;
                let repeat = end && last_end == Some((r.ssrc, r.ts));
                if end {
                    last_end = Some((r.ssrc, r.ts));
                }
                !repeat
            })
            .map(|g| g.at)
            .collect();
        Spacing::of(&arrivals, 20.0)
    }

    fn wav8k(samples: Vec<i16>) -> Wav {
        Wav {
            rate: 8000,
            channels: 1,
            samples,
        }
    }

    /// The trunk's audio: a `TRUNK_TONE_HZ` sine at -10 dBm0 for `secs`.
    fn trunk_tone(w: &mut StreamWriter, law: Law, secs: f64) {
        let a = dbm0_amplitude(-10.0);
        w.audio_for(law, secs, |n| tones_at(&[(TRUNK_TONE_HZ, a)], n));
    }

    /// INFO digits (application/dtmf-relay `Signal=`) a SIPp received,
    /// without retransmissions, in order; with the bodies for messages.
    fn info_digits(o: &SippOutcome) -> (String, Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        let mut digits = String::new();
        let mut bodies = Vec::new();
        for m in o.traced() {
            if !m.received || !m.text.starts_with("INFO ") {
                continue;
            }
            let cseq = header_values(&m.text, "CSeq", None)
                .first()
                .cloned()
                .unwrap_or_default();
            let call_id = header_values(&m.text, "Call-ID", Some("i"))
                .first()
                .cloned()
                .unwrap_or_default();
            if !seen.insert((call_id, cseq)) {
                continue;
            }
            let ctype = header_values(&m.text, "Content-Type", Some("c"))
                .first()
                .cloned()
                .unwrap_or_default();
            let body = m
                .text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            bodies.push(format!("[{ctype}] {}", body.replace("\r\n", " | ")));
            if ctype.eq_ignore_ascii_case("application/dtmf-relay") {
                let signal = body.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("signal")
                        .then(|| v.trim().to_string())
                });
                if let Some(s) = signal {
                    digits.push_str(&s);
                }
            }
        }
        (digits, bodies)
    }

    // ------------------------------------------------------ transcoding ---

    /// baresip (Opus only) -> callgate -> a PCMA-only trunk: both
    /// directions transcoded, each tone checked where it arrives.
    #[test]
    fn opus_caller_and_pcma_trunk_hear_each_other_through_transcoding() {
        const TALK: Duration = Duration::from_secs(5);
        let _serial = serial();
        let Some(mut s) = setup(
            "opus_caller_and_pcma_trunk_hear_each_other_through_transcoding",
            &[("carrier-a", "codecs: [PCMA]")],
        ) else {
            return;
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let uas = s.trunk("media_uas.xml", trunk_rtp.port, "8");
        let wire = WireCapture::start(&s.caller_rtp_ports());
        let mut a = s.caller(&BaresipCodecs::opus_only());
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        let ctx = |a: &Baresip, gw: &Gateway| {
            format!(
                "dial plan: {}\n{}\n--- callgate log (tail) ---\n{}",
                s.plan.path.display(),
                a.summary(),
                gw.log_tail(3000)
            )
        };
        assert!(
            up.is_some(),
            "baresip's Opus call to the PCMA trunk must be established within 10 s\n{}",
            ctx(&a, &s.gw)
        );
        let relay_b = relay_port_toward(&s, &trunk_rtp, &|| ctx(&a, &s.gw));
        let mut w = StreamWriter::new(0x7e57_0001);
        trunk_tone(&mut w, Law::Alaw, TALK.as_secs_f64());
        trunk_rtp.play(relay_b, w.script);
        thread::sleep(TALK / 2);
        let call = s.the_call();
        thread::sleep(TALK / 2);
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_trunk = trunk_rtp.stop();
        let at_caller = wire.stop();
        dump_datagrams(&s.work.join("rtp_to_trunk.txt"), &at_trunk);
        dump_datagrams(&s.work.join("rtp_at_caller.txt"), &at_caller);
        s.gw.assert_alive("during the transcoded call");
        let context = format!(
            "{}\n{}\n/calls mid-call: {call}",
            ctx(&a, &s.gw),
            uas.summary()
        );
        a.stop();
        assert!(closed.is_some(), "the hang-up must end the call\n{context}");
        uas.assert_all_successful(1, &format!("the PCMA trunk's call\n{context}"));

        // what each leg negotiated, as /calls saw it mid-call
        let codecs = |leg: usize| -> Vec<String> {
            call["legs"][leg]["codecs"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|c| c.as_str().map(str::to_ascii_lowercase))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            codecs(0)
                .first()
                .is_some_and(|c| c.starts_with("opus/48000"))
                && codecs(1)
                    .first()
                    .is_some_and(|c| c.starts_with("pcma/8000")),
            "/calls must show Opus on the caller's leg and PCMA on the trunk's: {:?} / {:?}\n\
             {context}",
            codecs(0),
            codecs(1)
        );

        // trunk side: PCMA only, carrying the caller's tone
        let pts = pt_counts(&at_trunk);
        let pcma = rtp_with_pt(&at_trunk, 8);
        assert!(
            pcma.len() >= 200 && pts.len() == 1,
            "the trunk must receive PCMA (PT 8) only, about 50 packets a second: payload types \
             {pts:?}\n{context}"
        );
        let heard = analyse_tone(
            &wav8k(g711_audio(&at_trunk, Law::Alaw)),
            f64::from(CALLER_TONE_HZ),
        );
        eprintln!("at the PCMA trunk (Opus -> PCMA): {}", heard.summary());
        assert!(
            heard.passes(3.0),
            "the trunk must hear baresip's {CALLER_TONE_HZ} Hz tone, transcoded from Opus to \
             PCMA, for at least 3 s: {}\n{context}",
            heard.summary()
        );

        // caller side: Opus from the relay, in baresip's own payload type
        let from_caller: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.dst_port))
            .cloned()
            .collect();
        let to_caller: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.src_port))
            .cloned()
            .collect();
        let opus_pt = pt_counts(&from_caller)
            .into_iter()
            .filter(|(pt, _)| *pt != BARESIP_TE_PT)
            .max_by_key(|(_, n)| *n)
            .map(|(pt, _)| pt);
        let back = pt_counts(&to_caller);
        assert!(
            opus_pt.is_some_and(|pt| pt >= 96)
                && back.len() == 1
                && Some(back[0].0) == opus_pt
                && back[0].1 >= 200,
            "baresip sends Opus (PT {opus_pt:?}); the relay must send it Opus in that payload \
             type only, about 50 packets a second, got {back:?} (baresip sent {:?})\n{context}",
            pt_counts(&from_caller)
        );
        let rec = a.received_recordings();
        assert_eq!(
            rec.len(),
            1,
            "baresip must have recorded the call\n{context}"
        );
        // callgate's Opus encoder (complexity 1, narrowband toward an 8 kHz
        // leg: src/media/transcode.rs) keeps a pure tone about 21 dB over its
        // coding noise; G.711 keeps 35-40 dB. 12 dB still tells the tone
        // from silence, noise or baresip's own 1000 Hz.
        let wav = read_wav(&rec[0])
            .unwrap_or_else(|e| panic!("cannot read baresip's recording: {e}\n{context}"));
        let at_a = analyse_tone_with(&wav, TRUNK_TONE_HZ, OPUS_MIN_SNR_DB);
        eprintln!("at baresip (PCMA -> Opus): {}", at_a.summary());
        assert!(
            at_a.passes(3.0) && at_a.median_snr_db >= 15.0,
            "baresip must hear the trunk's PCMA {TRUNK_TONE_HZ} Hz tone as Opus for at least \
             3 s (median SNR at least 15 dB): {}\n{context}",
            at_a.summary()
        );
        s.finish("after the transcoded call");
    }

    // ------------------------------------------------ DTMF from the caller ---

    /// How far the audio's timestamps may drift from real time over a DTMF
    /// call (7 digits): a packet's worth of slack per digit is too much.
    const MAX_DRIFT_MS: f64 = 60.0;

    /// Fails if the audio toward a peer (payload type `pt`, 8 kHz) drifted
    /// more than [`MAX_DRIFT_MS`] from real time; prints it anyway.
    fn check_drift(d: &[Datagram], pt: u8, what: &str, ctx: &str) {
        let drift = audio_drift_ms(d, pt, 8000);
        eprintln!("{what}: audio timestamps drifted {drift:.0} ms from real time");
        assert!(
            drift.abs() <= MAX_DRIFT_MS,
            "{what}: the audio's RTP timestamps must keep pace with real time around the digits \
             (at most {MAX_DRIFT_MS} ms over the call), but they drifted {drift:.0} ms (positive: \
             they lost time; see rtp_*.txt in the work directory)\n{ctx}"
        );
    }

    /// baresip keys DIGITS (RFC 4733) toward a PCMU trunk whose `dtmf:` is
    /// `mode`; the trunk must get them in its own form, once each.
    fn dtmf_from_caller(test: &str, mode: &str, pts: &str) {
        let _serial = serial();
        let option = format!("dtmf: {mode}");
        let Some(mut s) = setup(test, &[("carrier-a", &option)]) else {
            return;
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let uas = s.trunk("media_uas.xml", trunk_rtp.port, pts);
        let wire = WireCapture::start(&s.caller_rtp_ports());
        let mut a = s.caller(&BaresipCodecs::pcmu_only());
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        let ctx = |a: &Baresip, gw: &Gateway| {
            format!(
                "trunk dtmf: {mode}; dial plan: {}\n{}\n--- callgate log (tail) ---\n{}",
                s.plan.path.display(),
                a.summary(),
                gw.log_tail(3000)
            )
        };
        assert!(
            up.is_some(),
            "the call must be established within 10 s\n{}",
            ctx(&a, &s.gw)
        );
        let relay_b = relay_port_toward(&s, &trunk_rtp, &|| ctx(&a, &s.gw));
        let mut w = StreamWriter::new(0x7e57_0002);
        trunk_tone(&mut w, Law::Ulaw, 6.0);
        trunk_rtp.play(relay_b, w.script);
        thread::sleep(Duration::from_millis(800));
        let call = s.the_call();
        a.send_digits(DIGITS, DIGIT_GAP);
        thread::sleep(Duration::from_millis(1200));
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_trunk = trunk_rtp.stop();
        let at_caller = wire.stop();
        s.gw.assert_alive("during the DTMF call");
        let from_caller: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.dst_port))
            .cloned()
            .collect();
        let keyed = telephone_events(&from_caller, BARESIP_TE_PT);
        let context = format!(
            "{}\n{}\n/calls mid-call: {call}\nbaresip sent telephone-events {:?} (payload types \
             {:?})",
            ctx(&a, &s.gw),
            uas.summary(),
            event_string(&keyed),
            pt_counts(&from_caller)
        );
        a.stop();
        assert!(closed.is_some(), "the hang-up must end the call\n{context}");
        uas.assert_all_successful(1, &format!("the trunk's call\n{context}"));

        dump_datagrams(&s.work.join("rtp_to_trunk.txt"), &at_trunk);
        dump_datagrams(&s.work.join("rtp_at_caller.txt"), &at_caller);
        let events = telephone_events(&at_trunk, TRUNK_TE_PT);
        let spacing = stream_spacing(&at_trunk);
        eprintln!(
            "trunk dtmf: {mode}: RTP to the trunk: {}",
            spacing.summary()
        );
        let inband = inband_digits(&g711_audio(&at_trunk, Law::Ulaw));
        let inband_str: String = inband.iter().map(|d| d.digit).collect();
        let (info, bodies) = info_digits(&uas);
        eprintln!(
            "trunk dtmf: {mode}: telephone-events {:?}\nin-band {inband:?}\nINFO {bodies:?}",
            events
                .iter()
                .map(|e| (e.digit, e.packets, e.end_packets, e.duration))
                .collect::<Vec<_>>()
        );
        let seen = format!(
            "telephone-events at the trunk: {:?} ({} packets of PT {TRUNK_TE_PT}); in-band \
             digits in its audio: {inband:?}; INFO bodies: {bodies:?}; payload types {:?}",
            event_string(&events),
            rtp_with_pt(&at_trunk, TRUNK_TE_PT).len(),
            pt_counts(&at_trunk)
        );
        let (want_events, want_inband, want_info) = match mode {
            "rfc4733" => (DIGITS, "", ""),
            "inband" => ("", DIGITS, ""),
            _ => ("", "", DIGITS),
        };
        assert!(
            event_string(&events) == want_events && inband_str == want_inband && info == want_info,
            "baresip keyed {DIGITS:?} as RFC 4733; a `dtmf: {mode}` trunk must get exactly these \
             digits, once each and in order, as {} and in no other form.\n{seen}\n{context}",
            match mode {
                "rfc4733" => "telephone-events",
                "inband" => "in-band tones",
                _ => "SIP INFO application/dtmf-relay",
            }
        );
        match mode {
            "rfc4733" => {
                for e in &events {
                    assert!(
                        e.marker && e.end_packets >= 1 && e.duration >= 8 * 100,
                        "each telephone-event needs a marker on its first packet, an end packet \
                         and its length (baresip keys 180 ms): {e:?}\n{context}"
                    );
                }
            }
            "inband" => {
                for d in &inband {
                    assert!(
                        d.duration_ms >= 80.0,
                        "each in-band digit must last as long as keyed (about 180 ms; Q.24 needs \
                         40 ms): {d:?}\n{context}"
                    );
                }
            }
            _ => {}
        }
        check_drift(
            &at_trunk,
            0,
            &format!("RTP to the `dtmf: {mode}` trunk"),
            &context,
        );
        s.finish(&format!("after the DTMF call to a `dtmf: {mode}` trunk"));
    }

    #[test]
    fn dtmf_from_caller_reaches_rfc4733_trunk_as_telephone_events() {
        dtmf_from_caller(
            "dtmf_from_caller_reaches_rfc4733_trunk_as_telephone_events",
            "rfc4733",
            "0 101",
        );
    }

    /// The trunk answers PCMU alone (no telephone-event), as in-band and
    /// INFO trunks do. The relay plays each digit as tones in place of the
    /// caller's audio, packet slot by packet slot: the trunk's timestamps
    /// keep real time.
    #[test]
    fn dtmf_from_caller_reaches_inband_trunk_as_tones() {
        dtmf_from_caller(
            "dtmf_from_caller_reaches_inband_trunk_as_tones",
            "inband",
            "0",
        );
    }

    #[test]
    fn dtmf_from_caller_reaches_info_trunk_as_sip_info() {
        dtmf_from_caller(
            "dtmf_from_caller_reaches_info_trunk_as_sip_info",
            "info",
            "0",
        );
    }

    /// As above, the trunk's answer keeping telephone-event (`dtmf:` says
    /// how the trunk wants digits, whatever its SDP lists).
    #[test]
    fn dtmf_from_caller_reaches_inband_trunk_that_lists_telephone_event() {
        dtmf_from_caller(
            "dtmf_from_caller_reaches_inband_trunk_that_lists_telephone_event",
            "inband",
            "0 101",
        );
    }

    #[test]
    fn dtmf_from_caller_reaches_info_trunk_that_lists_telephone_event() {
        dtmf_from_caller(
            "dtmf_from_caller_reaches_info_trunk_that_lists_telephone_event",
            "info",
            "0 101",
        );
    }

    // -------------------------------------------------- DTMF to the caller ---

    /// A `dtmf: mode` trunk sends DIGITS in its form; baresip (RFC 4733)
    /// must receive them as telephone-events, once each, in order.
    ///
    /// An in-band trunk's digit is detected only after Q.24's 40 ms: none of
    /// its tone may reach the caller beside the telephone-event (the relay
    /// holds the audio back for that long), and the audio after each event
    /// keeps its place in time.
    ///
    /// Mode `rfc4733-pcap` is `rfc4733` with the event payloads recorded from
    /// another endpoint: SIPp's (Debian's `/usr/share/sip-tester/
    /// dtmf_2833_*.pcap`), replayed in the trunk's stream.
    fn dtmf_to_caller(test: &str, mode: &str) {
        let _serial = serial();
        let recorded = mode == "rfc4733-pcap";
        let mode = if recorded { "rfc4733" } else { mode };
        let option = format!("dtmf: {mode}");
        let Some(mut s) = setup(test, &[("carrier-a", &option)]) else {
            return;
        };
        let pts = if mode == "rfc4733" { "0 101" } else { "0" };
        let scenario = if mode == "info" {
            "media_uas_send_info.xml"
        } else {
            "media_uas.xml"
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let uas = s.trunk(scenario, trunk_rtp.port, pts);
        let wire = WireCapture::start(&s.caller_rtp_ports());
        let mut a = s.caller(&BaresipCodecs::pcmu_only());
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        let ctx = |a: &Baresip, gw: &Gateway| {
            format!(
                "trunk dtmf: {mode}; dial plan: {}\n{}\n--- callgate log (tail) ---\n{}",
                s.plan.path.display(),
                a.summary(),
                gw.log_tail(3000)
            )
        };
        assert!(
            up.is_some(),
            "the call must be established within 10 s\n{}",
            ctx(&a, &s.gw)
        );
        let relay_b = relay_port_toward(&s, &trunk_rtp, &|| ctx(&a, &s.gw));
        // the trunk's stream: its tone, the digits in its form, its tone
        let mut w = StreamWriter::new(0x7e57_0003);
        trunk_tone(&mut w, Law::Ulaw, 1.0);
        match mode {
            "rfc4733" if recorded => {
                for d in DIGITS.chars() {
                    w.event_payloads(TRUNK_TE_PT, &recorded_event(d));
                    trunk_tone(&mut w, Law::Ulaw, 0.2);
                }
            }
            "rfc4733" => {
                for d in DIGITS.chars() {
                    w.digit_event(TRUNK_TE_PT, d, 120, 10);
                    trunk_tone(&mut w, Law::Ulaw, 0.2);
                }
            }
            "inband" => {
                let amp = dbm0_amplitude(-10.0);
                for d in DIGITS.chars() {
                    let (lo, hi) = dtmf_freqs(d).expect("a DTMF digit");
                    w.audio_for(Law::Ulaw, 0.12, |n| tones_at(&[(lo, amp), (hi, amp)], n));
                    w.audio_for(Law::Ulaw, 0.2, |_| 0.0);
                }
            }
            // SIPp sends the INFOs (from 1.5 s after the ACK, 300 ms apart)
            _ => trunk_tone(&mut w, Law::Ulaw, 3.0),
        }
        trunk_tone(&mut w, Law::Ulaw, 1.0);
        trunk_rtp.play(relay_b, w.script);
        trunk_rtp.wait_played(Duration::from_secs(15));
        thread::sleep(Duration::from_millis(500));
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_caller = wire.stop();
        let _ = trunk_rtp.stop();
        s.gw.assert_alive("during the DTMF call");
        let context = format!("{}\n{}", ctx(&a, &s.gw), uas.summary());
        a.stop();
        assert!(closed.is_some(), "the hang-up must end the call\n{context}");
        uas.assert_all_successful(1, &format!("the trunk's call\n{context}"));

        let to_caller: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.src_port))
            .cloned()
            .collect();
        dump_datagrams(&s.work.join("rtp_at_caller.txt"), &at_caller);
        let events = telephone_events(&to_caller, BARESIP_TE_PT);
        let spacing = stream_spacing(&to_caller);
        eprintln!("trunk dtmf: {mode}: RTP to baresip: {}", spacing.summary());
        let inband = inband_digits(&g711_audio(&to_caller, Law::Ulaw));
        let reported = a.dtmf_received();
        eprintln!(
            "trunk dtmf: {mode} -> baresip: telephone-events {:?}\nin-band {inband:?}\n\
             baresip reported {reported:?}",
            events
                .iter()
                .map(|e| (e.digit, e.packets, e.end_packets, e.duration))
                .collect::<Vec<_>>()
        );
        let seen = format!(
            "telephone-events to baresip: {:?} ({events:?}); in-band digits in its audio: \
             {inband:?}; payload types {:?}; digits baresip reported: {reported:?}",
            event_string(&events),
            pt_counts(&to_caller)
        );
        assert_eq!(
            event_string(&events),
            DIGITS,
            "the `dtmf: {mode}` trunk sent {DIGITS:?}: baresip (RFC 4733) must receive exactly \
             these telephone-events (PT {BARESIP_TE_PT}), once each and in order\n{seen}\n{context}"
        );
        for e in &events {
            assert!(
                e.marker && e.end_packets >= 1 && e.duration >= 8 * 40,
                "each telephone-event needs a marker on its first packet, an end packet and a \
                 length of at least 40 ms: {e:?}\n{context}"
            );
        }
        let tone_ms = dtmf_tone_ms(&g711_audio(&to_caller, Law::Ulaw), DIGITS);
        eprintln!("trunk dtmf: {mode} -> baresip: {tone_ms} ms of DTMF tone in its audio");
        assert!(
            inband.is_empty() && tone_ms == 0.0,
            "the digits must reach baresip once: as telephone-events, not also as tones in its \
             audio (in-band digits {inband:?}; {tone_ms} ms of DTMF tone)\n{seen}\n{context}"
        );
        assert_eq!(
            reported, DIGITS,
            "baresip itself must report the digits (CALL_DTMF_START)\n{seen}\n{context}"
        );
        check_drift(
            &to_caller,
            0,
            &format!("RTP to baresip from the `dtmf: {mode}` trunk"),
            &context,
        );
        s.finish(&format!("after the DTMF call from a `dtmf: {mode}` trunk"));
    }

    #[test]
    fn dtmf_from_rfc4733_trunk_reaches_caller_as_telephone_events() {
        dtmf_to_caller(
            "dtmf_from_rfc4733_trunk_reaches_caller_as_telephone_events",
            "rfc4733",
        );
    }

    /// The telephone-event payloads of one digit as SIPp's Debian package
    /// recorded them (`/usr/share/sip-tester/dtmf_2833_D.pcap`: 8 packets
    /// 20 ms apart, the duration starting at 0 and growing by 320 per packet,
    /// the end packet sent 3 times).
    fn recorded_event(d: char) -> Vec<Vec<u8>> {
        let name = match d {
            '*' => "star".to_string(),
            '#' => "pound".to_string(),
            d => d.to_string(),
        };
        require_tool("sipp");
        let path = PathBuf::from(format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap"));
        let pkts = pcap_rtp(&path).unwrap_or_else(|e| {
            panic!("cannot read SIPp's DTMF pcap (Debian package sip-tester; `make deps`): {e}")
        });
        let payloads: Vec<Vec<u8>> = pkts
            .iter()
            .filter_map(|b| parse_rtp(b))
            .map(|r| r.payload)
            .filter(|p| p.len() == 4)
            .collect();
        assert!(
            !payloads.is_empty() && payloads.iter().all(|p| event_digit(p[0]) == d),
            "{} must hold telephone-events of digit {d}",
            path.display()
        );
        payloads
    }

    #[test]
    fn dtmf_recorded_by_sipp_reaches_caller_as_telephone_events() {
        dtmf_to_caller(
            "dtmf_recorded_by_sipp_reaches_caller_as_telephone_events",
            "rfc4733-pcap",
        );
    }

    #[test]
    fn dtmf_from_inband_trunk_reaches_caller_as_telephone_events() {
        dtmf_to_caller(
            "dtmf_from_inband_trunk_reaches_caller_as_telephone_events",
            "inband",
        );
    }

    #[test]
    fn dtmf_from_info_trunk_reaches_caller_as_telephone_events() {
        dtmf_to_caller(
            "dtmf_from_info_trunk_reaches_caller_as_telephone_events",
            "info",
        );
    }

    // --------------------------------------------------------- ringback ---

    /// A ringback plan as the caller must hear it: its frequencies, the
    /// length of its first tone, the level of each frequency.
    struct RingbackWant {
        name: &'static str,
        freqs: &'static [f64],
        on_ms: u32,
        dbm0: f64,
        /// Analysis block: a whole number of cycles of each frequency (the
        /// Goertzel power is exact then, and the SNR meaningful).
        block_ms: u32,
    }

    /// `ringback: us`: 440+480 Hz at -19 dBm0, 2 s on, 4 s off.
    const US_RINGBACK: RingbackWant = RingbackWant {
        name: "US",
        freqs: &[440.0, 480.0],
        on_ms: 2000,
        dbm0: -19.0,
        block_ms: 50,
    };
    /// `ringback: eu`: 425 Hz at -19 dBm0, 1 s on, 4 s off.
    const EU_RINGBACK: RingbackWant = RingbackWant {
        name: "EU",
        freqs: &[425.0],
        on_ms: 1000,
        dbm0: -19.0,
        block_ms: 40,
    };

    /// The packets that reached the caller while the trunk rang (3 s, less
    /// than one cadence) hold the plan's first tone then silence, at the
    /// plan's level, one packet every 20 ms. Returns the report it printed.
    fn check_ringback(ringing: &[Datagram], law: Law, want: &RingbackWant, ctx: &str) -> String {
        let arrivals: Vec<Instant> = ringing.iter().map(|d| d.at).collect();
        let spacing = Spacing::of(&arrivals, 20.0);
        let drift = audio_drift_ms(ringing, law.pt(), 8000);
        let pcm = g711_audio(ringing, law);
        let blocks = tone_blocks(&pcm, want.block_ms, want.freqs);
        let on = |b: &ToneBlock| b.has_all(300.0, 20.0);
        let on_runs = runs(&blocks, on);
        let silent_runs = runs(&blocks, |b| b.rms() < 30.0);
        let on_blocks: Vec<&ToneBlock> = blocks.iter().filter(|b| on(b)).collect();
        let levels: Vec<f64> = (0..want.freqs.len())
            .map(|i| {
                median(
                    &on_blocks
                        .iter()
                        .map(|b| power_dbm0(b.powers[i]))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let snr = median(&on_blocks.iter().map(|b| b.snr_db()).collect::<Vec<_>>());
        let report = format!(
            "{} ringback at the caller: {} packets ({:.2} s of audio) before the answer; tone \
             runs ({} ms blocks: first, length) {on_runs:?}, silent runs {silent_runs:?}; \
             levels {:?} dBm0 at {:?} Hz, SNR {snr:.1} dB; timestamps vs arrivals: {drift:.1} \
             ms; spacing: {}",
            want.name,
            ringing.len(),
            pcm.len() as f64 / 8000.0,
            want.block_ms,
            levels
                .iter()
                .map(|l| (l * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            want.freqs,
            spacing.summary()
        );
        eprintln!("{report}");
        assert!(
            ringing.len() >= 120,
            "the caller must get ringback RTP for the 3 s the trunk rings (about 150 packets)\n\
             {report}\n{ctx}"
        );
        let on_blocks_want = (want.on_ms / want.block_ms) as usize;
        assert!(
            on_runs.len() == 1 && on_runs[0].0 <= 2 && on_runs[0].1.abs_diff(on_blocks_want) <= 2,
            "{} ringback starts with {} ms of {:?} Hz ({on_blocks_want} +-2 blocks of {} ms, \
             from the first packet), once in 3 s\n{report}\n{ctx}",
            want.name,
            want.on_ms,
            want.freqs,
            want.block_ms
        );
        let after_on = on_runs[0].0 + on_runs[0].1;
        assert!(
            blocks.len() > after_on + 10
                && blocks[after_on + 1..blocks.len() - 1]
                    .iter()
                    .all(|b| b.rms() < 30.0),
            "after its first tone, {} ringback is silent (4 s off) until the answer\n\
             {report}\n{ctx}",
            want.name
        );
        assert!(
            levels.iter().all(|l| (l - want.dbm0).abs() <= 1.5) && snr >= 25.0,
            "each ringback frequency must be at {} dBm0 (+-1.5 dB), 25 dB over the rest\n\
             {report}\n{ctx}",
            want.dbm0
        );
        assert!(
            (spacing.mean_ms - 20.0).abs() <= 1.0
                && spacing.p99_ms <= 30.0
                && spacing.bunched == 0
                && spacing.max_slot_error_ms <= 15.0,
            "ringback packets must leave 20 ms apart (mean 20 +-1 ms, 99th percentile <= 30 ms, \
             none bunched under 5 ms, none more than 15 ms off its slot)\n{report}\n{ctx}"
        );
        assert!(
            drift.abs() <= 20.0,
            "the ringback's RTP timestamps must keep pace with real time (within 20 ms over \
             3 s)\n{report}\n{ctx}"
        );
        report
    }

    /// Route `ringback: us`; the trunk rings 3 s without SDP. The caller
    /// (SIPp, its RTP port a silent socket of the test) must get a 183 with
    /// SDP and, 20 ms apart, 2 s of 440+480 Hz at -19 dBm0 then silence,
    /// then the trunk's audio in the same stream.
    #[test]
    fn us_ringback_plays_to_the_caller_until_the_trunk_answers() {
        let _serial = serial();
        let Some(mut s) = setup(
            "us_ringback_plays_to_the_caller_until_the_trunk_answers",
            &[("client-to-carriers", "ringback: us")],
        ) else {
            return;
        };
        let caller_rtp = RtpEndpoint::bind(s.net.port(CALLER_RTP));
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let uas = s.trunk("media_uas_ringback.xml", trunk_rtp.port, "0 101");
        let spare = s.net.port(SIPP_UAC_MP);
        assert_ports_free(&[spare, spare + 2], &[]);
        let uac = Sipp::uac("uac", &s.work, &s.net.gateway())
            .local_port(s.net.uac())
            .scenario("media_uac_ringback.xml")
            .calls(1)
            .rate(1)
            .timeout(Duration::from_secs(30))
            .trace_msg()
            .arg("-mp")
            .arg(&spare.to_string())
            .arg("-set")
            .arg("mport")
            .arg(&caller_rtp.port.to_string())
            .spawn();
        // when the trunk answers, it talks (its tone, 1.5 s) to the relay
        let mut answered_at = None;
        let mut call = serde_json::Value::Null;
        wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
            if let Ok(c) = s.gw.calls()
                && let Some(c) = c.into_iter().next()
                && !c["answered"].is_null()
            {
                call = c;
                answered_at = Some(Instant::now());
            }
            answered_at.is_some()
        });
        let relay_b = call["legs"][1]["media_port"].as_u64().map(|p| p as u16);
        let play_at = Instant::now();
        if let Some(relay_b) = relay_b {
            let mut w = StreamWriter::new(0x7e57_0004);
            w.audio_for(Law::Ulaw, 1.5, |n| {
                tones_at(&[(f64::from(CALLER_TONE_HZ), dbm0_amplitude(-10.0))], n)
            });
            trunk_rtp.play(relay_b, w.script);
        }
        let uac = uac.wait(Duration::from_secs(30));
        let uas = uas.wait(Duration::from_secs(10));
        let at_caller = caller_rtp.stop();
        dump_datagrams(&s.work.join("rtp_to_caller.txt"), &at_caller);
        let _ = trunk_rtp.stop();
        s.gw.assert_alive("during the ringback call");
        let context = format!(
            "dial plan: {}\n{}\n{}\n/calls at the answer: {call}\n--- callgate log (tail) ---\n{}",
            s.plan.path.display(),
            uac.summary(),
            uas.summary(),
            s.gw.log_tail(3000)
        );
        uac.assert_all_successful(
            1,
            &format!("the caller expecting a 183 with SDP, then the 200\n{context}"),
        );
        uas.assert_all_successful(1, &format!("the trunk ringing 3 s\n{context}"));
        assert!(
            answered_at.is_some() && relay_b.is_some(),
            "/calls must show the call answered, with the trunk leg's media port\n{context}"
        );

        // the 183 the caller got: SDP on the relay
        let p183 = uac
            .traced()
            .into_iter()
            .find(|m| m.received && status_code(&m.text) == Some(183))
            .map(|m| m.text)
            .unwrap_or_default();
        let sdp = sdp_body(&p183).unwrap_or_else(|| {
            panic!("the caller must get a 183 with SDP, got:\n{p183}\n{context}")
        });
        assert_sdp_anchored(
            sdp,
            LOOPBACK,
            s.plan.media,
            "the 183 to the caller",
            &context,
        );
        let relay_a = sdp_audio_endpoint(sdp).map(|e| e.1).unwrap_or_default();

        // what reached the caller's socket: all from the 183's port, PCMU
        let pts = pt_counts(&at_caller);
        assert!(
            at_caller.iter().all(|d| d.src_port == relay_a) && pts.len() == 1 && pts[0].0 == 0,
            "the caller must receive PCMU only, from the port of the 183's SDP (:{relay_a}); \
             payload types {pts:?}, sources {:?}\n{context}",
            at_caller
                .iter()
                .map(|d| d.src_port)
                .collect::<std::collections::BTreeSet<_>>()
        );
        let ringing: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| d.at < play_at)
            .cloned()
            .collect();
        let talking: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| d.at >= play_at)
            .cloned()
            .collect();

        check_ringback(&ringing, Law::Ulaw, &US_RINGBACK, &context);

        // the trunk's audio follows in the same stream
        let heard = analyse_tone(
            &wav8k(g711_audio(&talking, Law::Ulaw)),
            f64::from(CALLER_TONE_HZ),
        );
        assert!(
            heard.passes(1.0),
            "after the answer the caller must hear the trunk ({CALLER_TONE_HZ} Hz): {}\n{context}",
            heard.summary()
        );
        let all: Vec<Rtp> = at_caller.iter().filter_map(Datagram::rtp).collect();
        let ssrcs: std::collections::BTreeSet<u32> = all.iter().map(|r| r.ssrc).collect();
        let seq_breaks = all
            .windows(2)
            .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
            .count();
        assert!(
            ssrcs.len() == 1 && seq_breaks == 0,
            "ringback and the trunk's audio must reach the caller as one stream (one SSRC, \
             consecutive sequence numbers): SSRCs {ssrcs:x?}, {seq_breaks} sequence breaks in \
             {} packets\n{context}",
            all.len()
        );
        s.finish("after the ringback call");
    }

    /// Route `ringback: eu`, a baresip caller (it sends its own audio all
    /// along, as phones do with early media): the same 183 and ringback
    /// (425 Hz at -19 dBm0, 1 s on), seen on the wire to baresip, while
    /// baresip's own packets keep arriving at the relay.
    #[test]
    fn eu_ringback_reaches_a_baresip_caller_that_talks_over_it() {
        let _serial = serial();
        let Some(mut s) = setup(
            "eu_ringback_reaches_a_baresip_caller_that_talks_over_it",
            &[("client-to-carriers", "ringback: eu")],
        ) else {
            return;
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let uas = s.trunk("media_uas_ringback.xml", trunk_rtp.port, "0 101");
        let wire = WireCapture::start(&s.caller_rtp_ports());
        let mut a = s.caller(&BaresipCodecs::pcmu_only());
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let mut answered = false;
        let mut call = serde_json::Value::Null;
        wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
            if let Ok(c) = s.gw.calls()
                && let Some(c) = c.into_iter().next()
                && !c["answered"].is_null()
            {
                call = c;
                answered = true;
            }
            answered
        });
        let play_at = Instant::now();
        let relay_b = call["legs"][1]["media_port"].as_u64().map(|p| p as u16);
        if let Some(relay_b) = relay_b {
            let mut w = StreamWriter::new(0x7e57_0005);
            trunk_tone(&mut w, Law::Ulaw, 1.5);
            trunk_rtp.play(relay_b, w.script);
        }
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(5));
        trunk_rtp.wait_played(Duration::from_secs(5));
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_caller = wire.stop();
        let _ = trunk_rtp.stop();
        dump_datagrams(&s.work.join("rtp_at_caller.txt"), &at_caller);
        s.gw.assert_alive("during the ringback call");
        let context = format!(
            "dial plan: {}\n{}\n{}\n/calls at the answer: {call}\n--- callgate log (tail) ---\n{}",
            s.plan.path.display(),
            a.summary(),
            uas.summary(),
            s.gw.log_tail(3000)
        );
        a.stop();
        assert!(
            answered && relay_b.is_some() && up.is_some() && closed.is_some(),
            "the call must ring, be answered after 3 s and end (answered: {answered}, \
             established: {}, closed: {})\n{context}",
            up.is_some(),
            closed.is_some()
        );
        uas.assert_all_successful(1, &format!("the trunk ringing 3 s\n{context}"));
        assert!(
            a.event_types().iter().any(|t| t == "CALL_PROGRESS"),
            "baresip must see the call progress with early media (the 183 with SDP)\n{context}"
        );
        let from_caller = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.dst_port) && d.at < play_at)
            .count();
        let ringing: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.src_port) && d.at < play_at)
            .cloned()
            .collect();
        let talking: Vec<Datagram> = at_caller
            .iter()
            .filter(|d| s.in_media_range(d.src_port) && d.at >= play_at)
            .cloned()
            .collect();
        eprintln!("baresip sent {from_caller} packets to the relay while it rang");
        check_ringback(&ringing, Law::Ulaw, &EU_RINGBACK, &context);
        let heard = analyse_tone(&wav8k(g711_audio(&talking, Law::Ulaw)), TRUNK_TONE_HZ);
        assert!(
            heard.passes(1.0),
            "after the answer baresip must get the trunk's audio ({TRUNK_TONE_HZ} Hz): {}\n\
             {context}",
            heard.summary()
        );
        s.finish("after the ringback call to baresip");
    }
}
