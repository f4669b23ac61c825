//! Header rewriting between client, gateway and upstream: hop-by-hop
//! removal, the `X-Forwarded-*` family, the gateway's own `X-Otpgate-*`
//! headers, and the client's view (address, scheme, host) they rest on.

use std::net::IpAddr;

use http::Request;
use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use ipnet::IpNet;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_OTPGATE_USER: HeaderName = HeaderName::from_static("x-otpgate-user");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const OTPGATE_PREFIX: &str = "x-otpgate-";

const HOP_BY_HOP_COUNT: usize = 11;
/// RFC 9110 §7.6.1: "Connection" and the fields it names apply to one hop
/// only; so do the older hop-by-hop fields of RFC 2616 §13.5.1 that
/// intermediaries still meet (`Keep-Alive`, `Proxy-Connection`, ...).
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    // RFC 7540 §3.2.1: only meaningful with `Upgrade: h2c`, which is never passed on.
    HeaderName::from_static("http2-settings"),
    // RFC 9110 §16.3.2.2: a reserved name; `Connection: close` names it.
    HeaderName::from_static("close"),
];

/// Fields a client may not remove by naming them in `Connection`: the
/// gateway's own forwarding depends on them.
const NEVER_HOP_BY_HOP: [HeaderName; 3] = [
    http::header::HOST,
    http::header::CONTENT_LENGTH,
    http::header::COOKIE,
];

/// Removes the hop-by-hop fields: first every field named in `Connection`,
/// then the fixed list.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Runs twice per proxied request. One pass over the names finds which
    // of the fixed list are present (usually `Connection` alone): removing
    // the others would hash each of their names for nothing.
    let mut present = [false; HOP_BY_HOP_COUNT];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // The usual options name fields the fixed list removes anyway
            // (`close`, `keep-alive`): no name to build for them.
            .filter(|n| !n.eq_ignore_ascii_case("close") && !n.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .filter(|n| !NEVER_HOP_BY_HOP.contains(n))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
}

