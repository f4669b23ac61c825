//! The forward-auth endpoints over loopback, asked as nginx `auth_request`
//! and Caddy `forward_auth` ask them: which fields they read, whom they
//! believe, and the statuses each proxy understands (nginx: 2xx, 401, 403
//! and nothing else).

mod common;

use std::sync::Arc;

use common::*;
use reqwest::StatusCode;

const PHONE: &str = "+31612345678";

/// A gateway that believes the loopback front proxy.
async fn behind_proxy() -> Env {
    Env::with_config(|text| with_server_keys(&text, "trusted_proxies = [\"127.0.0.1\"]")).await
}

/// The `Cookie` field of a browser that logged in to the app as `user`
/// and, with `prove`, entered the code (through the gateway's own pages,
/// as the front proxy routes them).
async fn session(env: &Env, user: &str, prove: bool) -> (String, String) {
    let token = env.app.login(user, Some(PHONE));
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let url: reqwest::Url = env.url("/").parse().unwrap();
    jar.add_cookie_str(&format!("sessionid={token}; Path=/"), &url);
    if prove {
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let csrf = open_code_page(env, &client).await;
        let code = env.sms.last().code();
        let res = submit_code(env, &client, &csrf, &code).await;
        assert_eq!(res.status(), 303, "the right code unlocks");
    }
    use reqwest::cookie::CookieStore;
    let cookie = jar.cookies(&url).unwrap().to_str().unwrap().to_string();
    (cookie, token)
}

