//! Forwarding a request the gate has allowed: the upstream client, the
//! request and response rewrites, streaming bodies both ways, and protocol
//! upgrades (WebSocket) passed through as a byte tunnel.

use std::time::Duration;

use http::header::{HOST, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::AppSettings;
use crate::error::GateError;
use crate::http::body::{self, Body};
use crate::http::headers::{self, ClientView, X_OTPGATE_USER};

pub type UpstreamClient = Client<HttpConnector, Body>;

/// One pooled keep-alive client for every upstream.
pub fn client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .build(connector)
}

/// Sends the request to the app and returns its response, with `user` in
/// `X-Otpgate-User` when the second factor is proven.
pub async fn forward(
    client: &UpstreamClient,
    tunnels: &Tunnels,
    (timeout, body_idle): (Duration, Duration),
    app: &AppSettings,
    view: &ClientView,
    mut req: Request<Incoming>,
    user: Option<&str>,
) -> Result<Response<Body>, GateError> {
    let upgrade = headers::upgrade_request(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let (mut parts, incoming) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(app.upstream.scheme.clone())
        .authority(app.upstream.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|_| GateError::BadRequest("the request target is not a valid path"))?;
    // HTTP/2 carries the host in :authority; the HTTP/1.1 upstream needs Host.
    if !parts.headers.contains_key(HOST)
        && let Ok(host) = HeaderValue::from_str(&view.host)
    {
        parts.headers.insert(HOST, host);
    }
    parts.version = Version::HTTP_11;
    let h = &mut parts.headers;
    headers::remove_hop_by_hop(h);
    if let Some(proto) = &upgrade {
        h.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        h.insert(http::header::UPGRADE, proto.clone());
    }
    headers::set_forwarded(h, view);
    crate::http::request_id::send_to_app(h, view);
    if let Some(user) = user {
        let v = HeaderValue::from_str(user).map_err(|_| {
            GateError::IdentityUnusable("the user name cannot be sent in a header".into())
        })?;
        h.insert(X_OTPGATE_USER, v);
    }

    // A body that stops arriving fails the upstream request (the app sees
    // it aborted) rather than holding both connections open.
    let upstream_req = Request::from_parts(parts, body::stream_idle(incoming, body_idle));
    let mut res = tokio::time::timeout(timeout, client.request(upstream_req))
        .await
        .map_err(|_| GateError::UpstreamTimeout)?
        .map_err(|e| {
            if body::is_stalled(&e) {
                GateError::BodyTimeout
            } else {
                GateError::UpstreamUnreachable(e)
            }
        })?;

    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(client_upgrade), Some(asked)) = (client_upgrade, &upgrade) else {
            return Err(GateError::BadUpstream(
                "it switched protocols without being asked".into(),
            ));
        };
        // RFC 9110 §7.8: a 101 names the protocol it switched to, which must
        // be the one asked for; the client would otherwise speak one
        // protocol to an app speaking another.
        let switched = res.headers().get(http::header::UPGRADE);
        if !switched.is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(asked.as_bytes())) {
            return Err(GateError::BadUpstream(
                "it switched to another protocol than the one asked for".into(),
            ));
        }
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        tunnels.spawn(tunnel(client_upgrade, upstream_upgrade));
        let (parts, _) = res.into_parts();
        return Ok(Response::from_parts(parts, body::empty()));
    }
    headers::remove_hop_by_hop(res.headers_mut());
    headers::remove_otpgate_headers(res.headers_mut());
    // An HTTP/1.0 upstream must not turn the client's connection into 1.0.
    *res.version_mut() = Version::HTTP_11;
    Ok(res.map(body::stream))
}

/// The open upgraded connections (WebSockets): part of graceful shutdown,
/// which waits for them up to `shutdown_grace` and then closes them.
#[derive(Default)]
pub struct Tunnels {
    tracker: tokio_util::task::TaskTracker,
    close: tokio_util::sync::CancellationToken,
}

impl Tunnels {
    fn spawn(&self, tunnel: impl Future<Output = ()> + Send + 'static) {
        let close = self.close.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = tunnel => {}
                () = close.cancelled() => tracing::debug!("tunnel closed at shutdown"),
            }
        });
    }

    /// Waits until every tunnel has ended or `deadline` passes; then closes
    /// the ones still open.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!(
                open = self.tracker.len(),
                "grace period over; closing upgraded connections"
            );
        }
        self.close.cancel();
    }
}

/// Copies bytes both ways between the upgraded client and upstream
/// connections until either side closes.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}
