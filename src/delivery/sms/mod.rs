//! Sending the code: the message text, the sender for the destination, and
//! the providers that carry it, tried in failover order.

mod didfarm;
pub mod health;
mod http;
mod sandbox;
mod twilio;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use didfarm::{Didfarm, WebhookError, parse_webhook as parse_didfarm_webhook};
pub use sandbox::{Sandbox, SandboxMessage};
pub use twilio::{Twilio, parse_callback as parse_twilio_callback};

pub use crate::config::Channel;
use crate::config::{ProviderSettings, SmsSettings};
use crate::otp::Code;
use crate::phone::Number;

/// Longest error text from a provider kept for the log.
const DETAIL_MAX: usize = 200;

/// One message to send.
pub struct Outgoing {
    pub channel: Channel,
    pub to: String,
    pub from: String,
    /// The SMS text (WhatsApp sends a template with the code instead).
    pub body: String,
    /// The code inside `body`, so that nothing a provider echoes of it is
    /// logged, and for templates that take it as a variable.
    pub code: Code,
    /// How long the code lives: providers that can, drop the message after
    /// that rather than deliver a dead code.
    pub ttl: Duration,
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    pub message_id: Option<String>,
    /// Already delivered (the sandbox delivers at once).
    pub delivered: bool,
}

/// Why a send failed. None of these carries the message body.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the provider could not be reached: {0}")]
    Network(String),
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider refused the message with HTTP {status}{detail}")]
    Rejected { status: u16, detail: String },
    #[error("the provider accepted the message but its answer could not be read: {0}")]
    BadAnswer(String),
    #[error("no configured provider sends {0} messages")]
    NoProvider(&'static str),
}

impl SendError {
    /// Whether another provider should try: the provider could not be
    /// reached, did not answer or broke (5xx). A 4xx is about the number
    /// or the message and would fail anywhere; an unreadable 2xx may have
    /// been sent, and a second provider would send a second message.
    pub fn try_next(&self) -> bool {
        self.is_outage()
    }

    /// Whether the provider itself is failing (unreachable, too slow, a
    /// 5xx) rather than answering about this message: what the operator's
    /// `provider.failing` lines count.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Network(_) | Self::Timeout => true,
            Self::Rejected { status, .. } => *status >= 500,
            Self::BadAnswer(_) | Self::NoProvider(_) => false,
        }
    }

    /// Whether the message may have gone out anyway.
    pub fn maybe_sent(&self) -> bool {
        matches!(self, Self::Timeout | Self::BadAnswer(_))
    }
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            // Without the URL: it may carry credentials (Twilio's account).
            Self::Network(e.without_url().to_string())
        }
    }
}

type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, SendError>> + Send + 'a>>;

/// One SMS (or WhatsApp) API.
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    fn carries(&self, channel: Channel) -> bool;
    /// Whether it reports delivery (status callbacks are set up).
    fn reports_delivery(&self) -> bool;
    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a>;
}

/// A message accepted by one of the providers.
pub struct Accepted {
    pub receipt: Receipt,
    pub provider: &'static str,
    pub reports_delivery: bool,
}

/// A provider that failed, and the next one that tries (`delivery.failover`).
pub struct Failover<'a> {
    pub from: &'static str,
    pub to: &'static str,
    pub error: &'a SendError,
}

/// A failed send: the last error, and whether any provider may have sent it.
pub struct Failed {
    pub error: SendError,
    pub maybe_sent: bool,
    pub provider: &'static str,
}

/// The configured providers in failover order.
pub struct Providers {
    list: Vec<Box<dyn Provider>>,
    sandbox: Option<Arc<Sandbox>>,
    /// Kept apart to check the signatures on its callbacks.
    twilio: Option<Arc<Twilio>>,
    /// How each one's latest send went (readiness).
    health: health::SendHealth,
}

/// Where a provider's status callbacks go: `{public_url}/.otpgate/webhook/`
/// then the provider's name and the deployment's token.
#[derive(Clone)]
pub struct Callback {
    pub public_url: String,
    /// Each provider's token ([`crate::keys::Keys::webhook_token`]).
    pub tokens: std::collections::HashMap<&'static str, String>,
}

