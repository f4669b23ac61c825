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
    let client = reqwest::Client::builder()
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
