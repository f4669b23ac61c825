//! Reading cookies from requests and responses with the cookie crate.

use cookie::Cookie;
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};

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

/// The raw values of several cookies, in one pass over the `Cookie` fields.
pub fn get_many<'a, const N: usize>(
    headers: &'a HeaderMap,
    names: [&str; N],
) -> [Option<&'a str>; N] {
    let mut found = [None; N];
    let all = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok);
    for c in all {
        if let Some(i) = names.iter().position(|n| *n == c.name())
            && found[i].is_none()
        {
            found[i] = c.value_raw();
        }
    }
    found
}

/// Removes the named cookies from the `Cookie` fields (joining them into
/// one), so the upstream never sees the gateway's own cookies.
pub fn strip(headers: &mut HeaderMap, names: &[&str]) {
    let mut kept = String::new();
    for pair in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
    {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
        if pair.is_empty() || names.contains(&name) {
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept)
    {
        headers.insert(COOKIE, v);
    }
}

/// Joins several `Cookie` fields into one: HTTP/2 may split cookies into
/// separate fields, and RFC 9113 §8.2.3 requires them joined with "; "
/// before they go on over HTTP/1.1, where many apps read only one field.
pub fn merge_fields(headers: &mut HeaderMap) {
    let mut fields = headers.get_all(COOKIE).iter();
    if fields.next().is_none() || fields.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(COOKIE, v);
    }
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
    fn reads_several_cookies_in_one_pass_taking_the_first_of_each() {
        let h = req(&["a=1; sessionid=abc; sessionid=second", "otpgate=xyz"]);
        assert_eq!(
            get_many(&h, ["sessionid", "otpgate", "nope"]),
            [Some("abc"), Some("xyz"), None]
        );
    }

    #[test]
    fn strips_only_the_named_cookies() {
        let mut h = req(&["a=1; otpgate=secret", "otpgate_pending=x; b=2"]);
        strip(&mut h, &["otpgate", "otpgate_pending"]);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2");
    }

    #[test]
    fn split_cookie_fields_are_joined_into_one() {
        let mut h = req(&["a=1", "b=2; c=3"]);
        merge_fields(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2; c=3");
        let mut single = req(&["a=1"]);
        merge_fields(&mut single);
        assert_eq!(single[COOKIE], "a=1");
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
