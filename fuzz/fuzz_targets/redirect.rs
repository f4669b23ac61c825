//! The `rd` validator (`redirect::sanitize`).
//!
//! Properties: the answer is the input or "/"; when it is the input, it is a
//! path on this site: it starts with '/', not with "//" or "/\", and holds
//! no control character (C0 or DEL: what browsers strip or split headers on)
//! and no backslash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate::web::redirect::sanitize;

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else {
        return;
    };
    let out = sanitize(rd);
    assert!(out == rd || out == "/", "{rd:?} became {out:?}");
    if out == rd {
        assert!(out.starts_with('/'), "accepted {rd:?}: not a path");
        assert!(
            !out.starts_with("//") && !out.starts_with("/\\"),
            "accepted {rd:?}: a network-path reference"
        );
        assert!(
            !out.bytes().any(|b| b.is_ascii_control()),
            "accepted {rd:?}: a control character"
        );
        assert!(!out.contains('\\'), "accepted {rd:?}: a backslash");
        // The percent-decoded start must not become "//" or "/\" either.
        let head = percent_decode(out.as_bytes().get(..12).unwrap_or(out.as_bytes()));
        assert!(
            !(head.starts_with(b"//") || head.starts_with(b"/\\")),
            "accepted {rd:?}: a network-path reference once decoded"
        );
    }
});

/// `%XX` decoding, written independently of the product's.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
