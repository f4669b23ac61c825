//! The audit log: one JSON line per OTP event with who, where and what
//! happened; never a code, a full number or a cookie value; it follows log
//! rotation. Records are written by a background task, so each test polls
//! the file for a bounded time and then says what it found.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How long a record may take to reach the file before a test gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The records in the file (none if there is no file); every line must be
/// one JSON object.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(v.is_object(), "not a JSON object: {line}");
            v
        })
        .collect()
}

/// Polls until the file holds at least `n` records; fails naming `what`.
async fn at_least(path: &Path, n: usize, what: &str) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = records(path);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {what} ({n} records) in {} within {PATIENCE:?}; found {}:\n{}",
            path.display(),
            found.len(),
            std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"))
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `done` holds; fails naming `what`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not so within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn events(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("(no event)"))
        .collect()
}

fn with_audit(tables: &str) -> String {
    format!("{AUDIT}{tables}")
}

#[tokio::test]
async fn a_code_flow_writes_sent_failed_and_verified_records_in_order_with_who_and_where() {
    let env = Env::with(AUDIT).await;
    let (alice, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &alice).await;
    let code = env.sms.last().code();
    let res = submit_code(&env, &alice, &csrf, &wrong(&code)).await;
    assert_eq!(res.status(), 422);
    assert_eq!(submit_code(&env, &alice, &csrf, &code).await.status(), 303);

    let found = at_least(&env.audit_path(), 3, "sent, failed, verified").await;
    assert_eq!(events(&found), ["otp.sent", "otp.failed", "otp.verified"]);
    for r in &found {
        assert_eq!(r["app"], "Test CRM", "{r}");
        assert_eq!(r["user"], "alice", "{r}");
        assert_eq!(r["phone"], "***5678", "{r}");
        assert_eq!(r["client_ip"], "127.0.0.1", "{r}");
        assert_eq!(r["user_agent"], USER_AGENT, "{r}");
        if r["event"] == "otp.sent" {
            assert_eq!(r["channel"], "sms", "{r}");
        }
        let hash = r["phone_hash"].as_str().expect("a phone hash");
        assert_eq!(hash.len(), 64, "{r}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{r}");
        assert_eq!(
            r["phone_hash"], found[0]["phone_hash"],
            "one number, one hash"
        );
        let time = r["time"].as_str().expect("a time");
        assert!(
            time.len() == "2026-01-01T00:00:00.000Z".len() && time.ends_with('Z'),
            "RFC 3339 UTC with milliseconds: {time}"
        );
        humantime::parse_rfc3339(time).expect("the time reads back");
    }
    let sent = &found[0];
    assert_eq!(sent["provider"], "didfarm");
    assert_eq!(sent["message_id"], "msg_1", "the provider's id");
    assert_eq!(sent["outcome"], "accepted");
    assert_eq!(found[1]["attempts_left"], 4);
}

#[tokio::test]
async fn the_audit_file_never_holds_a_code_the_full_number_or_a_cookie_value() {
    let env = Env::with(&with_audit("[limits]\ncooldown = \"0s\"\n")).await;
    let (alice, session) = env.logged_in("alice");
    let mut secrets = vec![session];
    let page = navigate(&alice, &env.url("/.otpgate/verify?rd=%2F")).await;
    secrets.extend(set_cookies_of(page.headers()).iter().map(|c| value_of(c)));
    let csrf = csrf_of(&page.text().await.unwrap());
    let code = env.sms.last().code();
    submit_code(&env, &alice, &csrf, &wrong(&code)).await;
    let res = resend(&env, &alice, &csrf).await;
    assert_eq!(res.status(), 303, "the same code goes out again");
    secrets.extend(set_cookies_of(res.headers()).iter().map(|c| value_of(c)));
    let res = submit_code(&env, &alice, &csrf, &code).await;
    assert_eq!(res.status(), 303);
    secrets.extend(set_cookies_of(res.headers()).iter().map(|c| value_of(c)));
    at_least(&env.audit_path(), 4, "sent, failed, resent, verified").await;

    let codes = env.sms.codes();
    assert_eq!(codes.len(), 2, "sent and resent");
    let text = std::fs::read_to_string(env.audit_path()).unwrap();
    for code in &codes {
        assert_eq!(code.len(), 6, "the fake provider got a code");
        assert!(
            !text.contains(code.as_str()),
            "the code {code} is in:\n{text}"
        );
    }
    for number in ["+31612345678", "31612345678", "612345678"] {
        assert!(!text.contains(number), "the number {number} is in:\n{text}");
    }
    secrets.retain(|s| !s.is_empty());
    assert!(secrets.len() >= 3, "the session and the gateway's cookies");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the cookie value {secret} is in:\n{text}"
        );
    }
    assert_eq!(
        events(&records(&env.audit_path())),
        ["otp.sent", "otp.failed", "otp.resent", "otp.verified"]
    );
}

