//! The request's way through the gateway, top to bottom, in [`gate`]:
//! own pages → bypass → where the session stands (no session, anonymous,
//! proven, logged in without a proof) → pass or stop. Everything it calls lives in a module named for that step.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{CACHE_CONTROL, COOKIE, HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};

use crate::error::GateError;
use crate::events::access;
use crate::events::failure_log::Line;
use crate::gate::credentials::{Credentials, Memo};
use crate::gate::decision::{self, Decided, Decision};
use crate::http::body::{Body, empty};
use crate::http::fetch::wants_error_page;
use crate::http::headers::{self, ClientView};
use crate::http::request_id::X_REQUEST_ID;
use crate::state::{App, State};
use crate::{gate::factor, http::cookies, http::proxy, web::pages, web::routes, web::webhook};

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

/// What the access log says the gate did, learnt on the way (two stores;
/// read only when the access log is on).
#[derive(Default)]
struct Seen<'s> {
    decision: access::Decision,
    app: Option<&'s App>,
}

/// The gateway's service function: never fails; errors become pages.
pub async fn handle(state: Arc<State>, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    let wants_page = wants_error_page(&req);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let version = req.version();
    // Cheap (a reference count): the app of a failed request is found again.
    let host = req.headers().get(http::header::HOST).cloned();
    let trusted = &state.settings.server.trusted_proxies;
    let peer_trusted = trusted.iter().any(|n| n.contains(&conn.peer.ip()));
    let request_id = state.request_ids.for_request(req.headers(), peer_trusted);
    // The access log's one question on the hot path; off, nothing else.
    let started = state.access.is_on().then(|| {
        let client = headers::client_ip(req.headers(), conn.peer.ip(), peer_trusted, trusted);
        (Instant::now(), SystemTime::now(), client)
    });
    let mut seen = Seen::default();
    let res = match gate(&state, &conn, req, &request_id, &mut seen).await {
        Ok(res) => res,
        Err(err) => {
            // A webhook path carries its secret token: log only the prefix.
            let path = if uri.path().starts_with(crate::names::WEBHOOK_PREFIX) {
                crate::names::WEBHOOK_PREFIX
            } else {
                uri.path()
            };
            let app = seen.app.or_else(|| {
                host.as_ref()
                    .and_then(|h| h.to_str().ok())
                    .or(uri.host())
                    .and_then(|h| {
                        state.app_for(&headers::host_without_port(h).to_ascii_lowercase())
                    })
            });
            seen = Seen {
                decision: access::Decision::Error,
                app,
            };
            let reference = request_id.to_str().unwrap_or("");
            match (&err, app) {
                // The app down under load: a line per request would flood the log.
                (
                    GateError::UpstreamUnreachable(_)
                    | GateError::UpstreamTimeout
                    | GateError::IdentityUnusable(_),
                    Some(app),
                ) => upstream_failed(app, &err),
                _ if err.status().is_server_error() => {
                    tracing::warn!(%method, path, client = %conn.peer, request_id = reference, error = %err, source = ?std::error::Error::source(&err), "request failed");
                }
                _ => {
                    tracing::info!(%method, path, client = %conn.peer, request_id = reference, error = %err, "request refused")
                }
            }
            // Built only now: most requests never need their error page's link.
            let page = wants_page.then(|| routes::error_back(state.text, &uri));
            let mut res = pages::error(state.text, &err, page.as_ref(), reference);
            res.headers_mut().insert(X_REQUEST_ID, request_id.clone());
            // RFC 9110 §15.5.9: a 408 closes the connection; the rest of a
            // stalled body must not be read as the next request. HTTP/2
            // has no Connection field (RFC 9113 §8.2.2): the stream ends.
            if matches!(err, GateError::BodyTimeout) && version < http::Version::HTTP_2 {
                res.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            res
        }
    };
    if let Some((start, time, client)) = started {
        state.access.log(access::Entry {
            time,
            duration: start.elapsed(),
            client,
            method,
            uri,
            status: res.status(),
            bytes: res.body().size_hint().exact(),
            decision: seen.decision,
            app: seen.app.map(|a| a.index),
            request_id,
        });
    }
    res
}

async fn gate<'s>(
    state: &'s Arc<State>,
    conn: &Conn,
    mut req: Request<Incoming>,
    request_id: &HeaderValue,
    seen: &mut Seen<'s>,
) -> Result<Response<Body>, GateError> {
    // Only the gateway may speak in X-Otpgate-* headers.
    headers::remove_otpgate_headers(req.headers_mut());
    let facts = (&conn.forwarded_peer, conn.tls, conn.worker, request_id);
    let Decided { decision, view } =
        decision::decide(state, &**state, facts, Some(&conn.memo), &req).await?;
    match decision {
        Decision::Webhook => {
            seen.decision = access::Decision::Webhook;
            webhook::serve(state, req, request_id).await
        }
        Decision::Own(app) => {
            *seen = Seen {
                decision: access::Decision::OwnRoute,
                app: Some(app),
            };
            routes::serve(state, app, &view, req).await
        }
        Decision::Pass { app, creds, proven } => {
            *seen = Seen {
                decision: access::Decision::Pass,
                app: Some(app),
            };
            let user = if proven { creds.user.as_deref() } else { None };
            pass(state, app, &view, req, &creds, user).await
        }
        Decision::SecondFactor {
            app,
            navigation,
            verify_url,
            stale_proof,
        } => {
            *seen = Seen {
                decision: if navigation {
                    access::Decision::CodePage
                } else {
                    access::Decision::SecondFactor401
                },
                app: Some(app),
            };
            let mut res = second_factor_required(navigation, &verify_url);
            if stale_proof {
                // The proof names someone else than the session's user now.
                let removal = factor::removal(crate::names::FACTOR_COOKIE, view.https);
                if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
                    res.headers_mut().append(SET_COOKIE, v);
                }
            }
            Ok(res)
        }
    }
}

