//! RFC 3711 Appendix B test vectors, round trips, and hostile packets.

use super::kdf::{keystream_at, session_key_bytes};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 3711 B.2: the AES-CM keystream for session key 2B7E…, salt F0F1…FD
/// (ROC, SEQ and SSRC all 0: the IV is the salt shifted by 16 bits).
#[test]
fn b2_aes_cm_keystream() {
    let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    for (block, want) in [
        (0x0000, "E03EAD0935C95E80E166B16DD92B4EB4"),
        (0x0001, "D23513162B02D0F72A43A2FE4A5F97AB"),
        (0x0002, "41E95B3BB0A2E8DD477901E4FCA894C0"),
        (0xFEFF, "EC8CDF7398607CB0F2D21675EA9EA1E4"),
        (0xFF00, "362B7C3C6773516318A077D7FC5073AE"),
        (0xFF01, "6A2CC3787889374FBEB4C81B17BA6C44"),
    ] {
        assert_eq!(
            keystream_at(&key, &iv, block),
            hex(want),
            "block {block:04X}"
        );
    }
    // The same keystream through the session-key path: salt F0F1…FD with
    // SSRC 0 and index 0.
    let master = MasterKey {
        key,
        salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
    };
    let mut data = vec![0u8; 48];
    // A context's session keys differ from the master's, so build the
    // keystream by hand from the PRF instead (§4.3.3 uses the same AES-CM).
    let mut x = [0u8; 14];
    x.copy_from_slice(&master.salt);
    kdf::prf(&master.key, &x, &mut data);
    assert_eq!(
        data,
        hex(
            "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"
        )
    );
}

/// RFC 3711 B.3: session keys from master key E1F9…, salt 0EC6….
#[test]
fn b3_key_derivation() {
    let master = MasterKey {
        key: hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap(),
        salt: hex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap(),
    };
    assert_eq!(
        session_key_bytes(&master, 0x00, 16),
        hex("C61E7A93744F39EE10734AFE3FF7A087")
    );
    assert_eq!(
        session_key_bytes(&master, 0x02, 14),
        hex("30CBBC08863D8C85D49DB34A9AE1")
    );
    let auth = session_key_bytes(&master, 0x01, 94);
    assert_eq!(
        auth,
        hex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
        )
    );
}

fn keys(n: u8) -> MasterKey {
    MasterKey::from_bytes(&[n; 30])
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 24]);
    p
}

#[test]
fn rtp_round_trip_both_suites_across_a_rollover() {
    for suite in Suite::ALL {
        let mut tx = Context::new(suite, &keys(1));
        let mut rx = Context::new(suite, &keys(1));
        for i in 0..300u32 {
            let seq = (65_400 + i) as u16; // wraps at 65 536: ROC 0 → 1
            let plain = rtp(seq, 0xdead_beef, &[i as u8; 160]);
            let mut p = plain.clone();
            tx.protect_rtp(&mut p).unwrap();
            assert_eq!(p.len(), plain.len() + suite.rtp_tag_len());
            assert_eq!(p[..12], plain[..12], "header in the clear");
            assert_ne!(p[12..172], plain[12..], "payload encrypted");
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(p, plain, "{suite} seq {seq}");
        }
    }
}

#[test]
fn reordered_packets_pass_replays_do_not() {
    let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &keys(2));
    let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &keys(2));
    let sent: Vec<Vec<u8>> = (0..10)
        .map(|s| {
            let mut p = rtp(s, 7, b"hello");
            tx.protect_rtp(&mut p).unwrap();
            p
        })
        .collect();
    for i in [0, 2, 1, 5, 3, 4, 9, 6, 8, 7] {
        let mut p = sent[i].clone();
        rx.unprotect_rtp(&mut p).unwrap();
    }
    let mut again = sent[4].clone();
    assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replayed));
    assert_eq!(again, sent[4], "a refused packet is left as it was");
}

#[test]
fn tampered_truncated_and_wrong_key_packets_are_refused() {
    let mut tx = Context::new(Suite::AesCm128HmacSha1_32, &keys(3));
    let mut p = rtp(1, 9, &[0x55; 40]);
    tx.protect_rtp(&mut p).unwrap();
    for i in 0..p.len() {
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(3));
        let mut bad = p.clone();
        bad[i] ^= 0x01;
        let r = rx.unprotect_rtp(&mut bad);
        assert!(r.is_err(), "flipped byte {i} accepted");
    }
    for len in 0..p.len() {
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(3));
        let mut short = p[..len].to_vec();
        assert!(rx.unprotect_rtp(&mut short).is_err(), "truncated to {len}");
    }
    let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(4));
    assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(SrtpError::AuthFailed));
    let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &keys(3));
    assert!(rx.unprotect_rtp(&mut p.clone()).is_err(), "wrong suite");
}