/// The value of a `Set-Cookie` line.
fn value_of(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or("");
    pair.split_once('=').map_or("", |(_, v)| v).to_string()
}

#[tokio::test]
async fn after_the_file_is_renamed_as_logrotate_does_new_records_go_to_a_new_file_at_the_path() {
    let env = Env::with(AUDIT).await;
    let path = env.audit_path();
    let (alice, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &alice).await;
    at_least(&path, 1, "the sent record").await;
    let rotated = env.dir.path().join("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();

    let code = env.sms.last().code();
    submit_code(&env, &alice, &csrf, &wrong(&code)).await;
    let found = at_least(&path, 1, "the failed record in the new file").await;
    assert_eq!(events(&found), ["otp.failed"]);
    assert_eq!(
        events(&records(&rotated)),
        ["otp.sent"],
        "the old file is left alone"
    );
}

#[tokio::test]
async fn reopen_as_on_sighup_creates_a_private_file_at_the_path_and_writes_there() {
    let env = Env::with(AUDIT).await;
    let path = env.audit_path();
    let (alice, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &alice).await;
    at_least(&path, 1, "the sent record").await;
    std::fs::rename(&path, env.dir.path().join("audit.jsonl.1")).unwrap();

    env.state.audit.reopen();
    eventually("reopen makes a new file at the path", || path.exists()).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the gateway's user reads the audit log");
    }
    let code = env.sms.last().code();
    submit_code(&env, &alice, &csrf, &code).await;
    let found = at_least(&path, 1, "the verified record in the new file").await;
    assert_eq!(events(&found), ["otp.verified"]);
}

#[tokio::test]
async fn an_account_lock_writes_an_otp_locked_record_and_refused_checks_and_sends_say_why() {
    let env = Env::with(&with_audit("[limits]\naccount_failure_cap = 2\n")).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    submit_code(&env, &client, &csrf, &wrong(&code)).await;
    submit_code(&env, &client, &csrf, &wrong(&code)).await;
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 429, "even the right code waits for the lock");
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429, "and no code is sent");

    let found = at_least(&env.audit_path(), 6, "the lock and the refusals").await;
    assert_eq!(
        events(&found),
        [
            "otp.sent",
            "otp.failed",
            "otp.locked",
            "otp.failed",
            "rate_limited",
            "rate_limited"
        ]
    );
    let locked = &found[2];
    assert_eq!(locked["reason"], "account_failures", "{locked}");
    assert_eq!(
        (&locked["user"], &locked["phone"]),
        (&"alice".into(), &"***5678".into())
    );
    for (refused, outcome) in [(&found[4], "check_refused"), (&found[5], "send_refused")] {
        assert_eq!(refused["outcome"], outcome, "{refused}");
        assert_eq!(refused["window"], "account_lock", "{refused}");
        assert!(refused["retry_after_s"].as_u64().unwrap() > 0, "{refused}");
    }
}

