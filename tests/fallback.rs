//! WhatsApp first, SMS as fallback, sent by the gateway itself: after
//! `fallback_after` without a `delivered` report, or at once on `failed`,
//! whether or not a page is open; exactly one SMS however many tabs,
//! reports and timers race; nothing after the code died or the gateway
//! stopped. Results sent at the gateway's own time are waited for by
//! polling the fake DIDfarm with a deadline.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::delivery::*;
use common::*;

/// WhatsApp first, SMS after a second.
const WHATSAPP_FIRST: &str =
    "providers = [\"didfarm\"]\nchannels = [\"whatsapp\", \"sms\"]\nfallback_after = \"1s\"";

#[tokio::test]
async fn a_failed_whatsapp_message_is_followed_once_by_an_sms_with_the_same_code() {
    let env = whatsapp_first("5m").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let first = env.sms.last();
    assert_eq!(first.channel, "whatsapp");
    assert_eq!(first.json["variables"]["expiry_minutes"], "5");
    let code = first.code();
    assert_eq!(
        post_resend(&env, &client, &csrf, &[("fallback", "1")])
            .await
            .status(),
        303
    );
    assert_eq!(env.sms.count(), 1, "no fallback before it is due");
    env.sms.report(env.addr, 0, "failed").await;
    // The gateway sends it at once, by itself.
    until_count(&env.sms, 2).await;
    let sms = env.sms.last();
    assert_eq!(
        (sms.channel, sms.code()),
        ("sms", code.clone()),
        "the same code, by SMS"
    );
    post_resend(&env, &client, &csrf, &[("fallback", "1")]).await;
    env.sms.report(env.addr, 0, "failed").await;
    assert_eq!(env.sms.count(), 2, "the fallback is taken once");
    assert_eq!(status(&env, &client).await["channel"], "sms");
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the code still works");
}

