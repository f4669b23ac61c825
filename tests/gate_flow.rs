//! The gate from a browser's point of view: who gets through, who is sent
//! to the code page, and what the app sees.

mod common;

use common::*;

#[tokio::test]
async fn a_request_without_a_session_passes_through_to_the_app() {
    let env = Env::start().await;
    let res = navigate(&env.browser(), &env.url("/reports")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "app page /reports");
    assert_eq!(env.app.hits_on("/reports"), 1);
}

#[tokio::test]
async fn a_logged_in_navigation_is_redirected_to_the_code_page_and_the_app_is_not_hit() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let res = navigate(&client, &env.url("/reports?year=2026")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/.otpgate/verify?rd=%2Freports%3Fyear%3D2026"
    );
    assert_eq!(env.app.hits_on("/reports"), 0);
}

#[tokio::test]
async fn the_right_code_unlocks_the_session_and_the_app_sees_the_user() {
    let env = Env::start().await;
    let client = unlocked(&env, "alice").await;
    let res = client
        .get(env.url("/echo"))
        .header("x-otpgate-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-otpgate-user"],
        serde_json::json!(["alice"])
    );
    let cookies = seen["headers"]["cookie"].to_string();
    assert!(
        !cookies.contains("otpgate"),
        "the gateway's cookies are not passed to the app: {cookies}"
    );
}

