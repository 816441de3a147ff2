//! libFuzzer target: `rampart_fuzzing::nutcracker_yml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::nutcracker_yml(data));
