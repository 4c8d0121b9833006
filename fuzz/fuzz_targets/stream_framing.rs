//! Fuzz the stream framer: no panics, framing independent of read splits.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::stream_framing(data);
});
