//! The code itself: how it is sent, shown, checked, resent, limited and
//! guarded, seen from a browser and from the fake DIDfarm API.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The code page's address for `rd`, encoded as a browser would.
fn verify_path(rd: &str) -> String {
    let rd: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("/.otpgate/verify?rd={rd}")
}

/// The value of the hidden `rd` field of a code page.
fn rd_of(html: &str) -> String {
    let start = html
        .find("name=\"rd\" value=\"")
        .expect("the page has an rd field")
        + 17;
    html[start..].split('"').next().unwrap().to_string()
}

/// Every `Set-Cookie` of a response that sets the cookie called `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Posts a code with a chosen `rd`.
async fn submit_with_rd(
    env: &Env,
    client: &reqwest::Client,
    csrf: &str,
    code: &str,
    rd: &str,
) -> reqwest::Response {
    client
        .post(env.url("/.otpgate/verify"))
        .form(&[("code", code), ("csrf", csrf), ("rd", rd)])
        .send()
        .await
        .unwrap()
}

/// A client with no cookie store that sends the app session cookie by hand,
/// so that a response setting our cookie cannot change its later requests.
fn bare_client() -> reqwest::Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts an environment with a second app, "Second App", served for
/// `Host: second.example` by the same fake upstream; cooldown is off.
async fn env_with_second_app() -> Env {
    Env::with_config(|text| {
        let upstream = text.lines().find(|l| l.starts_with("upstream =")).expect("the base config names its upstream");
        format!(
            "[limits]\ncooldown = \"0s\"\n{text}\n[[apps]]\nname = \"Second App\"\nhost = \"second.example\"\n{upstream}\n\
             session_cookie = \"sessionid\"\nuserinfo_path = \"/api/me\"\nuser_pointer = \"/username\"\nphone_pointer = \"/phone\"\n"
        )
    })
    .await
}

// 1
#[tokio::test]
async fn the_first_protected_navigation_sends_exactly_one_well_formed_sms_and_a_reload_sends_none()
{
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with("/.otpgate/verify?rd="), "{to}");
    assert_eq!(env.sms.count(), 0, "the redirect itself sends nothing");

    let res = navigate(&client, &env.url(&to)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        env.sms.count(),
        1,
        "arriving at the code page sends one SMS"
    );
    let sms = env.sms.last();
    assert_eq!(sms.authorization.as_deref(), Some("Bearer test-key"));
    assert_eq!(sms.test_header.as_deref(), Some("true"));
    assert_eq!(sms.json["from"], "+31201234567");
    assert_eq!(sms.json["to"], "+31612345678");
    let code = sms.code();
    assert_eq!(code.len(), 6, "{code:?}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
    let body = sms.body();
    assert!(!body.ends_with('\n'), "no trailing newline: {body:?}");
    assert_eq!(
        body.lines().last(),
        Some(format!("@127.0.0.1 #{code}").as_str()),
        "{body:?}"
    );
    assert!(body.contains(&code));

    let res = navigate(&client, &env.url(&to)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        env.sms.count(),
        1,
        "a reload finds the code alive and sends no second SMS"
    );
}

// 2
#[tokio::test]
async fn the_code_page_offers_one_time_code_entry_the_masked_number_a_resend_countdown_and_safe_headers()
 {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let res = navigate(&client, &env.url(&verify_path("/reports"))).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Not `no-referrer`: with it, browsers post the code form with `Origin: null` (issue 10).
    assert_eq!(h["referrer-policy"], "same-origin");
    let html = res.text().await.unwrap();
    let input_start = html
        .find("<input id=\"code\"")
        .expect("the page has the code input");
    let input = &html[input_start..input_start + html[input_start..].find('>').unwrap()];
    for attr in [
        "name=\"code\"",
        "autocomplete=\"one-time-code\"",
        "inputmode=\"numeric\"",
        "pattern=\"[0-9]*\"",
        "maxlength=\"6\"",
        "autofocus",
    ] {
        assert!(input.contains(attr), "{attr} missing in {input}");
    }
    assert!(html.contains("***5678"), "the masked number is shown");
    assert!(
        !html.contains("31612345678"),
        "the full number is not shown"
    );
    assert!(html.contains("id=\"resend\""), "there is a resend button");
    assert!(html.contains("data-wait=\"60\""), "{html}");
    assert!(
        html.contains("<span id=\"countdown\">60</span> seconds"),
        "{html}"
    );
}

