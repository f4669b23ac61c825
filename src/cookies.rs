//! Reading cookies from requests and responses with the cookie crate.

use cookie::Cookie;
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};

use crate::{factor, otp};

/// The raw value of the first cookie called `name`, across every `Cookie`
/// field (HTTP/2 may split them, RFC 9113 §8.2.3). Fields that are not
/// UTF-8 or do not parse are skipped: garbage reads as "no such cookie".
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// The request's cookies as the gate understood them. The app is sent
/// exactly `forward`, never the raw fields, so the gate and the app cannot
/// read different sessions out of one request.
pub struct Read<'a> {
    /// The first cookie named exactly like the app's session cookie.
    pub session: Option<&'a str>,
    /// The first `otpgate` cookie.
    pub factor: Option<&'a str>,
    /// The one `Cookie` field for the app: every well-formed pair in order,
    /// without the gateway's own cookies and without any other cookie an app
    /// might take for its session (a duplicate, or the name in another case,
    /// percent-encoded, or with `.` for `_` as PHP reads it).
    pub forward: Option<HeaderValue>,
    /// Whether the request had any `Cookie` field at all.
    pub present: bool,
}

/// Reads every `Cookie` field (HTTP/2 may split them, RFC 9113 §8.2.3) pair
/// by pair. A pair that is not UTF-8 or does not parse is dropped, not the
/// whole field: garbage never hides a session from the gate.
pub fn read<'a>(headers: &'a HeaderMap, session_name: &str) -> Read<'a> {
    let mut read = Read {
        session: None,
        factor: None,
        forward: None,
        present: false,
    };
    let mut forward = String::new();
    for field in headers.get_all(COOKIE) {
        read.present = true;
        for raw in field.as_bytes().split(|b| *b == b';') {
            let Some(pair) = std::str::from_utf8(raw).ok().map(str::trim) else {
                continue;
            };
            let Ok(cookie) = Cookie::parse(pair) else {
                continue;
            };
            let name = cookie.name();
            if name == factor::COOKIE_NAME || name == otp::PENDING_COOKIE {
                if name == factor::COOKIE_NAME && read.factor.is_none() {
                    read.factor = cookie.value_raw();
                }
                continue;
            }
            if name == session_name && read.session.is_none() {
                read.session = cookie.value_raw();
            } else if same_to_an_app(name, session_name) {
                continue;
            }
            if !forward.is_empty() {
                forward.push_str("; ");
            }
            forward.push_str(pair);
        }
    }
    if !forward.is_empty() {
        read.forward = HeaderValue::from_str(&forward).ok();
    }
    read
}

/// Whether an app could take cookie `name` for `session`: equal ignoring
/// ASCII case, after percent-decoding, with `.`, ` ` and `[` read as `_`
/// (PHP's rewriting of cookie names).
fn same_to_an_app(name: &str, session: &str) -> bool {
    // Without allocating: this runs for every cookie pair of every request.
    fn canon(s: &str) -> impl Iterator<Item = u8> + '_ {
        percent_encoding::percent_decode(s.as_bytes()).map(|b| match b {
            b'.' | b' ' | b'[' => b'_',
            other => other.to_ascii_lowercase(),
        })
    }
    // Cheap test first: look-alikes are about as long as the real name.
    name.len() >= session.len() && canon(name).eq(canon(session))
}

/// Whether the response deletes the cookie `name` (RFC 6265 §3.1: an empty
/// value, `Max-Age` ≤ 0, or an `Expires` in the past).
pub fn response_deletes(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .filter(|c| c.name() == name)
        .any(|c| {
            let expired = c
                .expires_datetime()
                .is_some_and(|t| t <= cookie::time::OffsetDateTime::now_utc());
            let zero_age = c.max_age().is_some_and(|a| a.whole_seconds() <= 0);
            c.value().is_empty() || expired || zero_age
        })
}

/// Drops `Set-Cookie` fields from the upstream that would overwrite the
/// gateway's own cookies.
pub fn remove_set_cookies_named(headers: &mut HeaderMap, names: &[&str]) {
    let clashes = |v: &HeaderValue| {
        v.to_str()
            .ok()
            .and_then(|s| Cookie::parse(s).ok())
            .is_some_and(|c| names.contains(&c.name()))
    };
    if !headers.get_all(SET_COOKIE).iter().any(clashes) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !clashes(v))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn finds_a_cookie_across_split_fields_and_ignores_garbage() {
        let h = req(&["a=1; sessionid=abc", "otpgate=xyz"]);
        assert_eq!(get(&h, "sessionid"), Some("abc"));
        assert_eq!(get(&h, "otpgate"), Some("xyz"));
        assert_eq!(get(&h, "missing"), None);
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"sessionid=\xff\xfe").unwrap(),
        );
        assert_eq!(get(&h, "sessionid"), None);
    }

    #[test]
    fn the_app_gets_one_field_with_the_session_the_gate_read_and_nothing_of_ours() {
        let h = req(&[
            "a=1; sessionid=first; otpgate=x",
            "sessionid=second; otpgate_pending=y; b=2",
        ]);
        let r = read(&h, "sessionid");
        assert_eq!(r.session, Some("first"));
        assert_eq!(r.factor, Some("x"));
        assert_eq!(r.forward.unwrap(), "a=1; sessionid=first; b=2");
    }

    #[test]
    fn a_garbage_pair_does_not_hide_the_session_and_is_not_forwarded() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"sessionid=real; x=\xe9; y").unwrap(),
        );
        let r = read(&h, "sessionid");
        assert_eq!(r.session, Some("real"));
        assert_eq!(r.forward.unwrap(), "sessionid=real");
    }

    #[test]
    fn look_alikes_of_the_session_cookie_never_reach_the_app() {
        let h = req(&["SESSIONID=a; %73essionid=b; other=d"]);
        let r = read(&h, "sessionid");
        assert_eq!(r.session, None);
        let h2 = req(&["session_id=real; session.id=fake; session id=fake"]);
        let r2 = read(&h2, "session_id");
        assert_eq!(r2.session, Some("real"));
        assert_eq!(r2.forward.unwrap(), "session_id=real");
        assert_eq!(r.forward.unwrap(), "other=d");
    }

    #[test]
    fn recognises_a_deleted_session_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=; Path=/; Max-Age=0"),
        );
        assert!(response_deletes(&h, "sessionid"));
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=abc; Path=/"),
        );
        assert!(!response_deletes(&h, "sessionid"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert!(response_deletes(&h, "sessionid"));
    }

    #[test]
    fn upstream_cannot_overwrite_the_gateway_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("otpgate=forged; Path=/"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("theme=dark"));
        remove_set_cookies_named(&mut h, &["otpgate"]);
        assert_eq!(h.get_all(SET_COOKIE).iter().count(), 1);
        assert_eq!(h[SET_COOKIE], "theme=dark");
    }
}
