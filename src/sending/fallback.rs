//! The WhatsApp→SMS fallback, sent by the gateway itself (the provider
//! guide: WhatsApp first, and SMS if it is not delivered within 10 s).
//! Mobile browsers suspend timers in background tabs, and a user waiting
//! for a WhatsApp message has switched to WhatsApp, so the page cannot be
//! what sends it: the server does, whether or not a page is open.
//!
//! At send time the code, the number and who asked are sealed (AES-256-GCM
//! under the at-rest key derived from the server secret, `keys`) and kept
//! with the code's delivery record; nothing of it is in plain text at rest
//! or ever logged. A timer task per WhatsApp-first code sleeps until
//! `fallback_after` (or the code's end, if sooner); a `failed` report comes
//! here at once. Both, and the page's "send by SMS" button, go through
//! `Deliveries::take_fallback`, the one atomic claim, so however many race,
//! one SMS goes out; and through [`send`], the one way a claimed fallback
//! is sent (limits, audit record, delivery record: `sending::code`). The
//! sealed send is dropped when claimed, when the first message is
//! delivered, and when the code dies.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;

use crate::config::Channel;
use crate::events::{OtpEvent, Who};
use crate::http::headers::ClientView;
use crate::otp::{self, Code};
use crate::phone::Number;
use crate::sending::{self, Mode, Outcome, Pick, Recipient};
use crate::state::{App, State};

/// The associated data of a sealed fallback: it opens as nothing else.
const PURPOSE: &str = "otpgate fallback";

/// Who claimed a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The page's button for the fallback's channel, with the user's
    /// sealed cookie: if the send fails, the page may ask again.
    Page,
    /// The gateway's own timer or a `failed` report: tried once; a failure
    /// is logged and the page offers the other channels.
    Gateway,
}

/// What the gateway keeps (sealed) to send the fallback later by itself:
/// everything the request that sent the first message knew, so any gateway
/// with the same secret can send it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    app: String,
    user: String,
    number: String,
    code: String,
    ip: IpAddr,
    https: bool,
    host: String,
    user_agent: Option<String>,
    /// The id of the request that sent the first message (absent in
    /// fallbacks sealed before ids were kept).
    #[serde(default)]
    request_id: String,
}

/// Seals the send of `code` to `to` for later.
pub fn seal(
    state: &State,
    app: &App,
    view: &ClientView,
    to: &Recipient<'_>,
    code: &Code,
) -> String {
    let kept = Kept {
        app: app.cfg.name.clone(),
        user: to.user.to_string(),
        number: to.number.as_str().to_string(),
        code: code.as_str().to_string(),
        ip: view.ip,
        https: view.https,
        host: view.host.clone(),
        user_agent: view
            .user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        request_id: view.request_id.to_str().unwrap_or("").to_string(),
    };
    let plain = serde_json::to_string(&kept).expect("plain fields serialise");
    state.keys.seal_at_rest(PURPOSE, plain)
}

/// Starts the timer of a WhatsApp-first code whose record is `generation`:
/// at `fallback_after` (or when the code ends, if sooner) the gateway sends
/// the due fallback itself.
pub fn arm(state: &Arc<State>, pending: [u8; 32], generation: u64) {
    let mut stopped = state.timers.subscribe();
    if *stopped.borrow() {
        return;
    }
    let state = Arc::clone(state);
    let wait = state
        .settings
        .sms
        .fallback_after
        .min(state.settings.otp.ttl);
    // The store's clock, so that the record's due time and the timer agree
    // (and a test moves one clock for both).
    let due = state
        .clock
        .sleep_until(state.clock.now_ms() + crate::store::ms(wait));
    tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        tokio::select! {
            () = due => send_due(&state, &pending, Some(generation)).await,
            () = stop => {}
        }
    });
}

/// A `failed` report for a first message: the fallback is due at once.
/// Sent from a task of its own, so the provider gets its answer at once.
pub fn on_failure(state: &Arc<State>, pending: [u8; 32], generation: u64) {
    if state.timers.stopped() {
        return;
    }
    let state = Arc::clone(state);
    tokio::spawn(async move { send_due(&state, &pending, Some(generation)).await });
}

/// Sends the fallback of `pending`'s record if it is due and nobody has
/// claimed it; when the code has died meanwhile, drops the sealed send.
async fn send_due(state: &Arc<State>, pending: &[u8; 32], generation: Option<u64>) {
    let Some(claim) = state.deliveries.take_fallback(pending, generation).await else {
        if state.otp.status(pending).await != otp::Status::Alive {
            state.deliveries.code_died(pending, generation).await;
        }
        return;
    };
    let Some(sealed) = claim.sealed else {
        // A page claimed it before and failed: its button may ask again.
        state
            .deliveries
            .restore_fallback(pending, claim.channel)
            .await;
        return;
    };
    let Some(kept) = state
        .keys
        .open_at_rest(PURPOSE, &sealed)
        .and_then(|plain| serde_json::from_str::<Kept>(&plain).ok())
    else {
        state
            .events
            .emit(&Who::nobody(), OtpEvent::FallbackUnreadable);
        return;
    };
    let code = Code::opened(kept.code);
    // A code verified, locked or replaced meanwhile needs no fallback; a
    // locked account gets no message at all.
    if !state.otp.is_alive_code(pending, &code).await
        || state.abuse.account_locked(pending).await.is_some()
    {
        return;
    }
    let (Some(app), Ok(number)) = (
        state.apps.iter().find(|a| a.cfg.name == kept.app),
        Number::parse(&kept.number),
    ) else {
        return;
    };
    let mut view = ClientView::restored(
        kept.ip,
        kept.https,
        kept.host,
        kept.user_agent.and_then(|v| HeaderValue::from_str(&v).ok()),
    );
    // Its events name the request that sent the first message.
    if let Ok(id) = HeaderValue::from_str(&kept.request_id) {
        view.request_id = id;
    }
    let to = Recipient {
        user: &kept.user,
        pending,
        number: &number,
    };
    send(state, app, &view, &to, code, claim.channel, By::Gateway).await;
}

/// Sends the live `code` over a claimed fallback `channel`: the one way a
/// fallback goes out, whoever claimed it. The cooldown does not hold it up;
/// the other limits do, and it is audited as `delivery.fallback`.
pub async fn send(
    state: &Arc<State>,
    app: &App,
    view: &ClientView,
    to: &Recipient<'_>,
    code: Code,
    channel: Channel,
    by: By,
) -> Outcome {
    let outcome = sending::code(
        state,
        app,
        view,
        to,
        Mode::Same(code),
        Pick::Fallback(channel),
    )
    .await;
    // Nothing went out: the page may ask again. An uncertain send keeps it
    // taken (the message may still arrive).
    if by == By::Page && !matches!(outcome, Outcome::Sent(..) | Outcome::Uncertain(_)) {
        state.deliveries.restore_fallback(to.pending, channel).await;
    }
    outcome
}
