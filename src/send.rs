//! Sending a code: the rate limits, the code store and the provider, in
//! the one order that keeps them consistent (reserve a slot, issue, send;
//! on failure give both back), and the OTP event log lines.

use crate::headers::ClientView;
use crate::limits::Limited;
use crate::otp::{self, Code};
use crate::phone::Number;
use crate::sms::{self, OutgoingSms, SendError};
use crate::state::{App, State};

pub enum Mode {
    /// Send a code only if none is alive (arriving at the page).
    IfNone,
    /// Send this live code again.
    Same(Code),
    /// Replace whatever there was with a new code.
    New,
}

/// Where the code being sent comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Issued just now because none was alive; stored before sending, so
    /// that two tabs opening the page at once send one code.
    First,
    /// The live code, sent again.
    Again,
    /// A new code to replace the live one; stored only once it is sent.
    Replacement,
}

pub enum Outcome {
    Sent(Code),
    /// The provider did not answer in time: the message may still arrive,
    /// so the code stays alive and the send counts against the limits
    /// (retrying at once could flood the phone, and the bill).
    Uncertain(Code),
    AlreadyAlive,
    Limited(Limited),
    Failed,
}

pub async fn code(
    state: &State,
    app: &App,
    view: &ClientView,
    user: &str,
    pending: &[u8; 32],
    number: &Number,
    mode: Mode,
) -> Outcome {
    let masked = number.masked();
    let number_id = state.keys.phone.of(&[number.as_str().as_bytes()]);
    let by_address = state.abuse.allow_send(&state.ip_key(view.ip));
    let reservation = match by_address
        .and_then(|()| state.pumping.check(number))
        .and_then(|()| state.limiter.reserve(&number_id))
    {
        Ok(r) => r,
        Err(limited) => {
            tracing::info!(
                event = "rate_limited", app = %app.cfg.name, user, phone = %masked, client_ip = %view.ip,
                window = ?limited.window, wait_s = limited.wait.as_secs(), "send refused by rate limit"
            );
            return Outcome::Limited(limited);
        }
    };
    let (code, kind) = match mode {
        Mode::Same(code) => (code, Kind::Again),
        Mode::New => (otp::generate(state.otp.length()), Kind::Replacement),
        Mode::IfNone => match state.otp.issue_if_none(pending) {
            Some(code) => (code, Kind::First),
            None => {
                state.limiter.release(&number_id, reservation);
                return Outcome::AlreadyAlive;
            }
        },
    };
    let o = &state.settings.otp;
    let host = view.hostname();
    let origin = o.origin_bound.then_some(host.as_str());
    let body = sms::render_body(&o.message, &app.cfg.name, code.as_str(), o.ttl, origin);
    let sms = OutgoingSms {
        to: number.as_str().to_string(),
        from: state.settings.sms.from.clone(),
        body,
        code: code.clone(),
    };
    let outcome = match state.provider.send(&sms).await {
        Ok(receipt) => {
            if kind == Kind::Replacement {
                state.otp.install(pending, &code);
            }
            if let Some(id) = &receipt.message_id {
                state.otp.record_message_id(pending, &code, id);
            }
            tracing::info!(
                event = if kind == Kind::Again { "otp.resent" } else { "otp.sent" }, app = %app.cfg.name, user, phone = %masked,
                client_ip = %view.ip, provider = state.provider.name(), message_id = receipt.message_id.as_deref().unwrap_or("-"),
                "code sent"
            );
            Outcome::Sent(code)
        }
        Err(SendError::Timeout) => {
            if kind == Kind::Replacement {
                state.otp.install(pending, &code);
            }
            tracing::warn!(
                event = "otp.send_uncertain", app = %app.cfg.name, user, phone = %masked, client_ip = %view.ip,
                provider = state.provider.name(), "the provider did not answer in time; the code may still arrive"
            );
            Outcome::Uncertain(code)
        }
        Err(e) => {
            // The provider refused or could not be reached: nothing was sent.
            // A first code is dropped, so the next visit sends one; a resent
            // code stays alive (the first message may still arrive); a
            // replacement was never installed. The slot is given back.
            if kind == Kind::First {
                state.otp.abandon(pending, &code);
            }
            state.limiter.release(&number_id, reservation);
            tracing::error!(
                event = "otp.send_error", app = %app.cfg.name, user, phone = %masked, client_ip = %view.ip,
                provider = state.provider.name(), error = %e, "code could not be sent"
            );
            Outcome::Failed
        }
    };
    // Sent or maybe sent: either way it counts for the pumping guard.
    if matches!(outcome, Outcome::Sent(_) | Outcome::Uncertain(_)) {
        state.pumping.record_send(number);
    }
    outcome
}

/// One log line per verification event; never the code, never the number.
pub fn log_event(event: &'static str, app: &App, user: &str, masked: &str, view: &ClientView) {
    tracing::info!(event, app = %app.cfg.name, user, phone = %masked, client_ip = %view.ip, "code checked");
}
