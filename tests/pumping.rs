//! The OTP-pumping guard through the whole gateway: sends to numbers of one
//! country or range that are never verified get that destination
//! quarantined, and each test fails if its rule is removed. Numbers come
//! from the fake app's users; all requests come from one address, so the
//! per-address limits are raised out of the way.

mod common;

use common::*;

/// Limits that stay out of the way of a burst from one test address.
const LIMITS: &str = "[limits]\ncooldown = \"0s\"\nper_ip_sends_per_minute = 1000\nper_ip_sends_per_hour = 1000\nper_ip_verifies_per_minute = 1000\n";

/// Unverified sends are judged at once, not after `answer_time` (5
/// minutes by default): these tests make a burst and look right away.
const JUDGE_AT_ONCE: &str = "answer_time = \"0s\"\n";

/// A Nigerian mobile number in the range +234803123xxxx.
fn ng(i: usize) -> String {
    format!("+234803123{i:04}")
}

#[tokio::test]
async fn a_pumping_burst_to_one_prefix_is_quarantined_while_another_country_keeps_working() {
    let logs = capture_logs();
    let env = Env::with(&format!(
        "{LIMITS}[pumping]\nmode = \"enforce\"\nmin_sends = 5\nmin_conversion = 0.2\n{JUDGE_AT_ONCE}"
    ))
    .await;
    for i in 0..5 {
        let res = ask_code(&env, &format!("p{i}"), &ng(i)).await;
        assert_eq!(res.status(), 200, "no judgement below min_sends");
    }
    assert_eq!(env.sms.count(), 5);

    let res = ask_code(&env, "p5", &ng(5)).await;
    assert_eq!(res.status(), 429, "none of the 5 was verified");
    assert!(res.headers().contains_key("retry-after"));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("paused because of unusual traffic"),
        "the user is told why"
    );
    assert_eq!(env.sms.count(), 5, "no message to the quarantined range");

    let res = ask_code(&env, "alice", "+31612345678").await;
    assert_eq!(res.status(), 200, "a Dutch number still gets its code");
    assert_eq!(env.sms.count(), 6);

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("pumping.quarantine") && l.contains("+234803123"))
        .expect("a warning names the prefix");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("sends=5") && line.contains("verified=0"),
        "{line}"
    );
    for i in 0..6 {
        assert!(
            !text.contains(&ng(i)),
            "a full number was logged: {}",
            ng(i)
        );
    }
}

#[tokio::test]
async fn monitor_mode_refuses_no_code_but_logs_what_it_would_have_refused() {
    let logs = capture_logs();
    let env = Env::with(&format!(
        "{LIMITS}[pumping]\nmode = \"monitor\"\nmin_sends = 3\ncountry_caps = {{ GH = 1 }}\n{JUDGE_AT_ONCE}"
    ))
    .await;
    // Ghana: +233 24 412 xxxx, a range no other test here uses.
    for i in 0..6 {
        let res = ask_code(&env, &format!("m{i}"), &format!("+23324412{i:04}")).await;
        assert_eq!(res.status(), 200, "send {i} goes out");
    }
    assert_eq!(env.sms.count(), 6, "monitor mode blocks nothing");
    let text = logs.text();
    let would = |event: &str, key: &str| {
        text.lines().any(|l| {
            l.contains(event) && l.contains(key) && l.contains("monitor mode, nothing refused")
        })
    };
    assert!(would("pumping.quarantine", "+23324412"), "{text}");
    assert!(would("pumping.country_cap", "GH"), "{text}");
}

#[tokio::test]
async fn verified_codes_keep_a_busy_range_open() {
    let env = Env::with(&format!("{LIMITS}[pumping]\nmin_sends = 3\n")).await;
    for i in 0..6 {
        let (client, _) = env.logged_in_with_phone(&format!("v{i}"), Some(&ng(i)));
        let csrf = open_code_page(&env, &client).await;
        let code = env.sms.last().code();
        assert_eq!(
            submit_code(&env, &client, &csrf, &code).await.status(),
            303,
            "user {i} gets and enters a code"
        );
    }
    assert_eq!(env.sms.count(), 6);
}

#[tokio::test]
async fn a_country_past_its_hourly_cap_gets_no_more_codes_while_others_do() {
    let env = Env::with(&format!(
        "{LIMITS}[pumping]\nmin_sends = 1000\ncountry_caps = {{ NG = 2 }}\n"
    ))
    .await;
    for i in 0..2 {
        assert_eq!(ask_code(&env, &format!("c{i}"), &ng(i)).await.status(), 200);
    }
    // Another range of the same country: the cap is per country.
    let res = ask_code(&env, "c2", "+2348091234567").await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("unusual traffic"));
    assert_eq!(env.sms.count(), 2);
    assert_eq!(
        ask_code(&env, "alice", "+31612345678").await.status(),
        200,
        "the Netherlands have the default cap"
    );
}

#[tokio::test]
async fn with_the_guard_off_nothing_is_counted_or_refused() {
    let env = Env::with(&format!(
        "{LIMITS}[pumping]\nmode = \"off\"\nmin_sends = 1\ncountry_caps = {{ NG = 0 }}\n"
    ))
    .await;
    for i in 0..3 {
        assert_eq!(ask_code(&env, &format!("o{i}"), &ng(i)).await.status(), 200);
    }
    assert_eq!(env.sms.count(), 3);
}

#[tokio::test]
async fn a_quarantine_and_its_refusals_are_in_the_audit_log_without_a_whole_number() {
    let env = Env::with(&format!(
        "{LIMITS}[pumping]\nmode = \"enforce\"\nmin_sends = 3\nmin_conversion = 0.2\n{JUDGE_AT_ONCE}{AUDIT}"
    ))
    .await;
    for i in 0..4 {
        ask_code(&env, &format!("q{i}"), &ng(i)).await;
    }
    // The refusal is queued after the quarantine it follows from.
    let (refused, text) = audit_record(&env, "rate_limited").await;
    assert_eq!(refused["window"], "pumping", "{refused}");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let q = records
        .iter()
        .find(|r| r["event"] == "pumping.quarantine")
        .expect("a pumping.quarantine record");
    assert_eq!(q["prefix"], "+234803123", "{q}");
    assert_eq!(q["outcome"], "quarantined", "{q}");
    assert!(
        refused.get("phone").is_none(),
        "no last digits beside the prefix: {refused}"
    );
    for i in 0..4 {
        assert!(!text.contains(&ng(i)), "a whole number in the audit log");
    }
}
