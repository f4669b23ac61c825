//! The access log (`[log] access = true`): one line per request with who,
//! what and how the gate decided; JSON lines in JSON mode; never a query
//! of the gateway's own pages, a cookie value or a webhook's token; and
//! nothing at all when it is off. Lines are written by a background
//! thread, so each test polls the file for a bounded time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::delivery::env_with_server;
use common::*;
use serde_json::Value;

/// How long a line may take to reach the file before a test gives up.
const PATIENCE: Duration = Duration::from_secs(10);

const JSON_ACCESS: &str =
    "[log]\nformat = \"json\"\naccess = true\naccess_path = \"access.jsonl\"\n";

fn access_path(env: &Env, name: &str) -> std::path::PathBuf {
    env.dir.path().join(name)
}

/// Every line of the file as JSON (each must be one JSON object).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(v.is_object(), "not a JSON object: {line}");
            v
        })
        .collect()
}

/// Polls until a line satisfies `want`; returns it.
async fn line_where(path: &Path, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = json_lines(path).into_iter().find(|v| want(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {what} in {} within {PATIENCE:?}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"))
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is(v: &Value, method: &str, path: &str, status: u16) -> bool {
    v["method"] == method && v["path"] == path && v["status"] == status
}

#[tokio::test]
async fn access_lines_are_json_with_every_field_and_no_gateway_query_cookie_or_token() {
    let env = env_with_server(
        r#"providers = ["didfarm"]"#,
        JSON_ACCESS,
        "trusted_proxies = [\"127.0.0.1\"]",
    )
    .await;
    let path = access_path(&env, "access.jsonl");
    let mut secrets: Vec<String> = Vec::new();

    // The code page (its query carries rd), the code, then the app.
    let unlocked = unlock_by_hand(&env, &plain_client(), &env.url(""), "alice").await;
    secrets.extend([unlocked.session.clone(), unlocked.otpgate.clone()]);
    let cookie = unlocked.cookie_header();
    let client = plain_client();
    let res = client
        .get(env.url("/reports?token=app-query-value"))
        .header("cookie", &cookie)
        .header("x-forwarded-for", "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body_len = res.bytes().await.unwrap().len() as u64;
    // The id the app got is the one the line names.
    let (_, _, echo) = raw_request(
        env.addr,
        "GET",
        "/echo",
        &[("host", "gate.test"), ("cookie", &cookie)],
    )
    .await;
    let echo: Value = serde_json::from_slice(&echo).unwrap();
    let app_saw = echo["headers"]["x-request-id"][0]
        .as_str()
        .unwrap()
        .to_string();

    // Logged in without the second factor: a navigation, then a script.
    let (bob, bob_session) = env.logged_in("bob");
    secrets.push(bob_session);
    assert_eq!(navigate(&bob, &env.url("/invoices")).await.status(), 303);
    let res = bob
        .get(env.url("/api/data"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // An error names its id to the client and in the line.
    let (status, headers, _) = raw_request(
        env.addr,
        "GET",
        "/.otpgate/nothing-here?rd=%2Ferror-place",
        &[("host", "gate.test")],
    )
    .await;
    assert_eq!(status, 404);
    let error_id = headers["x-request-id"].to_str().unwrap().to_string();
    // A provider's report, at its secret URL.
    let webhook = env.sms.last().json["webhook_url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = webhook.rsplit('/').next().unwrap().to_string();
    secrets.push(token);
    assert_eq!(env.sms.report(env.addr, 0, "delivered").await, 204);

    let pass = line_where(&path, "the proxied page", |v| is(v, "GET", "/reports", 200)).await;
    assert_eq!(pass["decision"], "pass", "{pass}");
    assert_eq!(pass["app"], "Test CRM", "{pass}");
    assert_eq!(
        pass["client"], "203.0.113.50",
        "behind a trusted proxy: {pass}"
    );
    assert_eq!(pass["bytes"], body_len, "{pass}");
    assert_eq!(pass["event"], "access", "{pass}");
    let echo_line = line_where(&path, "/echo", |v| v["path"] == "/echo").await;
    assert_eq!(echo_line["request_id"], app_saw.as_str(), "{echo_line}");
    assert_eq!(echo_line["client"], "127.0.0.1", "{echo_line}");
    let page = line_where(&path, "the code page", |v| {
        is(v, "GET", "/.otpgate/verify", 200)
    })
    .await;
    assert_eq!(page["decision"], "own_route", "{page}");
    let verify = line_where(&path, "the code's post", |v| {
        is(v, "POST", "/.otpgate/verify", 303)
    })
    .await;
    assert_eq!(verify["decision"], "own_route", "{verify}");
    let code_page = line_where(&path, "the 303", |v| is(v, "GET", "/invoices", 303)).await;
    assert_eq!(code_page["decision"], "code_page", "{code_page}");
    let stop = line_where(&path, "the 401", |v| is(v, "GET", "/api/data", 401)).await;
    assert_eq!(stop["decision"], "unauthorized", "{stop}");
    let error = line_where(&path, "the 404", |v| {
        is(v, "GET", "/.otpgate/nothing-here", 404)
    })
    .await;
    assert_eq!(error["decision"], "error", "{error}");
    assert_eq!(error["request_id"], error_id.as_str(), "{error}");
    let report = line_where(&path, "the report", |v| v["decision"] == "webhook").await;
    assert_eq!(report["path"], "/.otpgate/webhook/didfarm/…", "{report}");
    assert_eq!(report["status"], 204, "{report}");
    assert!(
        report.get("app").is_none(),
        "a report is for no app: {report}"
    );

    for v in json_lines(&path) {
        for field in ["time", "client", "method", "path", "decision", "request_id"] {
            assert!(v[field].is_string(), "{field} in {v}");
        }
        assert!(v["status"].is_u64(), "{v}");
        assert!(v["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{v}");
        let time = v["time"].as_str().unwrap();
        assert!(
            time.len() == "2026-01-01T00:00:00.000Z".len() && time.ends_with('Z'),
            "RFC 3339 UTC with milliseconds: {time}"
        );
        humantime::parse_rfc3339(time).expect("the time reads back");
        assert!(!v["path"].as_str().unwrap().contains('?'), "no query: {v}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    for leak in ["error-place", "app-query-value", "rd=", "%2F"] {
        assert!(!text.contains(leak), "{leak} is in the access log:\n{text}");
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the secret {secret} is in the access log:\n{text}"
        );
    }
}

#[tokio::test]
async fn text_access_lines_are_readable_key_value_lines() {
    let env = Env::with("[log]\naccess = true\naccess_path = \"access.log\"\n").await;
    let path = access_path(&env, "access.log");
    let (status, _, _) =
        raw_request(env.addr, "GET", "/login?next=x", &[("host", "gate.test")]).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + PATIENCE;
    let line = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("path=/login ")) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no /login line:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (time, rest) = line.split_once(' ').unwrap();
    humantime::parse_rfc3339(time).expect("a time first");
    assert!(
        rest.starts_with("ACCESS client=127.0.0.1 method=GET path=/login status=200 bytes="),
        "{line}"
    );
    assert!(
        rest.contains(" decision=pass app=\"Test CRM\" request_id="),
        "{line}"
    );
    assert!(!line.contains("next=x"), "{line}");
}

#[tokio::test]
async fn with_the_access_log_off_nothing_is_written() {
    // access_path alone does not turn it on.
    let env = Env::with("[log]\naccess_path = \"access.jsonl\"\n").await;
    assert!(!env.state.access.is_on());
    let (client, _) = env.logged_in("carol");
    assert_eq!(navigate(&client, &env.url("/reports")).await.status(), 303);
    let (status, _, _) = raw_request(env.addr, "GET", "/login", &[("host", "gate.test")]).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !access_path(&env, "access.jsonl").exists(),
        "no access log file when it is off"
    );
}