#[tokio::test]
async fn a_login_that_keeps_the_session_cookie_is_not_mistaken_for_anonymous() {
    let env = Env::start().await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(
        "sessionid=fixed-before-login; Path=/",
        &env.url("/").parse().unwrap(),
    );
    let client = client_builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Not logged in yet: the request passes and "anonymous" is cached.
    assert_eq!(navigate(&client, &env.url("/reports")).await.status(), 200);
    // The app logs the same session id in (session fixation) on a bypass path.
    env.app.sessions.lock().unwrap().insert(
        "fixed-before-login".into(),
        ("alice".into(), Some("+31612345678".into())),
    );
    let login = client
        .post(env.url("/login"))
        .form(&[("u", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(
        res.status(),
        303,
        "the now logged-in session is gated at once"
    );
    assert_eq!(env.app.hits_on("/reports"), 1);
}

#[tokio::test]
async fn a_non_ascii_cookie_next_to_the_session_does_not_hide_the_session_from_the_gate() {
    let env = Env::start().await;
    let token = env.app.login("alice", Some("+31612345678"));
    let cookie = format!("sessionid={token}; x=é");
    let (status, _, _) = raw_request(
        env.addr,
        "GET",
        "/reports",
        &[("host", "gate.test"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(status, 401, "the logged-in session is gated");
    assert_eq!(env.app.hits_on("/reports"), 0);
}

#[tokio::test]
async fn look_alikes_and_duplicates_of_the_session_cookie_never_reach_the_app() {
    let env = Env::start().await;
    let token = env.app.login("alice", Some("+31612345678"));
    for cookie in [
        format!("SESSIONID={token}"),
        format!("%73essionid={token}"),
        format!("sessionid=unknown; sessionid={token}"),
    ] {
        let (status, _, body) = raw_request(
            env.addr,
            "GET",
            "/echo",
            &[("host", "gate.test"), ("cookie", &cookie)],
        )
        .await;
        assert_eq!(status, 200, "{cookie}: taken for anonymous and passed");
        let seen = String::from_utf8_lossy(&body);
        assert!(
            !seen.contains(&token),
            "{cookie}: the app must not see a session the gate did not check: {seen}"
        );
    }
}

#[tokio::test]
async fn a_proven_session_taken_over_by_another_user_needs_a_new_code() {
    let env = Env::start().await;
    let (client, token) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    assert_eq!(submit_code(&env, &client, &csrf, &code).await.status(), 303);
    assert_eq!(navigate(&client, &env.url("/reports")).await.status(), 200);
    // The app keeps the session id while someone else logs in on it.
    env.app
        .sessions
        .lock()
        .unwrap()
        .insert(token, ("bob".into(), Some("+4915112345678".into())));
    let login = client
        .post(env.url("/login"))
        .form(&[("u", "bob")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(
        res.status(),
        303,
        "bob does not inherit alice's second factor"
    );
}

#[tokio::test]
async fn a_proven_session_that_posts_keeps_its_second_factor_when_the_user_is_unchanged() {
    let env = Env::start().await;
    let client = unlocked(&env, "alice").await;
    let res = client
        .post(env.url("/echo"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 200, "the recheck finds the same user");
}

#[tokio::test]
async fn a_bypass_prefix_without_a_trailing_slash_covers_that_path_and_below_not_its_siblings() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    for (path, passes) in [
        ("/login", true),
        ("/login/step2", true),
        ("/login-as", false),
        ("/loginAdmin", false),
    ] {
        let res = client.get(env.url(path)).send().await.unwrap();
        assert_eq!(res.status() == 200, passes, "{path}: {}", res.status());
    }
}

#[tokio::test]
async fn an_upgrade_other_than_websocket_is_not_passed_on() {
    let env = Env::start().await;
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[
            ("host", "gate.test"),
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQAAP__"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(seen["headers"].get("upgrade").is_none(), "{seen}");
    assert!(seen["headers"].get("http2-settings").is_none(), "{seen}");
}

#[tokio::test]
async fn connection_cannot_strip_the_host_the_app_sees() {
    let env = Env::start().await;
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[("host", "crm.example"), ("connection", "host")],
    )
    .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["headers"]["host"], serde_json::json!(["crm.example"]));
}

#[tokio::test]
async fn every_request_on_a_kept_alive_connection_is_judged_by_its_own_cookies() {
    let env = Env::start().await;
    let alice = unlock_by_hand(&env, &plain_client(), &env.url(""), "alice").await;
    let bob_session = env.app.login("bob", Some("+31612345679"));
    let host = env.addr.to_string();
    let mut conn = keep_alive(env.addr).await;
    let mut get = async |cookie: &str| {
        let headers = [("host", host.as_str()), ("cookie", cookie)];
        let (status, _, body) = send_on(&mut conn, "GET", "/echo", &headers).await;
        let user = serde_json::from_slice::<serde_json::Value>(&body)
            .map(|seen| seen["headers"]["x-otpgate-user"].clone())
            .unwrap_or_default();
        (status.as_u16(), user)
    };
    let proven = (200, serde_json::json!(["alice"]));

    assert_eq!(get(&alice.cookie_header()).await, proven);
    assert_eq!(get(&alice.cookie_header()).await, proven, "the same again");
    let mut tampered = alice.otpgate.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let forged = format!("sessionid={}; otpgate={tampered}", alice.session);
    assert_eq!(
        get(&forged).await.0,
        401,
        "a forged factor cookie proves nothing"
    );
    assert_eq!(get(&alice.cookie_header()).await, proven, "alice's again");
    let borrowed = format!("sessionid={bob_session}; otpgate={}", alice.otpgate);
    assert_eq!(
        get(&borrowed).await.0,
        401,
        "alice's factor cookie does not unlock bob's session"
    );
}

#[tokio::test]
async fn a_session_cookie_pattern_gates_the_first_matching_cookie_and_forwards_no_other() {
    let env = Env::with_config(|t| {
        t.replace(
            "session_cookie = \"sessionid\"",
            "session_cookie = \"session*\"",
        )
    })
    .await;
    let token = env.app.login("alice", Some("+31612345678"));
    let (status, _, _) = raw_request(
        env.addr,
        "GET",
        "/reports",
        &[
            ("host", "gate.test"),
            ("cookie", &format!("sessionid={token}")),
        ],
    )
    .await;
    assert_eq!(
        status, 401,
        "the cookie matching the pattern is the session"
    );
    // A second matching cookie, or a look-alike of the prefix, never reaches the app.
    let cookie = format!("sessionx=other; sessionid={token}; SESSIONid={token}");
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[("host", "gate.test"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(status, 200, "sessionx is the session: anonymous, passed");
    let seen = String::from_utf8_lossy(&body);
    assert!(!seen.contains(&token), "{seen}");
    assert_eq!(env.app.hits_on("/reports"), 0);
}

#[tokio::test]
async fn a_second_factor_ends_with_its_lifetime_on_the_gateways_clock() {
    // The factor cookie's expiry is read against the gateway's one clock:
    // the test moves it past the lifetime instead of waiting an hour.
    let clock = otpgate::store::ManualClock::starting_now();
    let env = Env::with_config_and_clock(
        |text| {
            text.replace(
                "shutdown_grace = \"1s\"",
                "shutdown_grace = \"1s\"\nsecond_factor_lifetime = \"1h\"",
            )
        },
        clock.clone(),
    )
    .await;
    let client = unlocked(&env, "alice").await;
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 200, "proven within the hour");
    clock.advance(std::time::Duration::from_secs(3600 + 60));
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 303, "past the lifetime: the code page again");
    assert_eq!(res.headers()["location"], "/.otpgate/verify?rd=%2Freports");
}
