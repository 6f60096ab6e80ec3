#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::sql_analyze(data);
});
