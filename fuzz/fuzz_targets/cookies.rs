//! Reading the request's cookies (`cookies::read`) from arbitrary `Cookie`
//! fields.
//!
//! Input: the bytes are split at '\n' into `Cookie` fields; a field that is
//! not a valid header value is skipped, as hyper would never hand it over.
//!
//! Properties: no panic; the field forwarded to the app reads back to the
//! same session (so the gate and the app see one session), reads back to
//! itself, and never carries the gateway's own cookies.

#![no_main]

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use libfuzzer_sys::fuzz_target;
use otpgate::http::cookies;

const SESSION: &str = "sessionid";
const OURS: [&str; 2] = ["otpgate", "otpgate_pending"];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for field in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(field) {
            headers.append(COOKIE, v);
        }
    }
    let read = cookies::read(&headers, SESSION);
    let Some(forward) = read.forward else {
        return;
    };
    let text = std::str::from_utf8(forward.as_bytes()).expect("the forwarded field is UTF-8");
    for pair in text.split(';') {
        let pair = pair.trim();
        let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
        assert!(
            !OURS.contains(&name) && !pair.starts_with("otpgate="),
            "forwarded {text:?} carries the gateway's cookie {pair:?}"
        );
    }
    let mut again = HeaderMap::new();
    again.append(COOKIE, forward.clone());
    let reread = cookies::read(&again, SESSION);
    assert_eq!(
        reread.session, read.session,
        "the app would read another session out of {text:?}"
    );
    assert_eq!(reread.factor, None, "forwarded {text:?} carries otpgate");
    assert_eq!(
        reread.forward.as_ref(),
        Some(&forward),
        "forwarding {text:?} is not stable"
    );
});
