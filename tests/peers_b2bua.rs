//! The B2BUA with real SIPp peers on 127.0.0.1, through
//! `dialplans/loopback.yaml` (B2BUA, media anchored on 127.0.0.1:20000–20999):
//! a SIPp caller -> callgate :5060 -> SIPp trunks carrier-a :5070 and
//! carrier-b :5072 (failover order a, b). Scenarios: `sip-fixtures/sipp/`
//! (the `b2bua_*.xml` ones were written for these tests; the others are
//! shared with the proxy tests and assume nothing a B2BUA changes).
//!
//! Every test passes only if the SIPp peers end with every call successful
//! (each scenario checks the messages it gets), the trunks saw the expected
//! INVITEs, the B2BUA-specific checks of its SIP trace hold (two dialogs,
//! SDP anchored on the relay, offers' directions), and afterwards
//! `GET /calls` is `[]` and no port of the media range is bound.
//!
//! Run them alone: `cargo test --release --test peers_b2bua -- --test-threads=1`.
//! `CALLGATE_PEERS_PORT_OFFSET` / `CALLGATE_PEERS_DIALPLAN` move them to
//! other ports or another plan (see `tests/support/net.rs`); through
//! `dialplans/loopback-proxy.yaml` the B2BUA-only checks are skipped.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::net::*;
    use super::support::rtp::*;
    use super::support::*;
    use std::path::PathBuf;
    use std::thread;
    use std::time::Duration;

    /// Time for a wrongly forwarded or failed-over INVITE to show up at an
    /// idle trunk before its statistics are read.
    const SETTLE: Duration = Duration::from_millis(1500);
    /// How long a call's state and media ports may linger after its end.
    const CLEANUP: Duration = Duration::from_secs(10);

    /// One test's gateway, plan and work directory.
    struct Setup {
        net: Net,
        plan: Plan,
        work: PathBuf,
        gw: Gateway,
    }

    fn setup(test: &str, timers: Option<&str>) -> Setup {
        setup_with(test, timers, &[])
    }

    /// [`setup`] with extra `callgate run` arguments.
    fn setup_with(test: &str, timers: Option<&str>, args: &[&str]) -> Setup {
        let net = Net::from_env();
        let work = work_dir(test);
        let plan = test_plan(&net, &work, timers);
        let gw = start_gateway_net_with(&plan, &work, &net, args);
        Setup {
            net,
            plan,
            work,
            gw,
        }
    }

    impl Setup {
        /// A trunk SIPp on `port` running `scenario`, tracing its messages.
        fn trunk(&self, name: &str, port: u16, scenario: &str) -> Sipp {
            Sipp::uas(name, &self.work, port)
                .scenario(scenario)
                .trace_msg()
        }

        /// The calling SIPp: `calls` calls at `rate`/s, waited for.
        fn call(&self, scenario: &str, calls: u64, rate: u32, extra: &[&str]) -> SippOutcome {
            let mut s = Sipp::uac("uac", &self.work, &self.net.gateway())
                .local_port(self.net.uac())
                .scenario(scenario)
                .rate(rate)
                .calls(calls)
                .timeout(Duration::from_secs(40))
                .trace_msg();
            for a in extra {
                s = s.arg(a);
            }
            s.spawn().wait(Duration::from_secs(50))
        }

        fn context(&self, peers: &[&SippOutcome]) -> String {
            let mut s = format!("dial plan: {}\n", self.plan.path.display());
            for p in peers {
                s.push_str(&p.summary());
                s.push('\n');
            }
            s.push_str("--- callgate log (tail) ---\n");
            s.push_str(&self.gw.log_tail(3000));
            s
        }

        /// `/calls` is `[]` and no media port is bound; then stop the gateway.
        fn finish(mut self, what: &str) {
            assert_gateway_clean(&mut self.gw, &self.plan, CLEANUP, what);
            self.gw.stop(Duration::from_secs(10));
        }
    }

    // ------------------------------------------------------ trace helpers ---

    /// Requests of `method` that a SIPp received, in order, without
    /// retransmissions (one per Call-ID and CSeq).
    fn received_requests(o: &SippOutcome, method: &str) -> Vec<String> {
        dedup(
            o.traced()
                .into_iter()
                .filter(|m| m.received && m.text.starts_with(&format!("{method} ")))
                .map(|m| m.text),
        )
    }

    /// Responses with status `code` a SIPp received to requests of `method`,
    /// in order, without retransmissions.
    fn received_responses(o: &SippOutcome, method: &str, code: u16) -> Vec<String> {
        dedup(
            o.traced()
                .into_iter()
                .filter(|m| {
                    m.received
                        && status_code(&m.text) == Some(code)
                        && cseq_method(&m.text).as_deref() == Some(method)
                })
                .map(|m| m.text),
        )
    }

    /// Keeps the first message of each (Call-ID, CSeq).
    fn dedup(msgs: impl Iterator<Item = String>) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        msgs.filter(|m| seen.insert((header(m, "Call-ID", "i"), header(m, "CSeq", "CSeq"))))
            .collect()
    }

    fn header(msg: &str, name: &str, compact: &str) -> String {
        header_values(msg, name, Some(compact))
            .first()
            .cloned()
            .unwrap_or_default()
    }

    fn tag_of(value: &str) -> Option<String> {
        value
            .split(';')
            .skip(1)
            .find_map(|p| p.trim().strip_prefix("tag="))
            .map(str::to_string)
    }

    /// The B2BUA keeps two dialogs: the trunk's INVITE has neither the
    /// caller's Call-ID nor its From tag.
    fn assert_two_dialogs(plan: &Plan, caller_invite: &str, trunk_invite: &str, ctx: &str) {
        if !plan.b2bua {
            plan.note_skipped("separate Call-ID and From tag on each leg");
            return;
        }
        let (a_id, b_id) = (
            header(caller_invite, "Call-ID", "i"),
            header(trunk_invite, "Call-ID", "i"),
        );
        assert!(
            !a_id.is_empty() && !b_id.is_empty() && a_id != b_id,
            "a B2BUA's trunk leg must have its own Call-ID (caller {a_id:?}, trunk {b_id:?})\n{ctx}"
        );
        let (a_tag, b_tag) = (
            tag_of(&header(caller_invite, "From", "f")),
            tag_of(&header(trunk_invite, "From", "f")),
        );
        assert!(
            a_tag.is_some() && b_tag.is_some() && a_tag != b_tag,
            "a B2BUA's trunk leg must have its own From tag (caller {a_tag:?}, trunk {b_tag:?})\n{ctx}"
        );
    }

    /// The SDP of `msg` offers the gateway's relay (B2BUA plans only).
    fn assert_anchored(plan: &Plan, msg: &str, what: &str, ctx: &str) {
        if !plan.b2bua {
            plan.note_skipped(&format!("{what} carries the relay's address"));
            return;
        }
        let sdp =
            sdp_body(msg).unwrap_or_else(|| panic!("{what} must carry SDP, got:\n{msg}\n{ctx}"));
        assert_sdp_anchored(sdp, LOOPBACK, plan.media, what, ctx);
    }

    /// The direction of the SDP in `msg`; fails if there is no SDP.
    fn direction(msg: &str, what: &str, ctx: &str) -> &'static str {
        let sdp =
            sdp_body(msg).unwrap_or_else(|| panic!("{what} must carry SDP, got:\n{msg}\n{ctx}"));
        sdp_direction(sdp)
    }

    fn the_sent_invite(o: &SippOutcome) -> String {
        o.traced()
            .into_iter()
            .find(|m| !m.received && m.text.starts_with("INVITE "))
            .map(|m| m.text)
            .unwrap_or_default()
    }

    // ---------------------------------------------------------- the tests ---

    /// SIPp plays 250 PCMU packets through the relay to a SIPp trunk that
    /// echoes them: every packet is counted on the wire on each of the four
    /// hops, and SIPp's own echo count agrees.
    #[test]
    fn pcap_rtp_reaches_the_far_side_through_the_relay_and_comes_back() {
        pcap_echo(
            "pcap_rtp_reaches_the_far_side_through_the_relay_and_comes_back",
            &[],
            &["callgate-media"],
        );
    }

    /// The same with one media thread per shard (`--media-threads 2`; the
    /// default of 1 has every shard's media on one thread).
    #[test]
    fn pcap_rtp_round_trip_with_a_media_thread_per_shard() {
        pcap_echo(
            "pcap_rtp_round_trip_with_a_media_thread_per_shard",
            &["--media-threads", "2"],
            &["callgate-media0", "callgate-media1"],
        );
    }

    /// The pcap echo call through a gateway started with `gateway_args`,
    /// after checking it runs `media_threads` media threads (named as
    /// `callgate run` names them) where io_uring and two cores allow it.
    fn pcap_echo(test: &str, gateway_args: &[&str], media_threads: &[&str]) {
        const PACKETS: usize = 250;
        let _serial = serial();
        let mut s = setup_with(test, None, gateway_args);
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        if io_uring_enabled() && cores >= 2 {
            let running: Vec<String> =
                s.gw.thread_names()
                    .into_iter()
                    .filter(|n| n.starts_with("callgate-media"))
                    .collect();
            assert_eq!(
                running, media_threads,
                "media driver threads of {gateway_args:?}"
            );
        } else {
            eprintln!("note: media thread count not checked (needs io_uring and 2 cores)");
        }
        let (uac_mp, uas_mp) = (s.net.port(UAC_MEDIA_PORT), s.net.port(UAS_MEDIA_PORT));
        assert_ports_free(&[uac_mp, uac_mp + 2, uas_mp, uas_mp + 2], &[]);
        write_pcmu_pcap(&s.work.join("b2bua_rtp.pcap"), PACKETS);
        let wire = WireCounter::start(&[uac_mp, uas_mp]);

        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "uas_basic.xml")
            .arg("-rtp_echo")
            .arg("-mp")
            .arg(&uas_mp.to_string())
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_pcap.xml", 1, 1, &["-mp", &uac_mp.to_string()]);
        a.wait_stats(Duration::from_secs(8), |st| st.successful() >= 1);
        thread::sleep(Duration::from_millis(300));
        let log = wire.stop();
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the RTP echo call");
        let ctx = format!(
            "{}\n--- RTP on the wire (by port) ---\n{}",
            s.context(&[&uac, &a, &b]),
            log.flows()
        );

        uac.assert_all_successful(1, &format!("one call playing {PACKETS} RTP packets\n{ctx}"));
        assert!(
            a.stats.incoming() == 1 && a.successful() == 1 && b.stats.incoming() == 0,
            "the call must be answered by carrier-a alone\n{ctx}"
        );
        let sent = log.rtp_from(uac_mp);
        assert_eq!(
            sent.len(),
            PACKETS,
            "SIPp must have played all {PACKETS} packets of the pcap (root or CAP_NET_RAW \
             needed)\n{ctx}"
        );
        let far = log.rtp_to(uas_mp);
        let echoed = log.rtp_from(uas_mp);
        let back = log.rtp_to(uac_mp);
        assert!(
            far.len() == PACKETS && distinct_seqs(&far) == PACKETS,
            "every RTP packet must reach the far side: {} of {PACKETS} arrived at the trunk's \
             media port {uas_mp} ({} distinct sequence numbers)\n{ctx}",
            far.len(),
            distinct_seqs(&far)
        );
        assert_eq!(
            echoed.len(),
            PACKETS,
            "the trunk's SIPp echoes every packet\n{ctx}"
        );
        assert!(
            back.len() == PACKETS && distinct_seqs(&back) == PACKETS,
            "every echoed packet must come back to the caller: {} of {PACKETS} arrived at its \
             media port {uac_mp} ({} distinct sequence numbers)\n{ctx}",
            back.len(),
            distinct_seqs(&back)
        );
        let screen =
            std::fs::read_to_string(s.work.join("carrier_a.screen.log")).unwrap_or_default();
        assert_eq!(
            sipp_echo_count(&screen),
            Some(PACKETS as u64),
            "SIPp's own count of echoed RTP packets (the trunk's screen) must be {PACKETS}\n{ctx}"
        );
        if s.plan.b2bua {
            let (lo, hi) = s.plan.media;
            let in_relay = |p: &WirePacket, port: u16| (lo..=hi).contains(&port) && p.len > 0;
            assert!(
                far.iter().all(|p| in_relay(p, p.src_port))
                    && back.iter().all(|p| in_relay(p, p.src_port))
                    && sent.iter().all(|p| in_relay(p, p.dst_port))
                    && echoed.iter().all(|p| in_relay(p, p.dst_port)),
                "with media anchored every packet must go through the relay's ports {lo}-{hi} \
                 (never caller <-> trunk directly)\n{ctx}"
            );
        } else {
            s.plan.note_skipped("RTP flows through the relay's ports");
        }
        let trunk_invite = received_requests(&a, "INVITE")
            .into_iter()
            .next()
            .unwrap_or_default();
        assert_two_dialogs(&s.plan, &the_sent_invite(&uac), &trunk_invite, &ctx);
        assert_anchored(&s.plan, &trunk_invite, "the INVITE carrier-a got", &ctx);
        let answer = received_responses(&uac, "INVITE", 200)
            .into_iter()
            .next()
            .unwrap_or_default();
        assert_anchored(&s.plan, &answer, "the 200 the caller got", &ctx);
        s.finish("after the RTP echo call");
    }

    #[test]
    fn cancel_while_ringing_ends_both_legs() {
        let _serial = serial();
        let mut s = setup("cancel_while_ringing_ends_both_legs", None);
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "uas_ring_no_answer.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("uac_cancel.xml", 3, 3, &[]);
        a.wait_stats(Duration::from_secs(8), |st| st.successful() >= 3);
        thread::sleep(SETTLE);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the CANCEL scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(3, &format!("caller cancelling 3 ringing calls\n{ctx}"));
        assert!(
            a.stats.incoming() == 3 && a.successful() == 3 && a.failed() == 0,
            "carrier-a must see 3 INVITEs, each CANCELled and its 487 ACKed\n{ctx}"
        );
        assert_eq!(
            received_requests(&a, "CANCEL").len(),
            3,
            "carrier-a must get a CANCEL for each call\n{ctx}"
        );
        assert_eq!(
            b.stats.incoming(),
            0,
            "a cancelled call must not fail over to carrier-b\n{ctx}"
        );
        s.finish("after the CANCEL scenario");
    }

    #[test]
    fn busy_486_is_passed_back_without_failover() {
        let _serial = serial();
        let mut s = setup("busy_486_is_passed_back_without_failover", None);
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "uas_486.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("uac_expect_486.xml", 3, 3, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 3);
        thread::sleep(SETTLE);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the 486 scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(3, &format!("caller expecting 486 on 3 calls\n{ctx}"));
        assert!(
            a.stats.incoming() == 3 && a.successful() == 3,
            "carrier-a must see 3 INVITEs and the ACK of each 486\n{ctx}"
        );
        assert!(
            b.stats.incoming() == 0 && received_requests(&b, "INVITE").is_empty(),
            "486 is not a failover cause: carrier-b must receive no INVITE\n{ctx}"
        );
        s.finish("after the 486 scenario");
    }

    #[test]
    fn carrier_a_503_fails_over_to_carrier_b() {
        let _serial = serial();
        let mut s = setup("carrier_a_503_fails_over_to_carrier_b", None);
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "uas_503.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("uac_basic.xml", 3, 3, &[]);
        // uas_basic ends its calls after a 4 s time-wait
        b.wait_stats(Duration::from_secs(8), |st| st.successful() >= 3);
        a.wait_stats(Duration::from_secs(2), |st| st.successful() >= 3);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the 503 failover scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(3, &format!("3 calls, carrier-a answering 503\n{ctx}"));
        assert!(
            a.stats.incoming() == 3 && a.successful() == 3,
            "carrier-a must see 3 INVITEs and ACKs for its 503s\n{ctx}"
        );
        assert!(
            b.stats.incoming() == 3 && b.successful() == 3 && b.failed() == 0,
            "every call must complete on carrier-b after the 503\n{ctx}"
        );
        let finals: Vec<u16> = uac
            .traced()
            .iter()
            .filter(|m| m.received && cseq_method(&m.text).as_deref() == Some("INVITE"))
            .filter_map(|m| status_code(&m.text))
            .filter(|c| *c >= 300)
            .collect();
        assert!(
            finals.is_empty(),
            "the caller must never see carrier-a's failure, got {finals:?}\n{ctx}"
        );
        if let Some(b_invite) = received_requests(&b, "INVITE").first() {
            assert_anchored(&s.plan, b_invite, "the INVITE carrier-b got", &ctx);
        }
        s.finish("after the 503 failover scenario");
    }

    #[test]
    fn unanswered_carrier_a_fails_over_to_carrier_b() {
        let _serial = serial();
        // carrier-a rings for ever: the B2BUA's no-answer timer (2 s here)
        // cancels it and tries carrier-b. (Through the proxy plan the same
        // flow needs Timer C instead.)
        let timers = if std::env::var("CALLGATE_PEERS_DIALPLAN").is_ok_and(|p| p.contains("proxy"))
        {
            "timer_c_s: 2"
        } else {
            "no_answer_s: 2"
        };
        let mut s = setup("unanswered_carrier_a_fails_over_to_carrier_b", Some(timers));
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "uas_ring_no_answer.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("uac_basic.xml", 2, 1, &[]);
        b.wait_stats(Duration::from_secs(8), |st| st.successful() >= 2);
        a.wait_stats(Duration::from_secs(3), |st| st.successful() >= 2);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the no-answer failover scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(2, &format!("2 calls, carrier-a never answering\n{ctx}"));
        assert!(
            a.stats.incoming() == 2
                && a.successful() == 2
                && received_requests(&a, "CANCEL").len() == 2,
            "carrier-a must get both INVITEs and, when the no-answer timer fires, a CANCEL for \
             each (its 487 ACKed)\n{ctx}"
        );
        assert!(
            b.stats.incoming() == 2 && b.successful() == 2,
            "both calls must complete on carrier-b after carrier-a's no-answer timeout\n{ctx}"
        );
        s.finish("after the no-answer failover scenario");
    }

    #[test]
    fn callee_bye_ends_the_callers_leg() {
        let _serial = serial();
        let mut s = setup("callee_bye_ends_the_callers_leg", None);
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "b2bua_uas_bye.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_wait_bye.xml", 2, 2, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 2);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the callee BYE scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(2, &format!("2 calls that the callee hangs up\n{ctx}"));
        assert!(
            a.stats.incoming() == 2 && a.successful() == 2 && b.stats.incoming() == 0,
            "carrier-a must answer both calls and get a 200 for each of its BYEs\n{ctx}"
        );
        assert_eq!(
            received_requests(&uac, "BYE").len(),
            2,
            "the callee's BYE must reach the caller (one per call)\n{ctx}"
        );
        s.finish("after the callee BYE scenario");
    }

    /// Hold (sendonly) and resume (sendrecv) offered by one side, checked
    /// at the other: what the far side was offered and what came back.
    fn check_hold_resume(
        plan: &Plan,
        offers_seen: &[String],
        answers_back: &[String],
        method: &str,
        who: &str,
        ctx: &str,
    ) {
        assert_eq!(
            offers_seen.len(),
            2,
            "the far side must get the {who}'s hold and resume as two {method} offers\n{ctx}"
        );
        assert_eq!(
            answers_back.len(),
            2,
            "the {who} must get a 200 to each of its {method}s\n{ctx}"
        );
        let hold = direction(&offers_seen[0], &format!("the hold {method}"), ctx);
        assert!(
            hold == "sendonly" || hold == "inactive",
            "the {who}'s hold must reach the far side as sendonly or inactive, got {hold}:\n{}\n{ctx}",
            offers_seen[0]
        );
        let resume = direction(&offers_seen[1], &format!("the resume {method}"), ctx);
        assert_eq!(
            resume, "sendrecv",
            "the {who}'s resume must reach the far side as sendrecv:\n{}\n{ctx}",
            offers_seen[1]
        );
        let held = direction(&answers_back[0], "the answer to the hold", ctx);
        assert!(
            held == "recvonly" || held == "inactive",
            "the {who} must get recvonly or inactive back for its hold, got {held}:\n{}\n{ctx}",
            answers_back[0]
        );
        let resumed = direction(&answers_back[1], "the answer to the resume", ctx);
        assert_eq!(
            resumed, "sendrecv",
            "the {who} must get sendrecv back for its resume:\n{}\n{ctx}",
            answers_back[1]
        );
        assert_anchored(
            plan,
            &offers_seen[1],
            &format!("the resume {method} offer"),
            ctx,
        );
        assert_anchored(plan, &answers_back[1], "the answer to the resume", ctx);
    }

    #[test]
    fn caller_holds_and_resumes_with_reinvite() {
        let _serial = serial();
        let mut s = setup("caller_holds_and_resumes_with_reinvite", None);
        let a = s
            .trunk(
                "carrier_a",
                s.net.carrier_a(),
                "b2bua_uas_answer_offers.xml",
            )
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_hold.xml", 1, 1, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 1);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the caller hold scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(1, &format!("a call held and resumed by the caller\n{ctx}"));
        assert!(
            a.successful() == 1 && b.stats.incoming() == 0,
            "carrier-a must answer the call and both re-offers\n{ctx}"
        );
        let offers: Vec<String> = received_requests(&a, "INVITE")
            .into_iter()
            .skip(1)
            .collect();
        let answers: Vec<String> = received_responses(&uac, "INVITE", 200)
            .into_iter()
            .filter(|m| !header(m, "CSeq", "CSeq").starts_with("1 "))
            .collect();
        check_hold_resume(&s.plan, &offers, &answers, "re-INVITE", "caller", &ctx);
        s.finish("after the caller hold scenario");
    }

    #[test]
    fn callee_holds_and_resumes_with_reinvite() {
        let _serial = serial();
        let mut s = setup("callee_holds_and_resumes_with_reinvite", None);
        let a = s
            .trunk("carrier_a", s.net.carrier_a(), "b2bua_uas_hold.xml")
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_wait_bye.xml", 1, 1, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 1);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the callee hold scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(1, &format!("a call held and resumed by the callee\n{ctx}"));
        assert!(
            a.successful() == 1 && b.stats.incoming() == 0,
            "carrier-a must answer the call, get answers to both re-offers and a 200 to its \
             BYE\n{ctx}"
        );
        let offers = received_requests(&uac, "INVITE");
        let answers = received_responses(&a, "INVITE", 200);
        check_hold_resume(&s.plan, &offers, &answers, "re-INVITE", "callee", &ctx);
        s.finish("after the callee hold scenario");
    }

    #[test]
    fn caller_holds_and_resumes_with_update() {
        let _serial = serial();
        let mut s = setup("caller_holds_and_resumes_with_update", None);
        let a = s
            .trunk(
                "carrier_a",
                s.net.carrier_a(),
                "b2bua_uas_answer_offers.xml",
            )
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_update.xml", 1, 1, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 1);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the UPDATE scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(1, &format!("a call held and resumed by UPDATE\n{ctx}"));
        assert!(
            a.successful() == 1 && b.stats.incoming() == 0,
            "carrier-a must answer the call and both UPDATE offers\n{ctx}"
        );
        let offers = received_requests(&a, "UPDATE");
        let answers = received_responses(&uac, "UPDATE", 200);
        check_hold_resume(&s.plan, &offers, &answers, "UPDATE", "caller", &ctx);
        s.finish("after the UPDATE scenario");
    }

    #[test]
    fn late_offer_invite_gets_an_offer_from_the_gateway() {
        let _serial = serial();
        let mut s = setup("late_offer_invite_gets_an_offer_from_the_gateway", None);
        let a = s
            .trunk(
                "carrier_a",
                s.net.carrier_a(),
                "b2bua_uas_answer_offers.xml",
            )
            .spawn();
        let b = s
            .trunk("carrier_b", s.net.carrier_b(), "uas_basic.xml")
            .spawn();
        let uac = s.call("b2bua_uac_late_offer.xml", 1, 1, &[]);
        a.wait_stats(Duration::from_secs(5), |st| st.successful() >= 1);
        let (a, b) = (a.stop(), b.stop());
        s.gw.assert_alive("during the late offer scenario");
        let ctx = s.context(&[&uac, &a, &b]);
        uac.assert_all_successful(
            1,
            &format!("an INVITE without SDP, answered in the ACK\n{ctx}"),
        );
        assert!(
            a.successful() == 1 && b.stats.incoming() == 0,
            "carrier-a must answer the call\n{ctx}"
        );
        let trunk_invite = received_requests(&a, "INVITE")
            .into_iter()
            .next()
            .unwrap_or_default();
        assert!(
            sdp_body(&trunk_invite).is_some(),
            "the caller sent no SDP: the gateway must make the offer toward the trunk itself \
             (no delayed offer toward carriers), but carrier-a got:\n{trunk_invite}\n{ctx}"
        );
        assert_anchored(
            &s.plan,
            &trunk_invite,
            "the gateway's offer to carrier-a",
            &ctx,
        );
        let ok = received_responses(&uac, "INVITE", 200)
            .into_iter()
            .next()
            .unwrap_or_default();
        assert_anchored(&s.plan, &ok, "the offer in the caller's 200", &ctx);
        let trunk_acks = received_requests(&a, "ACK");
        assert!(
            trunk_acks.iter().all(|m| sdp_body(m).is_none()),
            "carrier-a answered in its 200, so its ACK carries no SDP\n{ctx}"
        );
        s.finish("after the late offer scenario");
    }
}
