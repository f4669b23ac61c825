//! The header rules' unit tests: hop-by-hop removal, forwarded fields, the client's view.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn removes_hop_by_hop_fields_and_those_named_in_connection() {
    let mut h = map(&[
        ("connection", "close, X-Secret"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "trailers"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1);
    assert!(h.contains_key("accept"));

    let mut h = map(&[
        ("connection", "Keep-Alive , x-secret"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut h);
    assert_eq!(h.keys().collect::<Vec<_>>(), ["accept"]);
}

#[test]
fn hop_by_hop_removal_covers_every_way_of_naming_fields() {
    let after = |pairs: &[(&str, &str)]| {
        let mut h = map(pairs);
        remove_hop_by_hop(&mut h);
        let mut names: Vec<String> = h.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    // A fixed-list field without any Connection field.
    assert_eq!(after(&[("te", "trailers"), ("accept", "*/*")]), ["accept"]);
    // Nothing hop-by-hop: nothing removed.
    assert_eq!(after(&[("accept", "*/*"), ("x-a", "1")]), ["accept", "x-a"]);
    // Mixed case, spaces, empty tokens, a fixed-list name listed again.
    assert_eq!(
        after(&[
            ("connection", ",, X-A , ,TE"),
            ("x-a", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]),
        ["accept"]
    );
    // `Connection: close` names the reserved `Close` field (RFC 9110 §16.3.2.2).
    assert_eq!(
        after(&[("connection", "close"), ("close", "x"), ("accept", "*/*")]),
        ["accept"]
    );
}

#[test]
fn connection_cannot_remove_host_cookie_or_content_length() {
    let mut h = map(&[
        ("connection", "host, cookie, content-length"),
        ("host", "a"),
        ("cookie", "c=1"),
        ("content-length", "0"),
    ]);
    remove_hop_by_hop(&mut h);
    assert_eq!(h.len(), 3);
}

#[test]
fn only_a_websocket_upgrade_is_passed_on() {
    let req = |proto: &str| {
        Request::get("/")
            .header("connection", "Upgrade")
            .header("upgrade", proto)
            .body(())
            .unwrap()
    };
    assert!(upgrade_request(&req("websocket")).is_some());
    assert!(upgrade_request(&req("h2c")).is_none());
    assert!(upgrade_request(&req("tls/1.2")).is_none());
}

#[test]
fn removes_client_sent_otpgate_headers_of_any_case() {
    let mut h = map(&[
        ("X-Otpgate-User", "admin"),
        ("x-otpgate-anything", "1"),
        ("x-other", "1"),
    ]);
    remove_otpgate_headers(&mut h);
    assert_eq!(h.len(), 1);
}

#[test]
fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let h = map(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("host", "a.example"),
    ]);
    let v = ClientView::new(
        &h,
        None,
        &Peer::new("203.0.113.9".parse().unwrap()),
        false,
        &["10.0.0.0/8".parse().unwrap()],
    );
    assert_eq!(v.ip.to_string(), "203.0.113.9");
    assert!(!v.https);
    let mut out = h.clone();
    set_forwarded(&mut out, &v);
    assert_eq!(out["x-forwarded-for"], "203.0.113.9");
    assert_eq!(out["x-forwarded-proto"], "http");
}

#[test]
fn the_client_is_the_first_untrusted_hop_behind_trusted_proxies() {
    let h = map(&[
        ("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2"),
        ("x-forwarded-proto", "https"),
    ]);
    let v = ClientView::new(
        &h,
        Some("a.example"),
        &Peer::new("10.0.0.1".parse().unwrap()),
        false,
        &["10.0.0.0/8".parse().unwrap()],
    );
    assert_eq!(v.ip.to_string(), "198.51.100.7");
    assert!(v.https);
    let mut out = h.clone();
    set_forwarded(&mut out, &v);
    assert_eq!(
        out["x-forwarded-for"],
        "6.6.6.6, 198.51.100.7, 10.0.0.2, 10.0.0.1"
    );
}

#[test]
fn hosts_lose_their_port_but_keep_ipv6_brackets() {
    assert_eq!(host_without_port("a.example:8443"), "a.example");
    assert_eq!(host_without_port("a.example"), "a.example");
    assert_eq!(host_without_port("[::1]:8000"), "[::1]");
}

#[test]
fn the_access_log_s_client_is_the_view_s_client() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let h = map(&[("x-forwarded-for", "203.0.113.7, 10.0.0.3")]);
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let view = ClientView::new(&h, None, &Peer::new(peer), false, &trusted);
    assert_eq!(client_ip(&h, peer, true, &trusted), view.ip);
    assert_eq!(view.ip, "203.0.113.7".parse::<IpAddr>().unwrap());
    let stranger: IpAddr = "198.51.100.1".parse().unwrap();
    assert_eq!(
        client_ip(&h, stranger, false, &trusted),
        stranger,
        "an untrusted peer's X-Forwarded-For is not read"
    );
}