/// Logs an upstream failure of `app`: the first at once, then a summary at
/// most every `failure_log::INTERVAL`.
fn upstream_failed(app: &App, err: &GateError) {
    let cause = std::error::Error::source(err).map_or_else(|| err.to_string(), |s| s.to_string());
    match app.upstream_failures.failed(std::time::Instant::now()) {
        Some(Line::First) => tracing::warn!(
            event = "upstream.failing", app = %app.cfg.name, error = %err, cause = %cause,
            "the application {} is failing: {err}", app.cfg.name
        ),
        Some(Line::Summary { count, over }) => tracing::warn!(
            event = "upstream.failing", app = %app.cfg.name, failed = count, seconds = over.as_secs(), error = %err, cause = %cause,
            "the application {}: {count} more requests failed in the last {} s ({err})", app.cfg.name, over.as_secs()
        ),
        None => {}
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
    let mut res = proxy::forward(
        state.client(view.worker),
        &state.tunnels,
        timeouts,
        &app.cfg,
        view,
        req,
        user,
    )
    .await?;
    if let Some(back) = app.upstream_failures.succeeded(std::time::Instant::now()) {
        tracing::warn!(
            event = "upstream.recovered", app = %app.cfg.name, failed = back.failed, seconds = back.over.as_secs(),
            "the application {} answers again, after {} failed requests over {} s", app.cfg.name, back.failed, back.over.as_secs()
        );
    }
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
        cookies::remove_set_cookies_named(
            h,
            &[crate::names::FACTOR_COOKIE, crate::names::PENDING_COOKIE],
        );
        // Logout: when the app deletes its session cookie, ours goes too.
        if cookies::response_deletes(h, &app.cfg.session_cookie) {
            let removal = factor::removal(crate::names::FACTOR_COOKIE, view.https);
            if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
                h.append(SET_COOKIE, v);
            }
        }
    }
    Ok(res)
}

/// Logged in, no second factor yet: browsers are sent to the code page;
/// anything else (XHR, POST, API clients) gets a 401 it can act on, so no
/// request body is ever silently dropped by a redirect.
fn second_factor_required(navigation: bool, verify_url: &str) -> Response<Body> {
    let mut res = if navigation {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(verify_url) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the request is, its method, its fields, and whether an error is a page.
    type Row = (
        &'static str,
        Method,
        &'static [(&'static str, &'static str)],
        bool,
    );

    #[test]
    fn errors_are_pages_for_documents_and_json_for_scripts() {
        #[rustfmt::skip]
        let table: &[Row] = &[
            ("a Chromium form post", Method::POST, &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"), ("accept", "text/html,application/xhtml+xml,*/*;q=0.8")], true),
            ("a form post without Fetch Metadata", Method::POST, &[("accept", "text/html,*/*;q=0.8")], true),
            ("a document post that says only its destination", Method::POST, &[("sec-fetch-dest", "document")], true),
            ("fetch()", Method::POST, &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty"), ("accept", "*/*")], false),
            ("fetch() asking for HTML", Method::POST, &[("sec-fetch-mode", "cors"), ("accept", "text/html")], false),
            ("a same-origin-mode fetch", Method::POST, &[("sec-fetch-mode", "same-origin")], false),
            ("a script asking for JSON", Method::POST, &[("accept", "application/json")], false),
            ("a navigation asking for JSON", Method::POST, &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"), ("accept", "application/json")], false),
            ("jQuery's XHR", Method::POST, &[("x-requested-with", "XMLHttpRequest"), ("accept", "text/html")], false),
            ("an API client", Method::POST, &[], false),
            ("a PUT from a script", Method::PUT, &[("accept", "*/*")], false),
            ("a GET navigation", Method::GET, &[("sec-fetch-mode", "navigate")], true),
            ("a GET that accepts HTML", Method::GET, &[("accept", "text/html")], true),
            ("a GET from fetch()", Method::GET, &[("sec-fetch-mode", "cors"), ("accept", "*/*")], false),
            ("a HEAD navigation", Method::HEAD, &[("sec-fetch-mode", "navigate")], true),
        ];
        for (what, method, fields, page) in table {
            let mut req = Request::builder().method(method.clone()).uri("/x");
            for (name, value) in *fields {
                req = req.header(*name, *value);
            }
            let req = req.body(()).unwrap();
            assert_eq!(wants_error_page(&req), *page, "{what}");
        }
    }
}
