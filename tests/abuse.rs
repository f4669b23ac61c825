//! Limits against attackers: per client address and per account, sized so
//! that an office behind one address is not one (issue 12). Each test fails
//! if its defence, or its allowance, is removed.

mod common;

use common::*;

#[tokio::test]
async fn sends_from_one_address_are_capped_across_accounts() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_ip_sends_per_minute = 2\n").await;
    for user in ["u1", "u2"] {
        let (client, _) = env.logged_in(user);
        let res = navigate(&client, &env.url("/.otpgate/verify?rd=%2F")).await;
        assert_eq!(res.status(), 200, "{user}");
    }
    let (client, _) = env.logged_in("u3");
    let res = navigate(&client, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("from your network"));
    assert_eq!(env.sms.count(), 2, "no message for the third account");
}

#[tokio::test]
async fn code_checks_from_one_address_are_capped() {
    let env = Env::with("[limits]\nper_ip_verifies_per_minute = 2\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    for _ in 0..2 {
        assert_eq!(
            submit_code(&env, &client, &csrf, &wrong(&code))
                .await
                .status(),
            422
        );
    }
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(
        res.status(),
        429,
        "the third check from this address is not even looked at"
    );
    assert!(res.text().await.unwrap().contains("from your network"));
}

#[tokio::test]
async fn consecutive_wrong_codes_across_codes_lock_the_account_until_the_lock_ends() {
    let env = Env::with(
        "[otp]\nmax_attempts = 2\n[limits]\ncooldown = \"0s\"\naccount_failure_cap = 3\n",
    )
    .await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let first = env.sms.last().code();
    submit_code(&env, &client, &csrf, &wrong(&first)).await;
    let res = submit_code(&env, &client, &csrf, &wrong(&first)).await;
    assert!(
        res.text().await.unwrap().contains("Too many wrong codes"),
        "the first code is dead"
    );
    assert_eq!(
        resend(&env, &client, &csrf).await.status(),
        303,
        "a new code is sent"
    );
    let second = env.sms.last().code();
    let res = submit_code(&env, &client, &csrf, &wrong(&second)).await;
    assert_eq!(
        res.status(),
        422,
        "the third failure in a row locks the account"
    );

    let res = submit_code(&env, &client, &csrf, &second).await;
    assert_eq!(
        res.status(),
        429,
        "even the right code is refused while locked"
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("account, so it is locked")
    );
    let sent = env.sms.count();
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    assert_eq!(env.sms.count(), sent, "a locked account gets no new code");
}

#[tokio::test]
async fn a_right_code_ends_the_run_of_failures() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\naccount_failure_cap = 2\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    assert_eq!(
        submit_code(&env, &client, &csrf, &wrong(&code))
            .await
            .status(),
        422
    );
    assert_eq!(submit_code(&env, &client, &csrf, &code).await.status(), 303);
    // A new session of the same user: one failure is not two in a row.
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    assert_eq!(
        submit_code(&env, &client, &csrf, &wrong(&code))
            .await
            .status(),
        422
    );
    assert_eq!(submit_code(&env, &client, &csrf, &code).await.status(), 303);
}

#[tokio::test]
async fn fifty_colleagues_behind_one_address_each_get_a_code_and_get_in_with_the_default_limits() {
    let env = Env::start().await;
    let started = std::time::Instant::now();
    // 9:00 at the office: everyone opens the code page before anyone has
    // entered a code; company numbers are consecutive (+31612345000..49),
    // so the pumping guard sees one range.
    let mut waiting = Vec::new();
    for i in 0..50 {
        let number = format!("+316123450{i:02}");
        let (client, _) = env.logged_in_with_phone(&format!("colleague{i}"), Some(&number));
        let res = navigate(&client, &env.url("/.otpgate/verify?rd=%2F")).await;
        assert_eq!(res.status(), 200, "colleague {i} gets a code");
        let csrf = csrf_of(&res.text().await.unwrap());
        let sent = env.sms.last();
        assert_eq!(sent.json["to"], number.as_str());
        waiting.push((client, csrf, sent.code()));
    }
    for (i, (client, csrf, code)) in waiting.iter().enumerate() {
        let res = submit_code(&env, client, csrf, code).await;
        assert_eq!(res.status(), 303, "colleague {i} gets in");
    }
    assert_eq!(env.sms.count(), 50);
    assert!(started.elapsed() < std::time::Duration::from_secs(300));
}

/// The text of the code page's resend line.
fn resend_line(html: &str) -> &str {
    let start = html.find("id=\"resend-status\"").expect("a resend line");
    let start = start + html[start..].find('>').unwrap() + 1;
    let end = start + html[start..].find("</p>").unwrap();
    &html[start..end]
}

#[tokio::test]
async fn a_refusal_page_says_when_a_new_code_may_be_asked_for_and_never_now() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_ip_sends_per_minute = 2\n").await;
    for user in ["u1", "u2"] {
        assert_eq!(ask_code(&env, user, "+31612345678").await.status(), 200);
    }
    let res = ask_code(&env, "u3", "+31612345679").await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "from your network. Please try again in {wait} seconds."
        )),
        "{html}"
    );
    let line = resend_line(&html);
    assert_eq!(
        line,
        format!("You can ask for a new code in <span id=\"countdown\">{wait}</span> seconds."),
        "the resend line counts down the same wait"
    );
    assert!(html.contains(&format!("data-wait=\"{wait}\" data-held=\"1\"")));
}

#[tokio::test]
async fn a_refused_resend_says_the_same_long_wait_as_its_notice() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_ip_sends_per_hour = 1\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    let html = res.text().await.unwrap();
    assert!(html.contains("Please try again in 60 minutes."), "{html}");
    assert_eq!(
        resend_line(&html),
        "You can ask for a new code in 60 minutes.",
        "not \"now\", though the number's cooldown is over"
    );
}

#[tokio::test]
async fn many_accounts_through_an_untrusted_forwarding_proxy_are_warned_about_once() {
    let logs = capture_logs();
    let env = Env::start().await;
    for i in 0..12 {
        let (client, _) =
            env.logged_in_with_phone(&format!("fwd{i}"), Some(&format!("+3161234{i:04}")));
        let res = client
            .get(env.url("/.otpgate/verify?rd=%2F"))
            .header("accept", "text/html")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "user {i}");
    }
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("limits.untrusted_forwarder"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("127.0.0.1"),
        "names the peer: {}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("server.trusted_proxies"),
        "{}",
        warnings[0]
    );
}