// 3
#[tokio::test]
async fn a_wrong_code_is_refused_with_the_attempts_left_and_the_right_code_unlocks_once() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();

    let res = submit_code(&env, &client, &csrf, &wrong(&code)).await;
    assert_eq!(res.status(), 422);
    assert!(set_cookie(&res, "otpgate").is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );

    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/reports");
    let cookie = set_cookie(&res, "otpgate").expect("the second-factor cookie is set");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            cookie.split(';').any(|a| a.trim() == attr),
            "{attr} missing in {cookie}"
        );
    }

    let res = navigate(&client, &env.url("/reports")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "app page /reports");

    // A second browser of the same user replays the used code.
    let (other, _) = env.logged_in("alice");
    let res = navigate(&other, &env.url(&verify_path("/reports"))).await;
    let other_csrf = csrf_of(&res.text().await.unwrap());
    let res = submit_code(&env, &other, &other_csrf, &code).await;
    assert_eq!(res.status(), 422, "a used code does not work again");
    assert!(set_cookie(&res, "otpgate").is_none());
    let res = navigate(&other, &env.url("/reports")).await;
    assert_eq!(
        res.status(),
        303,
        "the second browser is still sent to the code page"
    );
}

// 4
#[tokio::test]
async fn five_wrong_codes_lock_the_code_until_a_new_one_is_sent() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let bad = wrong(&code);
    for left in [4, 3, 2] {
        let res = submit_code(&env, &client, &csrf, &bad).await;
        assert_eq!(res.status(), 422);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains(&format!("Invalid code, {left} attempts left"))
        );
    }
    let res = submit_code(&env, &client, &csrf, &bad).await;
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 1 attempt left")
    );
    let res = submit_code(&env, &client, &csrf, &bad).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Too many wrong codes"));

    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 422, "even the right code fails once locked");
    assert!(set_cookie(&res, "otpgate").is_none());
    assert!(res.text().await.unwrap().contains("Too many wrong codes"));

    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 303);
    assert_eq!(env.sms.count(), 2, "a resend after a lock sends a new code");
    let new_code = env.sms.last().code();
    let res = submit_code(&env, &client, &csrf, &new_code).await;
    assert_eq!(res.status(), 303, "the new code works");
    assert!(set_cookie(&res, "otpgate").is_some());
}

// 5
#[tokio::test]
async fn a_code_past_its_ttl_is_refused_as_expired() {
    // The code's lifetime is store time: the test moves the gateway's
    // clock past it instead of sleeping.
    let clock = otpgate::store::ManualClock::starting_now();
    let env = Env::with_clock("[otp]\nttl = \"1s\"\n", clock.clone()).await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    clock.advance(Duration::from_millis(1200));
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 422);
    assert!(set_cookie(&res, "otpgate").is_none());
    assert!(res.text().await.unwrap().contains("expired"));
}

// 6
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_are_each_counted_and_only_one_right_guess_succeeds() {
    let env = Env::start().await;
    let (client, token) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let url = env.url("/.otpgate/verify");
    let guess = |c: String| {
        let (url, token, csrf) = (url.clone(), token.clone(), csrf.clone());
        tokio::spawn(async move {
            let res = bare_client()
                .post(url)
                .header("cookie", format!("sessionid={token}"))
                .form(&[
                    ("code", c.as_str()),
                    ("csrf", csrf.as_str()),
                    ("rd", "/reports"),
                ])
                .send()
                .await
                .unwrap();
            let unlocked = set_cookie(&res, "otpgate").is_some();
            (res.status().as_u16(), unlocked, res.text().await.unwrap())
        })
    };

    let wrongs: Vec<_> = (0..2).map(|_| guess(wrong(&code))).collect();
    let mut left = Vec::new();
    for w in wrongs {
        let (status, _, text) = w.await.unwrap();
        assert_eq!(status, 422);
        let n = (1..=4).find(|n| text.contains(&format!("Invalid code, {n} attempts left")));
        left.push(n);
    }
    left.sort();
    assert_eq!(
        left,
        [Some(3), Some(4)],
        "each parallel wrong guess is counted once"
    );
    let res = submit_code(&env, &client, &csrf, &wrong(&code)).await;
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 2 attempts left")
    );

    let rights: Vec<_> = (0..10).map(|_| guess(code.clone())).collect();
    let mut results = Vec::new();
    for r in rights {
        results.push(r.await.unwrap());
    }
    let wins: Vec<_> = results.iter().filter(|(s, _, _)| *s == 303).collect();
    assert_eq!(
        wins.len(),
        1,
        "exactly one right guess succeeds: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(wins[0].1, "the success sets the second-factor cookie");
    let unlocking = results.iter().filter(|(_, unlocked, _)| *unlocked).count();
    assert_eq!(
        unlocking, 1,
        "no other answer sets the second-factor cookie"
    );
}

