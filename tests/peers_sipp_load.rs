//! Load through the gateway with real SIPp peers, all on 127.0.0.1:
//!
//! SIPp built-in `uac` -> callgate :5060 (dialplans/loopback-proxy*.yaml)
//! -> SIPp built-in `uas` on carrier-a :5070.
//!
//! Pass: SIPp's uac exits 0 and its stat file counts every call successful
//! and none failed; the gateway is still running afterwards.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::*;
    use std::time::{Duration, Instant};

    const RATE: u32 = 500;

    fn load(test: &str, dialplan_file: &str, tcp: bool, calls: u64) {
        load_with(test, dialplan_file, tcp, calls, &[]);
    }

    fn load_with(test: &str, dialplan_file: &str, tcp: bool, calls: u64, args: &[&str]) {
        let _serial = serial();
        let work = work_dir(test);
        let mut gw = start_gateway_with(&dialplan(dialplan_file), &work, args);

        let mut uas = Sipp::uas("uas", &work, CARRIER_A_PORT).builtin("uas");
        if tcp {
            uas = uas.tcp();
        }
        let uas = uas.spawn();

        // calls/RATE seconds of traffic; SIPp gives up by itself 25 s later
        let secs = calls / u64::from(RATE);
        let mut uac = Sipp::uac("uac", &work, &gateway_target())
            .builtin("uac")
            .rate(RATE)
            .calls(calls)
            .limit(2000)
            .timeout(Duration::from_secs(secs + 25));
        if tcp {
            uac = uac.tcp();
        }
        let started = Instant::now();
        let out = uac.spawn().wait(Duration::from_secs(secs + 35));
        let took = started.elapsed();
        let uas_out = uas.stop();
        eprintln!(
            "{test}: {calls} calls at {RATE} cps in {:.1} s: successful={} failed={}; uas saw {}",
            took.as_secs_f64(),
            out.successful(),
            out.failed(),
            uas_out.stats.incoming()
        );
        gw.assert_alive("during the load run");
        out.assert_all_successful(
            calls,
            &format!(
                "{test} ({}); uas: {}\n--- callgate log (tail) ---\n{}",
                if tcp { "TCP" } else { "UDP" },
                uas_out.summary(),
                gw.log_tail(3000)
            ),
        );
        gw.stop(Duration::from_secs(10));
    }

    #[test]
    fn udp_10000_calls_at_500_cps() {
        load(
            "udp_10000_calls_at_500_cps",
            "loopback-proxy.yaml",
            false,
            10_000,
        );
    }

    #[test]
    fn tcp_10000_calls_at_500_cps() {
        load(
            "tcp_10000_calls_at_500_cps",
            "loopback-proxy-tcp.yaml",
            true,
            10_000,
        );
    }

    /// Two signaling threads (`--udp-threads 2`): the client-side and the
    /// carrier-side listener are read by different threads, so each call's
    /// messages cross threads (shard locks, the timer owner woken through
    /// its eventfd); through the B2BUA, every call must still complete.
    #[test]
    fn udp_threads_2_b2bua_4000_calls_at_500_cps() {
        load_with(
            "udp_threads_2_b2bua_4000_calls_at_500_cps",
            "loopback.yaml",
            false,
            4_000,
            &["--udp-threads", "2"],
        );
    }
}
