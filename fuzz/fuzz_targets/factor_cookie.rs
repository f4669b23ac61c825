//! The second-factor cookie decoder (`factor::check`) on arbitrary cookie
//! values, and the issue → check round trip.
//!
//! Properties: `check` never panics on any value; a cookie that `issue` made
//! checks back to its user, and only for its own app and session.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use otpgate::gate::factor;
use otpgate::keys::Keys;
use otpgate::store::{Clock, SystemClock};

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::derive(&[7u8; 64]))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    let session = [1u8; 32];
    let now = SystemClock.now_ms() / 1000;

    // Arbitrary input as a cookie value: any answer is fine, no panic.
    let _ = factor::check(keys, value, 0, &session, now);
    let _ = factor::check(keys, value, usize::MAX, &session, 0);
    let _ = factor::check(keys, value, 0, &session, u64::MAX);

    // Round trip, with the input as the user name (tabs and all).
    let salt = data
        .iter()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
    let app = (salt % 8) as usize;
    // Within the range the configuration allows (60 s to 90 days).
    let lifetime = Duration::from_secs(60 + salt % (90 * 86400 - 60));
    let mut own = [0u8; 32];
    own[..8].copy_from_slice(&salt.to_le_bytes());
    let cookie = factor::issue(keys, app, value, &own, (now, lifetime), salt & 1 == 1);
    assert_eq!(
        factor::check(keys, cookie.value(), app, &own, now).as_deref(),
        Some(value),
        "a fresh cookie must check back to its user"
    );
    assert_eq!(
        factor::check(keys, cookie.value(), app + 1, &own, now),
        None,
        "a cookie must not pass for another app"
    );
    let mut other = own;
    other[0] ^= 1;
    assert_eq!(
        factor::check(keys, cookie.value(), app, &other, now),
        None,
        "a cookie must not pass for another session"
    );
    assert_eq!(
        factor::check(
            keys,
            cookie.value(),
            app,
            &own,
            now + lifetime.as_secs() + 1
        ),
        None,
        "a cookie must not pass after its lifetime"
    );
});
