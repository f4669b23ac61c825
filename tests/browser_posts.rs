//! Form posts as real browsers send them (Chromium 156's fields, byte for
//! byte where it matters), which reqwest alone never does: `Origin`,
//! Fetch Metadata and an HTML `Accept`. And what a browser is shown when
//! such a post is refused.

mod common;

use common::*;

/// What Chromium sends with a navigation's `Accept`.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";

/// A form post the way Chromium makes it from a page of `site`
/// (`Sec-Fetch-Site`) whose serialized origin is `origin`.
fn form_post(
    client: &reqwest::Client,
    url: &str,
    site: &str,
    origin: &str,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("origin", origin)
        .header("sec-fetch-site", site)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("sec-fetch-user", "?1")
        .header("accept", BROWSER_ACCEPT)
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// The code form's address as the page writes it.
const VERIFY: &str = "/.otpgate/verify?rd=%2Freports";

#[tokio::test]
async fn a_chromium_code_post_with_origin_null_and_sec_fetch_site_same_origin_is_accepted() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let bad = wrong(&code);
    // What a page served with `Referrer-Policy: no-referrer` makes Chromium send.
    let res = form_post(&client, &env.url(VERIFY), "same-origin", "null")
        .form(&[("code", bad.as_str()), ("csrf", &csrf), ("rd", "/reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "checked, not refused");
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );
    let res = form_post(&client, &env.url(VERIFY), "same-origin", "null")
        .form(&[("code", code.as_str()), ("csrf", &csrf), ("rd", "/reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/reports");
}

#[tokio::test]
async fn a_chromium_post_with_its_real_origin_is_accepted_for_the_code_and_the_resend() {
    let env = Env::with("[limits]\ncooldown = \"0s\"\n").await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let origin = format!("http://{}", env.addr);
    let res = form_post(
        &client,
        &env.url("/.otpgate/resend?rd=%2Freports"),
        "same-origin",
        &origin,
    )
    .form(&[("csrf", csrf.as_str()), ("rd", "/reports")])
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 303, "resent");
    let code = env.sms.last().code();
    let res = form_post(&client, &env.url(VERIFY), "same-origin", &origin)
        .form(&[("code", code.as_str()), ("csrf", &csrf), ("rd", "/reports")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn cross_site_and_same_site_browser_posts_are_refused_with_a_page_back_to_the_code_page() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let bad = wrong(&code);
    for (site, origin) in [
        ("cross-site", "https://evil.example"),
        ("cross-site", "null"),
        ("same-site", "http://evil.127.0.0.1.nip.io"),
        // Sec-Fetch-Site and Origin disagree: the named origin decides.
        ("same-origin", "http://evil.example"),
    ] {
        let res = form_post(&client, &env.url(VERIFY), site, origin)
            .form(&[("code", bad.as_str()), ("csrf", &csrf), ("rd", "/reports")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{site} {origin}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{site} {origin}"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains("The form has expired or was not sent from this site"),
            "{html}"
        );
        assert!(
            html.contains("href=\"/.otpgate/verify?rd=%2Freports\""),
            "{html}"
        );
    }
    // None of them cost an attempt.
    let res = submit_code(&env, &client, &csrf, &bad).await;
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid code, 4 attempts left")
    );
}

#[tokio::test]
async fn without_fetch_metadata_an_opaque_or_foreign_origin_is_refused_and_the_own_origin_accepted()
{
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let code = env.sms.last().code();
    let bad = wrong(&code);
    let post = |origin: String| {
        client
            .post(env.url(VERIFY))
            .header("origin", origin)
            .header("accept", BROWSER_ACCEPT)
            .form(&[("code", bad.clone()), ("csrf", csrf.clone())])
            .send()
    };
    for origin in [
        "null".to_string(),
        format!("https://{}", env.addr),
        format!("http://localhost:{}", env.addr.port()),
        format!("http://127.0.0.1:{}", env.addr.port() + 1),
    ] {
        let res = post(origin.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "{origin}");
    }
    let res = post(format!("http://{}", env.addr)).await.unwrap();
    assert_eq!(res.status(), 422, "the own origin is checked, not refused");
}

#[tokio::test]
async fn oversized_and_non_form_browser_posts_get_pages_and_scripts_get_json() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let csrf = open_code_page(&env, &client).await;
    let origin = format!("http://{}", env.addr);
    let big = format!("csrf={csrf}&rd=%2F&code=1&pad={}", "a".repeat(9 * 1024));
    let bodies = [
        ("application/x-www-form-urlencoded", big, 413),
        (
            "multipart/form-data; boundary=x",
            format!("csrf={csrf}"),
            400,
        ),
    ];
    for (content_type, body, status) in bodies {
        let res = form_post(&client, &env.url(VERIFY), "same-origin", &origin)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{content_type}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/html"), "{content_type}: {kind}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("<a href=\"/.otpgate/verify?rd=%2Freports\">Back to the code page</a>"),
            "{html}"
        );

        // The same post from a script: JSON, however it says so.
        let scripts: [(&str, &str); 3] = [
            ("accept", "application/json"),
            ("x-requested-with", "XMLHttpRequest"),
            ("sec-fetch-mode", "cors"),
        ];
        for (name, value) in scripts {
            let res = client
                .post(env.url(VERIFY))
                .header("origin", &origin)
                .header("sec-fetch-site", "same-origin")
                .header("content-type", content_type)
                .header(name, value)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), status, "{name}");
            assert_eq!(res.headers()["content-type"], "application/json", "{name}");
        }
    }
}

#[tokio::test]
async fn a_browser_form_post_to_the_app_without_the_second_factor_still_gets_401_not_a_redirect() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let origin = format!("http://{}", env.addr);
    let res = form_post(&client, &env.url("/reports"), "same-origin", &origin)
        .form(&[("note", "kept")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a redirect would lose the body");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(env.app.hits_on("/reports"), 0);
}

#[tokio::test]
async fn the_code_page_forms_post_to_addresses_that_carry_rd() {
    let env = Env::start().await;
    let (client, _) = env.logged_in("alice");
    let res = navigate(&client, &env.url(VERIFY)).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("action=\"/.otpgate/verify?rd=%2Freports\""),
        "{html}"
    );
    assert!(
        html.contains("action=\"/.otpgate/resend?rd=%2Freports\""),
        "{html}"
    );
}
