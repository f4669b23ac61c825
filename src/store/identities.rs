//! The app's who-am-I answers, per session. An answer is what the app said
//! about a session's cookies; it is kept for `userinfo_cache` so that a
//! request does not cost a call to the app, and forgotten when the session
//! may have changed hands (a login, a logout: `state::App::may_have_logged_in`).

use std::sync::Arc;

use crate::error::GateError;

use super::StoreFuture;

/// Who the app says is logged in on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User {
        name: String,
        /// As the app or the users file gives it; checked before use.
        phone: Option<String>,
    },
}

/// One session's answer, with the cookies it was asked with: an app may
/// also read other cookies than the session (a "remember me" cookie logs a
/// session in), so an answer holds only for the same cookies.
#[derive(Debug)]
pub struct Answer {
    /// Keyed hash of the `Cookie` field the app was asked with.
    pub cookies: [u8; 32],
    pub identity: Identity,
}

/// How the app's answer for a session is fetched when none is kept.
pub type Fetch<'a> = StoreFuture<'a, Result<Arc<Answer>, GateError>>;

/// The answers, keyed by the session's keyed hash (never its value).
pub trait IdentityAnswers: Send + Sync {
    /// The session's kept answer, if any.
    fn get<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, Option<Arc<Answer>>>;
    /// The kept answer, or the one `fetch` gets, which is then kept.
    /// Concurrent calls for one session share one fetch (the app is asked
    /// once); a failed fetch is kept by nobody and reaches every waiter.
    fn get_or_fetch<'a>(
        &'a self,
        session: [u8; 32],
        fetch: Fetch<'a>,
    ) -> StoreFuture<'a, Result<Arc<Answer>, Arc<GateError>>>;
    /// Forgets the session's answer.
    fn forget<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, ()>;
}
