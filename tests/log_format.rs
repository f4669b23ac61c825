//! `[log] format = "json"`: every line the running binary writes is one
//! JSON object a log shipper can parse, the access log's lines on stdout
//! among them; `level` and mistakes in `[log]`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"[server]
listen = "127.0.0.1:0"
[admin]
socket = ""
[log]
format = "json"
level = "info"
access = true
[sms]
provider = "sandbox"
[[apps]]
name = "CRM"
upstream = "http://127.0.0.1:9"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
"#;

#[test]
fn json_logs_are_one_json_object_per_line_with_the_event_fields_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgate.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut addr = None;
    // Read until the listening line names the address.
    while addr.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        if v["message"] == "otpgate listening" {
            addr = v["addr"].as_str().map(str::to_string);
        }
        seen.push(v);
    }
    let addr = addr.expect("the gateway says where it listens");
    // A refused request writes a line about it.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(
            b"GET /.otpgate/nothing-here HTTP/1.1\r\nHost: crm.test\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let id = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("the error names its request id")
        .trim()
        .to_string();
    let (mut refused, mut access) = (None, None);
    while (refused.is_none() || access.is_none()) && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        if v["message"] == "request refused" {
            refused = Some(v);
        } else if v["event"] == "access" {
            access = Some(v);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let refused = refused.expect("the refused request is logged");
    assert_eq!(refused["level"], "INFO");
    assert_eq!(refused["path"], "/.otpgate/nothing-here");
    assert_eq!(
        refused["request_id"],
        id.as_str(),
        "the line names the request"
    );
    assert!(refused["timestamp"].is_string());
    // Without access_path, the access log's lines are on stdout too.
    let access = access.expect("the request has an access line on stdout");
    assert_eq!(access["path"], "/.otpgate/nothing-here", "{access}");
    assert_eq!(access["status"], 404, "{access}");
    assert_eq!(access["decision"], "error", "{access}");
    assert_eq!(access["app"], "CRM", "{access}");
    assert_eq!(access["request_id"], id.as_str(), "{access}");
    assert!(
        seen.iter().any(|v| v["level"] == "WARN"),
        "the sandbox warning is a line too"
    );
}

#[test]
fn an_access_path_in_a_folder_that_does_not_exist_is_refused_at_its_line() {
    let bad = "access_path = \"/nonexistent-otpgate-dir/access.log\"";
    let text = CONFIG.replace("access = true", &format!("access = true\n{bad}"));
    let err = otpgate::config::parse(&text, "gw.toml", std::path::Path::new(".")).expect_err(bad);
    let line = text.lines().position(|l| l == bad).unwrap() + 1;
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(err.key, "log.access_path", "{err}");
    let settings = otpgate::config::parse(
        &CONFIG.replace(
            "access = true",
            "access = true\naccess_path = \"access.log\"",
        ),
        "gw.toml",
        std::path::Path::new("/tmp"),
    )
    .unwrap();
    assert!(settings.log.access);
    assert_eq!(
        settings.log.access_path.as_deref(),
        Some(std::path::Path::new("/tmp/access.log")),
        "relative to the configuration"
    );
    let off = otpgate::config::parse(
        &CONFIG.replace("access = true\n", ""),
        "gw.toml",
        std::path::Path::new("."),
    )
    .unwrap();
    assert!(!off.log.access, "off unless asked for");
}

#[test]
fn a_log_format_or_level_that_does_not_exist_is_refused_at_its_line() {
    for (bad, key) in [
        ("format = \"yaml\"", "log.format"),
        ("level = \"loud[\"", "log.level"),
    ] {
        let text = CONFIG
            .replace(
                "format = \"json\"",
                if key == "log.format" {
                    bad
                } else {
                    "format = \"json\""
                },
            )
            .replace(
                "level = \"info\"",
                if key == "log.level" {
                    bad
                } else {
                    "level = \"info\""
                },
            );
        let err =
            otpgate::config::parse(&text, "gw.toml", std::path::Path::new(".")).expect_err(bad);
        let line = text.lines().position(|l| l == bad).unwrap() + 1;
        assert_eq!(err.line, Some(line), "{err}");
        assert_eq!(err.key, key, "{err}");
    }
}
