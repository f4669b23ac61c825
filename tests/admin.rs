//! The admin API on its own listener, and `otpgate admin` calling it:
//! locks and quarantines can be listed and lifted, only with the token
//! derived from the secret file, and never through the public port.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// The admin token, derived from the test gateway's secret file as the CLI does.
fn token(env: &Env) -> String {
    let secret = otpgate::keys::load(&env.dir.path().join("otpgate.key")).unwrap();
    otpgate::keys::Keys::derive(&secret).admin_token()
}

fn admin_url(env: &Env, path: &str) -> String {
    format!("http://{}{path}", env.admin.expect("the admin API is on"))
}

async fn admin_get(env: &Env, path: &str) -> (u16, Value) {
    let res = plain_client()
        .get(admin_url(env, path))
        .bearer_auth(token(env))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn admin_post(env: &Env, path: &str, body: Value) -> (u16, Value) {
    let res = plain_client()
        .post(admin_url(env, path))
        .bearer_auth(token(env))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Locks alice's account with two wrong codes; her browser, CSRF token and live code.
async fn lock_alice(env: &Env) -> (reqwest::Client, String, String) {
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(env, &client).await;
    let code = env.sms.last().code();
    for _ in 0..2 {
        submit_code(env, &client, &csrf, &wrong(&code)).await;
    }
    let res = submit_code(env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 429, "the account is locked");
    (client, csrf, code)
}

const LOCKING: &str = "[limits]\naccount_failure_cap = 2\n";

#[tokio::test]
async fn an_admin_can_list_and_lift_an_account_lock() {
    let env = Env::with(LOCKING).await;
    let (client, csrf, code) = lock_alice(&env).await;

    let (status, body) = admin_get(&env, "/v1/locks").await;
    assert_eq!(status, 200);
    let locks = body["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "{body}");
    assert_eq!(locks[0]["app"], "Test CRM");
    assert_eq!(locks[0]["user"], "alice");
    assert_eq!(locks[0]["failures"], 2);
    assert!(locks[0]["seconds_left"].as_u64().unwrap() > 3500);

    let (status, body) = admin_post(
        &env,
        "/v1/locks/unlock",
        json!({"app": "Test CRM", "user": "alice"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin_get(&env, "/v1/locks").await.1["locks"], json!([]));
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "alice's live code works again");

    let (status, body) = admin_post(
        &env,
        "/v1/locks/unlock",
        json!({"app": "Test CRM", "user": "alice"}),
    )
    .await;
    assert_eq!(status, 404, "nothing left to lift");
    assert!(body["error"].as_str().unwrap().contains("not locked"));
}

#[tokio::test]
async fn an_admin_can_list_and_lift_a_quarantine() {
    let env = Env::with(
        "[limits]\ncooldown = \"0s\"\nper_ip_sends_per_minute = 100\n[pumping]\nmin_sends = 2\nanswer_time = \"0s\"\n",
    )
    .await;
    let ask = |user: &'static str, phone: &'static str| {
        let env = &env;
        async move { ask_code(env, user, phone).await.status() }
    };
    assert_eq!(ask("p1", "+2348031230001").await, 200);
    assert_eq!(ask("p2", "+2348031230002").await, 200);
    assert_eq!(ask("p3", "+2348031230003").await, 429);

    let (status, body) = admin_get(&env, "/v1/quarantines").await;
    assert_eq!(status, 200);
    let list = body["quarantines"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["key"], "+234803123");
    assert_eq!(list[0]["scope"], "prefix");
    assert_eq!(list[0]["enforced"], true);
    assert!(
        list[0]["why"]
            .as_str()
            .unwrap()
            .contains("0 of 2 codes verified")
    );

    let (status, _) = admin_post(&env, "/v1/quarantines/lift", json!({"key": "+234803123"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        admin_get(&env, "/v1/quarantines").await.1["quarantines"],
        json!([])
    );
    assert_eq!(
        ask("p3", "+2348031230003").await,
        200,
        "codes go there again"
    );
    let (status, _) = admin_post(&env, "/v1/quarantines/lift", json!({"key": "NG"})).await;
    assert_eq!(status, 404, "NG was never quarantined");
}

#[tokio::test]
async fn the_admin_api_refuses_a_missing_or_wrong_token() {
    let env = Env::with(LOCKING).await;
    lock_alice(&env).await;
    let right = token(&env);
    let of_another_secret = otpgate::keys::Keys::derive(&[7u8; 64]).admin_token();
    let cases = [
        None,
        Some("Bearer nonsense".to_string()),
        Some(format!("Bearer {of_another_secret}")),
        // The right token, but not as a bearer token.
        Some(format!("Basic {right}")),
        Some(right.clone()),
    ];
    for auth in cases {
        let mut req = plain_client().get(admin_url(&env, "/v1/locks"));
        if let Some(value) = &auth {
            req = req.header("authorization", value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("bearer token"),
            "{body}"
        );
        assert!(!body.to_string().contains("alice"), "nothing leaks");
    }
}

#[tokio::test]
async fn bad_admin_requests_get_a_4xx_with_the_reason() {
    let env = Env::start().await;
    let (status, body) = admin_get(&env, "/v1/nothing").await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("/v1/locks"),
        "{body}"
    );
    let (status, _) = admin_get(&env, "/v1/locks/unlock").await;
    assert_eq!(status, 405);
    let (status, body) = admin_post(&env, "/v1/locks/unlock", json!({"app": "Test CRM"})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("user"), "{body}");
    let (status, body) = admin_post(
        &env,
        "/v1/locks/unlock",
        json!({"app": "Nope", "user": "a"}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("no app is named"),
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_api_is_not_served_on_the_public_port() {
    let env = Env::start().await;
    let res = plain_client()
        .get(env.url("/v1/locks"))
        .bearer_auth(token(&env))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "app page /v1/locks",
        "the public port proxies it to the app"
    );
}

#[tokio::test]
async fn the_admin_listener_can_be_turned_off() {
    let env = Env::with_config(|t| {
        t.replace(
            "[admin]\nlisten = \"127.0.0.1:0\"",
            "[admin]\nlisten = \"\"",
        )
    })
    .await;
    assert_eq!(env.admin, None);
}

/// Runs `otpgate admin ARGS` with a configuration whose admin address is `admin`.
async fn cli(env: &Env, admin: SocketAddr, args: &[&str]) -> (Option<i32>, String, String) {
    let text = env.config.replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"{admin}\""),
    );
    let path = env.dir.path().join(format!("cli-{}.toml", admin.port()));
    std::fs::write(&path, text).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_otpgate"))
            .arg("admin")
            .arg("--config")
            .arg(&path)
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn otpgate_admin_lists_and_lifts_the_locks_of_the_running_gateway() {
    let env = Env::with(LOCKING).await;
    lock_alice(&env).await;
    let admin = env.admin.unwrap();

    let (code, stdout, stderr) = cli(&env, admin, &["locks"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("APP") && header.contains("USER") && header.contains("LOCKED FOR"),
        "{stdout}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("Test CRM") && row.contains("alice") && row.contains("60 minutes"),
        "{stdout}"
    );

    let (code, stdout, stderr) = cli(&env, admin, &["unlock", "Test CRM", "alice"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Unlocked alice"), "{stdout}");
    let (_, stdout, _) = cli(&env, admin, &["locks"]).await;
    assert_eq!(stdout.trim(), "No account is locked.");

    let (code, _, stderr) = cli(&env, admin, &["unlock", "Test CRM", "alice"]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not locked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn otpgate_admin_says_so_when_the_gateway_is_not_running() {
    let env = Env::start().await;
    // A port that was free a moment ago and has no listener now.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, stdout, stderr) = cli(&env, free, &["quarantines"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stderr.contains("otpgate is not running"), "{stderr}");
    assert!(stderr.contains(&free.to_string()), "{stderr}");
}

#[tokio::test]
async fn an_admins_unlock_is_kept_in_the_audit_log() {
    let env = Env::with(&format!("{LOCKING}\n{AUDIT}")).await;
    lock_alice(&env).await;
    let (status, _) = admin_post(
        &env,
        "/v1/locks/unlock",
        json!({"app": "Test CRM", "user": "alice"}),
    )
    .await;
    assert_eq!(status, 200);
    let (record, _) = audit_record(&env, "otp.unlocked").await;
    assert_eq!(record["user"], "alice");
    assert_eq!(record["outcome"], "lifted_by_admin");
}
