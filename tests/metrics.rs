//! Prometheus metrics on their own listener (`[metrics] listen`), and the
//! health checks: `/.otpgate/healthz` and `/.otpgate/readyz` on the public
//! listener for any Host, the readiness details as JSON at the metrics
//! listener's `/ready`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::delivery::env_with;
use common::*;

const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
const APP: &str = "Test CRM";

/// The exposition at the metrics listener, in the Prometheus text format.
async fn scrape(env: &Env) -> String {
    let addr = env.metrics.expect("the metrics listener is on");
    let res = plain_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    res.text().await.unwrap()
}

/// Every sample of `text`: its name and labels, and its value.
fn samples(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let line = regex::Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$").unwrap();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)""#).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let c = line.captures(l).unwrap_or_else(|| panic!("a sample: {l}"));
            let labels = c.get(2).map_or(HashMap::new(), |m| {
                label
                    .captures_iter(m.as_str())
                    .map(|l| (l[1].to_string(), l[2].to_string()))
                    .collect()
            });
            let value = c[3].replace("+Inf", "inf").parse().unwrap();
            (c[1].to_string(), labels, value)
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels`; zero when
/// there is none.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} names one series");
    found.first().copied().unwrap_or(0.0)
}

fn requests(text: &str, app: &str, decision: &str) -> f64 {
    value(
        text,
        "otpgate_requests_total",
        &[("app", app), ("decision", decision)],
    )
}

#[tokio::test]
async fn a_scripted_login_moves_the_counters_and_no_label_names_the_user_number_address_or_cookie()
{
    let env = env_with(r#"providers = ["didfarm"]"#, METRICS).await;
    let before = scrape(&env).await;
    assert_eq!(
        requests(&before, APP, "pass"),
        0.0,
        "known series start at zero"
    );
    let (client, cookie) = env.logged_in("alice");
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 303, "to the code page");
    let csrf = open_code_page(&env, &client).await;
    assert_eq!(env.sms.report(env.addr, 0, "delivered").await, 204);
    let code = env.sms.last().code();
    let res = submit_code(&env, &client, &csrf, &wrong(&code)).await;
    assert_eq!(res.status(), 422);
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303);
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 200, "proxied to the app");

    let text = scrape(&env).await;
    assert_eq!(requests(&text, APP, "code_page"), 1.0);
    assert_eq!(
        requests(&text, APP, "own_route"),
        3.0,
        "code page, wrong, right"
    );
    assert_eq!(requests(&text, APP, "pass"), 1.0);
    assert_eq!(requests(&text, "", "webhook"), 1.0, "a webhook has no app");
    let pass = [("app", APP), ("decision", "pass")];
    assert_eq!(
        value(&text, "otpgate_request_duration_seconds_count", &pass),
        1.0
    );
    let sent = [
        ("app", APP),
        ("channel", "sms"),
        ("provider", "didfarm"),
        ("result", "accepted"),
    ];
    assert_eq!(value(&text, "otpgate_codes_sent_total", &sent), 1.0);
    for (result, n) in [("right", 1.0), ("wrong", 1.0), ("expired", 0.0)] {
        let labels = [("app", APP), ("result", result)];
        assert_eq!(
            value(&text, "otpgate_code_checks_total", &labels),
            n,
            "{result}"
        );
    }
    let report = [
        ("provider", "didfarm"),
        ("channel", "sms"),
        ("status", "delivered"),
    ];
    assert_eq!(value(&text, "otpgate_delivery_reports_total", &report), 1.0);
    let delivery = [("provider", "didfarm"), ("channel", "sms")];
    assert_eq!(
        value(&text, "otpgate_delivery_duration_seconds_count", &delivery),
        1.0,
        "the record knew when it was sent"
    );
    let user = [("app", APP), ("result", "user")];
    assert!(value(&text, "otpgate_whoami_calls_total", &user) >= 1.0);
    assert!(value(&text, "otpgate_whoami_duration_seconds_count", &user) >= 1.0);
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&text, "otpgate_build_info", &version), 1.0);

    let secrets = [
        "alice",
        "31612345678",
        "5678",
        "127.0.0.1",
        cookie.as_str(),
        code.as_str(),
        "msg_1",
    ];
    for (name, labels, _) in samples(&text) {
        for v in labels.values() {
            for s in secrets {
                assert!(!v.contains(s), "{name} has a label with {s:?}: {labels:?}");
            }
        }
    }
}

#[tokio::test]
async fn upstream_errors_are_counted_by_kind_and_the_request_as_an_error() {
    let env = Env::with_config(|text| {
        let text = with_upstream(&text, "http://127.0.0.1:9");
        format!("{METRICS}\n{text}")
    })
    .await;
    let res = navigate(&plain_client(), &env.url("/anything")).await;
    assert_eq!(res.status(), 502);
    let text = scrape(&env).await;
    let unreachable = [("app", APP), ("kind", "unreachable")];
    assert_eq!(
        value(&text, "otpgate_upstream_errors_total", &unreachable),
        1.0
    );
    assert_eq!(requests(&text, APP, "error"), 1.0);
    assert_eq!(requests(&text, APP, "pass"), 0.0);
}

#[tokio::test]
async fn a_scraper_that_asks_for_openmetrics_gets_it() {
    let env = Env::with(METRICS).await;
    let res = plain_client()
        .get(format!("http://{}/metrics", env.metrics.unwrap()))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(res.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test]
async fn without_a_metrics_table_there_is_no_metrics_listener_and_nothing_is_recorded() {
    let env = Env::start().await;
    assert_eq!(env.metrics, None);
    assert!(env.state.metrics.is_none());
    let off = Env::with("[metrics]\nlisten = \"\"\n").await;
    assert_eq!(off.metrics, None, "an empty address keeps it off");
}

#[test]
fn a_metrics_address_that_is_not_one_or_is_taken_is_reported_with_its_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = config_text("http://127.0.0.1:9", "http://127.0.0.1:9", dir.path(), "");
    // The server's own listen line comes first.
    let base = base.replacen("127.0.0.1:0", "127.0.0.1:8000", 1);
    for (listen, hint) in [
        ("\"9464\"", "127.0.0.1:9464"),
        ("\"127.0.0.1:8000\"", "server.listen"),
    ] {
        let text = format!("{base}\n[metrics]\nlisten = {listen}\n");
        let err = otpgate::config::parse(&text, "gw.toml", dir.path()).unwrap_err();
        assert_eq!(err.key, "metrics.listen", "{err}");
        assert_eq!(err.line, Some(text.lines().count()), "the last line: {err}");
        assert!(err.message.contains(hint), "{err}");
    }
}

/// An environment whose one app serves only `crm.test`.
async fn env_for_one_host(tables: &str) -> Env {
    let tables = tables.to_string();
    Env::with_config(move |text| {
        format!(
            "{tables}\n{}",
            text.replace("host = \"*\"", "host = \"crm.test\"")
        )
    })
    .await
}

#[tokio::test]
async fn health_checks_are_answered_for_an_address_or_no_host_at_all() {
    let env = env_for_one_host("").await;
    let (status, _, _) = raw_request(env.addr, "GET", "/", &[("host", "10.0.0.5")]).await;
    assert_eq!(status, 421, "other paths need an app's host");
    for path in ["/.otpgate/healthz", "/.otpgate/readyz", "/.otpgate/health"] {
        for host in [&[("host", "10.0.0.5")][..], &[]] {
            let (status, headers, body) = raw_request(env.addr, "GET", path, host).await;
            assert_eq!(
                (status.as_u16(), &body[..]),
                (200, &b"ok\n"[..]),
                "{path} {host:?}"
            );
            assert_eq!(headers["cache-control"], "no-store");
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
        }
    }
    let (status, _, _) = raw_request(
        env.addr,
        "POST",
        "/.otpgate/readyz",
        &[("host", "10.0.0.5")],
    )
    .await;
    assert_eq!(status, 405);
}

async fn ready_details(addr: SocketAddr) -> (u16, serde_json::Value) {
    let res = plain_client()
        .get(format!("http://{addr}/ready"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn readiness_says_providers_when_every_providers_latest_send_failed_and_details_are_private()
{
    let env = Env::with(METRICS).await;
    let (status, details) = ready_details(env.metrics.unwrap()).await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["store"]["backend"], "memory");
    assert_eq!(details["providers"][0]["last_send"], "unknown");
    env.sms.set_mode(ProviderMode::Fail(503));
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    let (status, _, body) = raw_request(env.addr, "GET", "/.otpgate/readyz", &[]).await;
    assert_eq!((status.as_u16(), &body[..]), (503, &b"providers\n"[..]));
    let (status, details) = ready_details(env.metrics.unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(details["reason"], "providers", "{details}");
    assert_eq!(details["providers"][0]["name"], "didfarm");
    assert_eq!(details["providers"][0]["last_send"], "failed");
    env.sms.set_mode(ProviderMode::Accept);
    open_code_page(&env, &client).await;
    let (status, _, _) = raw_request(env.addr, "GET", "/.otpgate/readyz", &[]).await;
    assert_eq!(status, 200, "ready again after a send that worked");
}
