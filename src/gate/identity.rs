//! Who is logged in, asked of the app itself: its who-am-I path is called
//! with the request's cookies, and `answer` reads what it says (401/403 or a
//! redirect means nobody; a 2xx names the user, or nobody). Answers are
//! cached per session, negative ones too, and concurrent lookups for one
//! session share one call.
//!
//! The cache is keyed by the session alone (the app's keyed hash of the
//! session cookie's value, never the value), not by how a request spells
//! itself: a login on the session forgets its answer whatever other cookies
//! or Host spelling the login request carried (a stale "anonymous" kept
//! under another key once let a login through).

use std::sync::Arc;
use std::time::Instant;

use http::header::{ACCEPT, COOKIE, HOST, HeaderValue, USER_AGENT};
use http::{Request, Uri};

use crate::config::Userinfo;
use crate::error::GateError;
use crate::events::metrics::WhoAmI;
use crate::gate::answer::{self, Reading};
use crate::gate::credentials::Credentials;
use crate::http::body;
use crate::http::headers::{self, ClientView};
use crate::state::{App, State};
use crate::store::identities::Answer;

pub use crate::store::identities::Identity;

/// Identifies the cookies an answer was asked with.
fn cookies_id(creds: &Credentials, keys: &crate::keys::Keys) -> [u8; 32] {
    let cookies = creds
        .forward
        .as_ref()
        .map_or(&b""[..], HeaderValue::as_bytes);
    keys.session.of(&[b"identity cookies", cookies])
}

/// The identity behind a request's session, from the cache or from the app.
/// A request without a session is never looked up (the caller passes it).
pub async fn lookup(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
    session: &[u8; 32],
) -> Result<Identity, GateError> {
    let key = *session;
    let cookies = cookies_id(creds, &state.keys);
    // Just forgotten (a login may be under way): an answer fetched now may
    // have started before the login finished, so it is not kept.
    if app.cfg.userinfo_cache.is_zero() || app.sessions.just_forgotten(&key).await {
        return fetch(state, app, creds, view).await;
    }
    if let Some(a) = app.identities.get(&key).await
        && a.cookies != cookies
    {
        // The same session with other cookies: ask again, and keep the newer.
        app.identities.forget(&key).await;
    }
    let answer = app
        .identities
        .get_or_fetch(
            key,
            Box::pin(async move {
                let identity = fetch(state, app, creds, view).await?;
                Ok(Arc::new(Answer { cookies, identity }))
            }),
        )
        .await
        .map_err(|e| match &*e {
            GateError::UpstreamTimeout => GateError::UpstreamTimeout,
            other => GateError::IdentityUnusable(other.to_string()),
        })?;
    if answer.cookies != cookies {
        // A concurrent lookup with other cookies filled the entry.
        return fetch(state, app, creds, view).await;
    }
    Ok(answer.identity.clone())
}

async fn fetch(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Identity, GateError> {
    let started = state.metrics.is_some().then(Instant::now);
    // The whole exchange, body included, is bounded by the upstream timeout.
    let found = tokio::time::timeout(
        state.settings.server.upstream_timeout,
        ask(state, app, creds, view),
    )
    .await
    .unwrap_or(Err(GateError::UpstreamTimeout));
    if let (Some(m), Some(t)) = (&state.metrics, started) {
        let result = match &found {
            Ok(Identity::User { .. }) => WhoAmI::User,
            Ok(Identity::Anonymous) => WhoAmI::Anonymous,
            Err(e) => WhoAmI::of_error(e),
        };
        m.whoami(app.index, result, t.elapsed());
    }
    found
}

async fn ask(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Identity, GateError> {
    ask_reading(state, app, creds, view)
        .await
        .map(|r| r.identity)
}

/// Calls the who-am-I path with the request's cookies and reads its answer
/// (`answer`), with why the rules concluded what they did (`otpgate
/// explain` shows it).
pub async fn ask_reading(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Reading, GateError> {
    let uri = Uri::builder()
        .scheme(app.cfg.upstream.scheme.clone())
        .authority(app.cfg.upstream.authority.clone())
        .path_and_query(app.cfg.userinfo_path.clone())
        .build()
        .map_err(|e| GateError::Internal(e.to_string()))?;
    let mut req = Request::get(uri)
        .body(body::empty())
        .map_err(|e| GateError::Internal(e.to_string()))?;
    let h = req.headers_mut();
    if let Some(cookies) = &creds.forward {
        h.insert(COOKIE, cookies.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&view.host) {
        h.insert(HOST, host);
    }
    // Asking for what the rules read: some apps answer a page or JSON by Accept.
    let accept = match app.cfg.userinfo {
        Userinfo::Json { .. } => "application/json",
        Userinfo::Html { .. } => "text/html,application/xhtml+xml",
        Userinfo::Header { .. } => "*/*",
    };
    h.insert(ACCEPT, HeaderValue::from_static(accept));
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("otpgate/", env!("CARGO_PKG_VERSION"))),
    );
    headers::set_forwarded(h, view);
    crate::http::request_id::send_to_app(h, view);

    let res = state
        .client(view.worker)
        .request(req)
        .await
        .map_err(GateError::UpstreamUnreachable)?;
    let (parts, body) = res.into_parts();
    answer::read(&app.cfg, parts.status, &parts.headers, body).await
}
