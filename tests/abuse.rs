//! Limits against attackers: per client address and per account. Each test
//! fails if its defence is removed.

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