// 7
#[tokio::test]
async fn a_code_unlocks_only_the_user_it_was_sent_for() {
    let env = Env::start().await;
    let (alice, _) = env.logged_in("alice");
    let alice_csrf = open_code_page(&env, &alice).await;
    let alice_code = env.sms.last().code();

    let (bob, _) = env.logged_in_with_phone("bob", Some("+31687654321"));
    let bob_csrf = open_code_page(&env, &bob).await;
    let bob_sms = env.sms.last();
    assert_eq!(bob_sms.json["to"], "+31687654321");
    let bob_code = bob_sms.code();

    // Were both codes equal (one in a million), bob's guess would be his own code.
    if bob_code != alice_code {
        let res = submit_code(&env, &bob, &bob_csrf, &alice_code).await;
        assert_eq!(res.status(), 422, "bob cannot use alice's code");
        assert!(set_cookie(&res, "otpgate").is_none());
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("Invalid code, 4 attempts left")
        );
    }
    // Alice's CSRF token is bound to her session: bob cannot borrow her form either.
    let res = submit_code(&env, &bob, &alice_csrf, &alice_code).await;
    assert_eq!(res.status(), 403);

    let res = submit_code(&env, &alice, &alice_csrf, &alice_code).await;
    assert_eq!(res.status(), 303, "alice's code still works for alice");
    let res = navigate(&bob, &env.url("/reports")).await;
    assert_eq!(res.status(), 303, "bob is still not through");
}

#[tokio::test]
async fn a_code_unlocks_only_the_app_it_was_sent_for() {
    let env = env_with_second_app().await;
    let (client, _) = env.logged_in("alice");
    let csrf_a = open_code_page(&env, &client).await;
    let sms_a = env.sms.last();
    assert!(sms_a.body().contains("Test CRM"));
    let code_a = sms_a.code();

    let res = client
        .get(env.url(&verify_path("/reports")))
        .header("host", "second.example")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csrf_b = csrf_of(&res.text().await.unwrap());
    assert_eq!(env.sms.count(), 2, "the second app sends its own code");
    let sms_b = env.sms.last();
    assert!(sms_b.body().contains("Second App"), "{}", sms_b.body());
    assert!(
        sms_b
            .body()
            .ends_with(&format!("@second.example #{}", sms_b.code()))
    );

    if sms_b.code() != code_a {
        let res = client
            .post(env.url("/.otpgate/verify"))
            .header("host", "second.example")
            .form(&[
                ("code", code_a.as_str()),
                ("csrf", csrf_b.as_str()),
                ("rd", "/reports"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            422,
            "the first app's code does not unlock the second app"
        );
        assert!(set_cookie(&res, "otpgate").is_none());
    }
    let res = submit_code(&env, &client, &csrf_a, &code_a).await;
    assert_eq!(
        res.status(),
        303,
        "it still unlocks the app it was sent for"
    );
    let res = client
        .get(env.url("/reports"))
        .header("host", "second.example")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "the second app still asks for its own code"
    );
}

// 8
#[tokio::test]
async fn a_resend_while_the_code_is_alive_sends_the_same_code_again() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let first = env.sms.last().code();

    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with("/.otpgate/verify?") && to.contains("m=resent"),
        "{to}"
    );
    assert_eq!(env.sms.count(), 2);
    assert_eq!(env.sms.last().code(), first, "the same code goes out again");

    let res = navigate(&client, &env.url(&to)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("We sent the code again"), "{html}");
    assert_eq!(
        env.sms.count(),
        2,
        "showing the page after a resend sends nothing"
    );

    let res = submit_code(&env, &client, &csrf, &first).await;
    assert_eq!(res.status(), 303, "the code still works");
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_refused_with_the_wait_and_retry_after() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let html = res.text().await.unwrap();
    assert!(html.contains("Please wait"), "{html}");
    assert!(
        html.contains(&format!("Please wait {retry} seconds")),
        "the wait in seconds: {html}"
    );
    assert_eq!(env.sms.count(), 1, "nothing was sent");
}

