//! The audit log's record of each event: which events it keeps and the
//! JSON fields and values of each (README, "`[audit]`", lists them).

use std::borrow::Cow;

use crate::config::PumpingMode;
use crate::delivery::sms::{SendError, printable};
use crate::events::audit::{Audit, Record};

use crate::events::{OtpEvent, Scope, Sink, Who};

impl Sink for Audit {
    fn take(&self, who: &Who<'_>, event: &OtpEvent<'_>) {
        // Nothing is built while the audit log is off.
        if !self.is_on() {
            return;
        }
        if let Some(record) = record(who, event) {
            self.emit(|| record);
        }
    }
}

/// The record of `event`, or none for the events the audit log leaves to
/// the process log (operational ones, with nobody to investigate).
pub(crate) fn record(who: &Who<'_>, event: &OtpEvent<'_>) -> Option<Record> {
    let text = |s: &'static str| Some(Cow::Borrowed(s));
    let mut r = Record {
        app: who.app.map(str::to_string),
        user: who.user.map(str::to_string),
        phone: who.masked(event),
        phone_hash: who.number_hash(),
        client_ip: who.client_ip(),
        user_agent: who.user_agent(),
        request_id: who.request_id.map(str::to_string),
        ..Record::new(event.name())
    };
    match *event {
        OtpEvent::Sent {
            channel,
            provider,
            message_id,
            ..
        } => {
            r.channel = text(channel.as_str());
            r.provider = text(provider);
            r.message_id = message_id.map(str::to_string);
            r.outcome = text("accepted");
        }
        OtpEvent::SendUncertain { channel, provider } => {
            r.channel = text(channel.as_str());
            r.provider = text(provider);
            r.outcome = text("uncertain");
            r.reason = text("the provider did not answer in time; the message may still arrive");
        }
        OtpEvent::SendError {
            channel,
            provider,
            error,
            ..
        } => {
            r.channel = text(channel.as_str());
            r.provider = text(provider);
            r.outcome = text("error");
            // Coarse on purpose: the provider's own words could quote the number.
            (r.reason, r.error_code) = match error {
                SendError::Network(_) => (text("the provider could not be reached"), None),
                SendError::Timeout => (text("the provider did not answer in time"), None),
                SendError::Rejected { status, .. } => (
                    text("the provider refused the message"),
                    Some(format!("http_{status}")),
                ),
                SendError::BadAnswer(_) => (text("the provider's answer could not be read"), None),
                SendError::NoProvider(_) => {
                    (text("no configured provider carries this channel"), None)
                }
            };
        }
        OtpEvent::SendLimited(l) | OtpEvent::CheckLimited(l) => {
            r.outcome = text(match event {
                OtpEvent::SendLimited(_) => "send_refused",
                _ => "check_refused",
            });
            r.window = Some(l.window.as_str());
            r.retry_after_s = Some(l.wait_secs());
        }
        OtpEvent::Failed { attempts_left } => r.attempts_left = Some(attempts_left),
        OtpEvent::CodeLocked => r.reason = text("code_attempts"),
        OtpEvent::AccountLocked => r.reason = text("account_failures"),
        OtpEvent::CountryRefused => r.reason = text("country_not_allowed"),
        OtpEvent::Verified | OtpEvent::Expired => {}
        OtpEvent::Delivery {
            provider,
            channel,
            status,
            message_id,
            error_code,
            ..
        } => {
            r.channel = text(channel.as_str());
            r.provider = text(provider);
            r.message_id = Some(printable(message_id));
            r.status = Some(status.as_str().to_string());
            r.error_code = error_code.map(printable);
        }
        OtpEvent::Quarantine {
            scope,
            key,
            why,
            mode,
            ..
        } => {
            (r.country, r.prefix) = match scope {
                Scope::Country => (Some(key.to_string()), None),
                Scope::Prefix => (None, Some(key.to_string())),
            };
            r.reason = Some(Cow::Owned(why.to_string()));
            r.outcome = text(match mode {
                PumpingMode::Enforce => "quarantined",
                _ => "monitor_only",
            });
        }
        OtpEvent::QuarantineLifted { key } => {
            // Prefixes are E.164 (`+234803123`), countries region codes (`NG`).
            (r.country, r.prefix) = if key.starts_with('+') {
                (None, Some(key.to_string()))
            } else {
                (Some(key.to_string()), None)
            };
            r.outcome = text("lifted_by_admin");
        }
        OtpEvent::Unlocked => r.outcome = text("lifted_by_admin"),
        OtpEvent::NoPhone { .. }
        | OtpEvent::Failover { .. }
        | OtpEvent::FallbackUnreadable
        | OtpEvent::PumpingRefused { .. }
        | OtpEvent::CountryCap { .. } => return None,
    }
    Some(r)
}
