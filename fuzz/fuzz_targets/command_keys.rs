//! libFuzzer target: `rampart_fuzzing::command_keys`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_fuzzing::command_keys(data));