// 9
#[tokio::test]
async fn the_hourly_send_limit_refuses_the_third_send_and_says_how_long_to_wait() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_hour = 2\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    assert_eq!(resend(&env, &client, &csrf).await.status(), 303);
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&retry), "Retry-After: {retry}");
    let html = res.text().await.unwrap();
    assert!(html.contains("in the last hour"), "{html}");
    assert!(html.contains("try again in 60 minutes"), "{html}");
    assert_eq!(env.sms.count(), 2);
}

#[tokio::test]
async fn the_daily_send_limit_refuses_the_third_send_and_says_how_long_to_wait() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_hour = 10\nper_day = 2\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    assert_eq!(resend(&env, &client, &csrf).await.status(), 303);
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((86_390..=86_400).contains(&retry), "Retry-After: {retry}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("reached today") && html.contains("limit of codes"),
        "{html}"
    );
    assert!(html.contains("try again in 24 hours"), "{html}");
    assert_eq!(env.sms.count(), 2);
}

// 10
#[tokio::test]
async fn a_failing_provider_gives_a_could_not_send_page_and_the_next_visit_sends_at_once() {
    // One send an hour: the failed send must not have used it up either.
    let env = Env::with("[limits]\nper_hour = 1\n").await;
    let (client, _) = env.logged_in("alice");
    env.sms.set_mode(ProviderMode::Fail(503));
    let res = navigate(&client, &env.url(&verify_path("/reports"))).await;
    assert_eq!(res.status(), 503);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("We could not send the code just now"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"code\""),
        "no code form for a code that never left"
    );
    assert!(
        html.contains("data-wait=\"0\""),
        "the failed send started no cooldown: {html}"
    );
    assert_eq!(env.sms.count(), 0);

    env.sms.set_mode(ProviderMode::Accept);
    let res = navigate(&client, &env.url(&verify_path("/reports"))).await;
    assert_eq!(
        res.status(),
        200,
        "the failed send used up neither the cooldown nor the hourly send"
    );
    assert_eq!(env.sms.count(), 1);
    let html = res.text().await.unwrap();
    let code = env.sms.last().code();
    let res = submit_code(&env, &client, &csrf_of(&html), &code).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn a_hanging_provider_keeps_the_code_alive_says_it_may_be_late_and_keeps_the_limits() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    env.sms.set_mode(ProviderMode::Hang);
    let started = Instant::now();
    let res = navigate(&client, &env.url(&verify_path("/reports"))).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("taking longer than usual"), "{html}");
    assert!(
        html.contains("autocomplete=\"one-time-code\""),
        "the code form stays: the message may still arrive"
    );
    let csrf = csrf_of(&html);

    // The send counted: an immediate retry is held by the cooldown, so a
    // hanging provider cannot be made to send without limit.
    env.sms.set_mode(ProviderMode::Accept);
    let res = resend(&env, &client, &csrf).await;
    assert_eq!(res.status(), 429);
    assert_eq!(env.sms.count(), 0);
}

// 11
#[tokio::test]
async fn a_redirect_target_off_the_site_becomes_the_root_after_the_code() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\nper_hour = 100\nper_day = 1000\n").await;
    let evil = [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/a\r\nSet-Cookie: x=1",
        "/\r\n/evil.example",
    ];
    for rd in evil.iter().copied().chain(["/reports?x=1"]) {
        let expected = if rd == "/reports?x=1" { rd } else { "/" };
        let (client, _) = env.logged_in("alice");
        let res = navigate(&client, &env.url(&verify_path(rd))).await;
        assert_eq!(res.status(), 200, "{rd:?}");
        let html = res.text().await.unwrap();
        assert_eq!(rd_of(&html), expected, "the page's rd for {rd:?}");
        let code = env.sms.last().code();
        let res = submit_with_rd(&env, &client, &csrf_of(&html), &code, rd).await;
        assert_eq!(res.status(), 303, "{rd:?}");
        assert_eq!(
            location(&res),
            expected,
            "Location after the code for {rd:?}"
        );
    }
    // Not logged in: the page sends the visitor straight on, also only on site.
    let res = navigate(&env.browser(), &env.url(&verify_path("//evil.example"))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
}

