//! libFuzzer target: `rampart_fuzzing::request_framer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::request_framer(data));
