//! SDES-SRTP termination with real peers, through `dialplans/loopback.yaml`
//! (B2BUA, media anchored on 127.0.0.1:20000–20999):
//!
//! * baresip with `mediaenc=srtp-mand` (RTP/SAVP, a=crypto, module `srtp`)
//!   sending a 1000 Hz sine calls carrier-a, a plain-RTP trunk (SIPp
//!   `media_uas.xml` answering PCMU, its media a UDP socket of the test).
//!   The trunk must be offered RTP/AVP without keys and receive plain PCMU
//!   carrying the tone; the 440 Hz PCMU the trunk sends must reach baresip
//!   encrypted on the wire (SRTP: the payload is not G.711 of the tone and
//!   carries baresip's tag length) and be heard by baresip, which only
//!   decrypts with the key of callgate's answer;
//! * the same with Opus only toward a PCMA-only trunk: SRTP terminated and
//!   the audio transcoded both ways;
//! * a plain carrier (SIPp `media_uac.xml`, PCMU on a socket of the test)
//!   calls the platform trunk marked `srtp: true`, where baresip with
//!   `mediaenc=srtp-mand` answers: callgate offers it RTP/SAVP with its own
//!   key, the carrier gets RTP/AVP without keys, and each hears the other's
//!   tone;
//! * baresip with `mediaenc=dtls_srtp` (UDP/TLS/RTP/SAVP, a=fingerprint)
//!   is refused with 488 and no trunk is tried.
//!
//! Run them alone: `cargo test --release --test peers_srtp -- --test-threads=1`
//! (root: the raw-socket capture). `CALLGATE_PEERS_PORT_OFFSET` moves them to
//! other ports (see `tests/support/net.rs`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::audio::{Wav, analyse_tone, analyse_tone_with, read_wav};
    use super::support::baresip::{Baresip, BaresipCodecs, BaresipConf};
    use super::support::media::*;
    use super::support::net::*;
    use super::support::*;
    use std::fs;
    use std::thread;
    use std::time::Duration;

    /// The trunk's RTP port in its answer: a socket of the test.
    const TRUNK_RTP: u16 = 6300;
    /// SIPp trunk's own media port (unused: the answer names TRUNK_RTP).
    const SIPP_UAS_MP: u16 = 6320;
    /// The SIPp carrier's RTP port in its offer: a socket of the test.
    const CARRIER_RTP: u16 = 6400;
    /// SIPp carrier's own media port (unused).
    const SIPP_UAC_MP: u16 = 6420;
    const CALLER_TONE_HZ: u32 = 1000;
    const TRUNK_TONE_HZ: f64 = 440.0;
    const CLEANUP: Duration = Duration::from_secs(10);

    /// [`media_setup`] naming what these tests skip without a B2BUA route.
    fn setup(test: &str, options: &[(&str, &str)]) -> Option<Setup> {
        media_setup(test, options, "SRTP termination")
    }

    impl Setup {
        fn caller(&self, codecs: &BaresipCodecs) -> Baresip {
            self.baresip_a(codecs, CALLER_TONE_HZ)
        }

        fn ctx(&self, a: &Baresip) -> String {
            format!(
                "dial plan: {}\n{}\n--- callgate log (tail) ---\n{}",
                self.plan.path.display(),
                a.summary(),
                self.gw.log_tail(3000)
            )
        }
    }

    fn wav8k(samples: Vec<i16>) -> Wav {
        Wav {
            rate: 8000,
            channels: 1,
            samples,
        }
    }

    /// The first SDP body a SIPp received in an INVITE.
    fn invite_sdp(o: &SippOutcome) -> String {
        o.traced()
            .into_iter()
            .find(|m| m.received && m.text.starts_with("INVITE "))
            .and_then(|m| m.text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn srtp_caller_and_plain_trunk_hear_each_other() {
        const TALK: Duration = Duration::from_secs(5);
        let _serial = serial();
        let Some(mut s) = setup("srtp_caller_and_plain_trunk_hear_each_other", &[]) else {
            return;
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        // RTCP to the trunk goes to its RTP port + 1 (no rtcp-mux).
        let trunk_rtcp = RtpEndpoint::bind(s.net.port(TRUNK_RTP) + 1);
        let spare = s.net.port(SIPP_UAS_MP);
        assert_ports_free(&[spare, spare + 2], &[]);
        let uas = Sipp::uas("carrier_a", &s.work, s.net.carrier_a())
            .scenario("media_uas.xml")
            .calls(1)
            .trace_msg()
            .arg("-mp")
            .arg(&spare.to_string())
            .arg("-set")
            .arg("mport")
            .arg(&trunk_rtp.port.to_string())
            .arg("-set")
            .arg("pts")
            .arg("0")
            .spawn();
        let caller_ports: Vec<u16> =
            (s.net.port(BARESIP_A_RTP.0)..=s.net.port(BARESIP_A_RTP.1)).collect();
        let wire = WireCapture::start(&caller_ports);
        let mut a = s.caller(&BaresipCodecs::pcmu_only().with_mediaenc("srtp-mand"));
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        assert!(
            up.is_some(),
            "baresip (srtp-mand) must get its call to the plain trunk established within 10 s\n{}",
            s.ctx(&a)
        );
        let relay_b = s.first_relay_port(&trunk_rtp, &|| s.ctx(&a));
        let mut w = StreamWriter::new(0x5e_c0de);
        let amp = dbm0_amplitude(-10.0);
        w.audio_for(Law::Ulaw, TALK.as_secs_f64(), |n| {
            tones_at(&[(TRUNK_TONE_HZ, amp)], n)
        });
        trunk_rtp.play(relay_b, w.script);
        thread::sleep(TALK);
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_trunk = trunk_rtp.stop();
        let rtcp_at_trunk = trunk_rtcp.stop();
        let at_caller = wire.stop();
        dump_datagrams(&s.work.join("rtp_to_trunk.txt"), &at_trunk);
        dump_datagrams(&s.work.join("rtp_at_caller.txt"), &at_caller);
        s.gw.assert_alive("during the SRTP call");
        let context = format!("{}\n{}", s.ctx(&a), uas.summary());
        a.stop();
        assert!(closed.is_some(), "the hang-up must end the call\n{context}");
        uas.assert_all_successful(1, &format!("the plain trunk's call\n{context}"));

        // The trunk's leg: offered plain RTP, no key.
        let offer_b = invite_sdp(&uas);
        assert!(
            offer_b.contains("RTP/AVP") && !offer_b.contains("SAVP") && !offer_b.contains("crypto"),
            "the plain trunk must be offered RTP/AVP without a=crypto:\n{offer_b}\n{context}"
        );

        // Trunk side: plain PCMU (no tag: 160-byte payloads) with the tone.
        let pcmu = rtp_with_pt(&at_trunk, 0);
        assert!(
            pcmu.len() >= 200 && pcmu.iter().all(|(_, p)| p.payload.len() == 160),
            "the trunk must receive plain PCMU, 160-byte payloads, about 50 a second: {} \
             packets, payload lengths {:?}\n{context}",
            pcmu.len(),
            pcmu.iter()
                .map(|(_, p)| p.payload.len())
                .take(5)
                .collect::<Vec<_>>()
        );
        let heard = analyse_tone(&wav8k(g711_audio(&at_trunk, Law::Ulaw)), 1000.0);
        eprintln!("at the plain trunk (SRTP decrypted): {}", heard.summary());
        assert!(
            heard.passes(3.0),
            "the trunk must hear baresip's {CALLER_TONE_HZ} Hz tone, decrypted, for at least \
             3 s: {}\n{context}",
            heard.summary()
        );

        // baresip's SRTCP reaches the trunk as plain RTCP: a compound whose
        // length fields add up to the datagram (E flag, index and tag gone),
        // starting with a sender or receiver report (RFC 3550 §6.1).
        // (baresip 1.0 also sends an APP "PING" alone, in the clear before
        // SRTP starts and then as SRTCP, and its final BYE in the clear:
        // none is a valid SRTCP compound to relay, so the SR is what comes.)
        let compound_ok = |b: &[u8]| {
            let mut off = 0;
            while off + 4 <= b.len() && b[off] >> 6 == 2 {
                off += (usize::from(u16::from_be_bytes([b[off + 2], b[off + 3]])) + 1) * 4;
            }
            off == b.len() && b.len() >= 8 && matches!(b[1], 200 | 201)
        };
        assert!(
            !rtcp_at_trunk.is_empty() && rtcp_at_trunk.iter().all(|d| compound_ok(&d.bytes)),
            "baresip's SRTCP must reach the trunk's RTCP port decrypted, as valid RTCP: {:?}\n\
             {context}",
            rtcp_at_trunk
                .iter()
                .map(|d| d.bytes.len())
                .collect::<Vec<_>>()
        );
        eprintln!(
            "RTCP at the trunk (from baresip's SRTCP): {} packets, sizes {:?}",
            rtcp_at_trunk.len(),
            rtcp_at_trunk
                .iter()
                .map(|d| d.bytes.len())
                .collect::<Vec<_>>()
        );

        // The caller's wire: SRTP both ways, same tag length.
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
        let lens = |d: &[Datagram]| -> Vec<usize> {
            let mut v: Vec<usize> = rtp_with_pt(d, 0)
                .iter()
                .map(|(_, p)| p.payload.len())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (mine, theirs) = (lens(&to_caller), lens(&from_caller));
        assert!(
            theirs.len() == 1 && (theirs[0] == 164 || theirs[0] == 170),
            "baresip must send SRTP: 160 bytes of PCMU plus a 32- or 80-bit tag, got payload \
             lengths {theirs:?}\n{context}"
        );
        assert!(
            rtp_with_pt(&to_caller, 0).len() >= 200 && mine == theirs,
            "the relay must send baresip SRTP with the suite it chose (payload lengths {theirs:?}), \
             got {mine:?} in {} packets\n{context}",
            rtp_with_pt(&to_caller, 0).len()
        );
        let on_wire = analyse_tone(&wav8k(g711_audio(&to_caller, Law::Ulaw)), TRUNK_TONE_HZ);
        eprintln!(
            "on baresip's wire, read as plain PCMU: {}",
            on_wire.summary()
        );
        assert!(
            on_wire.tone_seconds() < 0.5,
            "the trunk's tone must not be readable on baresip's wire (encrypted): {}\n{context}",
            on_wire.summary()
        );

        // baresip decrypted it with the key of our answer and heard it.
        let rec = a.received_recordings();
        assert_eq!(
            rec.len(),
            1,
            "baresip must have recorded the call\n{context}"
        );
        let wav = read_wav(&rec[0])
            .unwrap_or_else(|e| panic!("cannot read baresip's recording: {e}\n{context}"));
        let at_a = analyse_tone(&wav, TRUNK_TONE_HZ);
        eprintln!("at baresip (SRTP from callgate): {}", at_a.summary());
        assert!(
            at_a.passes(3.0),
            "baresip must hear the trunk's {TRUNK_TONE_HZ} Hz tone through SRTP for at least \
             3 s: {}\n{context}",
            at_a.summary()
        );
        assert_gateway_clean(&mut s.gw, &s.plan, CLEANUP, "after the SRTP call");
        s.gw.stop(Duration::from_secs(10));
    }

    /// baresip with Opus only and SRTP toward a PCMA-only trunk: SRTP
    /// terminated and the audio transcoded, both ways.
    #[test]
    fn opus_srtp_caller_and_pcma_trunk_hear_each_other() {
        let _serial = serial();
        let Some(mut s) = setup(
            "opus_srtp_caller_and_pcma_trunk_hear_each_other",
            &[("carrier-a", "codecs: [PCMA]")],
        ) else {
            return;
        };
        let mut trunk_rtp = RtpEndpoint::bind(s.net.port(TRUNK_RTP));
        let spare = s.net.port(SIPP_UAS_MP);
        assert_ports_free(&[spare, spare + 2], &[]);
        let uas = Sipp::uas("carrier_a", &s.work, s.net.carrier_a())
            .scenario("media_uas.xml")
            .calls(1)
            .trace_msg()
            .arg("-mp")
            .arg(&spare.to_string())
            .arg("-set")
            .arg("mport")
            .arg(&trunk_rtp.port.to_string())
            .arg("-set")
            .arg("pts")
            .arg("8")
            .spawn();
        let mut a = s.caller(&BaresipCodecs::opus_only().with_mediaenc("srtp-mand"));
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let up = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        assert!(
            up.is_some(),
            "the Opus SRTP call must be established\n{}",
            s.ctx(&a)
        );
        let relay_b = s.first_relay_port(&trunk_rtp, &|| s.ctx(&a));
        let mut w = StreamWriter::new(0x0905_0001);
        let amp = dbm0_amplitude(-10.0);
        w.audio_for(Law::Alaw, 5.0, |n| tones_at(&[(TRUNK_TONE_HZ, amp)], n));
        trunk_rtp.play(relay_b, w.script);
        thread::sleep(Duration::from_secs(5));
        a.hangup();
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let uas = uas.wait(Duration::from_secs(10));
        let at_trunk = trunk_rtp.stop();
        dump_datagrams(&s.work.join("rtp_to_trunk.txt"), &at_trunk);
        s.gw.assert_alive("during the Opus SRTP call");
        let context = format!("{}\n{}", s.ctx(&a), uas.summary());
        a.stop();
        assert!(closed.is_some(), "the hang-up must end the call\n{context}");
        uas.assert_all_successful(1, &format!("the PCMA trunk's call\n{context}"));
        let log = fs::read_to_string(a.peer.log_path()).unwrap_or_default();
        assert!(
            log.contains("SRTP is Enabled"),
            "baresip must run SRTP\n{context}"
        );
        let heard = analyse_tone(&wav8k(g711_audio(&at_trunk, Law::Alaw)), 1000.0);
        eprintln!("at the PCMA trunk (SRTP Opus -> PCMA): {}", heard.summary());
        assert!(
            heard.passes(3.0),
            "the trunk must hear baresip's tone, decrypted and transcoded: {}\n{context}",
            heard.summary()
        );
        let rec = a.received_recordings();
        assert_eq!(
            rec.len(),
            1,
            "baresip must have recorded the call\n{context}"
        );
        let wav = read_wav(&rec[0])
            .unwrap_or_else(|e| panic!("cannot read baresip's recording: {e}\n{context}"));
        // callgate's Opus encoder keeps a pure tone about 21 dB over its
        // coding noise (see tests/peers_media.rs).
        let at_a = analyse_tone_with(&wav, TRUNK_TONE_HZ, 12.0);
        eprintln!("at baresip (PCMA -> Opus over SRTP): {}", at_a.summary());
        assert!(
            at_a.passes(3.0) && at_a.median_snr_db >= 15.0,
            "baresip must hear the trunk's tone as Opus through SRTP: {}\n{context}",
            at_a.summary()
        );
        assert_gateway_clean(&mut s.gw, &s.plan, CLEANUP, "after the Opus SRTP call");
        s.gw.stop(Duration::from_secs(10));
    }

    /// The first SDP body of a 200 a SIPp received.
    fn ok_sdp(o: &SippOutcome) -> String {
        o.traced()
            .into_iter()
            .find(|m| m.received && m.text.starts_with("SIP/2.0 200") && m.text.contains("m=audio"))
            .and_then(|m| m.text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn plain_carrier_and_srtp_platform_hear_each_other() {
        let _serial = serial();
        let Some(mut s) = setup(
            "plain_carrier_and_srtp_platform_hear_each_other",
            &[("platform", "srtp: true")],
        ) else {
            return;
        };
        let mut carrier_rtp = RtpEndpoint::bind(s.net.port(CARRIER_RTP));
        let mut b = Baresip::start_with(
            &s.work,
            BaresipConf {
                name: "baresip_b".into(),
                user: "b".into(),
                sip_port: s.net.port(5066),
                ctrl_port: s.net.port(BARESIP_B_CTRL_PORT),
                rtp_ports: (s.net.port(BARESIP_B_RTP.0), s.net.port(BARESIP_B_RTP.1)),
                tone_hz: CALLER_TONE_HZ,
            },
            &BaresipCodecs::pcmu_only().with_mediaenc("srtp-mand"),
        );
        let spare = s.net.port(SIPP_UAC_MP);
        assert_ports_free(&[spare, spare + 2], &[]);
        let uac = Sipp::uac("carrier", &s.work, &s.net.addr(5080))
            .local_port(s.net.uac())
            .scenario("media_uac.xml")
            .calls(1)
            .rate(1)
            .timeout(Duration::from_secs(30))
            .trace_msg()
            .arg("-s")
            .arg("b")
            .arg("-mp")
            .arg(&spare.to_string())
            .arg("-set")
            .arg("mport")
            .arg(&carrier_rtp.port.to_string())
            .spawn();
        let up = b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        assert!(
            up.is_some(),
            "baresip (srtp-mand) must take callgate's SDES offer within 10 s\n{}",
            s.ctx(&b)
        );
        let relay_a = s.first_relay_port(&carrier_rtp, &|| s.ctx(&b));
        let mut w = StreamWriter::new(0xca_11e4);
        let amp = dbm0_amplitude(-10.0);
        w.audio_for(Law::Ulaw, 4.0, |n| tones_at(&[(TRUNK_TONE_HZ, amp)], n));
        carrier_rtp.play(relay_a, w.script);
        let uac = uac.wait(Duration::from_secs(20));
        let closed = b.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let at_carrier = carrier_rtp.stop();
        dump_datagrams(&s.work.join("rtp_at_carrier.txt"), &at_carrier);
        s.gw.assert_alive("during the call to the SRTP platform");
        let context = format!("{}\n{}", s.ctx(&b), uac.summary());
        b.stop();
        uac.assert_all_successful(1, &format!("the carrier's call\n{context}"));
        assert!(
            closed.is_some(),
            "the carrier's BYE must end baresip's call\n{context}"
        );
        let log = fs::read_to_string(b.peer.log_path()).unwrap_or_default();
        assert!(
            log.contains("SRTP is Enabled"),
            "baresip must run SRTP on the call\n{context}"
        );
        let answer = ok_sdp(&uac);
        assert!(
            answer.contains("RTP/AVP") && !answer.contains("SAVP") && !answer.contains("crypto"),
            "the plain carrier must be answered RTP/AVP without a=crypto:\n{answer}\n{context}"
        );
        let pcmu = rtp_with_pt(&at_carrier, 0);
        assert!(
            pcmu.len() >= 150 && pcmu.iter().all(|(_, p)| p.payload.len() == 160),
            "the carrier must receive plain PCMU (160-byte payloads): {} packets\n{context}",
            pcmu.len()
        );
        let heard = analyse_tone(&wav8k(g711_audio(&at_carrier, Law::Ulaw)), 1000.0);
        eprintln!(
            "at the plain carrier (platform's SRTP decrypted): {}",
            heard.summary()
        );
        assert!(
            heard.passes(3.0),
            "the carrier must hear the platform's {CALLER_TONE_HZ} Hz tone for at least 3 s: \
             {}\n{context}",
            heard.summary()
        );
        let rec = b.received_recordings();
        assert_eq!(
            rec.len(),
            1,
            "baresip must have recorded the call\n{context}"
        );
        let wav = read_wav(&rec[0])
            .unwrap_or_else(|e| panic!("cannot read baresip's recording: {e}\n{context}"));
        let at_b = analyse_tone(&wav, TRUNK_TONE_HZ);
        eprintln!(
            "at the SRTP platform (carrier's PCMU encrypted): {}",
            at_b.summary()
        );
        assert!(
            at_b.passes(3.0),
            "the platform must hear the carrier's {TRUNK_TONE_HZ} Hz tone through SRTP for at \
             least 3 s: {}\n{context}",
            at_b.summary()
        );
        assert_gateway_clean(
            &mut s.gw,
            &s.plan,
            CLEANUP,
            "after the call to the platform",
        );
        s.gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn dtls_srtp_caller_is_refused_with_488() {
        let _serial = serial();
        let Some(mut s) = setup("dtls_srtp_caller_is_refused_with_488", &[]) else {
            return;
        };
        // No trunk runs: an attempt would time out instead of a 488.
        let mut a = s.caller(&BaresipCodecs::pcmu_only().with_mediaenc("dtls_srtp"));
        a.dial(&format!("sip:b@{}", s.net.gateway()));
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let ctx = s.ctx(&a);
        a.stop();
        let closed = closed.unwrap_or_else(|| {
            panic!("the DTLS-SRTP call must be refused at once (CALL_CLOSED)\n{ctx}")
        });
        assert!(
            closed.to_string().contains("488"),
            "baresip must be told 488 Not Acceptable Here: {closed}\n{ctx}"
        );
        assert!(
            !a.event_types().iter().any(|t| t == "CALL_ESTABLISHED"),
            "{ctx}"
        );
        assert_gateway_clean(&mut s.gw, &s.plan, CLEANUP, "after the refused call");
        s.gw.stop(Duration::from_secs(10));
    }
}
