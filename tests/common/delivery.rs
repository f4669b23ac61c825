//! Gateways with delivery reports for the delivery and fallback tests:
//! `public_url` set, providers and channels as each test needs them.

use std::time::Duration;

use super::{Env, FakeDidfarm, with_server_keys};

pub const PUBLIC: &str = "https://gate.example.com";

/// A gateway with `public_url` set and `sms` replacing the base
/// configuration's `provider = "didfarm"` line; `tables` are appended.
pub async fn env_with(sms: &str, tables: &str) -> Env {
    env_with_server(sms, tables, "").await
}

/// As [`env_with`], with more `[server]` keys.
pub async fn env_with_server(sms: &str, tables: &str, server: &str) -> Env {
    env_with_server_on(sms, tables, server, otpgate::store::system_clock()).await
}

/// As [`env_with_server`], with the gateway's stores and fallback timers
/// on `clock` (a `ManualClock` the test moves instead of sleeping).
pub async fn env_with_server_on(
    sms: &str,
    tables: &str,
    server: &str,
    clock: otpgate::store::SharedClock,
) -> Env {
    let (sms, tables, server) = (sms.to_string(), tables.to_string(), server.to_string());
    Env::with_config_and_clock(
        move |text| {
            let keys = format!("public_url = \"{PUBLIC}\"\n{server}");
            let text = with_server_keys(&text, &keys);
            let mut text = text.replacen("provider = \"didfarm\"\n", &format!("{sms}\n"), 1);
            if sms.lines().any(|l| l.starts_with("from =")) {
                text = text.replacen("from = \"+31201234567\"\n", "", 1);
            }
            format!("{text}\n{tables}")
        },
        clock,
    )
    .await
}

/// The `[sms]` keys of DIDfarm with WhatsApp first, SMS after `fallback_after`.
fn whatsapp_first_sms(fallback_after: &str) -> String {
    format!(
        "providers = [\"didfarm\"]\nchannels = [\"whatsapp\", \"sms\"]\nfallback_after = \"{fallback_after}\""
    )
}

/// DIDfarm with WhatsApp first and SMS after `fallback_after`.
pub async fn whatsapp_first(fallback_after: &str) -> Env {
    whatsapp_first_with(fallback_after, "").await
}

/// As [`whatsapp_first`], on `clock`: the fallback comes due when the test
/// moves it past `fallback_after`.
pub async fn whatsapp_first_on(fallback_after: &str, clock: otpgate::store::SharedClock) -> Env {
    env_with_server_on(&whatsapp_first_sms(fallback_after), "", "", clock).await
}

/// After the clock moved past a timer that must do nothing: time for the
/// woken timer to act, so that a wrong send would be seen (only a bug makes
/// this wait matter).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// As [`whatsapp_first`], with more `[server]` keys.
pub async fn whatsapp_first_with(fallback_after: &str, server: &str) -> Env {
    env_with_server(&whatsapp_first_sms(fallback_after), "", server).await
}

pub async fn status(env: &Env, client: &reqwest::Client) -> serde_json::Value {
    let res = client
        .get(env.url("/.otpgate/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Polls the status until `progress` shows, for at most ten seconds.
pub async fn until_progress(
    env: &Env,
    client: &reqwest::Client,
    progress: &str,
) -> serde_json::Value {
    for _ in 0..100 {
        let s = status(env, client).await;
        if s["progress"] == progress {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the status never became {progress:?}");
}

pub async fn post_resend(
    env: &Env,
    client: &reqwest::Client,
    csrf: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", csrf), ("rd", "/reports")];
    form.extend_from_slice(extra);
    client
        .post(env.url("/.otpgate/resend"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Waits until the fake DIDfarm has received `n` messages, for at most ten
/// seconds; the gateway sends some by itself (the fallback), at its time.
pub async fn until_count(sms: &FakeDidfarm, n: usize) {
    for _ in 0..200 {
        if sms.count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} messages within 10 s, not {n}", sms.count());
}