impl Callback {
    pub fn url(&self, provider: &str) -> String {
        let token = self.tokens.get(provider).map_or("", String::as_str);
        format!(
            "{}{}{provider}/{token}",
            self.public_url,
            crate::names::WEBHOOK_PREFIX,
        )
    }
}

impl Providers {
    pub fn new(s: &SmsSettings, callback: Option<&Callback>) -> Result<Self, reqwest::Error> {
        let mut list: Vec<Box<dyn Provider>> = Vec::new();
        let mut sandbox = None;
        let mut twilio = None;
        for p in &s.providers {
            let client = client(s)?;
            match p {
                ProviderSettings::Didfarm(d) => list.push(Box::new(Didfarm::new(
                    d,
                    client,
                    callback.map(|c| c.url("didfarm")),
                ))),
                ProviderSettings::Twilio(t) => {
                    let t = Arc::new(Twilio::new(t, client, callback.map(|c| c.url("twilio"))));
                    twilio = Some(t.clone());
                    list.push(Box::new(t));
                }
                ProviderSettings::Http(h) => list.push(Box::new(http::Generic::new(h, client))),
                ProviderSettings::Sandbox => {
                    let s = Arc::new(Sandbox::default());
                    sandbox = Some(s.clone());
                    list.push(Box::new(s));
                }
            }
        }
        Ok(Self {
            health: health::SendHealth::new(list.len()),
            list,
            sandbox,
            twilio,
        })
    }

    /// Each provider's latest send, in failover order.
    pub fn health(&self) -> Vec<health::ProviderHealth> {
        (self.list.iter().enumerate())
            .map(|(i, p)| {
                let (last, ago) = self.health.of(i);
                health::ProviderHealth {
                    name: p.name(),
                    last,
                    ago,
                }
            })
            .collect()
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_deref()
    }

    pub fn twilio(&self) -> Option<&Twilio> {
        self.twilio.as_deref()
    }

    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|p| p.name() == name)
    }

    /// The providers' names, in failover order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.list.iter().map(|p| p.name())
    }

    /// Sends with the first provider that carries the channel; on a network
    /// error, a timeout or a 5xx the next one tries. Strictly one after the
    /// other, each request finished or abandoned before the next starts, so
    /// no two providers ever race to deliver the same message. Each
    /// failover is told to `failed_over` (the caller emits the event).
    pub async fn send(
        &self,
        msg: &Outgoing,
        mut failed_over: impl FnMut(Failover<'_>),
    ) -> Result<Accepted, Failed> {
        let mut failed: Option<Failed> = None;
        let carriers = self.list.iter().enumerate();
        for (i, p) in carriers.filter(|(_, p)| p.carries(msg.channel)) {
            if let Some(f) = &failed {
                failed_over(Failover {
                    from: f.provider,
                    to: p.name(),
                    error: &f.error,
                });
            }
            let sent = p.send(msg).await;
            self.health.record(i, sent.as_ref().map(|_| ()));
            match sent {
                Ok(receipt) => {
                    return Ok(Accepted {
                        receipt,
                        provider: p.name(),
                        reports_delivery: p.reports_delivery(),
                    });
                }
                Err(error) => {
                    let maybe_sent =
                        error.maybe_sent() || failed.as_ref().is_some_and(|f| f.maybe_sent);
                    let next = error.try_next();
                    failed = Some(Failed {
                        error,
                        maybe_sent,
                        provider: p.name(),
                    });
                    if !next {
                        break;
                    }
                }
            }
        }
        Err(failed.unwrap_or(Failed {
            error: SendError::NoProvider(msg.channel.as_str()),
            maybe_sent: false,
            provider: "none",
        }))
    }
}

fn client(s: &SmsSettings) -> Result<reqwest::Client, reqwest::Error> {
    crate::http::tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(s.timeout)
        .connect_timeout(s.connect_timeout)
        // A redirect would resend the credentials somewhere else; the APIs never redirect.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("otpgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The channels to try for a number, in order of preference.
pub fn channels_for<'a>(s: &'a SmsSettings, number: &Number) -> &'a [Channel] {
    number
        .country()
        .and_then(|c| s.channels_by_country.get(&c))
        .unwrap_or(&s.channels)
}

