//! Sending a code: the country check, the rate limits, the code store, the
//! channels and providers, in the one order that keeps them consistent
//! (reserve a slot, issue, send; on failure give both back), and the
//! events of each step (`events`).

pub mod fallback;
mod health;

use std::sync::Arc;

use crate::config::Channel;
use crate::delivery::sms::{self, Outgoing};
use crate::delivery::{Fallback, Message, Status};
use crate::events::{OtpEvent, SentKind, Who};
use crate::http::headers::ClientView;
use crate::otp::limits::Limited;
use crate::otp::{self, Code};
use crate::phone::Number;
use crate::state::{App, State};

pub enum Mode {
    /// Send a code only if none is alive (arriving at the page).
    IfNone,
    /// Send this live code again.
    Same(Code),
    /// Replace whatever there was with a new code.
    New,
}

/// Which channels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The number's channels in order of preference; when one refuses the
    /// message outright, the next one tries.
    Preferred,
    /// The one the user chose.
    Only(Channel),
    /// The automatic follow-up of an undelivered message: the cooldown does
    /// not hold it up (the hourly and daily limits do).
    Fallback(Channel),
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
    Sent(Code, Channel),
    /// The provider did not answer in time: the message may still arrive,
    /// so the code stays alive and the send counts against the limits
    /// (retrying at once could flood the phone, and the bill).
    Uncertain(Code),
    AlreadyAlive,
    Limited(Limited),
    /// Codes may not go to the number's country.
    CountryRefused,
    Failed,
}

/// Who a code goes to.
pub struct Recipient<'a> {
    pub user: &'a str,
    /// The pending code's key (app and user).
    pub pending: &'a [u8; 32],
    pub number: &'a Number,
}

