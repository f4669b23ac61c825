//! Delivery-status webhooks: `POST /.otpgate/webhook/{provider}/{token}`.
//! The token is derived from the secret file and compared in constant time;
//! DIDfarm signs nothing, so it is that provider's only authentication.
//! Twilio's callbacks must also carry a valid `X-Twilio-Signature`. Each
//! report is matched to its code by message id; unknown ids are ignored
//! (with a 2xx, or the provider would retry forever).

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::sms::{self, printable};
use crate::delivery::{Status, StatusUpdate};
use crate::error::GateError;
use crate::events::{OtpEvent, Who};
use crate::http::body::{Body, empty};
use crate::state::State;

use crate::names::WEBHOOK_PREFIX as PREFIX;
/// Status reports are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

pub async fn serve(
    state: &Arc<State>,
    req: Request<Incoming>,
    request_id: &http::HeaderValue,
) -> Result<Response<Body>, GateError> {
    let public_url = state
        .settings
        .server
        .public_url
        .as_deref()
        .ok_or(GateError::NotFound)?;
    let rest = &req.uri().path()[PREFIX.len()..];
    let (provider, token) = rest.split_once('/').ok_or(GateError::NotFound)?;
    let provider: &'static str = match provider {
        "didfarm" if state.providers.has("didfarm") => "didfarm",
        "twilio" if state.providers.has("twilio") => "twilio",
        _ => return Err(GateError::NotFound),
    };
    // A wrong token looks like no endpoint at all.
    let expected = state.keys.webhook_token(provider);
    if !bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(GateError::NotFound);
    }
    if req.method() != Method::POST {
        return Err(GateError::MethodNotAllowed);
    }
    let url = format!(
        "{public_url}{}",
        req.uri()
            .path_and_query()
            .map_or(req.uri().path(), |p| p.as_str())
    );
    let (parts, body) = req.into_parts();
    let body = crate::http::body::read_limited(
        body,
        MAX_BODY,
        state.settings.server.body_read_timeout,
        "the body could not be read",
    )
    .await?;
    let update = match provider {
        "twilio" => {
            let params: Vec<(String, String)> =
                form_urlencoded::parse(&body).into_owned().collect();
            let signature = parts
                .headers
                .get("x-twilio-signature")
                .ok_or(GateError::Forbidden(
                    "the X-Twilio-Signature header is missing",
                ))?;
            let twilio = state.providers.twilio().ok_or(GateError::NotFound)?;
            if !twilio.signature_ok(&url, &params, signature.as_bytes()) {
                tracing::warn!(
                    event = "webhook.bad_signature",
                    provider,
                    "a Twilio status callback with a wrong signature was refused; check sms.twilio.auth_token and server.public_url"
                );
                return Err(GateError::Forbidden(
                    "the X-Twilio-Signature does not match",
                ));
            }
            sms::parse_twilio_callback(&params)
        }
        _ => sms::parse_didfarm_webhook(&body)
            .map_err(|_| GateError::BadRequest("the body is not a DIDfarm status event"))?,
    };
    if let Some(update) = update {
        apply(state, provider, &update, request_id).await;
    }
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// Keeps a status with its code, logs it, and on a failure lifts the
/// number's resend cooldown: nobody should wait for a message that will
/// never come (the hourly and daily limits still count it). A failed first
/// WhatsApp message makes the gateway send its SMS fallback at once.
async fn apply(
    state: &Arc<State>,
    provider: &'static str,
    u: &StatusUpdate,
    request_id: &http::HeaderValue,
) {
    let Some(applied) = state.deliveries.update(provider, u).await else {
        tracing::debug!(
            event = "webhook.unknown_message", provider, message_id = %printable(&u.message_id),
            "status for a message this gateway does not know (or no longer remembers); ignored"
        );
        return;
    };
    if applied.stale {
        return;
    }
    // Only the latest message's failure: a late report about an earlier one
    // must not end the cooldown a newer message started.
    if applied.status == Status::Failed && applied.latest {
        state.limiter.lift_cooldown(&applied.number_id).await;
    }
    if applied.status == Status::Failed {
        // Claims it only if this record's fallback is due and unclaimed.
        crate::sending::fallback::on_failure(state, applied.pending, applied.generation);
    }
    let after = (applied.sent_at > 0)
        .then(|| Duration::from_millis(state.clock.now_ms().saturating_sub(applied.sent_at)));
    let report = OtpEvent::Delivery {
        provider,
        channel: applied.channel,
        status: applied.status,
        message_id: &u.message_id,
        error_code: u.error_code.as_deref(),
        error_message: u.error_message.as_deref(),
        after,
    };
    let who = Who::number(&applied.number_id).in_request(request_id);
    state.events.emit(&who, report);
}
