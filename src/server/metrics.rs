//! The metrics listener (`[metrics] listen`, TCP because Prometheus scrapes
//! TCP): `GET /metrics`, the exposition written by `prometheus-client`
//! (OpenMetrics when the scraper asks for it, else the Prometheus text
//! format), and `GET /ready`, the readiness check's details as JSON. Apart
//! from the public listener, so that the details never reach the public.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::error::GateError;
use crate::events::metrics::{OPENMETRICS, PROMETHEUS_TEXT};
use crate::http::body::{Body, full};
use crate::state::State;
use crate::web::pages;
use crate::web::routes::health::Readiness;

/// A scraper sends its request head at once.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MetricsListener(TcpListener);

impl MetricsListener {
    /// Binds `[metrics] listen`, or nothing when it is off.
    pub async fn bind(listen: Option<SocketAddr>) -> Result<Option<Self>, super::StartError> {
        let Some(addr) = listen else { return Ok(None) };
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| super::StartError::Bind { addr, source })?;
        Ok(Some(Self(l)))
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr().ok()
    }

    /// Accepts one connection and serves it in a task watched by `watcher`.
    pub async fn accept_and_serve(
        &self,
        state: &Arc<State>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        match self.0.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(state.clone(), stream, watcher));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(
    state: Arc<State>,
    stream: TcpStream,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "metrics connection ended with an error");
    }
}

async fn handle<B>(state: &State, req: Request<B>) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error(GateError::MethodNotAllowed);
    }
    match req.uri().path() {
        "/metrics" => {
            let Some(metrics) = &state.metrics else {
                return error(GateError::NotFound);
            };
            let openmetrics = req
                .headers()
                .get_all(ACCEPT)
                .iter()
                .any(|v| v.as_bytes().starts_with(b"application/openmetrics-text"));
            match metrics.encode(openmetrics) {
                Ok(text) => {
                    let kind = if openmetrics {
                        OPENMETRICS
                    } else {
                        PROMETHEUS_TEXT
                    };
                    let mut res = Response::new(full(text));
                    res.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
                    res
                }
                Err(e) => error(GateError::Internal(format!("metrics: {e}"))),
            }
        }
        "/ready" => {
            let ready = Readiness::of(state).await;
            let status = match ready.reason() {
                None => StatusCode::OK,
                Some(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut res = pages::json(status, &ready.to_json());
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        _ => error(GateError::NotFound),
    }
}

fn error(err: GateError) -> Response<Body> {
    pages::json(
        err.status(),
        &serde_json::json!({ "error": err.code(), "endpoints": ["/metrics", "/ready"] }),
    )
}
