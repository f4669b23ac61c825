//! Reading cookies from requests and responses with the cookie crate.

use cookie::Cookie;
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};

use crate::config::SessionCookie;

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
    /// The first cookie whose name is the app's session cookie.
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
    /// The name of the first pair dropped because another parser could
    /// read more cookies out of it (see [`is_loose`]).
    pub suspicious: Option<&'a str>,
}

/// Reads every `Cookie` field (HTTP/2 may split them, RFC 9113 §8.2.3) pair
/// by pair. A pair that is not UTF-8 or does not parse is dropped, not the
/// whole field: garbage never hides a session from the gate. So is a pair
/// that a looser parser than ours would split further ([`is_loose`]).
pub fn read<'a>(headers: &'a HeaderMap, session: &SessionCookie) -> Read<'a> {
    let mut read = Read {
        session: None,
        factor: None,
        forward: None,
        present: false,
        suspicious: None,
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
            if is_loose(pair, name, session) {
                read.suspicious = read.suspicious.or(cookie.name_raw());
                continue;
            }
            if name == crate::names::FACTOR_COOKIE || name == crate::names::PENDING_COOKIE {
                if name == crate::names::FACTOR_COOKIE && read.factor.is_none() {
                    read.factor = cookie.value_raw();
                }
                continue;
            }
            if session.matches(name) {
                if read.session.is_some() {
                    // A second session cookie: the app might read that one.
                    continue;
                }
                read.session = cookie.value_raw();
            } else if same_to_an_app(name, session) {
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

/// Whether a pair holds something that a common app-side parser splits
/// differently from RFC 6265, so that it could find a cookie in it that the
/// gate did not see (a session hidden inside another cookie's value).
///
/// RFC 6265 §4.2.1 has the client send `name=value` pairs joined by "; ",
/// with values of cookie-octets only (no whitespace, DQUOTE, comma,
/// semicolon or backslash) or a DQUOTE-wrapped run of them; §5.4 has user
/// agents send what they stored, and servers parse leniently. Where they
/// split, besides `;`:
/// - Python's `http.cookies.SimpleCookie` (Django before 1.x's own parser,
///   Flask via werkzeug's old versions, many small apps) ends an unquoted
///   value at whitespace and starts a new pair after it, reads a quoted
///   value with backslash escapes across `;`, and allows `,` inside values;
/// - Rack before 2.x and Java servlet containers in RFC 2109 mode split on
///   `,` as well as `;`;
/// - PHP reads `.`, ` ` and `[` in names as `_` (see [`same_to_an_app`]).
///
/// So a pair is dropped when its name or value contains whitespace, `,`,
/// `\` or a `"` other than around a whole value, or when its value holds
/// the session cookie's name followed by `=`.
fn is_loose(pair: &str, name: &str, session: &SessionCookie) -> bool {
    let loose_byte = |b: &u8| b.is_ascii_whitespace() || matches!(b, b',' | b'\\' | b'"');
    if name.bytes().any(|b| loose_byte(&b)) {
        return true;
    }
    let value = pair.split_once('=').map_or("", |(_, v)| v.trim());
    let inner = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(quoted) => quoted,
        None => value,
    };
    if inner.bytes().any(|b| loose_byte(&b)) {
        return true;
    }
    let stem = session.stem().as_bytes();
    inner
        .as_bytes()
        .windows(stem.len() + usize::from(!session.is_prefix()))
        .any(|w| {
            w[..stem.len()].eq_ignore_ascii_case(stem)
                && (session.is_prefix() || w[stem.len()] == b'=')
        })
}

/// Whether an app could take cookie `name` for the session cookie: equal
/// ignoring ASCII case, after percent-decoding, with `.`, ` ` and `[` read
/// as `_` (PHP's rewriting of cookie names); for a prefix, starting so.
fn same_to_an_app(name: &str, session: &SessionCookie) -> bool {
    // Without allocating: this runs for every cookie pair of every request.
    fn canon(s: &str) -> impl Iterator<Item = u8> + '_ {
        percent_encoding::percent_decode(s.as_bytes()).map(|b| match b {
            b'.' | b' ' | b'[' => b'_',
            other => other.to_ascii_lowercase(),
        })
    }
    let stem = session.stem();
    // Cheap test first: look-alikes are about as long as the real name.
    if name.len() < stem.len() {
        return false;
    }
    match session {
        SessionCookie::Exact(_) => canon(name).eq(canon(stem)),
        SessionCookie::Prefix(_) => {
            let mut n = canon(name);
            canon(stem).all(|b| n.next() == Some(b))
        }
    }
}

