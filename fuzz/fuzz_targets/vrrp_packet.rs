//! libFuzzer target: `rampart_fuzzing::vrrp_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::vrrp_packet(data));
