//! Dial-plan reload without dropping calls, with real SIPp peers on 127.0.0.1.
//!
//! A call is established through carrier-a and held for a few seconds; the
//! dial plan file is changed to prefer carrier-b and the gateway gets SIGHUP.
//! New calls must go to carrier-b while the held call still ends cleanly
//! (its BYE follows the dialog to carrier-a). A broken dial plan on a second
//! SIGHUP must be refused: the gateway keeps routing with the last good plan.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

mod real_peers {
    use super::support::*;
    use std::time::Duration;

    #[test]
    fn sighup_reloads_the_dial_plan_and_keeps_calls_up() {
        let _serial = serial();
        let work = work_dir("reload");
        let plan_path = work.join("plan.yaml");
        let original = std::fs::read_to_string(dialplan("loopback-proxy.yaml")).unwrap();
        assert!(
            original.contains("trunks: [carrier-a, carrier-b]"),
            "fixture changed; update this test"
        );
        std::fs::write(&plan_path, &original).unwrap();
        let mut gw = start_gateway(&plan_path, &work);
        let uas_a = Sipp::uas("uas-a", &work, CARRIER_A_PORT)
            .builtin("uas")
            .spawn();
        let uas_b = Sipp::uas("uas-b", &work, CARRIER_B_PORT)
            .builtin("uas")
            .spawn();

        // One call held for 4 s before its BYE.
        let held = Sipp::uac("held", &work, &gateway_target())
            .builtin("uac")
            .calls(1)
            .arg("-d")
            .arg("4000")
            .timeout(Duration::from_secs(20))
            .spawn();
        assert!(
            uas_a.wait_stats(Duration::from_secs(5), |s| s.incoming() >= 1),
            "the held call reached carrier-a"
        );

        std::fs::write(
            &plan_path,
            original.replace(
                "trunks: [carrier-a, carrier-b]",
                "trunks: [carrier-b, carrier-a]",
            ),
        )
        .unwrap();
        gw.reload();
        std::thread::sleep(Duration::from_millis(300));
        let after = Sipp::uac("after", &work, &gateway_target())
            .builtin("uac")
            .local_port(UAC_PORT + 2)
            .calls(5)
            .rate(10)
            .timeout(Duration::from_secs(20))
            .spawn()
            .wait(Duration::from_secs(25));
        after.assert_all_successful(5, &format!("calls after SIGHUP\n{}", gw.log_tail(3000)));

        // A broken plan is refused; routing stays on the last good plan.
        std::fs::write(&plan_path, "version: 1\nroutes: [oops\n").unwrap();
        gw.reload();
        std::thread::sleep(Duration::from_millis(300));
        let broken = Sipp::uac("broken", &work, &gateway_target())
            .builtin("uac")
            .local_port(UAC_PORT + 4)
            .calls(3)
            .rate(10)
            .timeout(Duration::from_secs(20))
            .spawn()
            .wait(Duration::from_secs(25));
        broken.assert_all_successful(
            3,
            &format!("calls after a broken reload\n{}", gw.log_tail(3000)),
        );

        let held = held.wait(Duration::from_secs(20));
        held.assert_all_successful(
            1,
            &format!("the call held across the reload\n{}", gw.log_tail(3000)),
        );
        gw.assert_alive("after two reloads");
        let (a, b) = (uas_a.stop(), uas_b.stop());
        assert_eq!(
            a.stats.incoming(),
            1,
            "only the held call went to carrier-a: {}",
            a.summary()
        );
        assert_eq!(
            b.stats.incoming(),
            8,
            "every call after the reload went to carrier-b: {}",
            b.summary()
        );
        gw.stop(Duration::from_secs(10));
    }
}
