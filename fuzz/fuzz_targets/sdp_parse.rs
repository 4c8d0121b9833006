//! Fuzz target: see `checks::sdp_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::sdp_roundtrip(data);
});
