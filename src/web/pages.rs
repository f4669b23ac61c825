//! The gateway's own pages and assets: askama templates compiled into the
//! binary, and the headers every gateway page carries.

use askama::Template;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, LOCATION, REFERRER_POLICY,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{Response, StatusCode};

use crate::delivery::sms::SandboxMessage;
use crate::error::GateError;
use crate::http::body::{Body, empty, full};
use crate::text::Text;

const CSS: &str = include_str!("../../static/otpgate.css");
const JS: &str = include_str!("../../static/otpgate.js");

/// CSP for gateway pages: only our own script, style and status polls, no framing
/// (clickjacking), forms post only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct Notice {
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            text: text.into(),
        }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage<'a> {
    pub t: &'a Text,
    pub app: &'a str,
    pub notice: Option<Notice>,
    /// "Code sent to ***5678."
    pub sent_to: Option<String>,
    pub code_alive: bool,
    pub invalid: bool,
    pub csrf: &'a str,
    pub rd: &'a str,
    /// The forms' addresses, `rd` in their query (see `routes::endpoint_url`).
    pub verify_action: String,
    pub resend_action: String,
    pub length: u32,
    /// Seconds until a resend is allowed (the cooldown, or the limit that
    /// refused this request).
    pub wait: u64,
    /// The resend line for a wait too long to count down in seconds.
    pub resend_later: Option<String>,
    /// A limit, not the cooldown, holds resends back: the status poll's
    /// `resend_in` (the cooldown) must not end the wait early.
    pub held: bool,
    /// Where the latest message stands, in words ("" before any).
    pub delivery: String,
    /// The same, for the script: `Progress::as_str` or "none".
    pub progress: &'static str,
    pub show_alternatives: bool,
    pub alternatives: Vec<Alternative>,
}

/// A channel the user may ask the code to come by.
pub struct Alternative {
    pub channel: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub t: &'a Text,
    pub app: Option<&'a str>,
    pub title: &'a str,
    pub message: &'a str,
    pub back: &'a str,
    pub back_label: &'a str,
    /// The request's id, for the user to quote (error pages).
    pub reference: Option<&'a str>,
}

/// Where an error page's one link leads, and what it says.
pub struct Back {
    pub href: String,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "sandbox.html")]
pub struct SandboxPage<'a> {
    pub t: &'a Text,
    pub messages: Vec<SandboxMessage>,
}

/// Renders a page with the gateway's security headers.
pub fn html(status: StatusCode, page: &impl Template) -> Response<Body> {
    match page.render() {
        Ok(text) => with_headers(status, "text/html; charset=utf-8", text),
        Err(e) => {
            tracing::error!(error = %e, "page template failed to render");
            with_headers(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "internal error".into(),
            )
        }
    }
}

/// A gateway error as a page with one way back (for a browser showing the
/// answer as a document), or as JSON (for everything else).
pub fn error(t: &Text, err: &GateError, page: Option<&Back>, request_id: &str) -> Response<Body> {
    let status = err.status();
    let message = err.public_message();
    if let Some(back) = page {
        html(
            status,
            &MessagePage {
                t,
                app: None,
                title: t.error_title,
                message: &message,
                back: &back.href,
                back_label: back.label,
                reference: Some(request_id).filter(|r| !r.is_empty()),
            },
        )
    } else {
        let body = serde_json::json!({ "error": err.code(), "message": message, "request_id": request_id });
        with_headers(status, "application/json", body.to_string())
    }
}

/// Logged in, no second factor yet: browsers are sent to the code page;
/// anything else (XHR, POST, API clients) gets a 401 it can act on, so no
/// request body is ever silently dropped by a redirect. A `stale_proof`
/// (a proof for another user than the app names now) is removed with it.
pub fn second_factor_required(
    navigation: bool,
    verify_url: &str,
    stale_proof: bool,
    https: bool,
) -> Response<Body> {
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
        let mut res = json(StatusCode::UNAUTHORIZED, &body);
        // RFC 9110 §15.5.2: a 401 carries a challenge.
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("otpgate realm=\"second factor\""),
        );
        res
    };
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if stale_proof {
        let removal = crate::gate::factor::removal(crate::names::FACTOR_COOKIE, https);
        if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
            res.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    res
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    with_headers(status, "application/json", value.to_string())
}

/// The static assets under `/.otpgate/static/`.
pub fn asset(name: &str) -> Option<Response<Body>> {
    let (kind, text) = match name {
        "otpgate.css" => ("text/css; charset=utf-8", CSS),
        "otpgate.js" => ("text/javascript; charset=utf-8", JS),
        _ => return None,
    };
    let mut res = with_headers(StatusCode::OK, kind, text.to_string());
    res.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Some(res)
}

fn with_headers(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Codes and session-specific pages must never be cached by a shared cache or the browser.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // `same-origin`: links and forms to other sites get no Referer, so the
    // `rd` path in the page's address stays here; our own form posts keep
    // their real `Origin`. With `no-referrer` the Fetch standard ("append a
    // request `Origin` header") makes every form post say `Origin: null`.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}
