//! Who is logged in, asked of the app itself: its who-am-I path is called
//! with the request's cookies, and `answer` reads what it says (401/403 or a
//! redirect means nobody; a 2xx names the user, or nobody). Answers are
//! cached per session under a keyed hash of the session cookie (never the
//! value), negative ones too, and concurrent lookups for one session share
//! one call.

use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, COOKIE, HOST, HeaderValue, USER_AGENT};
use http::{Request, Uri};

use crate::answer::{self, Reading};
use crate::body;
use crate::config::Userinfo;
use crate::credentials::Credentials;
use crate::error::GateError;
use crate::headers::{self, ClientView};
use crate::state::{App, State};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User {
        name: String,
        /// As the app or the users file gives it; checked before use.
        phone: Option<String>,
    },
}

pub type Cache = moka::future::Cache<[u8; 32], Arc<Identity>>;

pub fn new_cache(ttl: Duration) -> Cache {
    moka::future::Cache::builder()
        .max_capacity(1_000_000)
        .time_to_live(ttl)
        .build()
}

/// The cache key: the app's answer depends on the Host and on every cookie
/// it is sent (not only the session cookie), so all of them are in the key;
/// a client cannot make one Host or cookie set answer for another.
fn cache_key(
    app: &App,
    creds: &Credentials,
    view: &ClientView,
    keys: &crate::keys::Keys,
) -> [u8; 32] {
    let cookies = creds
        .forward
        .as_ref()
        .map_or(&b""[..], HeaderValue::as_bytes);
    keys.session.of(&[
        b"identity",
        &(app.index as u64).to_be_bytes(),
        view.host.as_bytes(),
        cookies,
    ])
}

/// The identity behind a request's session, from the cache or from the app.
pub async fn lookup(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Arc<Identity>, GateError> {
    let key = cache_key(app, creds, view, &state.keys);
    // Just forgotten (a login may be under way): an answer fetched now may
    // have started before the login finished, so it is not kept.
    if app.cfg.userinfo_cache.is_zero() || app.forgotten.contains_key(&key) {
        return fetch(state, app, creds, view).await.map(Arc::new);
    }
    app.identities
        .try_get_with(key, async {
            fetch(state, app, creds, view).await.map(Arc::new)
        })
        .await
        .map_err(|e| match &*e {
            GateError::UpstreamTimeout => GateError::UpstreamTimeout,
            other => GateError::IdentityUnusable(other.to_string()),
        })
}

/// Forgets what is known about a request's session: its login state may
/// have changed.
pub async fn forget(app: &App, creds: &Credentials, view: &ClientView, keys: &crate::keys::Keys) {
    let key = cache_key(app, creds, view, keys);
    app.forgotten.insert(key, ());
    app.identities.invalidate(&key).await;
}

async fn fetch(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Identity, GateError> {
    // The whole exchange, body included, is bounded by the upstream timeout.
    tokio::time::timeout(
        state.settings.server.upstream_timeout,
        ask(state, app, creds, view),
    )
    .await
    .map_err(|_| GateError::UpstreamTimeout)?
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

    let res = state
        .client(view.worker)
        .request(req)
        .await
        .map_err(GateError::UpstreamUnreachable)?;
    let (parts, body) = res.into_parts();
    answer::read(&app.cfg, parts.status, &parts.headers, body).await
}