pub async fn code(
    state: &Arc<State>,
    app: &App,
    view: &ClientView,
    to: &Recipient<'_>,
    mode: Mode,
    pick: Pick,
) -> Outcome {
    let Recipient {
        user,
        pending,
        number,
    } = *to;
    let sms_cfg = &state.settings.sms;
    let number_id = state.number_id(number);
    let who = Who::subject(&app.cfg.name, user, number, &number_id, view);
    let emit = |event: OtpEvent<'_>| state.events.emit(&who, event);
    if !sms::country_allowed(sms_cfg, number) {
        emit(OtpEvent::CountryRefused);
        return Outcome::CountryRefused;
    }
    let by_address = state
        .abuse
        .allow_send(&state.ip_key(view.ip), pending)
        .await
        .map(|accounts| {
            if !view.peer_trusted && view.forwarded_for {
                state
                    .abuse
                    .note_untrusted_forwarder(view.peer_ip(), accounts);
            }
        });
    let cooldown = !matches!(pick, Pick::Fallback(_));
    let reserved = match by_address {
        Ok(()) => match state.pumping.check(number, &number_id).await {
            Ok(()) => state.limiter.reserve(&number_id, cooldown).await,
            Err(limited) => Err(limited),
        },
        Err(limited) => Err(limited),
    };
    let reservation = match reserved {
        Ok(r) => r,
        Err(limited) => {
            emit(OtpEvent::SendLimited(limited));
            return Outcome::Limited(limited);
        }
    };
    let (code, kind) = match mode {
        Mode::Same(code) => (code, Kind::Again),
        Mode::New => (otp::generate(state.otp.length()), Kind::Replacement),
        Mode::IfNone => match state.otp.issue_if_none(pending).await {
            Some(code) => (code, Kind::First),
            None => {
                state.limiter.release(&number_id, reservation).await;
                return Outcome::AlreadyAlive;
            }
        },
    };
    let preferred = sms::channels_for(sms_cfg, number);
    let chosen;
    let channels: &[Channel] = match pick {
        Pick::Preferred => preferred,
        Pick::Only(c) | Pick::Fallback(c) => {
            chosen = [c];
            &chosen
        }
    };
    let o = &state.settings.otp;
    let host = view.hostname();
    let origin = o.origin_bound.then_some(host.as_str());
    let sent = match (kind, pick) {
        (_, Pick::Fallback(_)) => SentKind::Fallback,
        (Kind::Again, _) => SentKind::Again,
        _ => SentKind::First,
    };
    let mut maybe_sent = None;
    for (i, &channel) in channels.iter().enumerate() {
        let msg = Outgoing {
            channel,
            to: number.as_str().to_string(),
            from: sms::sender_for(sms_cfg, number, channel),
            body: sms::render_body(&o.message, &app.cfg.name, code.as_str(), o.ttl, origin),
            code: code.clone(),
            ttl: o.ttl,
        };
        let failed_over = |f: sms::Failover<'_>| {
            health::note(state, f.from, Err(f.error));
            emit(OtpEvent::Failover {
                channel,
                from: f.from,
                to: f.to,
                error: f.error,
            })
        };
        match state.providers.send(&msg, failed_over).await {
            Ok(accepted) => {
                health::note(state, accepted.provider, Ok(()));
                if kind == Kind::Replacement {
                    state.otp.install(pending, &code).await;
                }
                let message_id = accepted.receipt.message_id.as_deref().map(Arc::from);
                emit(OtpEvent::Sent {
                    kind: sent,
                    channel,
                    provider: accepted.provider,
                    message_id: message_id.as_deref(),
                    from: &msg.from,
                });
                let status = if accepted.receipt.delivered {
                    Status::Delivered
                } else {
                    Status::Queued
                };
                let record = Message::new(
                    accepted.provider,
                    message_id,
                    channel,
                    status,
                    accepted.reports_delivery,
                );
                if kind == Kind::Again {
                    state.deliveries.added(pending, number_id, record).await;
                } else {
                    // WhatsApp first: the next channel follows if it is not
                    // delivered in time, sent by the gateway itself (`fallback`).
                    let fallback = (channel == Channel::Whatsapp && pick == Pick::Preferred)
                        .then(|| channels.get(i + 1).copied())
                        .flatten()
                        .map(|channel| Fallback {
                            channel,
                            sealed: crate::sending::fallback::seal(state, app, view, to, &code),
                        });
                    let armed = fallback.is_some();
                    let generation = state
                        .deliveries
                        .started(pending, number_id, record, fallback)
                        .await;
                    if armed {
                        crate::sending::fallback::arm(state, *pending, generation);
                    }
                    // The pumping guard weighs codes against verified codes:
                    // a resend or a fallback of the same code is not another.
                    state.pumping.record_send(number).await;
                }
                return Outcome::Sent(code, channel);
            }
            Err(failed) => {
                health::note(state, failed.provider, Err(&failed.error));
                emit(OtpEvent::SendError {
                    channel,
                    provider: failed.provider,
                    error: &failed.error,
                    maybe_sent: failed.maybe_sent,
                });
                if failed.maybe_sent {
                    // Another channel now could deliver the code twice.
                    maybe_sent = Some((channel, failed.provider));
                    break;
                }
            }
        }
    }
    if let Some((channel, provider)) = maybe_sent {
        emit(OtpEvent::SendUncertain { channel, provider });
        if kind == Kind::Replacement {
            state.otp.install(pending, &code).await;
        }
        if kind != Kind::Again {
            // The old code's messages no longer speak for the live code.
            let record = Message::new(provider, None, channel, Status::Queued, false);
            state
                .deliveries
                .started(pending, number_id, record, None)
                .await;
            // A new code that may have gone out counts for the pumping guard.
            state.pumping.record_send(number).await;
        }
        return Outcome::Uncertain(code);
    }
    // Nothing was sent. A first code is dropped, so the next visit sends
    // one; a resent code stays alive (the first message may still arrive);
    // a replacement was never installed. The slot is given back.
    if kind == Kind::First {
        state.otp.abandon(pending, &code).await;
    }
    state.limiter.release(&number_id, reservation).await;
    Outcome::Failed
}
