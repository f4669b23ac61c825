//! Every way a request can fail, and the one place that maps each to an
//! HTTP status: the client's mistakes are 4xx, the upstream's are 502/504,
//! and only the gateway's own faults are 500.

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no application is configured for host {0:?}")]
    UnknownHost(String),
    #[error("the request has no Host header")]
    MissingHost,
    #[error("the application could not be reached")]
    UpstreamUnreachable(#[source] hyper_util::client::legacy::Error),
    #[error("the application did not answer in time")]
    UpstreamTimeout,
    #[error("the application's who-am-I answer could not be used: {0}")]
    IdentityUnusable(String),
    #[error("the application answered in a way the gateway cannot pass on: {0}")]
    BadUpstream(String),
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("the request body is too large for this endpoint")]
    PayloadTooLarge,
    #[error("the request body did not arrive in time; send it again")]
    BodyTimeout,
    #[error("the form has expired or was not sent from this site; reload the page and try again")]
    Csrf,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A front proxy's forward-auth request lacks what its snippet sends:
    /// the proxy's configuration is wrong, not the client's request.
    #[error("the front proxy's forward-auth request is incomplete: {0}")]
    FrontProxy(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GateError {
    pub fn status(&self) -> StatusCode {
        match self {
            // RFC 9110 §15.5.20: this server is not configured for that authority.
            Self::UnknownHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::MissingHost | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UpstreamUnreachable(_) | Self::IdentityUnusable(_) | Self::BadUpstream(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::FrontProxy(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable name for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownHost(_) => "unknown_host",
            Self::MissingHost => "missing_host",
            Self::UpstreamUnreachable(_) => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::IdentityUnusable(_) => "identity_unusable",
            Self::BadUpstream(_) => "bad_upstream",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::Csrf => "csrf",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::FrontProxy(_) => "front_proxy",
            Self::Internal(_) => "internal",
        }
    }

    /// What the client is told; upstream details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::IdentityUnusable(_) => {
                "The application's answer about who you are could not be used. The administrator has been told in the gateway's log.".into()
            }
            Self::BadUpstream(_) => "The application gave an answer the gateway cannot pass on.".into(),
            Self::Internal(_) => "Something went wrong in the gateway.".into(),
            other => {
                let mut m = other.to_string();
                if let Some(first) = m.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                m.push('.');
                m.replace("..", ".")
            }
        }
    }
}
