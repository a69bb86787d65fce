#![no_main]
// See floe_fuzz_checks::load for what this target feeds the runtime and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| floe_fuzz_checks::load(data));
