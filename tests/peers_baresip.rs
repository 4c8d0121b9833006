//! Real audio through the gateway: baresip A (the caller, 127.0.0.1:5100)
//! -> callgate :5060 (`dialplans/loopback.yaml`: B2BUA, media anchored on
//! 127.0.0.1:20000–20999) -> baresip B on carrier-a's address :5070.
//!
//! Both UAs are Debian's baresip, headless: each sends a sine from the
//! `ausine` module (A 1000 Hz, B 440 Hz) and records what it receives with
//! `sndfile`; B answers automatically; the test drives them through their
//! `ctrl_tcp` control ports (see `tests/support/baresip.rs`). A test passes
//! only if each side's recording holds the other side's tone (Goertzel
//! detector, `tests/support/audio.rs`: at least 2 s of tone, 20 dB over
//! everything else, so silence, noise or the UA's own tone fail), both UAs
//! saw the call established and closed, their RTP came from the relay's
//! ports, and afterwards `GET /calls` is `[]` and no media port is bound.
//!
//! Run them alone: `cargo test --release --test peers_baresip -- --test-threads=1`.
//! `CALLGATE_PEERS_PORT_OFFSET` / `CALLGATE_PEERS_DIALPLAN` move them to
//! other ports or another plan (see `tests/support/net.rs`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::audio::assert_tone;
    use super::support::baresip::{Baresip, BaresipConf};
    use super::support::net::*;
    use super::support::*;
    use std::thread;
    use std::time::Duration;

    const TONE_A_HZ: u32 = 1000;
    const TONE_B_HZ: u32 = 440;
    /// How long the call carries audio before it is hung up.
    const TALK: Duration = Duration::from_secs(4);
    /// Tone each recording must hold (of the ~4 s talked).
    const MIN_TONE_SECS: f64 = 2.0;
    const CLEANUP: Duration = Duration::from_secs(10);

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum HangUp {
        Caller,
        Callee,
    }

    fn tone_call(test: &str, hang_up: HangUp) {
        let _serial = serial();
        let net = Net::from_env();
        let work = work_dir(test);
        let plan = test_plan(&net, &work, None);
        let mut gw = start_gateway_net(&plan, &work, &net);

        let mut b = Baresip::start(
            &work,
            BaresipConf {
                name: "baresip_b".into(),
                user: "b".into(),
                sip_port: net.carrier_a(),
                ctrl_port: net.port(BARESIP_B_CTRL_PORT),
                rtp_ports: (net.port(BARESIP_B_RTP.0), net.port(BARESIP_B_RTP.1)),
                tone_hz: TONE_B_HZ,
            },
        );
        let mut a = Baresip::start(
            &work,
            BaresipConf {
                name: "baresip_a".into(),
                user: "a".into(),
                sip_port: net.port(BARESIP_A_SIP_PORT),
                ctrl_port: net.port(BARESIP_A_CTRL_PORT),
                rtp_ports: (net.port(BARESIP_A_RTP.0), net.port(BARESIP_A_RTP.1)),
                tone_hz: TONE_A_HZ,
            },
        );
        let ctx = |a: &Baresip, b: &Baresip, gw: &Gateway| {
            format!(
                "dial plan: {}\n{}\n{}\n--- callgate log (tail) ---\n{}",
                plan.path.display(),
                a.summary(),
                b.summary(),
                gw.log_tail(3000)
            )
        };

        a.dial(&format!("sip:b@{}", net.gateway()));
        let up_a = a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
        let up_b = b.wait_event("CALL_ESTABLISHED", Duration::from_secs(2));
        assert!(
            up_a.is_some() && up_b.is_some(),
            "the call from A to B through the gateway must be established on both sides \
             within 10 s\n{}",
            ctx(&a, &b, &gw)
        );
        thread::sleep(TALK);
        let (rtp_at_a, rtp_at_b) = (a.rtp_source(), b.rtp_source());

        match hang_up {
            HangUp::Caller => a.hangup(),
            HangUp::Callee => b.hangup(),
        }
        let closed_a = a.wait_event("CALL_CLOSED", Duration::from_secs(10));
        let closed_b = b.wait_event("CALL_CLOSED", Duration::from_secs(2));
        gw.assert_alive("during the baresip call");
        let context = ctx(&a, &b, &gw);
        a.stop();
        b.stop();
        assert!(
            closed_a.is_some() && closed_b.is_some(),
            "the hang-up must end the call on both sides within 10 s\n{context}"
        );

        let rec_b = b.received_recordings();
        let rec_a = a.received_recordings();
        assert!(
            rec_a.len() == 1 && rec_b.len() == 1,
            "each baresip must have recorded exactly one call (A: {rec_a:?}, B: {rec_b:?})\n\
             {context}"
        );
        let at_b = assert_tone(
            &rec_b[0],
            f64::from(TONE_A_HZ),
            MIN_TONE_SECS,
            &format!("B must hear A's {TONE_A_HZ} Hz tone\n{context}"),
        );
        let at_a = assert_tone(
            &rec_a[0],
            f64::from(TONE_B_HZ),
            MIN_TONE_SECS,
            &format!("A must hear B's {TONE_B_HZ} Hz tone\n{context}"),
        );
        eprintln!(
            "recorded at B: {}\nrecorded at A: {}",
            at_b.summary(),
            at_a.summary()
        );

        if plan.b2bua {
            let (lo, hi) = plan.media;
            let from_relay = |src: &Option<String>| {
                src.as_deref()
                    .and_then(|s| s.rsplit_once(':'))
                    .is_some_and(|(ip, p)| {
                        ip == LOOPBACK && p.parse::<u16>().is_ok_and(|p| (lo..=hi).contains(&p))
                    })
            };
            assert!(
                from_relay(&rtp_at_a) && from_relay(&rtp_at_b),
                "with media anchored both UAs must receive RTP from the relay \
                 ({LOOPBACK}, ports {lo}-{hi}); A got it from {rtp_at_a:?}, B from {rtp_at_b:?}\n\
                 {context}"
            );
        } else {
            plan.note_skipped("RTP comes from the relay's ports");
        }
        assert_gateway_clean(&mut gw, &plan, CLEANUP, "after the baresip call");
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn tones_cross_both_ways_and_caller_hangs_up() {
        tone_call("tones_cross_both_ways_and_caller_hangs_up", HangUp::Caller);
    }

    #[test]
    fn tones_cross_both_ways_and_callee_hangs_up() {
        tone_call("tones_cross_both_ways_and_callee_hangs_up", HangUp::Callee);
    }
}
