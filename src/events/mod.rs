//! One typed stream of OTP events. The code that sees an event builds one
//! [`OtpEvent`] and hands it, with [`Who`] it is about, to
//! [`Events::emit`]; the sinks make of it what they show: the process log's
//! line ([`log`]), the audit record ([`audit`]) and the counters of
//! [`metrics`] (when `[metrics]` is on).
//!
//! Redaction lives here, once for every sink: a number is shown masked
//! (`***5678`) and as its keyed hash, never whole; the last digits are left
//! out beside a pumping prefix; a user agent is cut to a bound; provider
//! text is cleaned of control characters and long digit runs. No event
//! carries a code or a cookie value at all.
//!
//! Beside the events: the access log ([`access`], one line per request),
//! the queue and writer task it shares with the audit log (`writer`), and
//! the summaries of repeated failures ([`failure_log`]).

pub mod access;
pub mod audit;
pub mod failure_log;
mod log;
pub mod metrics;
#[cfg(test)]
mod tests;
pub(crate) mod writer;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http::HeaderValue;

use crate::config::{Channel, PumpingMode};
use crate::delivery::Status;
use crate::delivery::sms::SendError;
use crate::http::headers::ClientView;
use crate::otp::limits::{Limited, Window};
use crate::phone::Number;

pub use log::Log;

/// Longest user agent kept, in bytes: enough to tell browsers apart, not
/// enough for a client to bloat the log.
const MAX_USER_AGENT: usize = 256;

/// Whether a pumping key is a country or a number prefix: the store's type
/// (the lowest layer), so `pumping` and `events` share it.
pub use crate::store::pumping::Scope;

/// How a code that a provider accepted came to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentKind {
    /// A new code (`otp.sent`).
    First,
    /// The live code again (`otp.resent`).
    Again,
    /// The live code over the next channel after WhatsApp was not
    /// delivered in time (`delivery.fallback`).
    Fallback,
}

/// Everything that happens to a code, to a number's delivery, or to the
/// guards around them, that an operator or an investigator may ask about.
#[derive(Debug)]
pub enum OtpEvent<'a> {
    /// A provider accepted a code.
    Sent {
        kind: SentKind,
        channel: Channel,
        provider: &'static str,
        message_id: Option<&'a str>,
        /// The sender the message went out from (ours, not the user's).
        from: &'a str,
    },
    /// The provider did not answer in time: the message may still arrive.
    SendUncertain {
        channel: Channel,
        provider: &'static str,
    },
    /// The provider refused or could not be reached: nothing was sent by it.
    SendError {
        channel: Channel,
        provider: &'static str,
        error: &'a SendError,
        maybe_sent: bool,
    },
    /// A provider failed and the next one tries the same message.
    Failover {
        channel: Channel,
        from: &'static str,
        to: &'static str,
        error: &'a SendError,
    },
    /// Codes may not go to the number's country.
    CountryRefused,
    /// A send refused by a limit (per number, per address, the account
    /// lock, the pumping guard).
    SendLimited(Limited),
    /// A code check refused by a limit (per address, or the account lock).
    CheckLimited(Limited),
    Verified,
    Failed {
        attempts_left: u32,
    },
    /// The code took its last wrong guess and is dead.
    CodeLocked,
    /// Consecutive wrong codes reached `account_failure_cap`.
    AccountLocked,
    /// A check with no live code: expired, used, replaced or never sent.
    Expired,
    /// The user's number is missing or cannot be used; `why` says which.
    NoPhone {
        why: &'a str,
    },
    /// A provider's status report about a message, as it came (the sinks
    /// clean the provider's text).
    Delivery {
        provider: &'static str,
        channel: Channel,
        status: Status,
        message_id: &'a str,
        error_code: Option<&'a str>,
        error_message: Option<&'a str>,
        /// How long after the provider accepted the message the report
        /// came, when the delivery record knows (the metrics' delivery time).
        after: Option<Duration>,
    },
    /// A sealed fallback did not open: no SMS follows.
    FallbackUnreadable,
    /// A country or prefix was quarantined (or would have been, in
    /// monitor mode).
    Quarantine {
        scope: Scope,
        key: &'a str,
        sends: u32,
        verified: u32,
        why: &'a str,
        lasts: Duration,
        mode: PumpingMode,
    },
    /// A send to a quarantined destination (refused unless in monitor
    /// mode). Not the key: beside a user's masked number elsewhere it
    /// would make the whole number; the quarantine's event names it once.
    PumpingRefused {
        scope: Scope,
        why: &'a str,
        mode: PumpingMode,
    },
    /// A country reached its hourly cap of codes.
    CountryCap {
        country: &'a str,
        sends: u32,
        cap: u32,
        mode: PumpingMode,
    },
    /// An admin lifted a quarantine.
    QuarantineLifted {
        key: &'a str,
    },
    /// An admin lifted an account lock.
    Unlocked,
}