// 12
#[tokio::test]
async fn a_code_post_without_the_right_csrf_token_or_from_another_site_is_refused_and_costs_no_attempt()
 {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let bad = wrong(&code);
    let url = env.url("/.otpgate/verify");

    let missing = client
        .post(&url)
        .form(&[("code", bad.as_str()), ("rd", "/reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403, "missing token");
    let forged = submit_code(&env, &client, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &bad).await;
    assert_eq!(forged.status(), 403, "wrong token");
    let form = [
        ("code", bad.as_str()),
        ("csrf", csrf.as_str()),
        ("rd", "/reports"),
    ];
    let cross_origin = client
        .post(&url)
        .header("origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_origin.status(), 403, "Origin of another site");
    let cross_site = client
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403, "Sec-Fetch-Site: cross-site");
    for _ in 0..2 {
        let res = submit_code(&env, &client, "", &bad).await;
        assert_eq!(res.status(), 403, "empty token");
    }

    // None of those counted: a proper same-site post is the first attempt.
    let res = client
        .post(&url)
        .header("origin", format!("http://{}", env.addr))
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );
    let res = submit_code(&env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the right code still works");
}

// 13
#[tokio::test]
async fn a_user_without_a_usable_phone_number_is_told_so_and_no_sms_is_sent() {
    let env = Env::start().await;
    for (user, phone) in [("carol", Some("0612345678")), ("dave", None)] {
        let (client, _) = env.logged_in_with_phone(user, phone);
        let res = navigate(&client, &env.url("/reports")).await;
        assert_eq!(res.status(), 303);
        let res = navigate(&client, &env.url(&location(&res))).await;
        assert_eq!(res.status(), 409, "{user}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("phone number on file is not usable"),
            "{html}"
        );
        assert!(!html.contains("0612345678"));
    }
    assert_eq!(env.sms.count(), 0);
}

// 14
#[tokio::test]
async fn an_oversized_form_is_refused_with_413_and_a_non_form_body_with_400() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let big = format!(
        "csrf={csrf}&rd=%2F&code=123456&pad={}",
        "a".repeat(9 * 1024)
    );
    let res = client
        .post(env.url("/.otpgate/verify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = client
        .post(env.url("/.otpgate/verify"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"csrf":"{csrf}","code":"123456"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(env.url("/.otpgate/resend"))
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no content type at all");
}

#[tokio::test]
async fn a_failed_resend_from_another_browser_leaves_the_code_already_received_working() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let (first_browser, _) = env.logged_in("alice");
    let csrf_first = open_code_page(&env, &first_browser).await;
    let received = env.sms.last().code();

    // A second browser of the same user has no sealed copy of the code, so
    // its resend must make a new code; the provider fails to send it.
    let (second_browser, _) = env.logged_in("alice");
    let csrf_second = open_code_page(&env, &second_browser).await;
    env.sms.set_mode(ProviderMode::Fail(503));
    let res = resend(&env, &second_browser, &csrf_second).await;
    assert_eq!(res.status(), 503);

    let res = submit_code(&env, &first_browser, &csrf_first, &received).await;
    assert_eq!(res.status(), 303, "the code the user holds still works");
}

#[tokio::test]
async fn a_resend_without_the_sealed_code_sends_a_new_code_that_replaces_the_old_one() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let (first_browser, _) = env.logged_in("alice");
    let csrf_first = open_code_page(&env, &first_browser).await;
    let old = env.sms.last().code();
    let (second_browser, _) = env.logged_in("alice");
    let csrf_second = open_code_page(&env, &second_browser).await;
    let res = resend(&env, &second_browser, &csrf_second).await;
    assert_eq!(res.status(), 303);
    let new = env.sms.last().code();
    assert_eq!(env.sms.count(), 2);
    if new != old {
        let res = submit_code(&env, &first_browser, &csrf_first, &old).await;
        assert_eq!(res.status(), 422, "the replaced code no longer works");
    }
    let res = submit_code(&env, &second_browser, &csrf_second, &new).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn one_connection_switching_between_apps_is_judged_per_app() {
    let env = env_with_second_app().await;
    let alice = unlock_by_hand(&env, &bare_client(), &env.url(""), "alice").await;
    let cookie = alice.cookie_header();
    let first_host = env.addr.to_string();
    let mut conn = keep_alive(env.addr).await;
    let mut status_for = async |host: &str| {
        let headers = [("host", host), ("cookie", cookie.as_str())];
        send_on(&mut conn, "GET", "/echo", &headers)
            .await
            .0
            .as_u16()
    };
    assert_eq!(
        status_for(&first_host).await,
        200,
        "proven for the first app"
    );
    assert_eq!(
        status_for("second.example").await,
        401,
        "the same cookies on the same connection prove nothing for the second app"
    );
    assert_eq!(status_for(&first_host).await, 200, "the first app again");
}
