//! The second-factor bypasses found against the built binary, each against
//! an app that makes it possible: one that keeps the session id across
//! login and logout (session fixation) and reads cookies like Python's
//! `SimpleCookie`. Every request the app serves is recorded with the user
//! it served it as; a protected page served to a user without that user's
//! `X-Otpgate-User` is a bypass.

mod common;

use std::time::Duration;

use common::legacy::{LegacyApp, simple_cookie};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gateway in front of a [`LegacyApp`], with `[server]` and `[[apps]]`
/// keys added; login and logout are bypass paths, as the README advises.
async fn gateway(server_keys: &str, app_keys: &str) -> (Env, LegacyApp) {
    gateway_with_clock(server_keys, app_keys, otpgate::store::system_clock()).await
}

/// As [`gateway`], with the gateway's stores timed by `clock`.
async fn gateway_with_clock(
    server_keys: &str,
    app_keys: &str,
    clock: otpgate::store::SharedClock,
) -> (Env, LegacyApp) {
    let app = LegacyApp::start().await;
    let url = app.url.clone();
    let (server_keys, app_keys) = (server_keys.to_string(), app_keys.to_string());
    let env = Env::with_config_and_clock(
        move |text| {
            let text = with_upstream(&text, &url);
            let text = text.replace(
                "bypass = [\"/static/\", \"/login\"]",
                &format!("bypass = [\"/static/\", \"/login\", \"/logout\"]\n{app_keys}"),
            );
            with_server_keys(&text, &server_keys)
        },
        clock,
    )
    .await;
    (env, app)
}

