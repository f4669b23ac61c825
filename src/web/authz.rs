//! Forward-auth: a front proxy (nginx `auth_request`, Caddy `forward_auth`,
//! Traefik `forwardAuth`) asks whether another request may pass. The
//! endpoints rebuild that request's head from the proxy's fields and ask
//! the same [`decision::decide`] as the reverse proxy; only the answer's
//! form differs per proxy.
//!
//! - nginx (`/.otpgate/authz/nginx`): `auth_request` takes 2xx as allow,
//!   401 and 403 as deny, and anything else as its own 500; it never shows
//!   the answer's body. So: 200 (with `X-Otpgate-User`), 401 with an
//!   absolute `Location` naming the code page (and `X-Otpgate-Navigation`
//!   for a navigation, which the README's snippet redirects), 403.
//! - Caddy and Traefik (`/.otpgate/authz/forward`): anything but 2xx goes
//!   to the client as it is, so the stop is the proxy's own: 303 to the
//!   code page for navigations, 401 JSON otherwise.

use http::header::{
    ACCEPT, CACHE_CONTROL, COOKIE, HOST, HeaderName, HeaderValue, LOCATION, USER_AGENT,
};
use http::{Method, Request, Response, StatusCode};

use crate::error::GateError;
use crate::gate::credentials::Memo;
use crate::gate::decision::{self, Decided, Decision};
use crate::http::body::{Body, empty};
use crate::http::headers::{self, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use crate::state::State;
use crate::web::pages;

const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
/// On nginx's 401: the request was a navigation, to be redirected.
pub const X_OTPGATE_NAVIGATION: HeaderName = HeaderName::from_static("x-otpgate-navigation");

/// The client's fields the decision reads, copied onto the rebuilt request:
/// cookies (the session), and what tells a navigation from a script's call
/// (`fetch`: Fetch Metadata, `Accept`, `X-Requested-With`).
const PASSED: [HeaderName; 8] = [
    COOKIE,
    ACCEPT,
    USER_AGENT,
    X_FORWARDED_FOR,
    HeaderName::from_static("sec-fetch-mode"),
    HeaderName::from_static("sec-fetch-dest"),
    HeaderName::from_static("sec-fetch-site"),
    HeaderName::from_static("x-requested-with"),
];

/// Which front proxy's dialect an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Nginx,
    /// Caddy's `forward_auth` and Traefik's `forwardAuth`.
    Forward,
}

impl Front {
    /// The endpoint at `path`, if it is one.
    pub fn of(path: &str) -> Option<Self> {
        match path {
            crate::names::AUTHZ_NGINX => Some(Self::Nginx),
            crate::names::AUTHZ_FORWARD => Some(Self::Forward),
            _ => None,
        }
    }
}

/// Answers a forward-auth question about the request that `req`'s fields
/// describe. `conn` is as for [`decision::decide`]; its peer must be one of
/// `trusted_proxies`, or nothing the request says is believed.
pub async fn serve<'s, B>(
    state: &'s State,
    front: Front,
    conn: (&headers::Peer, bool, usize, &HeaderValue),
    memo: Option<&Memo>,
    req: &Request<B>,
    decided: impl FnOnce(&Decision<'s>),
) -> Result<Response<Body>, GateError> {
    let trusted = &state.settings.server.trusted_proxies;
    if !trusted.iter().any(|n| n.contains(&conn.0.ip)) {
        return Err(GateError::Forbidden(
            "forward-auth questions are answered only for server.trusted_proxies, and this peer is not one",
        ));
    }
    let original = original(front, req)?;
    let Decided { decision, view } = decision::decide(state, state, conn, memo, &original).await?;
    decided(&decision);
    let res = match decision {
        // The front proxy routes /.otpgate/ to otpgate itself, unasked.
        Decision::Webhook | Decision::Own(_) | Decision::Health(_) => {
            return Err(GateError::Forbidden(
                "paths under /.otpgate/ belong to otpgate: route them to it without forward-auth",
            ));
        }
        Decision::Pass { app, creds, proven } => {
            // The app's answer is never seen here (no Set-Cookie, no
            // logout): a request that may change who is logged in on its
            // session has the session's answer asked again next time.
            if let Some(session) = &creds.session
                && app.may_log_in(original.method(), original.uri().path())
            {
                app.may_have_logged_in(session).await;
            }
            let mut res = Response::new(empty());
            let user = creds.user.as_deref().filter(|_| proven);
            // Always the field, empty for nobody: Caddy before 2.10 copies
            // a missing one as its placeholder's text
            // (`{http.reverse_proxy.header.X-Otpgate-User}`, caddy#6610).
            // A name that cannot be a field value fails as in proxy mode.
            let v = user
                .map_or(Ok(HeaderValue::from_static("")), HeaderValue::from_str)
                .map_err(|_| {
                    GateError::IdentityUnusable("the user name cannot be sent in a header".into())
                })?;
            res.headers_mut().insert(headers::X_OTPGATE_USER, v);
            res
        }
        Decision::SecondFactor {
            navigation,
            verify_url,
            stale_proof,
            ..
        } => match front {
            Front::Forward => {
                pages::second_factor_required(navigation, &verify_url, stale_proof, view.https)
            }
            Front::Nginx => {
                let scheme = if view.https { "https" } else { "http" };
                let mut res = Response::new(empty());
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                let h = res.headers_mut();
                let absolute = format!("{scheme}://{}{verify_url}", view.host);
                if let Ok(v) = HeaderValue::from_str(&absolute) {
                    h.insert(LOCATION, v);
                }
                if navigation {
                    h.insert(X_OTPGATE_NAVIGATION, HeaderValue::from_static("1"));
                }
                res
            }
        },
    };
    Ok(res)
}

