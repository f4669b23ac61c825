//! The gate's decision as a value: what to do with a request, decided from
//! the request's head, the connection and what the app says about the
//! session (asked through [`IdentitySource`], the only I/O). The reverse
//! proxy carries a decision out (`gate`), the code pages ask the same
//! question (`standing`), and a forward-auth endpoint can answer from it.

use http::{Method, Request};

use crate::error::GateError;
use crate::gate::credentials::{self, Credentials, Memo};
use crate::gate::identity::{self, Identity};
use crate::gate::standing::{self, Standing};
use crate::http::headers::{self, ClientView};
use crate::state::{App, State};

/// Who the app says is logged in on a session: the app's who-am-I path in
/// the gateway ([`State`]), a table in tests.
pub trait IdentitySource: Sync {
    fn identify(
        &self,
        app: &App,
        creds: &Credentials,
        view: &ClientView,
        session: &[u8; 32],
    ) -> impl Future<Output = Result<Identity, GateError>> + Send;
}

impl IdentitySource for State {
    async fn identify(
        &self,
        app: &App,
        creds: &Credentials,
        view: &ClientView,
        session: &[u8; 32],
    ) -> Result<Identity, GateError> {
        identity::lookup(self, app, creds, view, session).await
    }
}

/// Which health check a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/.otpgate/healthz`: the process serves.
    Live,
    /// `/.otpgate/readyz`: it can do its work.
    Ready,
}

impl Probe {
    /// The probe a path asks for, if any.
    pub fn of(path: &str) -> Option<Self> {
        match path {
            crate::names::HEALTHZ | crate::names::HEALTH => Some(Self::Live),
            crate::names::READYZ => Some(Self::Ready),
            _ => None,
        }
    }
}

/// What to do with a request.
pub enum Decision<'s> {
    /// A health check: answered for any Host, or none (a load balancer
    /// asks by address, HAProxy's default check is HTTP/1.0 without Host).
    Health(Probe),
    /// A provider's delivery report: `webhook` takes it (before any app:
    /// providers call `public_url`, not an app's host).
    Webhook,
    /// One of the gateway's own pages under `/.otpgate/`: `routes`.
    Own(&'s App),
    /// To the app, with the cookies as `creds` says. `proven`: the second
    /// factor holds for the user the app names (`Credentials::user`), sent
    /// as `X-Otpgate-User`.
    Pass {
        app: &'s App,
        creds: Credentials,
        proven: bool,
    },
    /// Logged in without a second factor: a navigation is sent to the code
    /// page, anything else gets a 401 naming it (no body lost to a redirect).
    SecondFactor {
        app: &'s App,
        navigation: bool,
        verify_url: String,
        /// A proof for another user was presented: remove it.
        stale_proof: bool,
    },
}

/// A decision and the client it was made for.
pub struct Decided<'s> {
    pub decision: Decision<'s>,
    pub view: ClientView,
}

/// Decides what to do with a request (whose client `X-Otpgate-*` headers
/// are already removed). `memo` is the connection's remembered `Cookie`.
pub async fn decide<'s, B>(
    state: &'s State,
    ids: &impl IdentitySource,
    conn: (&headers::Peer, bool, usize, &http::HeaderValue),
    memo: Option<&Memo>,
    req: &Request<B>,
) -> Result<Decided<'s>, GateError> {
    let (peer, tls, worker, request_id) = conn;
    // A reverse proxy opens no tunnels (RFC 9110 §9.3.6).
    if req.method() == Method::CONNECT {
        return Err(GateError::MethodNotAllowed);
    }
    let trusted = &state.settings.server.trusted_proxies;
    if let Some(probe) = Probe::of(req.uri().path()) {
        let authority = req.uri().authority().map(|a| a.as_str());
        let view = ClientView::new(req.headers(), authority, peer, tls, trusted);
        return Ok(Decided {
            decision: Decision::Health(probe),
            view,
        });
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
    let mut view = ClientView::new(
        req.headers(),
        req.uri().authority().map(|a| a.as_str()),
        peer,
        tls,
        trusted,
    );
    view.worker = worker;
    view.request_id = request_id.clone();
    if view.host.is_empty() {
        return Err(GateError::MissingHost);
    }
    let path = req.uri().path();
    if path.starts_with(crate::names::WEBHOOK_PREFIX) {
        return Ok(Decided {
            decision: Decision::Webhook,
            view,
        });
    }
    let app = state
        .app_for(headers::host_without_port(&view.host))
        .ok_or_else(|| GateError::UnknownHost(view.hostname()))?;
    if path.starts_with(crate::names::PREFIX) {
        // For the office-behind-a-proxy warning of the code pages' limits.
        view.forwarded_for =
            !view.peer_trusted && req.headers().contains_key(headers::X_FORWARDED_FOR);
        return Ok(Decided {
            decision: Decision::Own(app),
            view,
        });
    }
    let creds = credentials::read(state, app, req, memo);
    if let Some(name) = &creds.suspicious {
        app.note_suspicious_cookie(name, &view);
    }
    // The login form is usually a bypass path: the response is watched for
    // logins all the same (`gate::pass`).
    let proven = if app.bypasses(path) {
        false
    } else {
        match standing::of(ids, app, &creds, &view).await? {
            Standing::NoSession | Standing::Anonymous(_) => false,
            Standing::Proven(_) => true,
            Standing::Unproven { stale_proof, .. } => {
                let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let decision = Decision::SecondFactor {
                    app,
                    navigation: crate::http::fetch::is_navigation(req),
                    verify_url: crate::names::verify_url(target),
                    stale_proof,
                };
                return Ok(Decided { decision, view });
            }
        }
    };
    Ok(Decided {
        decision: Decision::Pass { app, creds, proven },
        view,
    })
}

#[cfg(test)]
mod tests;
