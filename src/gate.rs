//! The request's way through the gateway, top to bottom, in [`gate`]:
//! own pages → bypass → where the session stands (no session, anonymous,
//! proven, logged in without a proof) → pass or stop. Everything it calls lives in a module named for that step.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{
    ACCEPT, CACHE_CONTROL, COOKIE, HeaderName, HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{Body, empty};
use crate::credentials::{self, Credentials, Memo};
use crate::error::GateError;
use crate::headers::{self, ClientView};
use crate::standing::{self, Standing};
use crate::state::{App, State};
use crate::{cookies, factor, otp, pages, proxy, routes, webhook};

/// What the gateway knows about the connection a request came on.
#[derive(Clone)]
pub struct Conn {
    pub peer: SocketAddr,
    /// The peer's address, written out once for `X-Forwarded-For`.
    pub forwarded_peer: headers::Peer,
    pub tls: bool,
    /// The worker that accepted it.
    pub worker: usize,
    /// The connection's last `Cookie` field and what it proved.
    pub memo: Arc<Memo>,
}

/// The gateway's service function: never fails; errors become pages.
pub async fn handle(state: Arc<State>, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    let wants_html = is_navigation(&req);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let version = req.version();
    match gate(&state, &conn, req).await {
        Ok(res) => res,
        Err(err) => {
            // A webhook path carries its secret token: log only the prefix.
            let path = if uri.path().starts_with(webhook::PREFIX) {
                webhook::PREFIX
            } else {
                uri.path()
            };
            if err.status().is_server_error() {
                tracing::warn!(%method, path, client = %conn.peer, error = %err, source = ?std::error::Error::source(&err), "request failed");
            } else {
                tracing::info!(%method, path, client = %conn.peer, error = %err, "request refused");
            }
            let mut res = pages::error(state.text, &err, wants_html);
            // RFC 9110 §15.5.9: a 408 closes the connection; the rest of a
            // stalled body must not be read as the next request. HTTP/2
            // has no Connection field (RFC 9113 §8.2.2): the stream ends.
            if matches!(err, GateError::BodyTimeout) && version < http::Version::HTTP_2 {
                res.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            res
        }
    }
}

async fn gate(
    state: &Arc<State>,
    conn: &Conn,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    // A reverse proxy opens no tunnels (RFC 9110 §9.3.6).
    if req.method() == Method::CONNECT {
        return Err(GateError::MethodNotAllowed);
    }
    // RFC 9112 §3.2: more than one Host field is an error; the app might read
    // another one than the gate did.
    if req
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(GateError::BadRequest(
            "the request has more than one Host field",
        ));
    }
    // Only the gateway may speak in X-Otpgate-* headers.
    headers::remove_otpgate_headers(req.headers_mut());
    let mut view = ClientView::new(
        req.headers(),
        req.uri().authority().map(|a| a.as_str()),
        &conn.forwarded_peer,
        conn.tls,
        &state.settings.server.trusted_proxies,
    );
    view.worker = conn.worker;
    if view.host.is_empty() {
        return Err(GateError::MissingHost);
    }
    // Providers call from outside any app's host name.
    if req.uri().path().starts_with(webhook::PREFIX) {
        return webhook::serve(state, req).await;
    }
    let app = state
        .app_for(headers::host_without_port(&view.host))
        .ok_or_else(|| GateError::UnknownHost(view.hostname()))?;

    if req.uri().path().starts_with(routes::PREFIX) {
        view.forwarded_for =
            !view.peer_trusted && req.headers().contains_key(headers::X_FORWARDED_FOR);
        return routes::serve(state, app, &view, req).await;
    }
    let creds = credentials::read(state, app, &req, Some(&conn.memo));
    if let Some(name) = &creds.suspicious {
        app.note_suspicious_cookie(name, &view);
    }
    if app.bypasses(req.uri().path()) {
        // The login form is usually a bypass path: the response is watched
        // for logins all the same.
        return pass(state, app, &view, req, &creds, None).await;
    }
    match standing::of(state, app, &creds, &view).await? {
        // No app session, or nobody logged in on it: the app decides (and
        // shows its login).
        Standing::NoSession | Standing::Anonymous(_) => {
            pass(state, app, &view, req, &creds, None).await
        }
        Standing::Proven(_) => {
            let user = creds.user.as_deref();
            pass(state, app, &view, req, &creds, user).await
        }
        Standing::Unproven { stale_proof, .. } => {
            let mut res = second_factor_required(&req);
            if stale_proof {
                // The proof names someone else than the session's user now.
                let removal = factor::removal(factor::COOKIE_NAME, view.https);
                if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
                    res.headers_mut().append(SET_COOKIE, v);
                }
            }
            Ok(res)
        }
    }
}