impl OtpEvent<'_> {
    /// The event's name in the audit log (and, but for two, in the log).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sent { kind, .. } => match kind {
                SentKind::First => "otp.sent",
                SentKind::Again => "otp.resent",
                SentKind::Fallback => "delivery.fallback",
            },
            Self::SendUncertain { .. } => "otp.send_uncertain",
            Self::SendError { .. } => "otp.send_error",
            Self::Failover { .. } => "delivery.failover",
            Self::CountryRefused => "otp.country_refused",
            Self::SendLimited(_) | Self::CheckLimited(_) => "rate_limited",
            Self::Verified => "otp.verified",
            Self::Failed { .. } => "otp.failed",
            Self::CodeLocked | Self::AccountLocked => "otp.locked",
            Self::Expired => "otp.expired",
            Self::NoPhone { .. } => "otp.no_phone",
            Self::Delivery { status, .. } => match status {
                Status::Queued => "delivery.queued",
                Status::Sent => "delivery.sent",
                Status::Delivered => "delivery.delivered",
                Status::Failed => "delivery.failed",
            },
            Self::FallbackUnreadable => "delivery.fallback_unreadable",
            Self::Quarantine { .. } => "pumping.quarantine",
            Self::PumpingRefused { .. } => "pumping.refused",
            Self::CountryCap { .. } => "pumping.country_cap",
            Self::QuarantineLifted { .. } => "pumping.lifted",
            Self::Unlocked => "otp.unlocked",
        }
    }

    /// Whether the event names a number's prefix, beside which the last
    /// digits of the masked number would make the whole number.
    fn names_prefix(&self) -> bool {
        matches!(self, Self::SendLimited(l) | Self::CheckLimited(l) if l.window == Window::Pumping)
    }
}

/// Who an event is about and where the request came from, as far as the
/// code that saw it knows; the constructors say which combinations occur.
#[derive(Clone, Copy, Default)]
pub struct Who<'a> {
    pub app: Option<&'a str>,
    pub user: Option<&'a str>,
    pub number: Option<&'a Number>,
    /// The keyed hash of the full number (`state.number_id`), which the
    /// per-number limits already computed.
    pub number_id: Option<&'a [u8; 32]>,
    pub view: Option<&'a ClientView>,
    /// The id of the request the event happened in (`ClientView::request_id`,
    /// or a provider's webhook call), tying its log line and record to
    /// that request's other lines and its access log line.
    pub request_id: Option<&'a str>,
}

impl<'a> Who<'a> {
    /// A user and their number, at a request (or the one a sealed fallback
    /// restored).
    pub fn subject(
        app: &'a str,
        user: &'a str,
        number: &'a Number,
        number_id: &'a [u8; 32],
        view: &'a ClientView,
    ) -> Self {
        Self {
            app: Some(app),
            user: Some(user),
            number: Some(number),
            number_id: Some(number_id),
            view: Some(view),
            request_id: request_id_of(view),
        }
    }

