//! Thread per core: several workers, each with its own runtime, listener
//! (`SO_REUSEPORT`) and upstream pool, serve one address and stop together.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn every_worker_serves_fresh_connections_of_an_unlocked_session() {
    let env = Env::with_config(|text| with_server_keys(&text, "workers = 4")).await;
    let unlocked = unlock_by_hand(&env, &plain_client(), &env.url(""), "alice").await;
    // Forty new connections: the kernel spreads them over the four
    // listeners, so a worker that could not serve would fail about ten.
    for i in 0..40 {
        let res = plain_client()
            .get(env.url(&format!("/reports?n={i}")))
            .header("cookie", unlocked.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "connection {i}");
    }
    assert!(env.app.hits_on("/reports") >= 40);
}

#[tokio::test]
async fn shutdown_stops_every_worker_and_frees_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = FakeApp::start().await;
    let sms = FakeDidfarm::start().await;
    let text = with_server_keys(
        &config_text(&app.url(), &sms.url(), dir.path(), ""),
        "workers = 3",
    );
    let settings = otpgate::config::parse(&text, "test.toml", dir.path()).unwrap();
    let gw = otpgate::Gateway::bind(settings).await.unwrap();
    let addr = gw.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gw.serve(async move {
        let _ = rx.await;
    }));
    for _ in 0..6 {
        let res = plain_client()
            .get(format!("http://{addr}/.otpgate/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve returns once every worker stopped")
        .unwrap();
    let again = std::net::TcpListener::bind(addr);
    assert!(again.is_ok(), "no worker still holds {addr}: {again:?}");
}

#[tokio::test]
async fn a_second_gateway_cannot_join_a_running_ones_port() {
    let env = Env::with_config(|text| with_server_keys(&text, "workers = 2")).await;
    let dir = tempfile::tempdir().unwrap();
    // The first `listen` is the public one ([admin] has its own).
    let text = config_text(&env.app.url(), &env.sms.url(), dir.path(), "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{}\"\nworkers = 2", env.addr),
        1,
    );
    let settings = otpgate::config::parse(&text, "second.toml", dir.path()).unwrap();
    let second = otpgate::Gateway::bind(settings).await;
    assert!(
        second.is_err(),
        "a second process would split the connections and the codes"
    );
}
