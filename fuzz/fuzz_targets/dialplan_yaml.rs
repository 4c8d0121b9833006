//! Fuzz target: see `checks::dialplan_yaml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::dialplan_yaml(data);
});
