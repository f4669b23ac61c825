//! A bare hyper 1.x reverse proxy with no checks at all: the floor that
//! `bench/run.sh` measures otpgate against, built from the same pieces
//! (hyper-util's auto server builder and pooled legacy client, tokio).
//!
//! Usage: `bare_proxy LISTEN_ADDR UPSTREAM_ADDR [RUNTIME]`, where RUNTIME is
//! `multi` (one multi-thread runtime, the default), `current` (one
//! current-thread runtime) or `per-core` (one current-thread runtime per
//! core, each with its own `SO_REUSEPORT` listener and upstream pool), so
//! the runtime designs can be compared on the same machine.

use std::net::SocketAddr;

use http::Uri;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};

fn main() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bare_proxy LISTEN UPSTREAM [multi|current|per-core]");
    let upstream: String = args.next().expect("usage: bare_proxy LISTEN UPSTREAM");
    let mode = args.next().unwrap_or_else(|| "multi".to_string());
    match mode.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(serve(listen, false, upstream)),
        "current" => current(listen, false, upstream),
        "per-core" => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads: Vec<_> = (0..cores)
                .map(|_| {
                    let upstream = upstream.clone();
                    std::thread::spawn(move || current(listen, true, upstream))
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
        }
        other => panic!("unknown runtime {other:?}: multi, current or per-core"),
    }
}

fn current(listen: SocketAddr, reuse_port: bool, upstream: String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(serve(listen, reuse_port, upstream));
}

async fn serve(listen: SocketAddr, reuse_port: bool, upstream: String) {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    if reuse_port {
        socket.set_reuseport(true).expect("SO_REUSEPORT");
    }
    socket.bind(listen).expect("bind");
    let listener: TcpListener = socket.listen(1024).expect("listen");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build(connector);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |mut req: http::Request<Incoming>| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move {
                    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    *req.uri_mut() = format!("http://{upstream}{path}")
                        .parse::<Uri>()
                        .expect("valid uri");
                    client.request(req).await
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
