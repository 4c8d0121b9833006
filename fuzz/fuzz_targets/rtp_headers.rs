//! Fuzz target: see `checks::rtp_headers`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::rtp_headers(data);
});