/// Every forward-auth answer, errors included: never cached (RFC 9111
/// §5.2.2.5), since it is about one session; and for nginx only 2xx, 401 or
/// 403, the statuses `auth_request` understands (any other is its 500 and
/// a log line that hides ours).
pub fn finish(front: Front, res: &mut Response<Body>) {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let status = res.status();
    if front == Front::Nginx
        && !status.is_success()
        && status != StatusCode::UNAUTHORIZED
        && status != StatusCode::FORBIDDEN
    {
        *res.status_mut() = StatusCode::FORBIDDEN;
    }
}

/// The request the proxy asks about: its method and target from the
/// proxy's fields, the original host as `Host` and the client's fields the
/// decision reads.
fn original<B>(front: Front, req: &Request<B>) -> Result<Request<()>, GateError> {
    let field = |name: &HeaderName, missing: &'static str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(GateError::FrontProxy(missing))
    };
    let (method, scheme, host, target) = match front {
        Front::Nginx => {
            let url = field(
                &X_ORIGINAL_URL,
                "nginx did not pass X-Original-URL ($scheme://$http_host$request_uri)",
            )?;
            let uri: http::Uri = url
                .parse()
                .map_err(|_| GateError::FrontProxy("X-Original-URL is not an absolute URL"))?;
            let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.authority()) else {
                return Err(GateError::FrontProxy(
                    "X-Original-URL is not an absolute URL",
                ));
            };
            let method = field(
                &X_ORIGINAL_METHOD,
                "nginx did not pass X-Original-Method ($request_method)",
            )?;
            let target = uri.path_and_query().map_or("/", |p| p.as_str());
            (
                method,
                scheme.to_string(),
                host.to_string(),
                target.to_string(),
            )
        }
        Front::Forward => {
            let method = field(
                &X_FORWARDED_METHOD,
                "the proxy did not pass X-Forwarded-Method",
            )?;
            let target = field(&X_FORWARDED_URI, "the proxy did not pass X-Forwarded-Uri")?;
            let host = field(&X_FORWARDED_HOST, "")
                .or_else(|_| field(&HOST, "the proxy did not pass X-Forwarded-Host"))?;
            let scheme = field(&X_FORWARDED_PROTO, "").unwrap_or("http");
            (
                method,
                scheme.to_string(),
                host.to_string(),
                target.to_string(),
            )
        }
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| GateError::FrontProxy("the original method is not a method"))?;
    if !target.starts_with('/') {
        return Err(GateError::FrontProxy(
            "the original target is not a path (origin-form, RFC 9112 §3.2.1)",
        ));
    }
    let mut out = Request::builder()
        .method(method)
        .uri(target)
        .header(HOST, host)
        .header(X_FORWARDED_PROTO, scheme)
        .body(())
        .map_err(|_| GateError::FrontProxy("the original request's target or host is invalid"))?;
    let h = out.headers_mut();
    for name in &PASSED {
        for v in req.headers().get_all(name) {
            h.append(name, v.clone());
        }
    }
    Ok(out)
}
