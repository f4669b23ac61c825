//! Configuration: `raw` is the file as written, this module holds the
//! validated, typed settings the gateway runs on, and `validate` turns the
//! one into the other. Every error names the file, the line and the key.

mod answer;
mod apps;
mod guards;
mod raw;
mod sms;
mod validate;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use ipnet::IpNet;

pub use validate::{DEFAULT_MESSAGE, is_sender_id, parse};

use crate::phone::Country;

/// A configuration mistake, located in the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}{line}: {key}{message}", line = fmt_line(*.line), key = fmt_key(.key))]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

fn fmt_line(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

fn fmt_key(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        key: String::new(),
        message: format!("cannot read the configuration file: {e}"),
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&text, &path.display().to_string(), base)
}

/// A secret value; its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(MASKED)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub otp: OtpSettings,
    pub limits: LimitSettings,
    pub sms: SmsSettings,
    pub apps: Vec<AppSettings>,
    /// The audit log's file; `None` keeps it off.
    pub audit: Option<PathBuf>,
    pub admin: AdminSettings,
    pub pumping: PumpingSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
}

/// The metrics listener (`[metrics]`): Prometheus' `/metrics` and the
/// readiness details.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Where it listens (TCP, as Prometheus scrapes); `None`: off.
    pub listen: Option<SocketAddr>,
}

/// How the gateway logs (`[log]`).
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// A `tracing` filter (`info`, `otpgate=debug,info`); `RUST_LOG` wins.
    pub level: String,
    /// One access log line per request (`access = true`).
    pub access: bool,
    /// Where the access log goes; `None`: stdout, beside the process log.
    pub access_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// The Unix socket it listens on (the default, next to the
    /// configuration); `None` when it listens on TCP or is off.
    pub socket: Option<PathBuf>,
    /// The TCP address it listens on instead, when `listen` is set.
    pub listen: Option<SocketAddr>,
}

impl AdminSettings {
    /// The socket's file name, relative to the configuration file: named
    /// after the public port, so that gateways whose configurations share a
    /// folder (one per app) get one each.
    pub fn default_socket(listen_port: u16) -> String {
        format!("otpgate-admin-{listen_port}.sock")
    }
}

/// What the OTP-pumping guard does when a rule trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpingMode {
    /// Refuse sends to a quarantined country or prefix, or past a cap.
    Enforce,
    /// Log what would have been refused; refuse nothing.
    Monitor,
    /// Track nothing.
    Off,
}

#[derive(Debug, Clone)]
pub struct PumpingSettings {
    pub mode: PumpingMode,
    /// Sends and verifications are judged over this sliding window.
    pub window: Duration,
    /// No judgement below this many sends to one country or prefix in the window.
    pub min_sends: u32,
    /// Quarantine when fewer than this share of sends were verified.
    pub min_conversion: f64,
    /// A send counts as unanswered only once it is this old: a code still
    /// being typed in is not a pumped one (see `pumping`).
    pub answer_time: Duration,
    pub quarantine: Duration,
    /// Sends per hour to a country not in `country_caps`.
    pub default_country_cap: u32,
    /// Sends per hour by region code ("NG"), upper case.
    pub country_caps: HashMap<String, u32>,
}

impl PumpingSettings {
    pub fn country_cap(&self, country: &str) -> u32 {
        self.country_caps
            .get(country)
            .copied()
            .unwrap_or(self.default_country_cap)
    }
}