/// Removes every `X-Otpgate-*` field, so that only the gateway can set them.
/// Also removes names that only differ by `_` for `-` from those or from the
/// forwarding fields: CGI, FastCGI (PHP), WSGI and Rack read `X_Otpgate_User`
/// as the same `HTTP_X_OTPGATE_USER` the gateway sets (nginx drops all such
/// names by default, `underscores_in_headers off`).
pub fn remove_otpgate_headers(headers: &mut HeaderMap) {
    let forbidden = |k: &HeaderName| {
        let name = k.as_str();
        if name.starts_with(OTPGATE_PREFIX) {
            return true;
        }
        if !name.contains('_') {
            return false;
        }
        let dashed = name.replace('_', "-");
        dashed.starts_with(OTPGATE_PREFIX)
            || [
                X_FORWARDED_FOR,
                X_FORWARDED_PROTO,
                X_FORWARDED_HOST,
                X_REAL_IP,
                FORWARDED,
            ]
            .iter()
            .any(|f| f.as_str() == dashed)
    };
    if headers.keys().any(forbidden) {
        let names: Vec<HeaderName> = headers.keys().filter(|k| forbidden(k)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// The protocol a request asks to switch to (RFC 9110 §7.8), if it does so
/// properly: an `Upgrade` field and the `upgrade` option in `Connection`.
/// Only WebSocket (RFC 6455) is passed on: any other upgrade, `h2c` above
/// all, would hand the client a raw connection to the app past the gate.
pub fn upgrade_request<B>(req: &Request<B>) -> Option<HeaderValue> {
    let upgrade = req.headers().get(http::header::UPGRADE)?;
    if !upgrade.as_bytes().eq_ignore_ascii_case(b"websocket") {
        return None;
    }
    let listed = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    listed.then(|| upgrade.clone())
}

/// A connection's peer address, written out once per connection for the
/// `X-Forwarded-For` of each of its requests.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    text: HeaderValue,
}

impl Peer {
    pub fn new(ip: IpAddr) -> Self {
        let text = HeaderValue::from_str(&ip.to_string())
            .expect("an IP address in text is a valid header value");
        Self { ip, text }
    }
}

/// Who the client is, as far as the gateway can trust what it is told.
#[derive(Debug, Clone)]
pub struct ClientView {
    /// The worker (runtime thread) serving the request: it picks that
    /// worker's upstream pool, so a request never waits on another thread.
    pub worker: usize,
    /// The socket's address, or the first untrusted hop of `X-Forwarded-For`.
    pub ip: IpAddr,
    /// HTTPS on the client's side: TLS here, or a trusted proxy said so.
    pub https: bool,
    /// The host the client asked for, as sent (may carry a port).
    pub host: String,
    /// Whether the direct peer is one of `trusted_proxies`.
    pub peer_trusted: bool,
    /// An untrusted peer sent `X-Forwarded-For` (and it was ignored): a
    /// proxy that may belong in `trusted_proxies` (see `abuse`). Looked up
    /// only for the gateway's own pages (`gate`), off the proxied hot path.
    pub forwarded_for: bool,
    /// The socket's peer (the direct one, trusted or not).
    peer: Peer,
    /// The client's `User-Agent`, for the audit log (a cheap shared copy).
    pub user_agent: Option<HeaderValue>,
    /// This request's id (`request_id`); empty until the gate sets it.
    pub request_id: HeaderValue,
}

/// The client behind a trusted peer: walks `X-Forwarded-For` from the
/// right (each trusted proxy appended the address it saw); the first hop
/// that is not ours is the client. Only for a peer in `trusted`.
fn forwarded_client(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let mut ip = peer;
    let hops = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    for hop in hops.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Ok(hop) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        ip = hop;
        if !trusted.iter().any(|net| net.contains(&hop)) {
            break;
        }
    }
    ip
}

/// The client's address as [`ClientView::new`] finds it (the peer, or
/// behind a trusted one the first untrusted `X-Forwarded-For` hop), for
/// the access log of a request the gate may refuse before it has a view.
pub fn client_ip(
    headers: &HeaderMap,
    peer: IpAddr,
    peer_trusted: bool,
    trusted: &[IpNet],
) -> IpAddr {
    if peer_trusted {
        forwarded_client(headers, peer, trusted)
    } else {
        peer
    }
}

impl ClientView {
    pub fn new(
        headers: &HeaderMap,
        authority: Option<&str>,
        peer: &Peer,
        tls: bool,
        trusted: &[IpNet],
    ) -> Self {
        let direct = peer.clone();
        let peer = peer.ip;
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        let peer_trusted = is_trusted(&peer);
        let user_agent = headers.get(USER_AGENT).cloned();
        let own_host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or(authority)
            .unwrap_or("")
            .to_string();
        if !peer_trusted {
            return Self {
                worker: 0,
                ip: peer,
                https: tls,
                host: own_host,
                peer_trusted,
                forwarded_for: false,
                peer: direct,
                user_agent,
                request_id: HeaderValue::from_static(""),
            };
        }
        let ip = forwarded_client(headers, peer, trusted);
        let first = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
        };
        let https =
            tls || first(&X_FORWARDED_PROTO).is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let host = first(&X_FORWARDED_HOST)
            .filter(|h| !h.is_empty())
            .unwrap_or(own_host);
        Self {
            worker: 0,
            ip,
            https,
            host,
            peer_trusted,
            forwarded_for: false,
            peer: direct,
            user_agent,
            request_id: HeaderValue::from_static(""),
        }
    }

    /// The view of a request that came earlier, rebuilt from what was kept
    /// of it (for the fallback the gateway sends later by itself): its
    /// client address, scheme, host and user agent.
    pub fn restored(
        ip: IpAddr,
        https: bool,
        host: String,
        user_agent: Option<HeaderValue>,
    ) -> Self {
        Self {
            worker: 0,
            ip,
            https,
            host,
            peer_trusted: false,
            forwarded_for: false,
            peer: Peer::new(ip),
            user_agent,
            request_id: HeaderValue::from_static(""),
        }
    }

    /// The socket's peer address (the direct one, trusted or not).
    pub fn peer_ip(&self) -> IpAddr {
        self.peer.ip
    }

    /// The host without port, lower-cased, for matching apps and for the
    /// origin-bound SMS line.
    pub fn hostname(&self) -> String {
        host_without_port(&self.host).to_ascii_lowercase()
    }
}

/// "example.com:8080" → "example.com", "[::1]:80" → "[::1]".
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// Sets `X-Forwarded-For/-Proto/-Host` for the upstream. Incoming values
/// are kept (and extended) only when they come from a trusted proxy.
pub fn set_forwarded(headers: &mut HeaderMap, view: &ClientView) {
    let prior: Vec<&str> = if view.peer_trusted {
        headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    } else {
        // From an untrusted peer, neither these nor the other common
        // client-address fields are believed or passed on.
        headers.remove(FORWARDED);
        headers.remove(X_REAL_IP);
        Vec::new()
    };
    let xff = if prior.is_empty() {
        Some(view.peer.text.clone())
    } else {
        HeaderValue::from_str(&format!("{}, {}", prior.join(", "), view.peer.ip)).ok()
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    let proto = if view.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Ok(v) = HeaderValue::from_str(&view.host) {
        headers.insert(X_FORWARDED_HOST, v);
    }
}

#[cfg(test)]
mod tests;