#[tokio::test]
async fn a_send_refused_by_a_rate_limit_writes_a_rate_limited_record_naming_the_window() {
    let env = Env::with(AUDIT).await;
    let (alice, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &alice).await;
    let res = resend(&env, &alice, &csrf).await;
    assert_eq!(res.status(), 429, "within the cooldown");

    let found = at_least(&env.audit_path(), 2, "sent and rate_limited").await;
    assert_eq!(events(&found), ["otp.sent", "rate_limited"]);
    let limited = &found[1];
    assert_eq!(limited["outcome"], "send_refused");
    assert_eq!(limited["window"], "cooldown");
    assert_eq!(limited["phone"], "***5678");
    assert!(limited["retry_after_s"].as_u64().unwrap() > 0, "{limited}");
}

#[tokio::test]
async fn a_failed_send_and_a_check_without_a_live_code_are_recorded() {
    let env = Env::with(AUDIT).await;
    env.sms.set_mode(ProviderMode::Fail(503));
    let (alice, _) = env.logged_in("alice");
    let page = navigate(&alice, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(page.status(), 503);
    let csrf = csrf_of(&page.text().await.unwrap());
    let res = submit_code(&env, &alice, &csrf, "123456").await;
    assert_eq!(res.status(), 422, "no code is alive");

    let found = at_least(&env.audit_path(), 2, "send_error and expired").await;
    assert_eq!(events(&found), ["otp.send_error", "otp.expired"]);
    assert_eq!(found[0]["outcome"], "error");
    assert_eq!(found[0]["error_code"], "http_503");
    assert_eq!(found[0]["provider"], "didfarm");
}

#[tokio::test]
async fn a_hostile_user_agent_stays_inside_one_bounded_json_string() {
    let env = Env::with(AUDIT).await;
    let (alice, _) = env.logged_in("alice");
    // Quotes, a forged record, a backslash, a tab, bytes that are not UTF-8,
    // and far too long (a newline cannot travel in a header at all).
    let mut agent = b"x\"}{\"event\":\"otp.verified\"} \\ \t \xff\xfe ".to_vec();
    agent.extend(std::iter::repeat_n(b'A', 4000));
    let res = alice
        .get(env.url("/.otpgate/verify?rd=%2F"))
        .header("accept", "text/html")
        .header("user-agent", http::HeaderValue::from_bytes(&agent).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let found = at_least(&env.audit_path(), 1, "the sent record").await;
    assert_eq!(events(&found), ["otp.sent"], "one record, one line");
    let kept = found[0]["user_agent"]
        .as_str()
        .expect("the agent is a string");
    assert!(kept.starts_with("x\"}{\"event\""), "{kept:?}");
    assert!(
        kept.contains('\u{fffd}'),
        "bytes that are not UTF-8 are replaced"
    );
    assert!(
        kept.chars().count() <= 256,
        "bounded: {} chars",
        kept.chars().count()
    );
}

#[tokio::test]
async fn without_an_audit_table_no_audit_file_is_written() {
    let env = Env::start().await;
    unlocked(&env, "alice").await;
    assert!(!env.state.audit.is_on());
    let files: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["otpgate.key"], "only the secret");
}

/// The gateway binary, ended (SIGKILL) when the test ends, passed or not.
#[cfg(unix)]
struct Running(std::process::Child);

#[cfg(unix)]
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {name} failed");
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reopens_the_audit_log_of_the_running_binary_and_does_not_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgate.toml");
    std::fs::write(
        &config,
        r#"[server]
listen = "127.0.0.1:0"
[sms]
provider = "sandbox"
[[apps]]
name = "CRM"
upstream = "http://127.0.0.1:9"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
[audit]
path = "audit.jsonl"
"#,
    )
    .unwrap();
    let mut gateway = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let path = dir.path().join("audit.jsonl");
    eventually("the audit log is created at start-up", || path.exists()).await;
    std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();

    signal(&gateway.0, "-HUP");
    eventually("after SIGHUP a new file is at the path", || path.exists()).await;
    assert!(
        gateway.0.try_wait().unwrap().is_none(),
        "SIGHUP did not stop the gateway"
    );
    signal(&gateway.0, "-TERM");
    let status = gateway.0.wait().unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");
}