/// Whether the response deletes the cookie `name` (RFC 6265 §3.1: an empty
/// value, `Max-Age` ≤ 0, or an `Expires` in the past).
pub fn response_deletes(headers: &HeaderMap, session: &SessionCookie) -> bool {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .filter(|c| session.matches(c.name()))
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

    fn exact(name: &str) -> SessionCookie {
        SessionCookie::Exact(name.into())
    }

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
        let r = read(&h, &exact("sessionid"));
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
        let r = read(&h, &exact("sessionid"));
        assert_eq!(r.session, Some("real"));
        assert_eq!(r.forward.unwrap(), "sessionid=real");
    }

    #[test]
    fn look_alikes_of_the_session_cookie_never_reach_the_app() {
        let h = req(&["SESSIONID=a; %73essionid=b; other=d"]);
        let r = read(&h, &exact("sessionid"));
        assert_eq!(r.session, None);
        let h2 = req(&["session_id=real; session.id=fake; session id=fake"]);
        let r2 = read(&h2, &exact("session_id"));
        assert_eq!(r2.session, Some("real"));
        assert_eq!(r2.forward.unwrap(), "session_id=real");
        assert_eq!(r.forward.unwrap(), "other=d");
    }

    #[test]
    fn pairs_a_looser_parser_could_split_further_are_dropped_and_named() {
        for (field, dropped) in [
            ("a=1 sessionid=S", "a"),
            ("a=1, sessionid=S", "a"),
            ("a=1,b=2", "a"),
            ("a=x\\y", "a"),
            ("a=\"half", "a"),
            ("a=\"x\"y\"", "a"),
            ("a=xsessionid=S", "a"),
            ("a=x%20SESSIONID=S", "a"),
        ] {
            let h = req(&[field]);
            let r = read(&h, &exact("sessionid"));
            assert_eq!(r.suspicious, Some(dropped), "{field}");
            assert_eq!(r.session, None, "{field}");
            assert!(r.forward.is_none(), "{field}: nothing forwarded");
        }
        // Plain RFC 6265 values, quoted ones included, pass untouched.
        let h = req(&["a=\"quoted\"; b=x.y-z_%41; sessionid=S; c="]);
        let r = read(&h, &exact("sessionid"));
        assert_eq!(r.suspicious, None);
        assert_eq!(r.session, Some("S"));
        assert_eq!(
            r.forward.unwrap(),
            "a=\"quoted\"; b=x.y-z_%41; sessionid=S; c="
        );
    }

    #[test]
    fn a_session_cookie_pattern_takes_the_first_matching_name_and_drops_the_others() {
        let pattern = SessionCookie::Prefix("wordpress_logged_in_".into());
        let h = req(&[
            "wordpress_test_cookie=x; wordpress_logged_in_abc=alice; wordpress_logged_in_def=bob; WORDPRESS_LOGGED_IN_x=eve",
        ]);
        let r = read(&h, &pattern);
        assert_eq!(r.session, Some("alice"));
        assert_eq!(
            r.forward.unwrap(),
            "wordpress_test_cookie=x; wordpress_logged_in_abc=alice"
        );
        // The bare prefix is no session, and a value naming it is loose.
        let h = req(&["wordpress_logged_in_=x; a=wordpress_logged_in_abc"]);
        let r = read(&h, &pattern);
        assert_eq!(r.session, None);
        assert_eq!(r.suspicious, Some("a"));
    }

    #[test]
    fn recognises_a_deleted_session_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=; Path=/; Max-Age=0"),
        );
        assert!(response_deletes(&h, &exact("sessionid")));
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=abc; Path=/"),
        );
        assert!(!response_deletes(&h, &exact("sessionid")));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert!(response_deletes(&h, &exact("sessionid")));
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