/// Forwards to the app and applies the response-side rules.
async fn pass(
    state: &State,
    app: &App,
    view: &ClientView,
    mut req: Request<Incoming>,
    creds: &Credentials,
    user: Option<&str>,
) -> Result<Response<Body>, GateError> {
    if creds.had_cookies {
        let h = req.headers_mut();
        // `insert` drops every earlier `Cookie` field too.
        match &creds.forward {
            Some(v) => h.insert(COOKIE, v.clone()),
            None => h.remove(COOKIE),
        };
    }
    // A request that may change who is logged in on its session: any
    // unsafe method (RFC 9110 §9.2.1), a configured login path (a login
    // link may be a GET), or, below, an answer that sets cookies.
    let may_log_in = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || app.is_login_path(req.uri().path());
    let server = &state.settings.server;
    let timeouts = (server.upstream_timeout, server.body_read_timeout);
    let mut res = proxy::forward(state.client(view.worker), timeouts, app, view, req, user).await?;
    if let Some(session) = &creds.session
        && (may_log_in || res.headers().contains_key(SET_COOKIE))
    {
        // Whether or not this request carried a proof: a login as someone
        // else on a kept session id must not inherit an earlier proof, and
        // a cached "anonymous" must not outlive the login.
        app.may_have_logged_in(session).await;
    }
    let h = res.headers_mut();
    if h.contains_key(SET_COOKIE) {
        cookies::remove_set_cookies_named(h, &[factor::COOKIE_NAME, otp::PENDING_COOKIE]);
        // Logout: when the app deletes its session cookie, ours goes too.
        if cookies::response_deletes(h, &app.cfg.session_cookie) {
            let removal = factor::removal(factor::COOKIE_NAME, view.https);
            if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
                h.append(SET_COOKIE, v);
            }
        }
    }
    Ok(res)
}

/// A browser navigation: GET/HEAD that says so (`Sec-Fetch-Mode: navigate`)
/// or that accepts HTML.
pub fn is_navigation<B>(req: &Request<B>) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    // Looked up by `HeaderName`: a `&str` name is parsed on every lookup.
    const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
    let h = req.headers();
    let header_has = |name: &HeaderName, needle: &[u8]| {
        h.get_all(name).iter().any(|v| {
            v.as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        })
    };
    header_has(&SEC_FETCH_MODE, b"navigate") || header_has(&ACCEPT, b"text/html")
}

/// Logged in, no second factor yet: browsers are sent to the code page;
/// anything else (XHR, POST, API clients) gets a 401 it can act on, so no
/// request body is ever silently dropped by a redirect.
fn second_factor_required<B>(req: &Request<B>) -> Response<Body> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let verify_url = routes::verify_url(target);
    let mut res = if is_navigation(req) {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&verify_url) {
            res.headers_mut().insert(LOCATION, v);
        }
        res
    } else {
        let body =
            serde_json::json!({ "error": "second_factor_required", "verify_url": verify_url });
        let mut res = pages::json(StatusCode::UNAUTHORIZED, &body);
        // RFC 9110 §15.5.2: a 401 carries a challenge.
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("otpgate realm=\"second factor\""),
        );
        res
    };
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
