//! Fuzz `parse_datagram`: no panics, and accepted messages round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::parse_datagram_roundtrip(data);
});