#[test]
fn rtcp_round_trip_index_and_e_bit() {
    let mut tx = Context::new(Suite::AesCm128HmacSha1_32, &keys(5));
    let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(5));
    for i in 0..5u32 {
        let plain = rtcp_rr(0x1234);
        let mut p = plain.clone();
        tx.protect_rtcp(&mut p).unwrap();
        assert_eq!(p.len(), plain.len() + 4 + 10, "E||index + 80-bit tag");
        let e_index = u32::from_be_bytes(p[plain.len()..plain.len() + 4].try_into().unwrap());
        assert_eq!(e_index, 0x8000_0000 | i, "E set, index counts from 0");
        assert_eq!(p[..8], plain[..8]);
        assert_ne!(p[8..plain.len()], plain[8..]);
        let mut replay = p.clone();
        rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p, plain);
        assert_eq!(rx.unprotect_rtcp(&mut replay), Err(SrtpError::Replayed));
    }
    let mut p = rtcp_rr(1);
    tx.protect_rtcp(&mut p).unwrap();
    for i in 0..p.len() {
        let mut bad = p.clone();
        bad[i] ^= 0x80;
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(5));
        assert!(rx.unprotect_rtcp(&mut bad).is_err(), "flipped byte {i}");
    }
    for len in 0..p.len() {
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &keys(5));
        assert!(rx.unprotect_rtcp(&mut p[..len].to_vec()).is_err());
    }
}

#[test]
fn unencrypted_srtcp_is_authenticated_only() {
    // Build an E = 0 packet by hand: plain body, index 0, tag over it.
    let master = keys(6);
    let keys = kdf::SessionKeys::derive(&master, kdf::SRTCP_LABELS);
    let plain = rtcp_rr(77);
    let mut p = plain.clone();
    p.extend_from_slice(&0u32.to_be_bytes());
    let mut mac = keys.mac.clone();
    hmac::Mac::update(&mut mac, &p);
    let tag = hmac::Mac::finalize(mac).into_bytes();
    p.extend_from_slice(&tag[..10]);
    let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &master);
    rx.unprotect_rtcp(&mut p).unwrap();
    assert_eq!(p, plain);
}

#[test]
fn forged_ssrcs_create_no_state_and_eviction_keeps_working() {
    let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &keys(8));
    for ssrc in 0..1000 {
        let mut junk = rtp(1, ssrc, &[0; 30]);
        assert_eq!(rx.unprotect_rtp(&mut junk), Err(SrtpError::AuthFailed));
    }
    let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &keys(8));
    for ssrc in 0..(context::MAX_STREAMS as u32 + 5) {
        let mut p = rtp(10, ssrc, b"x");
        tx.protect_rtp(&mut p).unwrap();
        rx.unprotect_rtp(&mut p).unwrap();
    }
}

#[test]
fn leg_rekey_keeps_unchanged_contexts() {
    let k = SrtpKeys {
        suite: Suite::AesCm128HmacSha1_80,
        remote: keys(1),
        local: keys(2),
    };
    let mut leg = LegSrtp::new(k.clone());
    let mut peer_rx = Context::new(Suite::AesCm128HmacSha1_80, &keys(2));
    let mut first = rtcp_rr(5);
    leg.protect_rtcp(&mut first).unwrap();
    peer_rx.unprotect_rtcp(&mut first).unwrap();
    // The leg re-offers a new key of its own; ours stays: our SRTCP index
    // must go on (index 1), not restart at 0 under the same key.
    leg.rekey(SrtpKeys {
        remote: keys(9),
        ..k.clone()
    });
    let mut second = rtcp_rr(5);
    leg.protect_rtcp(&mut second).unwrap();
    let n = second.len();
    assert_eq!(second[n - 14..n - 10], (0x8000_0001u32).to_be_bytes());
    peer_rx.unprotect_rtcp(&mut second).unwrap();
    let mut from_peer = rtp(1, 3, b"new key");
    Context::new(Suite::AesCm128HmacSha1_80, &keys(9))
        .protect_rtp(&mut from_peer)
        .unwrap();
    leg.unprotect_rtp(&mut from_peer).unwrap();
    assert_eq!(
        format!("{:?}", leg.keys()),
        "SrtpKeys { suite: AesCm128HmacSha1_80, .. }"
    );
}

/// The packet vectors libsrtp validates against (srtp_driver: the RFC 3711
/// B.3 master key, SSRC 0xcafebabe, SEQ 0x1234, ROC 0, 16 bytes of 0xab;
/// its SRTCP sender report carries index 1): our protect gives the same
/// bytes, our unprotect takes theirs.
#[test]
fn libsrtp_reference_packets() {
    let master = MasterKey {
        key: hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap(),
        salt: hex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap(),
    };
    let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
    let srtp_80 =
        hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let mut p = plain.clone();
    Context::new(Suite::AesCm128HmacSha1_80, &master)
        .protect_rtp(&mut p)
        .unwrap();
    assert_eq!(p, srtp_80);
    let mut p = plain.clone();
    Context::new(Suite::AesCm128HmacSha1_32, &master)
        .protect_rtp(&mut p)
        .unwrap();
    assert_eq!(
        p,
        srtp_80[..32],
        "the 32-bit tag is the 80-bit one cut short"
    );
    let mut p = srtp_80.clone();
    Context::new(Suite::AesCm128HmacSha1_80, &master)
        .unprotect_rtp(&mut p)
        .unwrap();
    assert_eq!(p, plain);

    let rtcp_plain = hex("81c8000bcafebabe abababababababababababababababab");
    let srtcp =
        hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut p = srtcp.clone();
    Context::new(Suite::AesCm128HmacSha1_80, &master)
        .unprotect_rtcp(&mut p)
        .unwrap();
    assert_eq!(p, rtcp_plain);
    // Our sender starts at index 0; its second packet is libsrtp's first.
    let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &master);
    tx.protect_rtcp(&mut rtcp_plain.clone()).unwrap();
    let mut p = rtcp_plain.clone();
    tx.protect_rtcp(&mut p).unwrap();
    assert_eq!(p, srtcp);
}
