//! The process log's line of each event: its level, its `event` name and
//! fields, and its words. Operators grep these (`event="otp.sent"`), so a
//! name or a field changes here or not at all.

use tracing::field::{DisplayValue, display};

use crate::config::PumpingMode;
use crate::delivery::Status;
use crate::delivery::sms::{loggable, printable};

use super::{OtpEvent, Sink, Who};

/// Writes each event as one `tracing` line.
pub struct Log;

/// The fields every line starts with, when known; a user name is quoted
/// (escaped), so a name with a line break cannot forge a line.
struct Common<'a> {
    app: Option<DisplayValue<&'a str>>,
    user: Option<&'a str>,
    phone: Option<DisplayValue<String>>,
    client_ip: Option<DisplayValue<std::net::IpAddr>>,
    request_id: Option<&'a str>,
}

/// One line at `$level` with the common fields, then the event's own.
macro_rules! log_line {
    ($level:ident, $name:expr, $c:expr, $($rest:tt)*) => {
        tracing::$level!(
            event = $name, app = $c.app, user = $c.user, phone = $c.phone, client_ip = $c.client_ip,
            request_id = $c.request_id, $($rest)*
        )
    };
}

impl Sink for Log {
    fn take(&self, who: &Who<'_>, event: &OtpEvent<'_>) {
        let c = Common {
            app: who.app.map(display),
            user: who.user,
            phone: who.masked(event).map(display),
            client_ip: who.client_ip().map(display),
            request_id: who.request_id,
        };
        let name = event.name();
        match *event {
            OtpEvent::Sent {
                channel,
                provider,
                message_id,
                from,
                ..
            } => log_line!(
                info, name, c, channel = channel.as_str(), from = %from, provider,
                message_id = message_id.unwrap_or("-"), "code sent"
            ),
            OtpEvent::SendUncertain { channel, provider } => log_line!(
                warn,
                name,
                c,
                channel = channel.as_str(),
                provider,
                "the provider did not answer in time; the code may still arrive"
            ),
            OtpEvent::SendError {
                channel,
                provider,
                error,
                maybe_sent,
            } => log_line!(
                error, name, c, channel = channel.as_str(), provider, error = %error, maybe_sent,
                "code could not be sent"
            ),
            OtpEvent::Failover {
                channel,
                from,
                to,
                error,
            } => log_line!(
                warn, name, c, from, to, channel = channel.as_str(), error = %error,
                "provider failed; trying the next one"
            ),
            OtpEvent::CountryRefused => log_line!(
                warn,
                name,
                c,
                country = who.number.map(|n| n.country_code()),
                "codes may not be sent to this country (sms.allowed_countries / sms.denied_countries)"
            ),
            OtpEvent::SendLimited(l) => log_line!(
                info, name, c, window = ?l.window, wait_s = l.wait.as_secs(),
                "send refused by rate limit"
            ),
            OtpEvent::CheckLimited(l) => {
                // A check refused by the account lock has always been
                // logged under the lock's name.
                let name = match l.window {
                    crate::otp::limits::Window::Account => "otp.account_locked",
                    _ => name,
                };
                log_line!(
                    info, name, c, window = ?l.window, wait_s = l.wait.as_secs(),
                    "code check refused by rate limit"
                )
            }
            OtpEvent::Verified | OtpEvent::CodeLocked | OtpEvent::Expired => {
                log_line!(info, name, c, "code checked")
            }
            OtpEvent::Failed { attempts_left } => {
                log_line!(info, name, c, attempts_left, "code checked")
            }
            OtpEvent::AccountLocked => log_line!(
                warn,
                "otp.account_locked",
                c,
                "too many consecutive wrong codes: account locked"
            ),
            OtpEvent::NoPhone { why } => log_line!(
                error,
                name,
                c,
                "the user's phone number {why}; fix it in the app or in users_file"
            ),
            OtpEvent::Delivery {
                provider,
                channel,
                status,
                message_id,
                error_code,
                error_message,
                ..
            } => {
                let (channel, message_id) = (channel.as_str(), printable(message_id));
                if status == Status::Failed {
                    let code = printable(error_code.unwrap_or("-"));
                    let error = loggable(error_message.unwrap_or(""));
                    log_line!(
                        warn, name, c, provider, channel, message_id = %message_id,
                        error_code = %code, error = %error, "message not delivered"
                    )
                } else {
                    log_line!(info, name, c, provider, channel, message_id = %message_id, "delivery status")
                }
            }
            OtpEvent::FallbackUnreadable => log_line!(
                error,
                name,
                c,
                "a sealed fallback did not open (was the secret file replaced?); no SMS follows"
            ),
            OtpEvent::Quarantine {
                scope,
                key,
                sends,
                verified,
                why,
                lasts,
                mode,
            } => log_line!(
                warn, name, c, scope = ?scope, key, sends, verified, quarantine_s = lasts.as_secs(),
                mode = ?mode, "{}possible SMS pumping: {why}", monitor_only(mode)
            ),
            OtpEvent::PumpingRefused { scope, why, mode } => log_line!(
                info, name, c, scope = ?scope, mode = ?mode, why = %why,
                "send to a quarantined destination"
            ),
            OtpEvent::CountryCap {
                country,
                sends,
                cap,
                mode,
            } => log_line!(
                warn, name, c, country, sends, cap, mode = ?mode,
                "{}the country has reached its hourly cap of codes", monitor_only(mode)
            ),
            OtpEvent::QuarantineLifted { key } => {
                log_line!(warn, name, c, key, "quarantine lifted by an admin")
            }
            OtpEvent::Unlocked => log_line!(warn, name, c, "account lock lifted by an admin"),
        }
    }
}

/// What a pumping line starts with when nothing was refused.
fn monitor_only(mode: PumpingMode) -> &'static str {
    match mode {
        PumpingMode::Monitor => "monitor mode, nothing refused: ",
        _ => "",
    }
}
