//! An app that is down while requests keep coming, or an SMS provider that
//! is down while codes are asked for, writes a few log lines, not one per
//! request, and one line when it answers again.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_app_that_is_down_under_a_burst_writes_a_bounded_number_of_lines_and_one_when_it_is_back()
 {
    let logs = capture_logs();
    // A port with nothing behind it: every request to the app is refused.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = spare.local_addr().unwrap();
    drop(spare);
    let env = Env::with_config(|t| {
        let t = with_upstream(&t, &format!("http://{down}"));
        t.replace("name = \"Test CRM\"", "name = \"Flooded CRM\"")
    })
    .await;
    let client = plain_client();
    for _ in 0..300 {
        let res = client
            .get(env.url("/reports"))
            .header("host", "gate.test")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 502, "the app is down");
    }
    let lines = |needle: &str| {
        logs.text()
            .lines()
            .filter(|l| l.contains("Flooded CRM") && l.contains(needle))
            .count()
    };
    let failing = lines("upstream.failing");
    assert!(
        (1..=3).contains(&failing),
        "300 failures, {failing} lines:\n{}",
        logs.text()
    );
    assert_eq!(lines("request failed"), 0, "no line per request");

    // The app comes back on the same address.
    let app = tokio::net::TcpListener::bind(down).await.unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = app.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(text(200, "back"))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    });
    let res = client
        .get(env.url("/reports"))
        .header("host", "gate.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(lines("upstream.recovered"), 1, "{}", logs.text());
}

#[tokio::test]
async fn a_provider_that_is_down_under_a_burst_of_sends_writes_a_bounded_number_of_warnings() {
    let logs = capture_logs();
    let env = Env::start().await;
    env.sms.set_mode(ProviderMode::Fail(503));
    const SENDS: usize = 40;
    // Back to back, each a new user: every one reaches the provider.
    for i in 0..SENDS {
        let (client, _) = env.logged_in(&format!("burst-{i}"));
        let page = navigate(&client, &env.url("/.otpgate/verify?rd=%2F")).await;
        assert_eq!(page.status(), 503, "no code could be sent");
    }
    let text = logs.text();
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    let failing = count("event=\"provider.failing\"");
    assert!(
        (1..=2).contains(&failing),
        "{SENDS} failed sends, {failing} provider lines:\n{text}"
    );
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && !l.contains("Flooded CRM"))
        .count();
    assert!(
        warnings <= 2,
        "{SENDS} failed sends, {warnings} warnings:\n{text}"
    );
    // Each send's OTP event keeps its own line (the audit trail needs it).
    let events = text
        .lines()
        .filter(|l| l.contains("event=\"otp.send_error\"") && l.contains("user=\"burst-"))
        .count();
    assert_eq!(events, SENDS, "{text}");

    // The provider answers again: one line says so, with the count.
    env.sms.set_mode(ProviderMode::Accept);
    let (client, _) = env.logged_in("burst-back");
    assert_eq!(
        navigate(&client, &env.url("/.otpgate/verify?rd=%2F"))
            .await
            .status(),
        200
    );
    let text = logs.text();
    let back: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event=\"provider.recovered\""))
        .collect();
    assert_eq!(back.len(), 1, "{text}");
    assert!(back[0].contains(&format!("failed={SENDS}")), "{}", back[0]);
}
