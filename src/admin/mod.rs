//! The admin API: a small JSON API on its own listener (loopback by
//! default, never the public port) to list and lift account locks and
//! pumping quarantines. Every request needs `Authorization: Bearer <token>`
//! where the token is derived from the server secret (see
//! `Keys::admin_token`), so only who can read the secret file can call it.
//! `client` is the other end, used by `otpgate admin`.

pub mod client;
pub mod listener;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::events::{OtpEvent, Who};
use crate::http::body::{self, Body};
use crate::otp::abuse::LockView;
use crate::pumping::QuarantineView;
use crate::state::State;
use crate::web::pages;

/// Largest request body the admin API reads.
const MAX_BODY: usize = 4 * 1024;
/// A request body must arrive whole within this (a few hundred bytes).
const ADMIN_BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub const LOCKS: &str = "/v1/locks";
pub const UNLOCK: &str = "/v1/locks/unlock";
pub const QUARANTINES: &str = "/v1/quarantines";
pub const LIFT: &str = "/v1/quarantines/lift";

#[derive(Debug, Serialize, Deserialize)]
pub struct Locks {
    pub locks: Vec<LockView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Quarantines {
    pub quarantines: Vec<QuarantineView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Unlock {
    pub app: String,
    pub user: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Lift {
    pub key: String,
}

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "missing or wrong bearer token; use `otpgate admin`, which derives it from the secret file"
    )]
    Unauthorized,
    #[error(
        "no such endpoint; the API has GET {LOCKS}, POST {UNLOCK}, GET {QUARANTINES}, POST {LIFT}"
    )]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("the body must be JSON such as {0}: {1}")]
    BadBody(&'static str, String),
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("no app is named {0:?}")]
    NoSuchApp(String),
    #[error("{user:?} of {app:?} is not locked")]
    NotLocked { app: String, user: String },
    #[error("{0:?} is not quarantined")]
    NotQuarantined(String),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound
            | Self::NoSuchApp(_)
            | Self::NotLocked { .. }
            | Self::NotQuarantined(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadBody(..) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// The admin listener's service function.
pub async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match route(state, req).await {
        Ok(value) => pages::json(StatusCode::OK, &value),
        Err(e) => {
            tracing::warn!(%method, path, error = %e, "admin request refused");
            let mut res = pages::json(e.status(), &serde_json::json!({ "error": e.to_string() }));
            if matches!(e, AdminError::Unauthorized) {
                res.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            res
        }
    }
}

async fn route(state: &State, req: Request<Incoming>) -> Result<serde_json::Value, AdminError> {
    authorize(state, &req)?;
    match (req.uri().path(), req.method()) {
        (LOCKS, &Method::GET) => Ok(to_json(&Locks {
            locks: state.abuse.locks().await,
        })),
        (UNLOCK, &Method::POST) => {
            let Unlock { app, user } = read_json(req, r#"{"app": "CRM", "user": "alice"}"#).await?;
            let Some(index) = state.apps.iter().position(|a| a.cfg.name == app) else {
                return Err(AdminError::NoSuchApp(app));
            };
            let account = state.account_key(index, &user);
            if !state.abuse.unlock(&account).await {
                return Err(AdminError::NotLocked { app, user });
            }
            // Admin actions belong in the investigator's record too.
            state
                .events
                .emit(&Who::account(&app, &user), OtpEvent::Unlocked);
            Ok(serde_json::json!({ "unlocked": { "app": app, "user": user } }))
        }
        (QUARANTINES, &Method::GET) => Ok(to_json(&Quarantines {
            quarantines: state.pumping.quarantines().await,
        })),
        (LIFT, &Method::POST) => {
            let Lift { key } = read_json(req, r#"{"key": "NG"}"#).await?;
            if !state.pumping.lift(&key).await {
                return Err(AdminError::NotQuarantined(key));
            }
            let lifted = OtpEvent::QuarantineLifted { key: &key };
            state.events.emit(&Who::nobody(), lifted);
            Ok(serde_json::json!({ "lifted": key }))
        }
        (LOCKS | UNLOCK | QUARANTINES | LIFT, _) => Err(AdminError::MethodNotAllowed),
        _ => Err(AdminError::NotFound),
    }
}

fn to_json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Checks the bearer token in constant time, so its bytes cannot be found
/// one by one from response times.
fn authorize<B>(state: &State, req: &Request<B>) -> Result<(), AdminError> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.keys.admin_token();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    example: &'static str,
) -> Result<T, AdminError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(AdminError::BadBody(
            example,
            "Content-Type must be application/json".into(),
        ));
    }
    let bytes = body::read_small(req.into_body(), MAX_BODY, ADMIN_BODY_DEADLINE)
        .await
        .map_err(|e| match e {
            body::ReadError::TooLarge => AdminError::TooLarge,
            body::ReadError::Broken | body::ReadError::TimedOut => {
                AdminError::BadBody(example, "the body could not be read in time".into())
            }
        })?;
    serde_json::from_slice(&bytes).map_err(|e| AdminError::BadBody(example, e.to_string()))
}
