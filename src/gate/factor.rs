//! The second-factor cookie: proof that this browser entered a correct code
//! for this app session. It is encrypted and authenticated (AES-256-GCM,
//! the cookie crate's private jar), so checking it needs no server state:
//! one decrypt and one compare on the hot path.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use crate::keys::{Keys, hex};

use crate::names::FACTOR_COOKIE as COOKIE_NAME;
/// Bytes of the session hash kept in the cookie: 128 bits is beyond guessing.
const SESSION_TAG_LEN: usize = 16;
const VERSION: &str = "v1";

/// Builds the encrypted cookie for `user`, bound to app `app` and to the
/// session whose keyed hash is `session`, issued at `now` (Unix seconds,
/// from the state's clock) for `lifetime`.
pub fn issue(
    keys: &Keys,
    app: usize,
    user: &str,
    session: &[u8; 32],
    (now, lifetime): (u64, Duration),
    secure: bool,
) -> Cookie<'static> {
    let iat = now;
    let exp = iat + lifetime.as_secs();
    let tag = hex(&session[..SESSION_TAG_LEN]);
    let value = format!("{VERSION}\t{app}\t{iat}\t{exp}\t{tag}\t{user}");
    let cookie = Cookie::build((COOKIE_NAME, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(lifetime.as_secs() as i64))
        .build();
    keys.seal_cookie(cookie)
}

/// What a valid second-factor cookie proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The user the cookie was issued to.
    pub user: String,
    /// Seconds since the Unix epoch after which it proves nothing.
    pub expires: u64,
}

/// What the cookie proves, if it is authentic, unexpired, for this app and
/// for this very session; `None` otherwise.
pub fn check(keys: &Keys, value: &str, app: usize, session: &[u8; 32], now: u64) -> Option<Proof> {
    let plain = keys.open_cookie(COOKIE_NAME, value)?;
    let mut fields = plain.splitn(6, '\t');
    if fields.next()? != VERSION {
        return None;
    }
    let cookie_app: usize = fields.next()?.parse().ok()?;
    let _iat: u64 = fields.next()?.parse().ok()?;
    let exp: u64 = fields.next()?.parse().ok()?;
    let tag = fields.next()?;
    let user = fields.next()?;
    let expected = hex(&session[..SESSION_TAG_LEN]);
    let same_session: bool = tag.as_bytes().ct_eq(expected.as_bytes()).into();
    (cookie_app == app && now < exp && same_session).then(|| Proof {
        user: user.to_string(),
        expires: exp,
    })
}

/// A cookie that makes the browser forget ours (RFC 6265 §3.1: an expiry in the past).
pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::build((name, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .build();
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any moment: the cookie carries its own times.
    const NOW: u64 = 1_800_000_000;

    fn keys() -> Keys {
        Keys::derive(&[9u8; 64])
    }

    #[test]
    fn a_cookie_is_valid_only_for_its_app_session_and_lifetime() {
        let k = keys();
        let session = [1u8; 32];
        let c = issue(
            &k,
            0,
            "alice",
            &session,
            (NOW, Duration::from_secs(60)),
            true,
        );
        assert!(c.secure().unwrap_or(false) && c.http_only().unwrap_or(false));
        let now = NOW;
        assert_eq!(
            check(&k, c.value(), 0, &session, now)
                .map(|p| p.user)
                .as_deref(),
            Some("alice")
        );
        assert_eq!(check(&k, c.value(), 1, &session, now), None, "another app");
        assert_eq!(
            check(&k, c.value(), 0, &[2u8; 32], now),
            None,
            "another session"
        );
        assert_eq!(check(&k, c.value(), 0, &session, now + 61), None, "expired");
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_refused() {
        let k = keys();
        let session = [1u8; 32];
        let c = issue(
            &k,
            0,
            "alice",
            &session,
            (NOW, Duration::from_secs(60)),
            false,
        );
        let mut v = c.value().to_string();
        let last = v.pop().unwrap();
        v.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(check(&k, &v, 0, &session, NOW), None);
        let other = Keys::derive(&[8u8; 64]);
        assert_eq!(check(&other, c.value(), 0, &session, NOW), None);
        assert_eq!(check(&k, "garbage\u{0}\u{ffff}", 0, &session, NOW), None);
    }
}
