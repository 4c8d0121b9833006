//! Call-flow scenarios through the gateway with real SIPp peers on 127.0.0.1:
//! a SIPp caller -> callgate :5060 -> SIPp trunks carrier-a :5070 and
//! carrier-b :5072 (failover order a, b). Scenarios: `sip-fixtures/sipp/`.
//!
//! Each test passes only if the caller's SIPp exits 0 with every call
//! successful (the scenario itself checks the responses it receives) and the
//! trunks' SIPp statistics show the expected INVITE counts (e.g. carrier-b
//! saw 0 INVITEs when no failover may happen).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::*;
    use std::thread;
    use std::time::Duration;

    /// Time for a wrongly forwarded or failed-over INVITE to show up at an
    /// idle trunk before its statistics are read.
    const SETTLE: Duration = Duration::from_millis(1500);

    fn caller(work: &std::path::Path, scenario: &str, calls: u64, rate: u32) -> SippOutcome {
        Sipp::uac("uac", work, &gateway_target())
            .scenario(scenario)
            .rate(rate)
            .calls(calls)
            .timeout(Duration::from_secs(40))
            .trace_msg()
            .spawn()
            .wait(Duration::from_secs(50))
    }

    fn context(gw: &Gateway, peers: &[&SippOutcome]) -> String {
        let mut s = String::new();
        for p in peers {
            s.push_str(&p.summary());
            s.push('\n');
        }
        s.push_str("--- callgate log (tail) ---\n");
        s.push_str(&gw.log_tail(3000));
        s
    }

    #[test]
    fn cancel_before_answer_gets_487() {
        let _serial = serial();
        let work = work_dir("cancel_before_answer_gets_487");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .scenario("uas_ring_no_answer.xml")
            .trace_msg()
            .spawn();
        let b = Sipp::uas("carrier_b", &work, CARRIER_B_PORT)
            .scenario("uas_basic.xml")
            .spawn();

        let uac = caller(&work, "uac_cancel.xml", 5, 5);
        // carrier-a's calls end once it got the ACK for its 487
        a.wait_stats(Duration::from_secs(5), |s| s.successful() >= 5);
        thread::sleep(SETTLE);
        let (a, b) = (a.stop(), b.stop());
        gw.assert_alive("during the CANCEL scenario");
        let ctx = context(&gw, &[&uac, &a, &b]);

        uac.assert_all_successful(5, &format!("caller cancelling 5 ringing calls\n{ctx}"));
        assert!(
            a.stats.incoming() == 5 && a.successful() == 5 && a.failed() == 0,
            "carrier-a must see 5 INVITEs, each CANCELled and its 487 ACKed\n{ctx}"
        );
        assert_eq!(
            b.stats.incoming(),
            0,
            "a cancelled call must not fail over to carrier-b\n{ctx}"
        );
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn busy_486_is_passed_back_without_failover() {
        let _serial = serial();
        let work = work_dir("busy_486_is_passed_back_without_failover");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .scenario("uas_486.xml")
            .spawn();
        let b = Sipp::uas("carrier_b", &work, CARRIER_B_PORT)
            .scenario("uas_basic.xml")
            .trace_msg()
            .spawn();

        let uac = caller(&work, "uac_expect_486.xml", 3, 3);
        a.wait_stats(Duration::from_secs(5), |s| s.successful() >= 3);
        thread::sleep(SETTLE);
        let (a, b) = (a.stop(), b.stop());
        gw.assert_alive("during the 486 scenario");
        let ctx = context(&gw, &[&uac, &a, &b]);

        uac.assert_all_successful(3, &format!("caller expecting 486 on 3 calls\n{ctx}"));
        assert!(
            a.stats.incoming() == 3 && a.successful() == 3,
            "carrier-a must see 3 INVITEs and the ACK of each 486\n{ctx}"
        );
        let invites_at_b = b
            .traced()
            .iter()
            .filter(|m| m.received && m.text.starts_with("INVITE "))
            .count();
        assert!(
            b.stats.incoming() == 0 && invites_at_b == 0,
            "486 is not a failover cause: carrier-b must receive no INVITE \
             (stats: {}, traced: {invites_at_b})\n{ctx}",
            b.stats.incoming()
        );
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn carrier_a_503_fails_over_to_carrier_b() {
        let _serial = serial();
        let work = work_dir("carrier_a_503_fails_over_to_carrier_b");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .scenario("uas_503.xml")
            .spawn();
        let b = Sipp::uas("carrier_b", &work, CARRIER_B_PORT)
            .scenario("uas_basic.xml")
            .spawn();

        let uac = caller(&work, "uac_basic.xml", 3, 3);
        // uas_basic ends its calls after a 4 s time-wait
        b.wait_stats(Duration::from_secs(8), |s| s.successful() >= 3);
        a.wait_stats(Duration::from_secs(2), |s| s.successful() >= 3);
        let (a, b) = (a.stop(), b.stop());
        gw.assert_alive("during the 503 failover scenario");
        let ctx = context(&gw, &[&uac, &a, &b]);

        uac.assert_all_successful(3, &format!("3 calls, carrier-a answering 503\n{ctx}"));
        assert!(
            a.stats.incoming() == 3 && a.successful() == 3,
            "carrier-a must see 3 INVITEs and ACKs for its 503s\n{ctx}"
        );
        assert!(
            b.stats.incoming() == 3 && b.successful() == 3 && b.failed() == 0,
            "every call must complete on carrier-b after the 503\n{ctx}"
        );
        let saw_503 = uac
            .traced()
            .iter()
            .any(|m| m.received && status_code(&m.text) == Some(503));
        assert!(!saw_503, "the caller must never see carrier-a's 503\n{ctx}");
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn silent_carrier_a_times_out_to_carrier_b() {
        let _serial = serial();
        let work = work_dir("silent_carrier_a_times_out_to_carrier_b");
        // T1 = 50 ms: Timer B (64*T1) fires after 3.2 s instead of 32 s
        let fast = fast_dialplan(&work);
        check_dialplan(&fast);
        let mut gw = start_gateway(&fast, &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .scenario("uas_silent.xml")
            .spawn();
        let b = Sipp::uas("carrier_b", &work, CARRIER_B_PORT)
            .scenario("uas_basic.xml")
            .spawn();

        let uac = caller(&work, "uac_basic.xml", 2, 1);
        b.wait_stats(Duration::from_secs(8), |s| s.successful() >= 2);
        let (a, b) = (a.stop(), b.stop());
        gw.assert_alive("during the timeout failover scenario");
        let ctx = context(&gw, &[&uac, &a, &b]);

        uac.assert_all_successful(2, &format!("2 calls, carrier-a silent\n{ctx}"));
        assert_eq!(
            a.stats.incoming(),
            2,
            "carrier-a must have been tried first for both calls\n{ctx}"
        );
        assert!(
            b.stats.incoming() == 2 && b.successful() == 2,
            "both calls must complete on carrier-b after Timer B at carrier-a\n{ctx}"
        );
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn max_forwards_zero_gets_483() {
        let _serial = serial();
        let work = work_dir("max_forwards_zero_gets_483");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .scenario("uas_basic.xml")
            .spawn();
        let b = Sipp::uas("carrier_b", &work, CARRIER_B_PORT)
            .scenario("uas_basic.xml")
            .spawn();

        let uac = caller(&work, "uac_maxfwd0.xml", 3, 3);
        thread::sleep(SETTLE);
        let (a, b) = (a.stop(), b.stop());
        gw.assert_alive("during the Max-Forwards scenario");
        let ctx = context(&gw, &[&uac, &a, &b]);

        uac.assert_all_successful(3, &format!("3 INVITEs with Max-Forwards: 0\n{ctx}"));
        assert!(
            a.stats.incoming() == 0 && b.stats.incoming() == 0,
            "a request with Max-Forwards 0 must not be forwarded\n{ctx}"
        );
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn sigterm_drains_and_exits() {
        let _serial = serial();
        let work = work_dir("sigterm_drains_and_exits");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let a = Sipp::uas("carrier_a", &work, CARRIER_A_PORT)
            .builtin("uas")
            .spawn();
        let uac = Sipp::uac("uac", &work, &gateway_target())
            .builtin("uac")
            .rate(20)
            .calls(20)
            .timeout(Duration::from_secs(20))
            .spawn()
            .wait(Duration::from_secs(30));
        let a = a.stop();
        gw.assert_alive("before SIGTERM");
        uac.assert_all_successful(20, &context(&gw, &[&a]));

        let log = gw.peer.log_path().to_path_buf();
        let stopped = gw.stop(Duration::from_secs(10));
        assert!(
            !stopped.forced && stopped.status.is_some_and(|s| s.success()),
            "callgate must exit by itself with status 0 within 10 s of SIGTERM \
             once idle ({stopped:?}); log:\n{}",
            file_tail(&log, 3000)
        );
    }
}
