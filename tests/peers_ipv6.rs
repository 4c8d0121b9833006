//! IPv6 end to end with real SIPp peers on [::1]: SIPp uac -> callgate
//! [::1]:5060 -> SIPp uas [::1]:5070. Vias, Record-Route and the trunk
//! address are IPv6 references; every call must complete.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::*;
    use std::time::Duration;

    const PLAN: &str = r#"
version: 1
admin: 127.0.0.1:9090
listeners:
  - { name: client, side: client, udp: "[::1]:5060" }
  - { name: carrier, side: carrier, udp: "[::1]:5080" }
trunks:
  - { name: carrier-a, address: "[::1]:5070" }
routes:
  - { name: all, match: { source: client }, trunks: [carrier-a] }
"#;

    #[test]
    fn calls_over_ipv6_loopback() {
        let _serial = serial();
        let work = work_dir("ipv6");
        let plan = work.join("ipv6.yaml");
        std::fs::write(&plan, PLAN).unwrap();
        check_dialplan(&plan);
        let mut gw = start_gateway(&plan, &work);
        let uas = Sipp::uas("uas6", &work, CARRIER_A_PORT)
            .ip("::1")
            .builtin("uas")
            .spawn();
        let out = Sipp::uac("uac6", &work, "[::1]:5060")
            .ip("::1")
            .builtin("uac")
            .calls(200)
            .rate(100)
            .timeout(Duration::from_secs(20))
            .spawn()
            .wait(Duration::from_secs(30));
        let uas = uas.stop();
        gw.assert_alive("after IPv6 calls");
        out.assert_all_successful(
            200,
            &format!("IPv6 calls; uas: {}\n{}", uas.summary(), gw.log_tail(3000)),
        );
        assert_eq!(
            uas.stats.incoming(),
            200,
            "every call reached the IPv6 trunk"
        );
        gw.stop(Duration::from_secs(10));
    }
}