#[tokio::test]
async fn without_a_delivered_report_the_sms_fallback_follows_after_fallback_after() {
    let clock = otpgate::store::ManualClock::starting_now();
    let env = whatsapp_first_on("2m", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    clock.advance(Duration::from_secs(119));
    settle().await;
    assert_eq!(env.sms.count(), 1, "not before fallback_after");
    clock.advance(Duration::from_secs(1));
    until_count(&env.sms, 2).await;
    assert_eq!(
        post_resend(&env, &client, &csrf, &[("fallback", "1")])
            .await
            .status(),
        303,
        "a page whose old script still asks gets the code page"
    );
    assert_eq!(env.sms.count(), 2, "and nothing more is sent");
    assert_eq!(
        (env.sms.last().channel, env.sms.last().code()),
        ("sms", code)
    );
}

#[tokio::test]
async fn a_delivered_whatsapp_message_gets_no_fallback() {
    let clock = otpgate::store::ManualClock::starting_now();
    let env = whatsapp_first_on("1s", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    env.sms.report(env.addr, 0, "delivered").await;
    let pending = env.state.account_key(0, "alice");
    assert!(
        !env.state.deliveries.keeps_sealed(&pending).await,
        "the sealed copy goes with the delivered report"
    );
    clock.advance(Duration::from_millis(1200));
    settle().await;
    assert_eq!(status(&env, &client).await["progress"], "delivered");
    post_resend(&env, &client, &csrf, &[("fallback", "1")]).await;
    assert_eq!(env.sms.count(), 1, "nothing more was sent");
}

#[tokio::test]
async fn with_no_page_open_the_gateway_itself_sends_the_sms_after_fallback_after() {
    let logs = capture_logs();
    let clock = otpgate::store::ManualClock::starting_now();
    let env = env_with_server_on(WHATSAPP_FIRST, AUDIT, "", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    // The first code page load is all the browser does: no script runs,
    // no status poll, no resend.
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let pending = env.state.account_key(0, "alice");
    assert!(env.state.deliveries.keeps_sealed(&pending).await);
    clock.advance(Duration::from_secs(1));
    until_count(&env.sms, 2).await;
    let sms = env.sms.last();
    assert_eq!((sms.channel, sms.code()), ("sms", code.clone()));
    assert_eq!(sms.json["to"], "+31612345678");
    assert!(
        sms.body().ends_with(&format!("#{code}")),
        "the origin-bound line as for the page's own sends: {}",
        sms.body()
    );
    assert!(
        !env.state.deliveries.keeps_sealed(&pending).await,
        "the sealed copy goes once the fallback is sent"
    );
    let (record, audit) = audit_record(&env, "delivery.fallback").await;
    assert_eq!(record["channel"], "sms", "{record}");
    assert_eq!(record["user"], "alice", "{record}");
    assert_eq!(record["client_ip"], "127.0.0.1", "{record}");
    assert_eq!(record["user_agent"], USER_AGENT, "{record}");
    assert!(!audit.contains(&code), "the code is in the audit log");
    assert!(
        !logs.text().contains(&code),
        "the code is in the process log"
    );
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the code works");
}

#[tokio::test]
async fn tabs_failed_reports_and_the_timer_racing_send_one_sms() {
    let clock = otpgate::store::ManualClock::starting_now();
    let env = whatsapp_first_on("1s", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    // Three tabs open the page at once: one code, one WhatsApp, one timer.
    let url = env.url("/.otpgate/verify?rd=%2F");
    futures_util::future::join_all((0..3).map(|_| navigate(&client, &url))).await;
    assert_eq!(env.sms.count(), 1);
    // The SMS takes its time to be accepted (well within the provider
    // timeout of 1 s), so the timer comes due while the report's send is
    // under way: whichever claims first sends, the other finds it taken.
    env.sms.set_delay(Duration::from_millis(300));
    let reports = (0..8).map(|_| env.sms.report(env.addr, 0, "failed"));
    let answers = futures_util::future::join_all(reports).await;
    assert!(answers.iter().all(|a| *a == 204), "{answers:?}");
    clock.advance(Duration::from_millis(1000));
    until_count(&env.sms, 2).await;
    // Past the timer's time again: still one SMS.
    clock.advance(Duration::from_millis(1500));
    settle().await;
    assert_eq!(env.sms.count(), 2, "{:?}", env.sms.codes());
    assert_eq!(env.sms.last().channel, "sms");
    let codes = env.sms.codes();
    assert_eq!(codes[0], codes[1], "the same code");
}

#[tokio::test]
async fn a_verified_code_gets_no_fallback_and_its_sealed_copy_goes_at_once() {
    let clock = otpgate::store::ManualClock::starting_now();
    let env = whatsapp_first_on("1s", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let pending = env.state.account_key(0, "alice");
    assert_eq!(submit_code(&env, &client, &csrf, &code).await.status(), 303);
    assert!(!env.state.deliveries.keeps_sealed(&pending).await);
    clock.advance(Duration::from_millis(1500));
    settle().await;
    assert_eq!(env.sms.count(), 1, "the timer did nothing");
}

#[tokio::test]
async fn a_stopped_gateway_sends_no_fallback_and_its_timers_let_go_of_it() {
    // One worker: the timer runs on this test's runtime, which outlives
    // the gateway (a worker thread's runtime would end with it anyway).
    let mut env = whatsapp_first_with("300s", "workers = 1").await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    drop(client);
    assert!(
        env.state
            .deliveries
            .keeps_sealed(&env.state.account_key(0, "alice"))
            .await
    );
    env.shutdown.take().unwrap().send(()).unwrap();
    let served = env.served.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve ends within the grace")
        .unwrap();
    // Nothing but this test holds the state once the timer has stopped.
    for _ in 0..200 {
        if Arc::strong_count(&env.state) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        Arc::strong_count(&env.state),
        1,
        "a fallback timer still holds the gateway"
    );
    assert_eq!(env.sms.count(), 1);
}
