//! Fuzz target: see `checks::dtmf_payloads`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::dtmf_payloads(data);
});
