//! `POST /.otpgate/resend`: the same live code again (by the preferred
//! channels, or the one the user picked), or a new one when none is alive.
//! Picking the channel of a due WhatsApp→SMS fallback claims that fallback,
//! so the gateway's own timer then sends nothing more.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::config::Channel;
use crate::error::GateError;
use crate::events::OtpEvent;
use crate::http::body::Body;
use crate::http::cookies;
use crate::http::headers::ClientView;
use crate::otp;
use crate::sending::fallback::{self, By};
use crate::sending::{self, Outcome};
use crate::state::{App, State};

use super::page::{after_send, no_phone, page_ctx, usable_number};
use super::{Post, Posted, posted, see_other, set_cookie, verify_url};

pub(super) async fn resend(
    state: &Arc<State>,
    app: &App,
    view: &ClientView,
    req: Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    let Post {
        req,
        form,
        rd,
        user,
        ..
    } = match posted(state, app, view, req).await? {
        Posted::Done(res) => return Ok(res),
        Posted::By(post) => *post,
    };
    // Pages whose script still asks for the fallback (`fallback=1`, cached
    // from before the gateway sent it itself) get the code page: the
    // gateway sends it, and such a post must never send anything.
    if form.contains_key("fallback") {
        return Ok(see_other(&verify_url(&rd)));
    }
    let Some(number) = usable_number(state, app, view, &user) else {
        return Ok(no_phone(state, app));
    };
    let page = page_ctx(state, app, &rd, &user, &number);
    // A locked account gets no code at all until the lock ends.
    if let Some(locked) = state.abuse.account_locked(&user.pending).await {
        let who = page.who(&user, &number, view);
        state.events.emit(&who, OtpEvent::SendLimited(locked));
        return Ok(page.limited(locked).await);
    }
    let requested = match form.get("channel") {
        None => None,
        Some(c) => Some(
            Channel::parse(c)
                .filter(|c| page.channels.contains(c))
                .ok_or(GateError::BadRequest(
                    "that channel is not offered for this phone number",
                ))?,
        ),
    };
    // While the code is alive the same code goes out again, so a late SMS still works.
    let same = match cookies::get(req.headers(), crate::names::PENDING_COOKIE)
        .and_then(|v| otp::unseal(&state.keys, v))
    {
        Some(code) if state.otp.is_alive_code(&user.pending, &code).await => Some(code),
        _ => None,
    };
    // Asking by hand for the channel of a due fallback is that fallback:
    // claimed here, it is not sent again by the gateway's timer.
    let due = state
        .deliveries
        .view(&user.pending)
        .await
        .and_then(|v| v.fallback_due);
    let fallback = match (due, &same) {
        (Some(due), Some(_)) if requested == Some(due) => state
            .deliveries
            .take_fallback(&user.pending, None)
            .await
            .map(|claim| claim.channel),
        _ => None,
    };
    let recipient = user.recipient(&number);
    let outcome = match (fallback, same) {
        (Some(channel), Some(code)) => {
            fallback::send(state, app, view, &recipient, code, channel, By::Page).await
        }
        (_, same) => {
            let pick = match requested {
                Some(c) => sending::Pick::Only(c),
                None => sending::Pick::Preferred,
            };
            let mode = match same {
                Some(code) => sending::Mode::Same(code),
                None => sending::Mode::New,
            };
            sending::code(state, app, view, &recipient, mode, pick).await
        }
    };
    if let Outcome::Sent(code, _) = &outcome {
        let mut res = see_other(&format!("{}&m=resent", verify_url(&rd)));
        set_cookie(
            &mut res,
            &otp::seal(&state.keys, code, state.settings.otp.ttl, view.https),
        );
        return Ok(res);
    }
    Ok(after_send(&page, outcome, view).await)
}