    /// A user at a request, without a usable number.
    pub fn user(app: &'a str, user: &'a str, view: &'a ClientView) -> Self {
        Self {
            app: Some(app),
            user: Some(user),
            view: Some(view),
            request_id: request_id_of(view),
            ..Self::default()
        }
    }

    /// An account an admin named.
    pub fn account(app: &'a str, user: &'a str) -> Self {
        Self {
            app: Some(app),
            user: Some(user),
            ..Self::default()
        }
    }

    /// A number known only by its keyed hash (a provider's report).
    pub fn number(number_id: &'a [u8; 32]) -> Self {
        Self {
            number_id: Some(number_id),
            ..Self::default()
        }
    }

    /// Nobody in particular: a country, a prefix, the gateway itself.
    pub fn nobody() -> Self {
        Self::default()
    }

    /// The same, in the request with id `request_id` (empty: none).
    pub fn in_request(self, request_id: &'a HeaderValue) -> Self {
        Self {
            request_id: id_text(request_id),
            ..self
        }
    }

    /// The masked number, `***5678`, unless `event` names the number's prefix.
    fn masked(&self, event: &OtpEvent<'_>) -> Option<String> {
        self.number
            .filter(|_| !event.names_prefix())
            .map(Number::masked)
    }

    /// Hex of the keyed hash of the full number.
    fn number_hash(&self) -> Option<String> {
        self.number_id.map(|id| crate::keys::hex(id))
    }

    fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.view.map(|v| v.ip)
    }

    fn user_agent(&self) -> Option<String> {
        self.view?.user_agent.as_ref().map(bounded_agent)
    }
}

/// The request id of a view, unless it has none.
fn request_id_of(view: &ClientView) -> Option<&str> {
    id_text(&view.request_id)
}

/// A request id as text: ours are hex and '-', a trusted proxy's visible
/// ASCII (`request_id`), so every id is text; an empty one is none.
fn id_text(id: &HeaderValue) -> Option<&str> {
    id.to_str().ok().filter(|s| !s.is_empty())
}

/// The user agent as text, cut to [`MAX_USER_AGENT`] bytes; bytes that are
/// not UTF-8 become U+FFFD. JSON encoding escapes the rest.
fn bounded_agent(v: &HeaderValue) -> String {
    let bytes = v.as_bytes();
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_USER_AGENT)]).into_owned()
}

/// Where events go: each sink sees every event, synchronously, on the
/// thread that emits it (so a log line keeps the request's span). A sink
/// must not block: the audit sink only queues.
pub trait Sink: Send + Sync {
    fn take(&self, who: &Who<'_>, event: &OtpEvent<'_>);
}

/// The sinks every event goes to; cheap to clone.
#[derive(Clone)]
pub struct Events {
    sinks: Arc<[Arc<dyn Sink>]>,
}

/// The log alone: until the gateway opens the audit log, and in tests.
impl Default for Events {
    fn default() -> Self {
        Self::new(vec![Arc::new(Log)])
    }
}

impl Events {
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Self {
            sinks: sinks.into(),
        }
    }

    /// The gateway's sinks: the log line, the audit record (a no-op while
    /// the audit log is off), and the metrics when they are on.
    pub fn standard(
        audit: &crate::events::audit::Audit,
        metrics: Option<&Arc<metrics::Metrics>>,
    ) -> Self {
        let mut sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(Log), Arc::new(audit.clone())];
        if let Some(m) = metrics {
            sinks.push(m.clone());
        }
        Self::new(sinks)
    }

    /// The log alone, for parts that may emit before the gateway has
    /// given them its sinks.
    pub fn log_only() -> &'static Events {
        static LOG_ONLY: LazyLock<Events> = LazyLock::new(Events::default);
        &LOG_ONLY
    }

    /// Hands one event to every sink.
    pub fn emit(&self, who: &Who<'_>, event: OtpEvent<'_>) {
        for sink in self.sinks.iter() {
            sink.take(who, &event);
        }
    }
}