/// Whether codes may go to the number's country at all.
pub fn country_allowed(s: &SmsSettings, number: &Number) -> bool {
    match number.country() {
        Some(c) => {
            !s.denied_countries.contains(&c)
                && s.allowed_countries.as_ref().is_none_or(|a| a.contains(&c))
        }
        // International services (+800, +882...) have no country: only
        // when every country is allowed.
        None => s.allowed_countries.is_none(),
    }
}

/// The sender for a message to `number`: a local number for its country if
/// one is configured (a local sender delivers best), else the alphanumeric
/// sender ID where the country allows one (the guide's table plus config),
/// else the numeric sender. WhatsApp always comes from a number.
pub fn sender_for(s: &SmsSettings, number: &Number, channel: Channel) -> String {
    let country = number.country();
    if let Some(local) = country.and_then(|c| s.from_by_country.get(&c)) {
        return local.clone();
    }
    let sender_id_ok = channel == Channel::Sms
        && country.is_some_and(|c| s.alphanumeric_sender.get(&c).copied().unwrap_or(false));
    if crate::config::is_sender_id(&s.from)
        && !sender_id_ok
        && let Some(numeric) = &s.from_numeric
    {
        return numeric.clone();
    }
    s.from.clone()
}

/// The message text: the template with `{app}`, `{code}` and `{minutes}`
/// filled in and, when `origin_host` is given, the origin-bound last line
/// `@host #code` (WICG sms-one-time-codes §2: the last line, host without
/// port, no trailing newline) that lets WebOTP and iOS AutoFill offer the
/// code on that site only.
pub fn render_body(
    template: &str,
    app: &str,
    code: &str,
    ttl: Duration,
    origin_host: Option<&str>,
) -> String {
    let mut body = template
        .replace("{app}", app)
        .replace("{minutes}", &minutes(ttl).to_string())
        .replace("{code}", code);
    let body_trimmed = body.trim_end().len();
    body.truncate(body_trimmed);
    if let Some(host) = origin_host {
        body.push_str("\n\n@");
        body.push_str(host);
        body.push_str(" #");
        body.push_str(code);
    }
    body
}

/// The code's lifetime in whole minutes, rounded up, at least one.
pub fn minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

/// A short reason from an error answer, for the log. The provider might echo
/// the message, so a reason holding the code or any longer word of the body
/// is dropped.
fn detail(bytes: &[u8], msg: &Outgoing) -> String {
    let text = String::from_utf8_lossy(bytes);
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            ["/error/message", "/message", "/error", "/detail"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(|m| m.as_str()).map(str::to_string))
        })
        .unwrap_or_default();
    if reason.is_empty()
        || reason.contains(msg.code.as_str())
        || msg
            .body
            .split_whitespace()
            .any(|w| w.len() >= 6 && reason.contains(w))
    {
        return String::new();
    }
    format!(": {}", loggable(&reason))
}

/// Provider identifiers (message ids, error codes) fit for a log line: no
/// control characters (no forged lines), bounded length.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(DETAIL_MAX)
        .collect()
}

/// Provider text made fit for a log line: no control characters (no forged
/// lines), bounded length, and every run of six or more digits replaced by
/// "…" — providers quote the destination number in their errors ("The 'To'
/// number +1555… is not a valid phone number").
pub fn loggable(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |out: &mut String, digits: &mut String| {
        if digits.len() >= 6 {
            out.push('…');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in printable(text).chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut out, &mut digits);
            out.push(c);
        }
    }
    flush(&mut out, &mut digits);
    out
}

/// Reads a provider's HTTP answer: the body of a 2xx, or the refusal.
async fn answer(res: reqwest::Response, msg: &Outgoing) -> Result<bytes::Bytes, SendError> {
    let status = res.status();
    let bytes = res.bytes().await?;
    if !status.is_success() {
        return Err(SendError::Rejected {
            status: status.as_u16(),
            detail: detail(&bytes, msg),
        });
    }
    Ok(bytes)
}

/// The message id at `pointer` in a JSON answer. serde's message may quote
/// the answer, which may echo the code: only the position is kept.
fn message_id(bytes: &[u8], pointer: &str) -> Result<Option<String>, SendError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        SendError::BadAnswer(format!(
            "expected JSON (error at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(v.pointer(pointer).and_then(|id| match id {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }))
}

#[cfg(test)]
mod tests;
