//! Request ids: the app gets one on every request (a client's own is
//! replaced unless it came through a trusted proxy), and an error page
//! shows it so a user can quote it.

mod common;

use common::*;

#[tokio::test]
async fn the_app_gets_a_request_id_and_a_client_cannot_choose_it() {
    let env = Env::start().await;
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[("host", "gate.test"), ("x-request-id", "chosen-by-me")],
    )
    .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ids = seen["headers"]["x-request-id"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{seen}");
    let id = ids[0].as_str().unwrap();
    assert_ne!(id, "chosen-by-me", "an untrusted client's id is replaced");
    assert!(id.len() > 8, "{id}");
}

#[tokio::test]
async fn a_trusted_proxy_s_request_id_carries_on_to_the_app() {
    let env = Env::with_config(|t| with_server_keys(&t, "trusted_proxies = [\"127.0.0.1\"]")).await;
    let (_, _, body) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[("host", "gate.test"), ("x-request-id", "front-7")],
    )
    .await;
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["headers"]["x-request-id"][0], "front-7");
}

#[tokio::test]
async fn an_error_page_and_its_json_name_the_request_id() {
    let env = Env::start().await;
    let (status, headers, body) = raw_request(
        env.addr,
        "GET",
        "/.otpgate/nothing-here",
        &[("host", "gate.test"), ("accept", "text/html")],
    )
    .await;
    assert_eq!(status, 404);
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    let html = String::from_utf8_lossy(&body);
    assert!(html.contains(&format!("<code>{id}</code>")), "{html}");
    let (_, headers, body) = raw_request(
        env.addr,
        "GET",
        "/.otpgate/nothing-here",
        &[("host", "gate.test"), ("accept", "application/json")],
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn a_get_without_a_body_reaches_the_app_without_a_body_framing() {
    let env = Env::start().await;
    let (_, _, body) = raw_request(env.addr, "GET", "/echo", &[("host", "gate.test")]).await;
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        seen["headers"].get("transfer-encoding").is_none(),
        "a bodiless GET is sent without Transfer-Encoding: {seen}"
    );
    assert_eq!(seen["body_len"], 0);
}
