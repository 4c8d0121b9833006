//! Fuzz target: see `checks::srtp_unprotect`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::srtp_unprotect(data);
});
