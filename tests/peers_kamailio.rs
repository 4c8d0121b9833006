//! Kamailio as an upstream proxy in front of the gateway, all on 127.0.0.1:
//!
//! SIPp uac (uac_basic.xml, honours Record-Route) -> Kamailio :5090
//! (sip-fixtures/kamailio/upstream.cfg: record_route, relay to callgate)
//! -> callgate :5060 -> SIPp uas (uas_basic.xml, echoes Record-Route) :5070.
//!
//! Pass: every call succeeds end to end (the callee receives ACK and BYE
//! through both proxies, by loose routing) and the 200 OK of every INVITE
//! reaching the caller carries the Record-Route entries of both proxies:
//! Kamailio's (127.0.0.1:5090) at the bottom and callgate's above it - one
//! entry, or two when callgate double-record-routes (RFC 5658) because it
//! receives on its client listener and sends on its carrier listener. The
//! caller's ACK and BYE carry the same route set.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::*;
    use std::time::Duration;

    const CALLS: u64 = 20;

    #[test]
    fn calls_through_kamailio_then_callgate_keep_both_record_routes() {
        let _serial = serial();
        let work = work_dir("kamailio_upstream");
        let mut gw = start_gateway(&dialplan("loopback-proxy.yaml"), &work);
        let kamailio = start_kamailio(
            "kamailio-upstream",
            &kamailio_config("upstream.cfg"),
            &work,
            KAMAILIO_UPSTREAM_PORT,
            &[],
        );
        let uas = Sipp::uas("uas", &work, CARRIER_A_PORT)
            .scenario("uas_basic.xml")
            .spawn();

        let uac = Sipp::uac(
            "uac",
            &work,
            &format!("{LOOPBACK}:{KAMAILIO_UPSTREAM_PORT}"),
        )
        .scenario("uac_basic.xml")
        .rate(10)
        .calls(CALLS)
        .timeout(Duration::from_secs(30))
        .trace_msg()
        .spawn()
        .wait(Duration::from_secs(40));
        // uas_basic ends each call 4 s after the BYE
        uas.wait_stats(Duration::from_secs(8), |s| s.successful() >= CALLS);
        let uas = uas.stop();
        let mut kamailio = kamailio;
        let kam_log = kamailio.log_tail(3000);
        let kam_alive = kamailio.is_running();
        drop(kamailio);
        gw.assert_alive("during the Kamailio scenario");
        let ctx = format!(
            "{}\n{}\n--- kamailio log (tail) ---\n{kam_log}\n--- callgate log (tail) ---\n{}",
            uac.summary(),
            uas.summary(),
            gw.log_tail(3000)
        );
        assert!(kam_alive, "kamailio died during the test\n{ctx}");

        uac.assert_all_successful(CALLS, &format!("calls via Kamailio and callgate\n{ctx}"));
        assert!(
            uas.stats.incoming() == CALLS && uas.successful() == CALLS,
            "the callee must get every INVITE, ACK and BYE\n{ctx}"
        );

        let traced = uac.traced();
        let oks: Vec<&TracedMessage> = traced
            .iter()
            .filter(|m| {
                m.received
                    && status_code(&m.text) == Some(200)
                    && cseq_method(&m.text).as_deref() == Some("INVITE")
            })
            .collect();
        assert!(
            oks.len() as u64 >= CALLS,
            "expected at least {CALLS} 200 OKs to INVITE in the caller's message log, found {}\n{ctx}",
            oks.len()
        );
        let kamailio_rr = format!("127.0.0.1:{KAMAILIO_UPSTREAM_PORT}");
        let mut route_set_len = 0;
        for ok in oks {
            let rr = route_entries(&ok.text, "Record-Route");
            let (callgate_rr, bottom) = rr.split_at(rr.len().saturating_sub(1));
            assert!(
                bottom.len() == 1
                    && bottom[0].contains(&kamailio_rr)
                    && (1..=2).contains(&callgate_rr.len())
                    && callgate_rr.iter().all(|e| !e.contains(&kamailio_rr)),
                "the 200 OK must carry callgate's Record-Route (one entry, or two \
                 when double-record-routing) above Kamailio's; got {rr:?} in:\n{}\n{ctx}",
                ok.text
            );
            route_set_len = rr.len();
        }
        eprintln!("Record-Route set seen by the caller: {route_set_len} entries");
        // the caller followed the route set: ACK and BYE carried all of it
        let in_dialog: Vec<usize> = traced
            .iter()
            .filter(|m| !m.received && (m.text.starts_with("ACK ") || m.text.starts_with("BYE ")))
            .map(|m| route_entries(&m.text, "Route").len())
            .collect();
        assert!(
            in_dialog.len() as u64 >= 2 * CALLS && in_dialog.iter().all(|&n| n == route_set_len),
            "the caller's ACK/BYE must carry the {route_set_len}-entry route set; \
             Route entries per ACK/BYE: {in_dialog:?}\n{ctx}"
        );
        gw.stop(Duration::from_secs(10));
    }
}