impl Default for PumpingSettings {
    /// Sized for a company login page: a few hundred people who each need a
    /// code now and then, almost all of whom type it in. A pumper's numbers
    /// never verify, so 20 sends with under 20% verified is far outside
    /// normal use; 200 sends an hour to one country is a busy morning for a
    /// company of some thousands (list home countries in `country_caps` if
    /// more is normal).
    fn default() -> Self {
        Self {
            mode: PumpingMode::Enforce,
            window: Duration::from_secs(3600),
            min_sends: 20,
            min_conversion: 0.2,
            // The code's default lifetime: by then it was entered or never will be.
            answer_time: Duration::from_secs(300),
            quarantine: Duration::from_secs(3600),
            default_country_cap: 200,
            country_caps: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub secret_file: PathBuf,
    pub trusted_proxies: Vec<IpNet>,
    pub tls: Option<TlsFiles>,
    pub second_factor_lifetime: Duration,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A body to the gateway's own endpoints must arrive whole within it,
    /// and a proxied body must not pause longer than it.
    pub body_read_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Where providers reach the gateway's webhooks, without a trailing
    /// slash; without it no delivery status is asked for.
    pub public_url: Option<String>,
    /// Worker threads, each with its own runtime, listener (`SO_REUSEPORT`)
    /// and upstream pool.
    pub workers: usize,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct OtpSettings {
    pub length: u32,
    pub ttl: Duration,
    pub max_attempts: u32,
    /// Message template with `{app}`, `{code}` and `{minutes}`.
    pub message: String,
    /// Append the origin-bound `@host #code` line (WICG sms-one-time-codes).
    pub origin_bound: bool,
}

#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub cooldown: Duration,
    pub per_hour: u32,
    pub per_day: u32,
    /// Sends requested from one client address.
    pub per_ip_sends_per_minute: u32,
    pub per_ip_sends_per_hour: u32,
    /// Accounts one client address may have codes sent to in an hour that
    /// were not entered from there (see `abuse`).
    pub per_ip_accounts_per_hour: u32,
    /// Code checks from one client address.
    pub per_ip_verifies_per_minute: u32,
    /// Consecutive wrong codes for one account, across codes, before it is
    /// locked (NIST SP 800-63B §5.2.2: at most 100).
    pub account_failure_cap: u32,
    pub account_lock: Duration,
}

impl Default for LimitSettings {
    /// The guide's per-number limits, and per-address and per-account limits
    /// sized for a company login page, an office behind one NAT included
    /// (issue 12: at least 50 colleagues behind one address each get their
    /// first code and enter it within 5 minutes).
    ///
    /// Codes only go to numbers on file, and each number is already held to
    /// the guide's 60 s / 5 an hour / 20 a day, each code to `max_attempts`
    /// guesses, each account to `account_failure_cap`, each destination to
    /// the pumping guard. What one address adds on top is many *accounts*:
    /// an office's users enter the codes they get, an attacker holding
    /// stolen passwords cannot (the codes go to the owners' phones). So the
    /// per-address rule that separates them counts accounts sent a code and
    /// not entered (100 an hour: twice a 50-person rush in flight at once),
    /// and the send and check counts only pace bursts and cap the bill: 120
    /// sends a minute fits 50 people at 9:00 each with WhatsApp and its SMS
    /// fallback, 300 an hour a 100-person office with fallbacks and a few
    /// resends, 120 checks a minute 50 people with a typo each. One address
    /// can still trigger no more than 300 messages an hour (60 before),
    /// to at most 100 accounts it cannot prove.
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(60),
            per_hour: 5,
            per_day: 20,
            per_ip_sends_per_minute: 120,
            per_ip_sends_per_hour: 300,
            per_ip_accounts_per_hour: 100,
            per_ip_verifies_per_minute: 120,
            account_failure_cap: 100,
            account_lock: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// In failover order: the next is tried when one cannot be reached,
    /// times out or answers 5xx.
    pub providers: Vec<ProviderSettings>,
    /// Channels in order of preference, and per-country overrides.
    pub channels: Vec<Channel>,
    pub channels_by_country: HashMap<Country, Vec<Channel>>,
    /// Without a `delivered` status this long after a WhatsApp message, the
    /// same code goes out by the next channel.
    pub fallback_after: Duration,
    /// Without a `delivered` status this long, the page says so and offers
    /// the alternatives.
    pub delivery_timeout: Duration,
    /// Sender: an alphanumeric ID or an E.164 number.
    pub from: String,
    /// The number used where alphanumeric senders are not allowed.
    pub from_numeric: Option<String>,
    pub from_by_country: HashMap<Country, String>,
    /// Countries where an alphanumeric sender may be used (true) or not
    /// (false); countries not listed get the numeric sender.
    pub alphanumeric_sender: HashMap<Country, bool>,
    /// `None`: every country.
    pub allowed_countries: Option<HashSet<Country>>,
    pub denied_countries: HashSet<Country>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// A way to reach the user's phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Whatsapp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "sms" => Some(Self::Sms),
            "whatsapp" => Some(Self::Whatsapp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Didfarm(DidfarmSettings),
    Twilio(TwilioSettings),
    Http(HttpSmsSettings),
    Sandbox,
}

#[derive(Debug, Clone)]
pub struct DidfarmSettings {
    /// Base URL without a trailing slash.
    pub base_url: String,
    pub api_key: Secret,
    pub test_mode: bool,
    pub whatsapp_template: String,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Base URL without a trailing slash (`https://api.twilio.com`).
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub messaging_service_sid: Option<String>,
}

/// Any other SMS API, described in config.
#[derive(Debug, Clone)]
pub struct HttpSmsSettings {
    pub url: String,
    pub method: http::Method,
    /// Header values may hold `{secret}`.
    pub headers: Vec<(http::HeaderName, String)>,
    pub secret: Option<Secret>,
    pub body: HttpSmsBody,
    /// Where the answer's JSON holds the message id (RFC 6901).
    pub message_id_pointer: Option<String>,
}

/// The request body; string values may hold `{to}`, `{from}` and `{body}`.
#[derive(Debug, Clone)]
pub enum HttpSmsBody {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct AppSettings {
    pub name: String,
    pub host: HostMatch,
    pub upstream: Upstream,
    pub session_cookie: SessionCookie,
    pub userinfo_path: PathAndQuery,
    /// How the who-am-I answer says who is logged in.
    pub userinfo: Userinfo,
    pub bypass: Vec<String>,
    /// Phone numbers by user name, from `users_file`.
    pub users: HashMap<String, String>,
    /// The one number every user of the app confirms on (`phone`).
    pub phone: Option<String>,
    pub userinfo_cache: Duration,
    /// Paths (prefixes, as `bypass`) where a request may log someone in
    /// even by GET: the session's proof is checked again afterwards.
    pub login_paths: Vec<String>,
    /// How long a proven session goes without asking the app whether it is
    /// still the same user; zero: only after a request that may log in.
    pub recheck_interval: Duration,
}

/// How the app's session cookie is named: exactly, or by a prefix for
/// names that carry a per-install part (`wordpress_logged_in_<hash>`,
/// `<dbname>_session`), written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCookie {
    Exact(String),
    Prefix(String),
}

impl SessionCookie {
    /// Whether a cookie called `name` is the session cookie.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(n) => name == n,
            Self::Prefix(p) => name.len() > p.len() && name.starts_with(p.as_str()),
        }
    }

    /// The name, or the prefix for a pattern: what look-alikes are compared
    /// with and what may not appear inside another cookie's value.
    pub fn stem(&self) -> &str {
        match self {
            Self::Exact(n) | Self::Prefix(n) => n,
        }
    }

    pub fn is_prefix(&self) -> bool {
        matches!(self, Self::Prefix(_))
    }
}

impl std::fmt::Display for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(n) => f.write_str(n),
            Self::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// Where the who-am-I answer holds the user name and the phone number.
#[derive(Debug, Clone)]
pub enum Userinfo {
    /// 2xx JSON; RFC 6901 pointers.
    Json {
        user_pointer: String,
        phone_pointer: Option<String>,
        /// A value here that is not `null`, `false`, `0` or `""` means nobody.
        anonymous_pointer: Option<String>,
    },
    /// A 2xx page; the first capture group of each pattern.
    Html {
        user_pattern: Pattern,
        phone_pattern: Option<Pattern>,
    },
    /// Response header fields.
    Header {
        user_header: http::HeaderName,
        phone_header: Option<http::HeaderName>,
    },
}

impl Userinfo {
    /// The value of `userinfo_format` that selects it.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Json { .. } => "json",
            Self::Html { .. } => "html",
            Self::Header { .. } => "header",
        }
    }

    /// Whether the answer itself may carry the phone number.
    pub fn has_phone(&self) -> bool {
        match self {
            Self::Json { phone_pointer, .. } => phone_pointer.is_some(),
            Self::Html { phone_pattern, .. } => phone_pattern.is_some(),
            Self::Header { phone_header, .. } => phone_header.is_some(),
        }
    }
}

/// A compiled pattern with exactly one capture group, and its source for
/// messages.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: regex::bytes::Regex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    /// Lower-case host name without port.
    Exact(String),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
}
