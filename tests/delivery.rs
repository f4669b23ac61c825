//! Delivery you can count on: status webhooks, the page following them,
//! WhatsApp first (its SMS fallback is in `fallback.rs`), senders by
//! country, allowed countries, Twilio and provider failover. The fake DIDfarm and Twilio
//! servers post their status callbacks back to the gateway over loopback.

mod common;

use common::delivery::*;
use common::twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio};
use common::*;

fn webhook_url(env: &Env, provider: &str) -> String {
    let url = env.sms.last().json["webhook_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&format!("{PUBLIC}/.otpgate/webhook/{provider}/")),
        "{url}"
    );
    url
}

#[tokio::test]
async fn every_send_asks_for_status_reports_at_an_unguessable_gateway_url() {
    let env = env_with(r#"providers = ["didfarm"]"#, "").await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    let url = webhook_url(&env, "didfarm");
    let token = url.rsplit('/').next().unwrap();
    assert!(token.len() >= 32, "the token is long: {token}");
    assert_eq!(status(&env, &client).await["progress"], "waiting");
}

#[tokio::test]
async fn the_page_status_follows_a_delivered_report() {
    let env = env_with(r#"providers = ["didfarm"]"#, "").await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    assert_eq!(env.sms.report(env.addr, 0, "sent").await, 204);
    assert_eq!(status(&env, &client).await["progress"], "waiting");
    assert_eq!(env.sms.report(env.addr, 0, "delivered").await, 204);
    let s = status(&env, &client).await;
    assert_eq!(s["progress"], "delivered");
    assert!(s["text"].as_str().unwrap().contains("Delivered"), "{s}");
    assert_eq!(s["alternatives"], false);
    let page = navigate(&client, &env.url("/.otpgate/verify?rd=%2F"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"data-progress="delivered""#),
        "the page itself shows it on reload"
    );
}

#[tokio::test]
async fn a_failed_report_says_so_offers_alternatives_and_lifts_the_cooldown() {
    let env = env_with(
        r#"providers = ["didfarm"]
channels = ["sms", "whatsapp"]"#,
        "",
    )
    .await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    assert_eq!(
        post_resend(&env, &client, &csrf, &[]).await.status(),
        429,
        "the cooldown holds"
    );
    assert_eq!(env.sms.report(env.addr, 0, "failed").await, 204);
    let s = status(&env, &client).await;
    assert_eq!(s["progress"], "failed");
    assert_eq!(s["alternatives"], true);
    assert_eq!(
        s["resend_in"], 0,
        "no waiting for a message that will never come"
    );
    let page = navigate(&client, &env.url("/.otpgate/verify?rd=%2F"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"value="whatsapp""#), "WhatsApp is offered");
    let res = post_resend(&env, &client, &csrf, &[("channel", "whatsapp")]).await;
    assert_eq!(res.status(), 303, "the resend is allowed at once");
    assert_eq!(env.sms.count(), 2);
    assert_eq!(env.sms.last().channel, "whatsapp");
    assert_eq!(env.sms.last().json["template"], "otp_verification");
}

#[tokio::test]
async fn per_country_channels_put_whatsapp_first_only_there() {
    let env = env_with(
        r#"providers = ["didfarm"]
channels_by_country = { NL = ["whatsapp", "sms"] }"#,
        "",
    )
    .await;
    let (nl, _) = env.logged_in("alice");
    open_code_page(&env, &nl).await;
    assert_eq!(env.sms.last().channel, "whatsapp");
    let (de, _) = env.logged_in_with_phone("bob", Some("+4915112345678"));
    open_code_page(&env, &de).await;
    assert_eq!(env.sms.last().channel, "sms");
}

#[tokio::test]
async fn a_webhook_with_a_wrong_token_is_not_found_and_changes_nothing() {
    let env = env_with(r#"providers = ["didfarm"]"#, "").await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    let url = webhook_url(&env, "didfarm");
    let token = url.rsplit('/').next().unwrap();
    let event =
        r#"{"event":"message.status_update","data":{"message_id":"msg_1","status":"failed"}}"#;
    let mut wrong = token.to_string();
    wrong.replace_range(..1, if token.starts_with('A') { "B" } else { "A" });
    for bad in [
        url.replace(token, &wrong),
        url.replace(token, ""),
        url.replace("/didfarm/", "/twilio/"),
    ] {
        let code = post_to_gateway(env.addr, &bad, "application/json", event.into(), &[]).await;
        assert_eq!(code, 404, "{bad}");
    }
    assert_eq!(status(&env, &client).await["progress"], "waiting");
}

#[tokio::test]
async fn malformed_oversized_and_unknown_webhook_bodies_are_answered_cleanly() {
    let env = env_with(r#"providers = ["didfarm"]"#, "").await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    let url = webhook_url(&env, "didfarm");
    let post = |body: String| post_to_gateway(env.addr, &url, "application/json", body, &[]);
    assert_eq!(post("{".into()).await, 400);
    assert_eq!(post("\u{0}\u{ff}garbage".into()).await, 400);
    assert_eq!(
        post(r#"{"event":"message.status_update"}"#.into()).await,
        400
    );
    assert_eq!(
        post(format!(r#"{{"pad":"{}"}}"#, "x".repeat(100_000))).await,
        413
    );
    let unknown =
        r#"{"event":"message.status_update","data":{"message_id":"msg_999","status":"failed"}}"#;
    assert_eq!(
        post(unknown.into()).await,
        204,
        "unknown ids are acknowledged and ignored"
    );
    let get = plain_client()
        .get(env.url(&url[PUBLIC.len()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(status(&env, &client).await["progress"], "waiting");
    assert_eq!(
        env.sms.report(env.addr, 0, "delivered").await,
        204,
        "the endpoint still works"
    );
}

#[tokio::test]
async fn without_a_public_url_there_is_no_webhook_and_no_report_is_asked_for() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    assert!(env.sms.last().json.get("webhook_url").is_none());
    let s = status(&env, &client).await;
    assert_eq!(s["progress"], "waiting");
    let res = plain_client()
        .post(env.url("/.otpgate/webhook/didfarm/x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn senders_follow_the_countrys_rules_and_the_configured_overrides() {
    let env = env_with(
        r#"providers = ["didfarm"]
from = "YourBrand"
from_numeric = "+31201234567"
from_by_country = { US = "+12015550123" }
sender_id_rules = { BE = "numeric" }"#,
        "",
    )
    .await;
    let cases = [
        ("de", "+4915112345678", "YourBrand"),
        ("fr", "+33612345678", "+31201234567"),
        ("us", "+12015550123", "+12015550123"),
        ("be", "+32470123456", "+31201234567"),
        ("nl", "+31612345678", "YourBrand"),
    ];
    for (user, number, sender) in cases {
        let (client, _) = env.logged_in_with_phone(user, Some(number));
        open_code_page(&env, &client).await;
        assert_eq!(env.sms.last().json["from"], sender, "{user} {number}");
    }
}

#[tokio::test]
async fn numbers_outside_the_allowed_countries_get_a_clear_page_and_no_message() {
    let env = env_with(
        r#"providers = ["didfarm"]
allowed_countries = ["NL", "DE"]"#,
        "",
    )
    .await;
    let (fr, _) = env.logged_in_with_phone("marie", Some("+33612345678"));
    let res = navigate(&fr, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(res.status(), 403);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("cannot be sent to phone numbers in this country")
    );
    let (bad, _) = env.logged_in_with_phone("typo", Some("+3161234"));
    let res = navigate(&bad, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("not usable"));
    assert_eq!(env.sms.count(), 0);
    let (nl, _) = env.logged_in("alice");
    open_code_page(&env, &nl).await;
    assert_eq!(env.sms.count(), 1, "allowed countries still work");
}

async fn twilio_env(twilio: &FakeTwilio, providers: &str) -> Env {
    let table = format!(
        "[sms.twilio]\nbase_url = \"{}\"\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\n",
        twilio.url()
    );
    env_with(&format!("providers = {providers}"), &table).await
}

#[tokio::test]
async fn twilio_gets_a_signed_in_form_post_and_its_signed_callbacks_move_the_page() {
    let twilio = FakeTwilio::start().await;
    let env = twilio_env(&twilio, r#"["twilio"]"#).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let m = twilio.last();
    let basic = base64_basic(ACCOUNT_SID, AUTH_TOKEN);
    assert_eq!(m.authorization.as_deref(), Some(basic.as_str()));
    assert_eq!(m.field("To"), Some("+31612345678"));
    assert_eq!(m.field("ValidityPeriod"), Some("300"));
    assert!(
        m.field("StatusCallback")
            .unwrap()
            .starts_with(&format!("{PUBLIC}/.otpgate/webhook/twilio/"))
    );
    assert_eq!(
        twilio
            .report(env.addr, 0, "delivered", "not-the-token")
            .await,
        403,
        "a bad signature is refused"
    );
    assert_eq!(
        status(&env, &client).await["progress"],
        "waiting",
        "and changes nothing"
    );
    let callback = m.field("StatusCallback").unwrap().to_string();
    let unsigned = post_to_gateway(
        env.addr,
        &callback,
        "application/x-www-form-urlencoded",
        "MessageSid=SM1&MessageStatus=failed".into(),
        &[],
    )
    .await;
    assert_eq!(unsigned, 403, "an unsigned callback is refused");
    assert_eq!(
        twilio.report(env.addr, 0, "undelivered", AUTH_TOKEN).await,
        204
    );
    assert_eq!(status(&env, &client).await["progress"], "failed");
    let res = submit_code(&env, &client, &csrf, &m.code()).await;
    assert_eq!(res.status(), 303, "the code from Twilio's message works");
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn a_5xx_or_a_timeout_fails_over_to_the_next_provider() {
    let twilio = FakeTwilio::start().await;
    let env = twilio_env(&twilio, r#"["didfarm", "twilio"]"#).await;
    env.sms.set_mode(ProviderMode::Fail(503));
    let (a, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &a).await;
    assert_eq!(
        (env.sms.count(), twilio.count()),
        (0, 1),
        "503: Twilio sent it"
    );
    let res = submit_code(&env, &a, &csrf, &twilio.last().code()).await;
    assert_eq!(res.status(), 303);
    env.sms.set_mode(ProviderMode::Hang);
    let (b, _) = env.logged_in_with_phone("bob", Some("+4915112345678"));
    open_code_page(&env, &b).await;
    assert_eq!(twilio.count(), 2, "timeout: Twilio sent it");
    assert_eq!(twilio.last().field("To"), Some("+4915112345678"));
}

#[tokio::test]
async fn a_4xx_is_the_numbers_problem_and_is_not_retried_elsewhere() {
    let twilio = FakeTwilio::start().await;
    let env = twilio_env(&twilio, r#"["didfarm", "twilio"]"#).await;
    env.sms.set_mode(ProviderMode::Fail(422));
    let (a, _) = env.logged_in("alice");
    let res = navigate(&a, &env.url("/.otpgate/verify?rd=%2F")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(twilio.count(), 0, "no second provider for a refused number");
}

#[tokio::test]
async fn the_generic_http_provider_sends_the_request_described_in_config() {
    use std::sync::{Arc, Mutex};
    /// What the API saw: the Authorization header and the JSON body.
    type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let api = serve(move |req: http::Request<hyper::body::Incoming>| {
        let record = record.clone();
        async move {
            use http_body_util::BodyExt;
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            record
                .lock()
                .unwrap()
                .push((auth, serde_json::from_slice(&body).unwrap()));
            json(200, serde_json::json!({"id": 42}))
        }
    })
    .await;
    let table = format!(
        "[sms.http]\nurl = \"http://{api}/v2/send\"\nheaders = {{ Authorization = \"Bearer {{secret}}\" }}\nsecret = \"s3cret\"\njson = {{ recipient = \"{{to}}\", sender = \"{{from}}\", message = {{ text = \"{{body}}\" }} }}\nmessage_id_pointer = \"/id\"\n"
    );
    let env = env_with(r#"providers = ["http"]"#, &table).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let (auth, body) = seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the API got the message");
    assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
    assert_eq!(body["recipient"], "+31612345678");
    assert_eq!(body["sender"], "+31201234567");
    let text = body["message"]["text"].as_str().unwrap();
    let code = text.rsplit('#').next().unwrap().to_string();
    assert_eq!(submit_code(&env, &client, &csrf, &code).await.status(), 303);
}

#[tokio::test]
async fn delivery_reports_are_kept_in_the_audit_log_without_the_number() {
    let env = env_with(r#"providers = ["didfarm"]"#, AUDIT).await;
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    assert_eq!(env.sms.report(env.addr, 0, "failed").await, 204);
    let (record, text) = audit_record(&env, "delivery.failed").await;
    assert_eq!(record["error_code"], "30003");
    assert_eq!(record["message_id"], "msg_1");
    assert_eq!(record["channel"], "sms");
    assert!(!text.contains("+31612345678") && !text.contains("31612345678"));
}

#[tokio::test]
async fn the_webhook_token_never_reaches_the_log_and_each_provider_has_its_own() {
    let logs = capture_logs();
    let twilio = FakeTwilio::start().await;
    let env = twilio_env(&twilio, r#"["didfarm", "twilio"]"#).await;
    env.sms.set_mode(ProviderMode::Fail(503));
    let (client, _) = env.logged_in("alice");
    open_code_page(&env, &client).await;
    let callback = twilio.last().field("StatusCallback").unwrap().to_string();
    let token = callback.rsplit('/').next().unwrap().to_string();
    // A refused request at the right URL (wrong method) is logged without it.
    let res = plain_client()
        .get(env.url(&callback[PUBLIC.len()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let didfarm_path = callback[PUBLIC.len()..].replace("/twilio/", "/didfarm/");
    let event =
        r#"{"event":"message.status_update","data":{"message_id":"msg_1","status":"failed"}}"#;
    let res = plain_client()
        .post(env.url(&didfarm_path))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "Twilio's token does not open DIDfarm's endpoint"
    );
    assert!(!logs.text().contains(&token), "the token was logged");
}
