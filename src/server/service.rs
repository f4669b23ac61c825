//! The request's way through the gateway, top to bottom, in [`gate`]:
//! own pages → bypass → where the session stands (no session, anonymous,
//! proven, logged in without a proof) → pass or stop. Everything it calls lives in a module named for that step.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{COOKIE, HeaderValue, SET_COOKIE};
use http::{Request, Response};
use hyper::body::{Body as _, Incoming};

use crate::error::GateError;
use crate::events::access;
use crate::events::failure_log::Line;
use crate::events::metrics::{Outcome, UpstreamError};
use crate::gate::credentials::{Credentials, Memo};
use crate::gate::decision::{self, Decided, Decision};
use crate::http::body::Body;
use crate::http::fetch::wants_error_page;
use crate::http::headers::{self, ClientView};
use crate::http::request_id::X_REQUEST_ID;
use crate::state::{App, State};
use crate::{
    gate::factor, http::cookies, http::proxy, web::authz, web::pages, web::routes, web::webhook,
};

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

/// What the gate made of a request, learnt on the way, for the request
/// metrics and the access log: the app and the outcome, once known (two
/// stores; read only when one of them is on).
#[derive(Default)]
struct Seen<'s> {
    app: Option<&'s App>,
    outcome: Option<Outcome>,
}

/// The gateway's service function: never fails; errors become pages.
pub async fn handle(state: Arc<State>, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    // The one check the hot path pays while metrics are off.
    let started = state.metrics.is_some().then(Instant::now);
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
    let logged = state.access.is_on().then(|| {
        let client = headers::client_ip(req.headers(), conn.peer.ip(), peer_trusted, trusted);
        (Instant::now(), SystemTime::now(), client)
    });
    let mut seen = Seen::default();
    let mut res = match gate(&state, &conn, req, &request_id, &mut seen).await {
        Ok(res) => {
            if let (Some(m), Some(t)) = (&state.metrics, started) {
                let outcome = seen.outcome.unwrap_or(Outcome::OwnRoute);
                let app = seen.app.map(|a| a.index);
                m.requests.record(conn.worker, app, outcome, t.elapsed());
            }
            res
        }
        Err(err) => {
            // A webhook path carries its secret token: log only the prefix.
            let path = if uri.path().starts_with(crate::names::WEBHOOK_PREFIX) {
                crate::names::WEBHOOK_PREFIX
            } else {
                uri.path()
            };
            // Decided: the decision's app (none for a webhook); not decided
            // (refused before): the Host's.
            let app = match seen.outcome {
                Some(_) => seen.app,
                None => host
                    .as_ref()
                    .and_then(|h| h.to_str().ok())
                    .or(uri.host())
                    .and_then(|h| {
                        state.app_for(&headers::host_without_port(h).to_ascii_lowercase())
                    }),
            };
            seen = Seen {
                app,
                outcome: Some(Outcome::Error),
            };
            if let (Some(m), Some(t)) = (&state.metrics, started) {
                let app = app.map(|a| a.index);
                if let (Some(app), Some(kind)) = (app, UpstreamError::of(&err)) {
                    m.upstream_error(app, kind);
                }
                m.requests
                    .record(conn.worker, app, Outcome::Error, t.elapsed());
            }
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
    if let Some(front) = authz::Front::of(uri.path()) {
        authz::finish(front, &mut res);
    }
    if let Some((start, time, client)) = logged {
        state.access.log(access::Entry {
            time,
            duration: start.elapsed(),
            client,
            method,
            uri,
            status: res.status(),
            bytes: res.body().size_hint().exact(),
            decision: seen.outcome.unwrap_or(Outcome::OwnRoute),
            app: seen.app.map(|a| a.index),
            request_id,
        });
    }
    res
}

/// The request metrics' app and outcome of a decision.
fn outcome_of<'s>(decision: &Decision<'s>) -> (Option<&'s App>, Option<Outcome>) {
    match decision {
        Decision::Health(_) => (None, Some(Outcome::Health)),
        Decision::Webhook => (None, Some(Outcome::Webhook)),
        Decision::Own(app) => (Some(app), Some(Outcome::OwnRoute)),
        Decision::Pass { app, .. } => (Some(app), Some(Outcome::Pass)),
        Decision::SecondFactor {
            app, navigation, ..
        } => {
            let outcome = match navigation {
                true => Outcome::CodePage,
                false => Outcome::Unauthorized,
            };
            (Some(app), Some(outcome))
        }
    }
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
    if let Some(front) = authz::Front::of(req.uri().path()) {
        let seen = |d: &Decision<'s>| (seen.app, seen.outcome) = outcome_of(d);
        return authz::serve(state, front, facts, Some(&conn.memo), &req, seen).await;
    }
    let Decided { decision, view } =
        decision::decide(state, &**state, facts, Some(&conn.memo), &req).await?;
    (seen.app, seen.outcome) = outcome_of(&decision);
    match decision {
        Decision::Health(probe) => routes::health::serve(state, probe, &req).await,
        Decision::Webhook => webhook::serve(state, req, request_id).await,
        Decision::Own(app) => routes::serve(state, app, &view, req).await,
        Decision::Pass { app, creds, proven } => {
            let user = if proven { creds.user.as_deref() } else { None };
            pass(state, app, &view, req, &creds, user).await
        }
        Decision::SecondFactor {
            navigation,
            verify_url,
            stale_proof,
            ..
        } => Ok(pages::second_factor_required(
            navigation,
            &verify_url,
            stale_proof,
            view.https,
        )),
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
    // Or, below, an answer that sets cookies.
    let may_log_in = app.may_log_in(req.method(), req.uri().path());
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

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