/// Asks the nginx endpoint about `method url` with the client's `fields`.
async fn nginx(env: &Env, method: &str, url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut req = plain_client()
        .get(env.url("/.otpgate/authz/nginx"))
        .header("x-original-url", url)
        .header("x-original-method", method);
    for (k, v) in fields {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Asks the Caddy/Traefik endpoint about `method uri` on `crm.test`.
async fn forward(env: &Env, method: &str, uri: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut req = plain_client()
        .get(env.url("/.otpgate/authz/forward"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-host", "crm.test")
        .header("x-forwarded-proto", "https");
    for (k, v) in fields {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// The error's code and message in a JSON answer.
async fn error_of(res: reqwest::Response) -> (String, String) {
    let body: serde_json::Value = res.json().await.unwrap();
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    (text("error"), text("message"))
}

fn header<'r>(res: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

const PAGE: &[(&str, &str)] = &[("accept", "text/html"), ("sec-fetch-mode", "navigate")];
const XHR: &[(&str, &str)] = &[("accept", "application/json"), ("sec-fetch-mode", "cors")];

fn with_cookie<'a>(fields: &[(&'a str, &'a str)], cookie: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v = fields.to_vec();
    v.push(("cookie", cookie));
    v
}

#[tokio::test]
async fn anonymous_requests_are_allowed_with_no_user_and_never_cached() {
    let env = behind_proxy().await;
    let forged = [("x-otpgate-user", "admin"), ("accept", "text/html")];
    let res = nginx(&env, "GET", "http://crm.test/reports", &forged).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "x-otpgate-user"),
        Some(""),
        "nobody, whatever the client said"
    );
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let res = forward(&env, "GET", "/reports", &forged).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-otpgate-user"), Some(""));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    assert_eq!(env.app.hits().len(), 0, "nothing is proxied to the app");
}

#[tokio::test]
async fn nginx_gets_a_401_naming_the_code_page_and_whether_to_redirect() {
    let env = behind_proxy().await;
    let (cookie, _) = session(&env, "alice", false).await;
    let res = nginx(
        &env,
        "GET",
        "https://crm.test/reports?q=1",
        &with_cookie(PAGE, &cookie),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        header(&res, "location"),
        Some("https://crm.test/.otpgate/verify?rd=%2Freports%3Fq%3D1")
    );
    assert_eq!(header(&res, "x-otpgate-navigation"), Some("1"));
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let res = nginx(
        &env,
        "POST",
        "https://crm.test/api/save",
        &with_cookie(XHR, &cookie),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        header(&res, "location")
            .unwrap()
            .ends_with("/.otpgate/verify?rd=%2Fapi%2Fsave")
    );
    assert_eq!(
        header(&res, "x-otpgate-navigation"),
        None,
        "a script's call"
    );
}

#[tokio::test]
async fn caddy_gets_a_redirect_for_a_navigation_and_the_401_json_for_a_script() {
    let env = behind_proxy().await;
    let (cookie, _) = session(&env, "alice", false).await;
    let res = forward(&env, "GET", "/reports", &with_cookie(PAGE, &cookie)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        header(&res, "location"),
        Some("/.otpgate/verify?rd=%2Freports")
    );
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let res = forward(&env, "GET", "/api/data", &with_cookie(XHR, &cookie)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(body["verify_url"], "/.otpgate/verify?rd=%2Fapi%2Fdata");
}

#[tokio::test]
async fn a_proven_session_is_allowed_with_its_user_and_a_forged_one_is_not_echoed() {
    let env = behind_proxy().await;
    let (cookie, _) = session(&env, "alice", true).await;
    let fields = [("cookie", cookie.as_str()), ("x-otpgate-user", "mallory")];
    let res = nginx(&env, "GET", "http://crm.test/reports", &fields).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-otpgate-user"), Some("alice"));
    let res = forward(&env, "GET", "/reports", &fields).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-otpgate-user"), Some("alice"));
}

#[tokio::test]
async fn a_peer_outside_trusted_proxies_is_refused_and_told_why() {
    let env = Env::start().await;
    let res = nginx(
        &env,
        "GET",
        "http://crm.test/",
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let (_, message) = error_of(res).await;
    assert!(message.contains("trusted_proxies"), "{message}");
    let res = forward(&env, "GET", "/", &[("accept", "application/json")]).await;
    assert_eq!(res.status(), 403);
    let (_, message) = error_of(res).await;
    assert!(message.contains("trusted_proxies"), "{message}");
}

#[tokio::test]
async fn nginx_never_gets_a_status_other_than_2xx_401_or_403() {
    let env = behind_proxy().await;
    let json = [("accept", "application/json")];
    // A proxy that left out X-Original-URL: a 500 elsewhere, a 403 here.
    let res = plain_client()
        .get(env.url("/.otpgate/authz/nginx"))
        .header("x-original-method", "GET")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (error, message) = error_of(res).await;
    assert_eq!(error, "front_proxy");
    assert!(message.contains("X-Original-URL"), "{message}");
    for (method, url) in [
        ("CONNECT", "http://crm.test/"),
        ("GET", "/reports"),
        ("GET", "http://crm.test/.otpgate/verify"),
        ("NOT A METHOD", "http://crm.test/"),
    ] {
        let res = nginx(&env, method, url, &json).await;
        assert_eq!(res.status(), 403, "{method} {url}");
        assert_eq!(header(&res, "cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn caddy_is_told_which_field_it_did_not_pass() {
    let env = behind_proxy().await;
    let res = plain_client()
        .get(env.url("/.otpgate/authz/forward"))
        .header("x-forwarded-method", "GET")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (error, message) = error_of(res).await;
    assert_eq!(error, "front_proxy");
    assert!(message.contains("X-Forwarded-Uri"), "{message}");
}

#[tokio::test]
async fn an_unsafe_method_has_the_session_asked_again_so_a_login_as_another_user_needs_a_code() {
    let env = behind_proxy().await;
    let (cookie, token) = session(&env, "alice", true).await;
    let fields = [("cookie", cookie.as_str()), ("accept", "text/html")];
    for _ in 0..2 {
        let res = forward(&env, "GET", "/reports", &fields).await;
        assert_eq!(header(&res, "x-otpgate-user"), Some("alice"));
    }
    // The app's login form, posted on the same session id: the app (which
    // otpgate never hears from in this mode) now says bob.
    let res = forward(&env, "POST", "/login", &fields).await;
    assert_eq!(res.status(), 200, "the login form is a bypass path");
    env.app
        .sessions
        .lock()
        .unwrap()
        .insert(token, ("bob".into(), Some(PHONE.into())));
    let res = forward(&env, "GET", "/reports", &fields).await;
    assert_eq!(res.status(), 303, "alice's proof does not pass bob");
    assert!(
        header(&res, "set-cookie").is_some_and(|c| c.starts_with("otpgate=;")),
        "the stale proof is removed"
    );
}
