//! The proxy itself: what reaches the app and what comes back, for API
//! clients, bypass paths, failing upstreams, big bodies, WebSockets,
//! header hygiene, cookie binding, host matching, HTTP/2 and TLS.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

const MIB_64: u64 = 64 * 1024 * 1024;

/// The headers the app saw, from `/echo`'s JSON answer.
async fn echoed(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "/echo reached the app");
    let seen: Value = res.json().await.unwrap();
    seen["headers"].clone()
}

/// Whether a `Set-Cookie` line carries the `Secure` attribute.
fn is_secure(set_cookie: &str) -> bool {
    set_cookie
        .split(';')
        .skip(1)
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

/// A client that sends every request to the gateway whatever host the URL names.
fn client_resolving(env: &Env, hosts: &[&str]) -> reqwest::Client {
    let mut b = client_builder().redirect(reqwest::redirect::Policy::none());
    for h in hosts {
        b = b.resolve(h, env.addr);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_fetch_or_a_post_without_second_factor_gets_a_json_401_with_the_code_page_url_and_never_reaches_the_app()
 {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");

    let res = client
        .get(env.url("/reports?year=2026"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        res.headers().contains_key("www-authenticate"),
        "a 401 carries a challenge"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "second_factor_required", "verify_url": "/.otpgate/verify?rd=%2Freports%3Fyear%3D2026"})
    );

    // A POST is never a navigation, even when it says it accepts HTML: a
    // redirect would silently drop its body.
    let res = client
        .post(env.url("/reports"))
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .form(&[("title", "Q1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(body["verify_url"], "/.otpgate/verify?rd=%2Freports");

    assert_eq!(
        env.app.hits_on("/reports"),
        0,
        "the app never saw the gated requests"
    );
}

#[tokio::test]
async fn bypass_paths_pass_for_an_unverified_session_but_dot_segments_out_of_them_are_gated() {
    let env = Env::start().await;
    let (client, session) = env.logged_in("alice");

    let res = navigate(&client, &env.url("/static/app.css")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "app page /static/app.css");
    let res = navigate(&client, &env.url("/login")).await;
    assert_eq!(res.status(), 200);
    let res = client
        .post(env.url("/login"))
        .form(&[("user", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a login form post is not gated");
    assert_eq!(env.app.hits_on("/static/app.css"), 1);
    assert_eq!(env.app.hits_on("/login"), 2);

    // Sent raw: an HTTP client library would normalise these paths away.
    let host = env.addr.to_string();
    let cookie = format!("sessionid={session}");
    for target in [
        "/static/../reports",
        "/static/%2e%2e/reports",
        "/static/%2E%2E/reports",
        "/static/..%2freports",
    ] {
        let (status, headers, _) = raw_request(
            env.addr,
            "GET",
            target,
            &[
                ("host", &host),
                ("cookie", &cookie),
                ("accept", "text/html"),
                ("sec-fetch-mode", "navigate"),
            ],
        )
        .await;
        assert_eq!(status, 303, "{target} is gated, not bypassed");
        let location = headers["location"].to_str().unwrap();
        assert!(
            location.starts_with("/.otpgate/verify?rd="),
            "{target}: {location}"
        );
        let (status, _, _) = raw_request(
            env.addr,
            "GET",
            target,
            &[
                ("host", &host),
                ("cookie", &cookie),
                ("accept", "application/json"),
            ],
        )
        .await;
        assert_eq!(status, 401, "{target} is gated for API clients too");
    }
    let leaked: Vec<String> = env
        .app
        .hits()
        .into_iter()
        .map(|s| s.path)
        .filter(|p| p.contains("reports"))
        .collect();
    assert!(leaked.is_empty(), "the app saw gated requests: {leaked:?}");
}

#[tokio::test]
async fn an_unreachable_upstream_gives_a_clean_502_page_or_json_and_the_gateway_keeps_serving() {
    let env = Env::with_config(|text| {
        format!(
            r#"{text}
[[apps]]
name = "Dead App"
host = "dead.example"
upstream = "http://127.0.0.1:1"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
"#
        )
    })
    .await;
    let client = client_resolving(&env, &["dead.example"]);
    let dead = format!("http://dead.example:{}", env.addr.port());

    let res = navigate(&client, &format!("{dead}/reports")).await;
    assert_eq!(res.status(), 502);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("could not be reached"),
        "the page says what happened: {html}"
    );
    for detail in ["127.0.0.1:1", "refused", "hyper", "os error"] {
        assert!(
            !html.to_ascii_lowercase().contains(detail),
            "the page leaks {detail:?}: {html}"
        );
    }

    let res = client
        .get(format!("{dead}/api/orders"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unreachable");
    assert!(
        !body["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{body}"
    );

    let res = client
        .post(format!("{dead}/api/orders"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502, "a POST fails the same way");

    // The gateway is unharmed: the live app and the health check still answer.
    let res = navigate(&env.browser(), &env.url("/reports")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "app page /reports");
    let res = env
        .browser()
        .get(env.url("/.otpgate/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_upstream_slower_than_upstream_timeout_gives_504_and_the_next_request_still_works() {
    let env = Env::start().await;
    let client = unlocked(&env, "alice").await;

    let started = Instant::now();
    let res = client
        .get(env.url("/slow"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "upstream_timeout");
    assert!(
        waited < Duration::from_millis(4500),
        "answered at upstream_timeout (2s), not when /slow ended: {waited:?}"
    );

    let res = navigate(&client, &env.url("/slow")).await;
    assert_eq!(res.status(), 504);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let res = client.get(env.url("/echo")).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the gateway still serves after a timeout"
    );
}

#[tokio::test]
async fn a_64_mib_streamed_upload_and_download_pass_through_complete() {
    // The app answers the upload once it has every byte: a debug build on a
    // busy machine can take longer than the tests' usual 2 s for 64 MiB,
    // and this test is about completeness, not the timeout.
    let env = Env::with_config(|text| {
        text.replace("upstream_timeout = \"2s\"", "upstream_timeout = \"60s\"")
    })
    .await;
    let client = unlocked(&env, "alice").await;

    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let chunks = (MIB_64 / chunk.len() as u64) as usize;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let res = client
        .post(env.url("/upload"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        MIB_64.to_string(),
        "the app counted every byte"
    );

    let res = client
        .get(env.url(&format!("/big?n={MIB_64}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut total = 0u64;
    let mut body = res.bytes_stream();
    while let Some(part) = body.next().await {
        let part = part.expect("the download is not cut off");
        assert!(
            part.iter().all(|b| *b == b'x'),
            "the bytes arrive unchanged"
        );
        total += part.len() as u64;
    }
    assert_eq!(total, MIB_64);
}

#[tokio::test]
async fn a_websocket_is_refused_before_the_second_factor_and_echoes_after_it() {
    let env = Env::start().await;
    let ws_url = format!("ws://{}/ws", env.addr);

    // Logged in, not yet verified: the upgrade is refused at the gate.
    let session = env.app.login("bob", Some("+31612345678"));
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", format!("sessionid={session}").parse().unwrap());
    let stream = TcpStream::connect(env.addr).await.unwrap();
    match tokio_tungstenite::client_async(req, stream).await {
        Err(tungstenite::Error::Http(res)) => {
            assert!(
                matches!(res.status().as_u16(), 401 | 303),
                "refused with {}",
                res.status()
            );
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the upgrade went through without a second factor"),
    }
    assert_eq!(
        env.app.hits_on("/ws"),
        0,
        "the refused upgrade never reached the app"
    );

    let unlocked = unlock_by_hand(&env, &plain_client(), &env.url(""), "alice").await;
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", unlocked.cookie_header().parse().unwrap());
    let stream = TcpStream::connect(env.addr).await.unwrap();
    let (mut ws, res) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("the upgrade succeeds");
    assert_eq!(res.status(), 101);
    for text in ["hello through the gate", "second message"] {
        ws.send(Message::text(text)).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the echo arrives in time")
            .expect("the socket is open")
            .unwrap();
        assert_eq!(echo, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::binary(vec![0u8, 1, 2, 255]));
    let _ = ws.close(None).await;
    assert_eq!(env.app.hits_on("/ws"), 1);
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_host_is_kept_and_an_untrusted_peer_cannot_forge_x_forwarded()
 {
    let env = Env::start().await;
    let host = env.addr.to_string();
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[
            ("host", &host),
            ("connection", "X-Custom"),
            ("x-custom", "per-hop secret"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-end-to-end", "kept"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let seen: Value = serde_json::from_slice(&body).unwrap();
    let h = &seen["headers"];
    for name in ["x-custom", "keep-alive", "te", "proxy-authorization"] {
        assert!(
            h.get(name).is_none(),
            "{name} is hop-by-hop and reached the app: {h}"
        );
    }
    if let Some(connection) = h.get("connection") {
        assert!(
            !connection
                .to_string()
                .to_ascii_lowercase()
                .contains("x-custom"),
            "{connection}"
        );
    }
    assert_eq!(
        h["x-end-to-end"],
        json!(["kept"]),
        "end-to-end headers pass"
    );
    assert_eq!(h["host"], json!([host]), "Host is kept");
    assert_eq!(
        h["x-forwarded-for"],
        json!(["127.0.0.1"]),
        "the peer, not the client's claim"
    );
    assert_eq!(h["x-forwarded-proto"], json!(["http"]));
    assert_eq!(h["x-forwarded-host"], json!([host]));

    // Nor does a forged X-Forwarded-Proto make the gateway think it is on HTTPS.
    let spoofing = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                "x-forwarded-proto".parse().unwrap(),
                "https".parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let unlocked = unlock_by_hand(&env, &spoofing, &env.url(""), "alice").await;
    assert!(!is_secure(&unlocked.set_cookie), "{}", unlocked.set_cookie);
}

#[tokio::test]
async fn behind_a_trusted_proxy_x_forwarded_for_is_extended_and_https_makes_the_cookie_secure() {
    let env =
        Env::with_config(|t| with_server_keys(&t, r#"trusted_proxies = ["127.0.0.1"]"#)).await;
    let res = env
        .browser()
        .get(env.url("/echo"))
        .header("x-forwarded-for", "203.0.113.5")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "crm.example")
        .send()
        .await
        .unwrap();
    let h = echoed(res).await;
    assert_eq!(h["x-forwarded-for"], json!(["203.0.113.5, 127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], json!(["https"]));
    assert_eq!(h["x-forwarded-host"], json!(["crm.example"]));

    let proxy = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                "x-forwarded-proto".parse().unwrap(),
                "https".parse().unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let unlocked = unlock_by_hand(&env, &proxy, &env.url(""), "alice").await;
    assert!(is_secure(&unlocked.set_cookie), "{}", unlocked.set_cookie);
}

#[tokio::test]
async fn client_sent_x_otpgate_headers_never_reach_the_app() {
    let env = Env::start().await;

    let res = env
        .browser()
        .get(env.url("/echo"))
        .header("x-otpgate-user", "admin")
        .header("X-OTPGATE-USER", "root")
        .header("x-otpgate-role", "superuser")
        .send()
        .await
        .unwrap();
    let h = echoed(res).await;
    let forged: Vec<&String> = h
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("x-otpgate-"))
        .collect();
    assert!(forged.is_empty(), "an anonymous request passed {forged:?}");

    let client = unlocked(&env, "alice").await;
    let res = client
        .get(env.url("/echo"))
        .header("x-otpgate-user", "mallory")
        .header("x-otpgate-user", "admin")
        .header("x-otpgate-role", "superuser")
        .send()
        .await
        .unwrap();
    let h = echoed(res).await;
    assert_eq!(
        h["x-otpgate-user"],
        json!(["alice"]),
        "only the gateway's value"
    );
    assert!(h.get("x-otpgate-role").is_none(), "{h}");
}

#[tokio::test]
async fn the_app_cannot_send_x_otpgate_headers_or_overwrite_the_gateway_cookies() {
    let env = Env::start().await;
    let client = unlocked(&env, "alice").await;
    env.app.response_headers.lock().unwrap().extend([
        ("X-Otpgate-Foo".to_string(), "bar".to_string()),
        ("X-App-Header".to_string(), "kept".to_string()),
    ]);
    env.app.set_cookies.lock().unwrap().extend([
        "otpgate=forged; Path=/".to_string(),
        "otpgate_pending=forged; Path=/.otpgate/".to_string(),
        "theme=dark; Path=/".to_string(),
    ]);

    for (who, client) in [("unlocked", client.clone()), ("anonymous", env.browser())] {
        let res = client.get(env.url("/reports")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{who}");
        let h = res.headers();
        assert!(
            h.get("x-otpgate-foo").is_none(),
            "{who}: the app's X-Otpgate-Foo reached the client"
        );
        assert_eq!(h["x-app-header"], "kept", "{who}");
        let cookies = set_cookies_of(h);
        assert!(
            cookies.iter().any(|c| c.starts_with("theme=dark")),
            "{who}: {cookies:?}"
        );
        assert!(
            !cookies.iter().any(|c| c.starts_with("otpgate")),
            "{who}: the app set a gateway cookie: {cookies:?}"
        );
    }
    // The browser still holds the real proof.
    let res = client
        .get(env.url("/echo"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(res).await["x-otpgate-user"], json!(["alice"]));
}

#[tokio::test]
async fn the_otpgate_cookie_of_one_session_does_not_unlock_another_session() {
    let env = Env::start().await;
    let http = plain_client();
    let a = unlock_by_hand(&env, &http, &env.url(""), "alice").await;

    let res = http
        .get(env.url("/reports"))
        .header("cookie", a.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the cookie works for its own session");
    assert_eq!(env.app.hits_on("/reports"), 1);

    // Same user, new session (another login, or a stolen otpgate cookie).
    let b = env.app.login("alice", Some("+31612345678"));
    let mixed = format!("sessionid={b}; otpgate={}", a.otpgate);
    let res = http
        .get(env.url("/reports"))
        .header("cookie", &mixed)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "a new code is needed");
    assert_eq!(res.headers()["location"], "/.otpgate/verify?rd=%2Freports");
    let res = http
        .get(env.url("/reports"))
        .header("cookie", &mixed)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        env.app.hits_on("/reports"),
        1,
        "session B never reached the app"
    );
}

#[tokio::test]
async fn when_the_app_logs_out_the_response_also_deletes_the_otpgate_cookie() {
    let env = Env::start().await;
    let http = plain_client();
    let a = unlock_by_hand(&env, &http, &env.url(""), "alice").await;

    let res = http
        .post(env.url("/logout"))
        .header("cookie", a.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies_of(res.headers());
    assert!(
        cookies.iter().any(|c| c.starts_with("sessionid=;")),
        "the app's deletion passes: {cookies:?}"
    );
    let ours = cookies
        .iter()
        .find(|c| c.starts_with("otpgate="))
        .expect("the gateway deletes its cookie too");
    assert!(ours.starts_with("otpgate=;"), "empty value: {ours}");
    assert!(ours.contains("Max-Age=0"), "{ours}");
    assert!(
        ours.contains("Path=/"),
        "same path as when it was set: {ours}"
    );
    assert_eq!(res.text().await.unwrap(), "bye");
}

#[tokio::test]
async fn a_host_no_app_is_configured_for_gets_421_with_a_reason_and_the_app_is_not_called() {
    let env = Env::with_config(|t| {
        assert!(t.contains(r#"host = "*""#));
        t.replacen(r#"host = "*""#, r#"host = "crm.example""#, 1)
    })
    .await;
    let client = client_resolving(&env, &["crm.example", "other.example"]);
    let port = env.addr.port();

    let res = client
        .get(format!("http://other.example:{port}/reports"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 421);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unknown_host");
    assert!(
        body["message"].as_str().unwrap().contains("other.example"),
        "{body}"
    );
    let res = navigate(&client, &format!("http://other.example:{port}/reports")).await;
    assert_eq!(res.status(), 421);
    assert!(res.text().await.unwrap().contains("other.example"));
    assert!(
        env.app.seen.lock().unwrap().is_empty(),
        "the upstream was called for an unknown host"
    );

    let res = navigate(&client, &format!("http://crm.example:{port}/reports")).await;
    assert_eq!(
        res.status(),
        200,
        "the configured host (with a port) is served"
    );
    assert_eq!(env.app.hits_on("/reports"), 1);
}

/// A request over cleartext HTTP/2 (prior knowledge) to the gateway.
async fn h2_request(env: &Env, path: &str, headers: &[(&str, &str)]) -> (http::StatusCode, Value) {
    let stream = TcpStream::connect(env.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get(format!("http://{}{path}", env.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_http2_client_gets_through_and_the_http1_app_sees_a_host_header() {
    let env = Env::start().await;
    let (status, seen) = h2_request(&env, "/echo", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        seen["headers"]["host"],
        json!([env.addr.to_string()]),
        "Host from :authority"
    );

    // HTTP/2 may split cookies over several fields (RFC 9113 §8.2.3); the
    // gateway still finds the session and the proof in them.
    let unlocked = unlock_by_hand(&env, &plain_client(), &env.url(""), "alice").await;
    let session = format!("sessionid={}", unlocked.session);
    let proof = format!("otpgate={}", unlocked.otpgate);
    let (status, seen) =
        h2_request(&env, "/echo", &[("cookie", &session), ("cookie", &proof)]).await;
    assert_eq!(status, 200);
    assert_eq!(seen["headers"]["x-otpgate-user"], json!(["alice"]));
    assert_eq!(
        seen["headers"]["cookie"],
        json!([session]),
        "the app gets its cookie, not ours"
    );
}

#[tokio::test]
async fn cookies_split_over_http2_fields_reach_the_http1_app_as_one_cookie_header() {
    let env = Env::start().await;
    let (status, seen) = h2_request(&env, "/echo", &[("cookie", "a=1"), ("cookie", "b=2")]).await;
    assert_eq!(status, 200);
    // RFC 9113 §8.2.3: concatenated with "; " before going to HTTP/1.1.
    assert_eq!(seen["headers"]["cookie"], json!(["a=1; b=2"]));
}

#[tokio::test]
async fn the_gateway_terminates_tls_and_then_sets_the_otpgate_cookie_secure() {
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = generated.cert.pem();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    let keys = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    let env = Env::with_config(|t| with_server_keys(&t, &keys)).await;

    let client = client_builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", env.addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", env.addr.port());

    let res = client.get(format!("{base}/echo")).send().await.unwrap();
    let h = echoed(res).await;
    assert_eq!(
        h["x-forwarded-proto"],
        json!(["https"]),
        "the app learns the client used HTTPS"
    );

    let unlocked = unlock_by_hand(&env, &client, &base, "alice").await;
    assert!(is_secure(&unlocked.set_cookie), "{}", unlocked.set_cookie);
    let res = client
        .get(format!("{base}/echo"))
        .header("cookie", unlocked.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(res).await["x-otpgate-user"], json!(["alice"]));

    // Cleartext to the TLS port gets no HTTP answer.
    let plain = plain_client().get(env.url("/echo")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}
