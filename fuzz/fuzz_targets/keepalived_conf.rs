//! libFuzzer target: `rampart_fuzzing::keepalived_conf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::keepalived_conf(data));
