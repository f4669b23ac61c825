//! What the gateway writes to its log during a whole code flow: the events
//! an operator needs, and never a code, a full phone number or a cookie.
//! A separate test binary, because it installs a global subscriber.

mod common;

use common::*;

fn cookie_values(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            v.split(';')
                .next()?
                .split_once('=')
                .map(|(_, value)| value.to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

#[tokio::test]
async fn the_log_has_every_code_event_and_no_code_full_number_or_cookie() {
    let logs = capture_logs();
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let mut secrets: Vec<String> = Vec::new();

    // Send, a wrong code, a resend of the same code, the right code.
    let (alice, alice_session) = env.logged_in("alice");
    secrets.push(alice_session);
    let res = navigate(&alice, &env.url("/reports")).await;
    assert_eq!(res.status(), 303);
    let res = navigate(
        &alice,
        &env.url(res.headers()["location"].to_str().unwrap()),
    )
    .await;
    secrets.extend(cookie_values(&res));
    let csrf = csrf_of(&res.text().await.unwrap());
    let code = env.sms.last().code();
    assert_eq!(
        submit_code(&env, &alice, &csrf, &wrong(&code))
            .await
            .status(),
        422
    );
    let res = alice
        .post(env.url("/.otpgate/resend"))
        .form(&[("csrf", csrf.as_str()), ("rd", "/reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    secrets.extend(cookie_values(&res));
    let res = submit_code(&env, &alice, &csrf, &code).await;
    assert_eq!(res.status(), 303);
    secrets.extend(cookie_values(&res));
    assert_eq!(navigate(&alice, &env.url("/reports")).await.status(), 200);

    // A provider failure for another user on the same phone.
    env.sms.set_mode(ProviderMode::Fail(503));
    let (bob, bob_session) = env.logged_in("bob");
    secrets.push(bob_session);
    let res = navigate(&bob, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(res.status(), 503);

    let codes = env.sms.codes();
    assert_eq!(codes.len(), 2, "sent and resent");
    assert!(codes.iter().all(|c| c.len() == 6));
    let log = logs.text();
    for code in &codes {
        assert!(
            !log.contains(code.as_str()),
            "the code {code} is in the log:\n{log}"
        );
    }
    for number in ["+31612345678", "31612345678", "612345678"] {
        assert!(
            !log.contains(number),
            "the number {number} is in the log:\n{log}"
        );
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the cookie value {secret} is in the log:\n{log}"
        );
    }
    for needle in [
        "otp.sent",
        "otp.resent",
        "otp.failed",
        "otp.verified",
        "otp.send_error",
        "***5678",
    ] {
        assert!(
            log.contains(needle),
            "{needle} is missing from the log:\n{log}"
        );
    }
}

/// Each event is emitted once and each sink writes it once: one line and
/// one record per step of a flow, never a second copy from a call site
/// that still logs or records by itself.
#[tokio::test]
async fn each_code_event_is_one_log_line_and_one_audit_record() {
    let logs = capture_logs();
    let env = Env::with(AUDIT).await;
    let (carol, _) = env.logged_in("carol");
    let csrf = open_code_page(&env, &carol).await;
    let code = env.sms.last().code();
    assert_eq!(
        submit_code(&env, &carol, &csrf, &wrong(&code))
            .await
            .status(),
        422
    );
    assert_eq!(submit_code(&env, &carol, &csrf, &code).await.status(), 303);
    let (_, audit) = audit_record(&env, "otp.verified").await;

    let text = logs.text();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for event in ["otp.sent", "otp.failed", "otp.verified"] {
        let lines = text
            .lines()
            .filter(|l| l.contains(&format!("event=\"{event}\"")) && l.contains("user=\"carol\""))
            .count();
        assert_eq!(lines, 1, "{event} lines:\n{text}");
        let kept = records.iter().filter(|r| r["event"] == event).count();
        assert_eq!(kept, 1, "{event} records:\n{audit}");
    }
    assert_eq!(records.len(), 3, "{audit}");
}

/// The id of the request an event happened in is on its log line and in
/// its audit record: here a trusted proxy's ids, one per request.
#[tokio::test]
async fn each_code_event_names_its_request_id_in_the_log_and_the_audit_record() {
    let logs = capture_logs();
    let env = Env::with_config(|t| {
        let t = with_server_keys(&t, "trusted_proxies = [\"127.0.0.1\"]");
        format!("{AUDIT}\n{t}")
    })
    .await;
    let (dave, _) = env.logged_in("dave");
    let page = dave
        .get(env.url("/.otpgate/verify?rd=%2F"))
        .header("accept", "text/html")
        .header("x-request-id", "front-page-1")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    let code = env.sms.last().code();
    let res = dave
        .post(env.url("/.otpgate/verify"))
        .header("x-request-id", "front-check-2")
        .form(&[
            ("code", code.as_str()),
            ("csrf", csrf.as_str()),
            ("rd", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let (verified, audit) = audit_record(&env, "otp.verified").await;
    assert_eq!(verified["request_id"], "front-check-2", "{audit}");
    let (sent, _) = audit_record(&env, "otp.sent").await;
    assert_eq!(sent["request_id"], "front-page-1", "{audit}");
    let text = logs.text();
    for (event, id) in [
        ("otp.sent", "front-page-1"),
        ("otp.verified", "front-check-2"),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")) && l.contains("user=\"dave\""))
            .unwrap_or_else(|| panic!("no {event} line for dave:\n{text}"));
        assert!(
            line.contains(&format!("request_id=\"{id}\"")),
            "{event} names its request: {line}"
        );
    }
}
