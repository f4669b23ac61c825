//! Turns the raw file into [`Settings`], checking every value once, at load,
//! so that nothing downstream has to.

use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use ipnet::IpNet;

use super::raw::{RawAudit, RawConfig, S};
use super::*;

/// The default SMS text; `{app}`, `{code}` and `{minutes}` are filled in.
pub const DEFAULT_MESSAGE: &str =
    "Your {app} verification code is {code}. It expires in {minutes} minutes.";

/// Names of the gateway's own cookies; an app's session cookie may not use them.
pub const RESERVED_COOKIES: [&str; 2] = [crate::names::FACTOR_COOKIE, crate::names::PENDING_COOKIE];

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) base: &'a Path,
}

pub(super) type Result<T> = std::result::Result<T, ConfigError>;

/// Parses configuration text; relative paths in it are taken from `base`.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Settings> {
    let cx = Ctx { file, text, base };
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        file: file.to_string(),
        line: e.span().map(|s| cx.line_of(&s)),
        key: e.span().map(|s| cx.key_at(s.start)).unwrap_or_default(),
        message: e
            .message()
            .trim_end()
            .replace("expected i64", "expected a whole number"),
    })?;
    cx.settings(raw)
}

impl Ctx<'_> {
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// The name of the table (`server`, `sms.didfarm`, `apps`) that the
    /// byte offset falls in, so that "unknown field" says where.
    fn table_at(&self, offset: usize) -> String {
        let before = self.text.get(..offset).unwrap_or(self.text);
        before
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|header| {
                header
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// `table.key` for the `key = value` line the offset falls on, or the
    /// table alone.
    fn key_at(&self, offset: usize) -> String {
        let table = self.table_at(offset);
        let start = self
            .text
            .get(..offset)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let line = self
            .text
            .get(start..)
            .and_then(|t| t.lines().next())
            .unwrap_or("");
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty() && !k.starts_with('[') && !k.starts_with('#'));
        match key {
            Some(k) if table.is_empty() => k.to_string(),
            Some(k) => format!("{table}.{k}"),
            None => table,
        }
    }

    pub(super) fn err(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: span.map(|s| self.line_of(&s)),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn at<T>(&self, value: &S<T>, key: &str, message: impl Into<String>) -> ConfigError {
        self.err(Some(value.span()), key, message)
    }

    pub(super) fn duration(
        &self,
        v: &Option<S<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration> {
        let Some(v) = v else { return Ok(default) };
        humantime::parse_duration(v.get_ref().trim()).map_err(|e| {
            self.at(
                v,
                key,
                format!("{e}; write a duration such as \"30s\", \"5m\" or \"12h\""),
            )
        })
    }

    pub(super) fn bounded(
        &self,
        v: &Option<S<String>>,
        key: &str,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration> {
        let d = self.duration(v, key, default)?;
        if d < *range.start() || d > *range.end() {
            let at = v.as_ref().map(|v| v.span());
            return Err(self.err(
                at,
                key,
                format!(
                    "must be between {} and {}",
                    humantime::format_duration(*range.start()),
                    humantime::format_duration(*range.end())
                ),
            ));
        }
        Ok(d)
    }

    pub(super) fn int(
        &self,
        v: &Option<S<i64>>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if n < i64::from(*range.start()) || n > i64::from(*range.end()) {
            return Err(self.at(
                v,
                key,
                format!(
                    "{n} is out of range; use a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(n as u32)
    }

    pub(super) fn path(&self, v: &str) -> PathBuf {
        let p = Path::new(v);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn settings(&self, raw: RawConfig) -> Result<Settings> {
        let server = self.server(&raw)?;
        let otp = self.otp(&raw)?;
        let d = LimitSettings::default();
        let l = &raw.limits;
        let limits = LimitSettings {
            cooldown: self.bounded(
                &l.cooldown,
                "limits.cooldown",
                d.cooldown,
                Duration::ZERO..=Duration::from_secs(3600),
            )?,
            per_hour: self.int(&l.per_hour, "limits.per_hour", d.per_hour, 1..=1000)?,
            per_day: self.int(&l.per_day, "limits.per_day", d.per_day, 1..=10_000)?,
            per_ip_sends_per_minute: self.int(
                &l.per_ip_sends_per_minute,
                "limits.per_ip_sends_per_minute",
                d.per_ip_sends_per_minute,
                1..=100_000,
            )?,
            per_ip_sends_per_hour: self.int(
                &l.per_ip_sends_per_hour,
                "limits.per_ip_sends_per_hour",
                d.per_ip_sends_per_hour,
                1..=1_000_000,
            )?,
            per_ip_accounts_per_hour: self.int(
                &l.per_ip_accounts_per_hour,
                "limits.per_ip_accounts_per_hour",
                d.per_ip_accounts_per_hour,
                1..=1_000_000,
            )?,
            per_ip_verifies_per_minute: self.int(
                &l.per_ip_verifies_per_minute,
                "limits.per_ip_verifies_per_minute",
                d.per_ip_verifies_per_minute,
                1..=100_000,
            )?,
            account_failure_cap: self.int(
                &l.account_failure_cap,
                "limits.account_failure_cap",
                d.account_failure_cap,
                1..=100,
            )?,
            account_lock: self.bounded(
                &l.account_lock,
                "limits.account_lock",
                d.account_lock,
                Duration::from_secs(1)..=Duration::from_secs(30 * 86400),
            )?,
        };
        let Some(sms) = &raw.sms else {
            return Err(self.err(
                None,
                "sms",
                "missing; add an [sms] table with providers = [\"didfarm\"] (or [\"sandbox\"] for local testing)",
            ));
        };
        let sms = self.sms(sms)?;
        if raw.apps.is_empty() {
            return Err(self.err(
                None,
                "apps",
                "no application configured; add an [[apps]] table with name, upstream, session_cookie, userinfo_path and user_pointer",
            ));
        }
        let apps = raw
            .apps
            .iter()
            .map(|a| self.app(a))
            .collect::<Result<Vec<_>>>()?;
        self.distinct_hosts(&raw.apps, &apps)?;
        let audit = raw.audit.as_ref().map(|a| self.audit(a)).transpose()?;
        let admin = self.admin(&raw.admin, &server)?;
        let log = self.log(&raw.log)?;
        let pumping = self.pumping(&raw.pumping)?;
        let metrics = self.metrics(&raw.metrics, &server, &admin)?;
        Ok(Settings {
            server,
            otp,
            limits,
            sms,
            apps,
            audit,
            admin,
            log,
            pumping,
            metrics,
        })
    }

    /// The audit log's path. The file itself is opened at start-up; its
    /// directory must exist now, so `check-config` catches a typo.
    fn audit(&self, a: &S<RawAudit>) -> Result<PathBuf> {
        self.log_file(
            &a.get_ref().path,
            "audit.path",
            "must name a file, e.g. \"audit.jsonl\"; leave out the [audit] table to keep the audit log off",
        )
    }

    /// A log file's path (`key`; `empty` says what to write instead of
    /// nothing): a file name in a directory that exists now.
    pub(super) fn log_file(&self, v: &S<String>, key: &str, empty: &str) -> Result<PathBuf> {
        let text = v.get_ref().trim();
        if text.is_empty() || text.ends_with('/') {
            return Err(self.at(v, key, empty));
        }
        let path = self.path(text);
        let dir = path.parent().unwrap_or(self.base);
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(self.at(
                v,
                key,
                format!(
                    "the directory {} does not exist; create it or choose another path",
                    dir.display()
                ),
            ));
        }
        Ok(path)
    }

    fn server(&self, raw: &RawConfig) -> Result<ServerSettings> {
        let s = &raw.server;
        let listen = match &s.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
            Some(v) => v.get_ref().parse().map_err(|_| {
                self.at(
                    v,
                    "server.listen",
                    "not an address; write host and port, e.g. \"127.0.0.1:8000\" or \"[::]:443\"",
                )
            })?,
        };
        let trusted_proxies = s
            .trusted_proxies
            .iter()
            .map(|v| {
                let t = v.get_ref().trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.at(
                            v,
                            "server.trusted_proxies",
                            format!(
                                "{t:?} is not an IP address or CIDR range such as \"10.0.0.0/8\""
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let tls = match (&s.tls_cert, &s.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some(TlsFiles {
                cert: self.path(c.get_ref()),
                key: self.path(k.get_ref()),
            }),
            (Some(v), None) => {
                return Err(self.at(v, "server.tls_cert", "needs server.tls_key as well"));
            }
            (None, Some(v)) => {
                return Err(self.at(v, "server.tls_key", "needs server.tls_cert as well"));
            }
        };
        let secret_file = s
            .secret_file
            .as_ref()
            .map_or("otpgate.key", |v| v.get_ref().as_str());
        let secs = Duration::from_secs;
        Ok(ServerSettings {
            listen,
            secret_file: self.path(secret_file),
            trusted_proxies,
            tls,
            second_factor_lifetime: self.bounded(
                &s.second_factor_lifetime,
                "server.second_factor_lifetime",
                secs(12 * 3600),
                secs(60)..=secs(90 * 86400),
            )?,
            connect_timeout: self.bounded(
                &s.connect_timeout,
                "server.connect_timeout",
                secs(5),
                Duration::from_millis(10)..=secs(300),
            )?,
            upstream_timeout: self.bounded(
                &s.upstream_timeout,
                "server.upstream_timeout",
                secs(60),
                Duration::from_millis(10)..=secs(3600),
            )?,
            header_read_timeout: self.bounded(
                &s.header_read_timeout,
                "server.header_read_timeout",
                secs(10),
                Duration::from_millis(100)..=secs(300),
            )?,
            body_read_timeout: self.bounded(
                &s.body_read_timeout,
                "server.body_read_timeout",
                secs(10),
                Duration::from_millis(100)..=secs(3600),
            )?,
            shutdown_grace: self.bounded(
                &s.shutdown_grace,
                "server.shutdown_grace",
                secs(10),
                Duration::ZERO..=secs(600),
            )?,
            public_url: s
                .public_url
                .as_ref()
                .map(|u| {
                    let url = self.http_url(u, "server.public_url", "https://gate.example.com")?;
                    match url.parse::<Uri>() {
                        Ok(uri) if uri.path().trim_end_matches('/').is_empty() => Ok(url),
                        _ => Err(self.at(u, "server.public_url", "must not have a path; write the scheme and host the provider reaches, e.g. \"https://gate.example.com\"")),
                    }
                })
                .transpose()?,
            workers: {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                self.int(&s.workers, "server.workers", cores.min(256) as u32, 1..=256)? as usize
            },
        })
    }

    fn otp(&self, raw: &RawConfig) -> Result<OtpSettings> {
        let o = &raw.otp;
        let message = match &o.message {
            None => DEFAULT_MESSAGE.to_string(),
            Some(m) if !m.get_ref().contains("{code}") => {
                return Err(self.at(
                    m,
                    "otp.message",
                    "must contain {code}, or the user never sees the code",
                ));
            }
            Some(m) => m.get_ref().clone(),
        };
        Ok(OtpSettings {
            length: self.int(&o.length, "otp.length", 6, 6..=10)?,
            // NIST SP 800-63B §5.1.3.2: an out-of-band secret is valid for at most 10 minutes.
            ttl: self.bounded(
                &o.ttl,
                "otp.ttl",
                Duration::from_secs(300),
                Duration::from_secs(1)..=Duration::from_secs(600),
            )?,
            max_attempts: self.int(&o.max_attempts, "otp.max_attempts", 5, 1..=20)?,
            message,
            origin_bound: o.origin_bound.unwrap_or(true),
        })
    }

    /// A secret given inline, by environment variable (`*_env`) or by file (`*_file`): exactly one.
    pub(super) fn secret<T>(
        &self,
        table: &S<T>,
        key: &str,
        inline: &Option<S<String>>,
        env: &Option<S<String>>,
        file: &Option<S<String>>,
    ) -> Result<Secret> {
        let value = match (inline, env, file) {
            (Some(v), None, None) => v.get_ref().clone(),
            (None, Some(v), None) => std::env::var(v.get_ref()).map_err(|_| {
                self.at(v, &format!("{key}_env"), format!("environment variable {} is not set; export it before starting, or use {key}_file", v.get_ref()))
            })?,
            (None, None, Some(v)) => std::fs::read_to_string(self.path(v.get_ref()))
                .map_err(|e| self.at(v, &format!("{key}_file"), format!("cannot read {}: {e}", v.get_ref())))?,
            (None, None, None) => {
                return Err(self.at(table, key, format!("missing; set {key}_env (an environment variable name) or {key}_file")));
            }
            _ => return Err(self.at(table, key, format!("set only one of {key}, {key}_env and {key}_file"))),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(self.at(table, key, "is empty"));
        }
        Ok(Secret(value))
    }
}

/// An alphanumeric sender ID: 1 to 11 characters, letters, digits and spaces,
/// with at least one letter (an all-digit sender would be read as a number).
pub fn is_sender_id(v: &str) -> bool {
    (1..=11).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && v.bytes().any(|b| b.is_ascii_alphabetic())
}
