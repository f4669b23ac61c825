//! The configuration loader (`config::parse`) on arbitrary text.
//!
//! Property: no panic; errors are fine, and an error's message formats.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match otpgate::config::parse(text, "fuzz.toml", Path::new("/nonexistent")) {
        Ok(settings) => {
            let _ = format!("{settings:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
