//! libFuzzer target: `rampart_fuzzing::reply_framer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::reply_framer(data));
