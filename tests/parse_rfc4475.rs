//! RFC 4475 torture messages at the parser level, checked against
//! `../shared/conformance/rfc4475/MANIFEST.tsv`:
//!
//! - `valid` messages parse;
//! - `invalid` messages fail with the status the manifest names (400/505),
//!   responses that must be dropped fail to parse, and "400 or accept"
//!   cases may do either;
//! - `semantic` cases whose answer is a proxy decision (415, 416, 420, 483,
//!   401/403, 406) must parse, so the proxy can make it; those whose answer
//!   is 400 must fail with 400.
//!
//! The fuzz-target properties (`fuzz/checks.rs`) also run here over every
//! torture message and each of its truncations, so `cargo test` exercises
//! them without cargo-fuzz.
#![allow(clippy::disallowed_methods)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

use bytes::Bytes;
use callgate::sip::message::{Limits, parse_datagram};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475")
}

/// One manifest row: file, class, expected handling.
struct Case {
    file: String,
    class: String,
    expect: String,
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "bad manifest row {l:?}");
            Case {
                file: cols[0].to_string(),
                class: cols[2].to_string(),
                expect: cols[3].to_string(),
            }
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What the parser must do with a manifest row.
#[derive(Debug, PartialEq)]
enum Want {
    /// Parse successfully.
    Parse,
    /// Fail, answering with this status.
    Fail(u16),
    /// Fail (a response: dropped).
    Drop,
    /// Either parse, or fail with this status.
    Either(u16),
}

fn want(c: &Case) -> Want {
    let e = c.expect.as_str();
    let parser_code = [400u16, 505]
        .into_iter()
        .find(|code| e.contains(&code.to_string()));
    let may_accept = e.contains("accept") || e.contains("forward") || e.contains("501");
    if c.class == "valid" {
        return Want::Parse;
    }
    if e.starts_with("drop") {
        return if c.class == "invalid" {
            Want::Drop
        } else {
            // A well-formed response a proxy drops for what its Via says
            // (RFC 4475 §3.3.10): parsing it is fine.
            Want::Parse
        };
    }
    match (parser_code, may_accept) {
        (Some(code), false) => Want::Fail(code),
        (Some(code), true) => Want::Either(code),
        (None, _) => Want::Parse,
    }
}

#[test]
fn manifest_covers_every_file() {
    let listed: Vec<String> = manifest().into_iter().map(|c| c.file).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk);
    assert_eq!(listed.len(), 49);
}

#[test]
fn every_torture_message_gets_the_manifest_verdict() {
    let limits = Limits::default();
    let mut failures = Vec::new();
    for c in manifest() {
        let w = want(&c);
        let got = parse_datagram(Bytes::from(read(&c.file)), &limits);
        let ok = match (&w, &got) {
            (Want::Parse, Ok(_)) => true,
            (Want::Fail(code) | Want::Either(code), Err(f)) => {
                f.looks_like_request && f.error.status().map(|s| s.0) == Some(*code)
            }
            (Want::Either(_), Ok(_)) => true,
            (Want::Drop, Err(f)) => !f.looks_like_request,
            _ => false,
        };
        if !ok {
            let got = match got {
                Ok(_) => "parsed".to_string(),
                Err(f) => format!("{:?} ({:?})", f.error, f.error.status()),
            };
            failures.push(format!("{}: want {w:?}, got {got}", c.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn strict_verdicts_are_as_specified() {
    // Spot checks that pin the classification itself.
    let by_file = |f: &str| manifest().into_iter().find(|c| c.file == f).unwrap();
    assert_eq!(want(&by_file("badvers.dat")), Want::Fail(505));
    assert_eq!(want(&by_file("clerr.dat")), Want::Fail(400));
    assert_eq!(want(&by_file("insuf.dat")), Want::Fail(400));
    assert_eq!(want(&by_file("bigcode.dat")), Want::Drop);
    assert_eq!(want(&by_file("zeromf.dat")), Want::Parse);
    assert_eq!(want(&by_file("bext01.dat")), Want::Parse);
    assert_eq!(want(&by_file("trws.dat")), Want::Either(400));
    assert_eq!(want(&by_file("badbranch.dat")), Want::Parse);
}

#[test]
fn fuzz_properties_hold_on_torture_messages_and_truncations() {
    for c in manifest() {
        let data = read(&c.file);
        checks::parse_datagram_roundtrip(&data);
        checks::stream_framing(&data);
        for cut in 0..data.len() {
            checks::parse_datagram_roundtrip(&data[..cut]);
            checks::stream_framing(&data[cut..]);
        }
        // Two copies back to back on a stream, split at every point via the
        // first byte: the framing must not depend on where reads end.
        let mut two = data.clone();
        two.extend_from_slice(&data);
        checks::stream_framing(&two);
    }
}
