//! Where a request's app session stands: no session, anonymous, proven, or
//! logged in without a proof that still holds. The gate and the code pages
//! both ask this one question.
//!
//! A factor proof names the user it was proven for and is bound to the
//! session cookie's value, but an app that keeps the session id across a
//! login (session fixation, common in old PHP and Java apps) can put another
//! user on the same session. So a proof counts only while the app's current
//! answer names the same user: the session's confirmation is dropped by
//! anything that may have changed its user (`App::may_have_logged_in`),
//! and in any case expires after the app's `recheck_interval`, so that a
//! login the gateway could not see stays a short window.

use crate::error::GateError;
use crate::gate::credentials::Credentials;
use crate::gate::decision::IdentitySource;
use crate::gate::identity::Identity;
use crate::http::headers::ClientView;
use crate::state::App;

pub enum Standing {
    /// No session cookie: the app shows its login.
    NoSession,
    /// The app says nobody is logged in on this session.
    Anonymous([u8; 32]),
    /// The second factor is proven for the user the app names now
    /// (`Credentials::user`).
    Proven([u8; 32]),
    /// Logged in without a proof that holds.
    Unproven {
        session: [u8; 32],
        name: String,
        phone: Option<String>,
        /// A proof was presented for another user: it is to be removed.
        stale_proof: bool,
    },
}

/// Where the request's session stands. The hot path (a proof, confirmed
/// recently for this very user) costs one cache read and no call to the app.
pub async fn of(
    ids: &impl IdentitySource,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Standing, GateError> {
    let Some(session) = creds.session else {
        return Ok(Standing::NoSession);
    };
    if let Some(user) = &creds.user
        && app.is_confirmed(&session, user)
    {
        return Ok(Standing::Proven(session));
    }
    Ok(match ids.identify(app, creds, view, &session).await? {
        Identity::Anonymous => Standing::Anonymous(session),
        Identity::User { name, .. } if creds.user.as_deref() == Some(name.as_str()) => {
            app.confirm(session, &name).await;
            Standing::Proven(session)
        }
        Identity::User { name, phone } => Standing::Unproven {
            session,
            name,
            phone,
            stale_proof: creds.user.is_some(),
        },
    })
}