async fn get(env: &Env, path: &str, host: &str, cookie: &str) -> reqwest::Response {
    plain_client()
        .get(env.url(path))
        .header("host", host)
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

async fn post(env: &Env, path: &str, host: &str, cookie: &str) -> reqwest::Response {
    plain_client()
        .post(env.url(path))
        .header("host", host)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Passes the second factor for whoever is on session `sid` now; returns
/// the `otpgate` cookie value.
async fn prove(env: &Env, sid: &str) -> String {
    let cookie = format!("sessionid={sid}");
    let page = get(env, "/.otpgate/verify?rd=%2F", "gate.test", &cookie).await;
    assert_eq!(page.status(), 200, "the code page opens");
    let csrf = csrf_of(&page.text().await.unwrap());
    let code = env.sms.last().code();
    let res = plain_client()
        .post(env.url("/.otpgate/verify"))
        .header("host", "gate.test")
        .header("cookie", &cookie)
        .form(&[("code", code.as_str()), ("csrf", &csrf), ("rd", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the right code unlocks");
    let line = set_cookies_of(res.headers())
        .into_iter()
        .find(|c| c.starts_with("otpgate="))
        .expect("the otpgate cookie is set");
    line["otpgate=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_login_with_extra_cookies_on_a_kept_session_id_does_not_leave_a_stale_anonymous_answer() {
    let (env, app) = gateway("", "").await;
    let sid = "S-fixed-1";
    let plain = format!("sessionid={sid}");
    // Anonymous: the app redirects to its login, "anonymous" is cached.
    assert_eq!(
        get(&env, "/private", "gate.test", &plain).await.status(),
        302
    );
    // The login carries another cookie set (another cache key before).
    let login = post(
        &env,
        "/login?u=alice",
        "gate.test",
        &format!("{plain}; junk=1"),
    )
    .await;
    assert_eq!(login.status(), 200);
    let res = get(&env, "/private", "gate.test", &plain).await;
    assert_eq!(res.status(), 303, "alice's session is gated at once");
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

#[tokio::test]
async fn a_login_under_another_spelling_of_the_host_does_not_leave_a_stale_anonymous_answer() {
    let (env, app) = gateway("", "").await;
    let plain = "sessionid=S-fixed-2";
    assert_eq!(
        get(&env, "/private", "gate.test", plain).await.status(),
        302
    );
    assert_eq!(
        post(&env, "/login?u=alice", "GATE.test:80", plain)
            .await
            .status(),
        200
    );
    let res = get(&env, "/private", "gate.test", plain).await;
    assert_eq!(res.status(), 303, "alice's session is gated at once");
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

#[tokio::test]
async fn a_proof_does_not_carry_over_to_another_user_logged_in_on_the_same_session_id() {
    let (env, app) = gateway("", "").await;
    let sid = "S-fixed-3";
    app.log_in(sid, "alice");
    let proof = prove(&env, sid).await;
    let both = format!("sessionid={sid}; otpgate={proof}");
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        200
    );
    // Bob logs in on the same id, without the otpgate cookie.
    let login = post(
        &env,
        "/login?u=bob",
        "gate.test",
        &format!("sessionid={sid}"),
    )
    .await;
    assert_eq!(login.status(), 200);
    let res = get(&env, "/private", "gate.test", &both).await;
    assert_eq!(res.status(), 303, "bob's second factor is asked for");
    assert!(
        set_cookies_of(res.headers())
            .iter()
            .any(|c| c.starts_with("otpgate=;") || c.starts_with("otpgate=\"\"")),
        "alice's proof is removed: {:?}",
        set_cookies_of(res.headers())
    );
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

#[tokio::test]
async fn a_logout_and_a_login_as_someone_else_on_a_kept_session_id_need_a_new_code() {
    let (env, app) = gateway("", "").await;
    let sid = "S-fixed-4";
    app.log_in(sid, "alice");
    let proof = prove(&env, sid).await;
    let both = format!("sessionid={sid}; otpgate={proof}");
    let bare = format!("sessionid={sid}");
    // Both on bypass paths, both without the otpgate cookie.
    assert_eq!(
        post(&env, "/logout", "gate.test", &bare).await.status(),
        200
    );
    assert_eq!(
        post(&env, "/login?u=bob", "gate.test", &bare)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        303
    );
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

#[tokio::test]
async fn a_get_login_link_on_a_login_path_needs_the_new_user_to_prove_again() {
    let (env, app) = gateway("", "login_paths = [\"/sso\"]").await;
    let sid = "S-fixed-5";
    app.log_in(sid, "alice");
    let proof = prove(&env, sid).await;
    let both = format!("sessionid={sid}; otpgate={proof}");
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        200
    );
    // A login link, by GET, carrying alice's proof.
    assert_eq!(
        get(&env, "/sso?u=bob", "gate.test", &both).await.status(),
        200
    );
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        303
    );
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

#[tokio::test]
async fn a_proven_session_is_checked_against_the_app_again_after_recheck_interval() {
    // The confirmation's age is store time: the test moves the gateway's
    // clock past the interval instead of sleeping.
    let clock = otpgate::store::ManualClock::starting_now();
    let (env, app) = gateway_with_clock(
        "",
        "recheck_interval = \"1s\"\nuserinfo_cache = \"0s\"",
        clock.clone(),
    )
    .await;
    let sid = "S-fixed-6";
    app.log_in(sid, "alice");
    let proof = prove(&env, sid).await;
    let both = format!("sessionid={sid}; otpgate={proof}");
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        200
    );
    // A login the gateway cannot see (another host, a forward-auth path).
    app.log_in(sid, "bob");
    // Past the interval: only then must the change be noticed.
    clock.advance(Duration::from_millis(1500));
    assert_eq!(
        get(&env, "/private", "gate.test", &both).await.status(),
        303
    );
    assert_eq!(
        app.served_on("/private")
            .iter()
            .filter(|s| s.user.as_deref() == Some("bob"))
            .count(),
        0,
        "bob's page was never served on alice's proof"
    );
}

#[test]
fn the_simple_cookie_port_splits_as_python_does() {
    let headers = [
        "a=1; sessionid=S",
        "a=1 sessionid=S",
        "a=1, sessionid=S",
        "a=1,sessionid=S",
        "a=\"x; sessionid=S\"",
        "sessionid=first; sessionid=second",
        "a=1;sessionid=S;b=2",
        "$Version=1; a=1",
        "path=/; a=1",
        "a=1; path=/; b=2",
        "x sessionid=S",
    ];
    let script = r#"
import sys, json
from http.cookies import SimpleCookie
out = []
for line in sys.stdin.read().split("\n"):
    c = SimpleCookie()
    c.load(line)
    out.append({k: m.value for k, m in c.items()})
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on every machine of this project)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(headers.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let python: Vec<std::collections::HashMap<String, String>> =
        serde_json::from_slice(&out.stdout).unwrap();
    for (header, expected) in headers.iter().zip(python) {
        assert_eq!(simple_cookie(header), expected, "{header}");
    }
}

#[tokio::test]
async fn a_session_cookie_hidden_in_another_cookie_s_value_never_reaches_the_app_unchecked() {
    let (env, app) = gateway("", "").await;
    let sid = "S-hidden";
    app.log_in(sid, "alice");
    for header in [
        format!("a=1 sessionid={sid}"),
        format!("a=1, sessionid={sid}"),
        format!("a=\"1\" sessionid={sid}"),
        format!("a=1\tsessionid={sid}"),
    ] {
        // The app, reading like SimpleCookie, would find alice's session here.
        assert_eq!(
            simple_cookie(&header).get("sessionid").map(String::as_str),
            Some(sid),
            "{header}"
        );
        let res = get(&env, "/private", "gate.test", &header).await;
        assert_ne!(res.status(), 200, "{header}: not served as alice");
    }
    assert!(app.bypasses().is_empty(), "{:?}", app.bypasses());
}

/// Sends a request head announcing `length` body bytes and only `sent` of
/// them; returns the status of the answer and whether the connection was
/// closed afterwards, or `None` if nothing came within `limit`.
async fn trickle(env: &Env, head: &str, sent: &[u8], limit: Duration) -> Option<(u16, bool)> {
    let mut stream = TcpStream::connect(env.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    let line = String::from_utf8_lossy(&got);
    let status = line.split(' ').nth(1)?.parse().ok()?;
    Some((status, closed))
}

#[tokio::test]
async fn a_form_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    let (env, _app) = gateway("body_read_timeout = \"500ms\"", "").await;
    let head = "POST /.otpgate/verify HTTP/1.1\r\nHost: gate.test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 8000\r\n\r\n";
    let answer = trickle(&env, head, b"code=", Duration::from_secs(5)).await;
    assert_eq!(answer, Some((408, true)), "408, then the connection closes");
}

#[tokio::test]
async fn a_proxied_body_that_stops_arriving_is_cut_off_with_408() {
    let (env, _app) = gateway("body_read_timeout = \"500ms\"", "").await;
    let head = "POST /upload HTTP/1.1\r\nHost: gate.test\r\nContent-Length: 8000\r\n\r\n";
    let answer = trickle(&env, head, b"12345", Duration::from_secs(5)).await;
    assert_eq!(answer, Some((408, true)), "408, then the connection closes");
}

#[tokio::test]
async fn bypass_paths_an_app_could_decode_into_another_path_are_gated() {
    let env = Env::start().await;
    let token = env.app.login("alice", Some("+31612345678"));
    let cookie = format!("sessionid={token}");
    for target in [
        "/static/%252e%252e/reports",
        "/static/%00/../reports",
        "/static/%c0%ae%c0%ae/reports",
        "/static/%e0%80%ae%e0%80%ae/reports",
        "/static/%u002e%u002e/reports",
        "/static/.../reports",
    ] {
        let (status, _, _) = raw_request(
            env.addr,
            "GET",
            target,
            &[
                ("host", "gate.test"),
                ("cookie", &cookie),
                ("accept", "text/html"),
            ],
        )
        .await;
        assert!(
            status == 303 || status == 400,
            "{target} is gated or refused, not bypassed: {status}"
        );
    }
    assert_eq!(env.app.hits().len(), 0, "{:?}", env.app.hits());
}
