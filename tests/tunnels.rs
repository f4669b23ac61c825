//! Upgraded connections (WebSockets) through the gateway: part of graceful
//! shutdown, and only to the protocol that was asked for.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

#[tokio::test]
async fn an_open_websocket_is_closed_within_the_shutdown_grace() {
    // One worker: its tunnels live on the runtime that keeps running.
    let mut env = Env::with_config(|t| with_server_keys(&t, "workers = 1")).await;
    let req = format!("ws://{}/ws", env.addr)
        .as_str()
        .into_client_request()
        .unwrap();
    let stream = TcpStream::connect(env.addr).await.unwrap();
    let (mut ws, res) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("an anonymous upgrade goes to the app");
    assert_eq!(res.status(), 101);
    ws.send(Message::text("before")).await.unwrap();
    let echo = ws.next().await.unwrap().unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), "before");

    // Shutdown with shutdown_grace = 1s: the tunnel must be gone well
    // before the 10 s this test waits at most.
    env.shutdown.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the tunnel was still open after the grace");
}

#[tokio::test]
async fn an_upstream_that_switches_to_another_protocol_than_asked_gets_502() {
    let upstream = serve(|_req| async {
        let mut res = text(101, "");
        res.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        res.headers_mut().insert("upgrade", "h2c".parse().unwrap());
        res
    })
    .await;
    let env = Env::with_config(move |t| with_upstream(&t, &format!("http://{upstream}"))).await;
    let (status, _, body) = raw_request(
        env.addr,
        "GET",
        "/ws",
        &[
            ("host", "gate.test"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
}
