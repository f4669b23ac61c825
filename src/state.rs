//! Everything the gateway shares between requests, built once from the
//! validated settings and held behind one `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::{AppSettings, HostMatch, Settings};
use crate::delivery::Deliveries;
use crate::delivery::sms::{Callback, Providers};
use crate::events::Events;
use crate::events::audit::Audit;
use crate::events::metrics::Metrics;
use crate::http::proxy::{self, UpstreamClient};
use crate::keys::Keys;
use crate::otp::OtpStore;
use crate::otp::abuse::AbuseGuard;
use crate::otp::limits::{self, SendLimiter};
use crate::pumping::PumpingGuard;
use crate::store::identities::IdentityAnswers;
use crate::store::memory::{MemoryIdentities, MemorySessionFlags};
use crate::store::{self, Clock, SessionFlags, SharedClock};
use crate::text::{EN, Text};

/// One protected application and what the gateway remembers about its sessions.
pub struct App {
    pub index: usize,
    pub cfg: AppSettings,
    /// The app's upstream failing: logged once, then summarised.
    pub upstream_failures: crate::events::failure_log::FailureLog,
    /// Who-am-I answers (see `identity`).
    pub identities: Arc<dyn IdentityAnswers>,
    /// Sessions whose answer was just invalidated (no answer fetched around
    /// that moment is cached: it may predate a login), and sessions whose
    /// proof was lately found to name the app's current user of the
    /// session, with that user. A confirmation goes when the session may
    /// have changed hands, and after `recheck_interval` in any case (see
    /// `standing`); a missing one costs one who-am-I lookup.
    pub sessions: Arc<dyn SessionFlags>,
    /// Suspicious cookie pairs dropped since the last log line about them,
    /// and when that line was written (Unix seconds).
    suspicious: (AtomicU64, AtomicU64),
}

impl App {
    /// Whether the session's proof for `user` was confirmed lately.
    pub fn is_confirmed(&self, session: &[u8; 32], user: &str) -> bool {
        self.sessions.is_confirmed(session, user)
    }

    /// The app's answer for the session names `user`, whose proof it holds.
    pub async fn confirm(&self, session: [u8; 32], user: &str) {
        self.sessions.confirm(session, user).await;
    }

    /// The session may have changed hands (a login, a logout, new cookies):
    /// every cached answer for it goes, whatever cookies it was asked with,
    /// and so does its confirmation, whether or not the request that did it
    /// carried a proof.
    pub async fn may_have_logged_in(&self, session: &[u8; 32]) {
        self.sessions.forget(session).await;
        self.identities.forget(session).await;
    }

    /// Logs a dropped suspicious cookie pair: at once the first time, then
    /// at most once a minute with the count, so a client cannot flood the log.
    pub fn note_suspicious_cookie(&self, name: &str, view: &crate::http::headers::ClientView) {
        let (count, logged_at) = &self.suspicious;
        let seen = count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::store::SystemClock.now_ms() / 1000;
        let last = logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 60
            || logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        count.store(0, Ordering::Relaxed);
        tracing::warn!(
            event = "cookie.suspicious", app = %self.cfg.name, cookie = %name.escape_debug(),
            client_ip = %view.ip, dropped = seen,
            "a cookie whose name or value another parser could split into more cookies (whitespace, comma, quote, backslash, or the session cookie's name inside) was not passed to the app"
        );
    }

    /// Whether a request to `path` may log someone in (`login_paths`), even
    /// by GET (a login link).
    pub fn is_login_path(&self, path: &str) -> bool {
        under_any(&self.cfg.login_paths, path)
    }

    /// Whether a request may change who is logged in on its session: any
    /// unsafe method (RFC 9110 §9.2.1) or a configured login path (a login
    /// link may be a GET).
    pub fn may_log_in(&self, method: &http::Method, path: &str) -> bool {
        !matches!(
            *method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        ) || self.is_login_path(path)
    }

    /// Whether the path is under one of the app's `bypass` prefixes. A
    /// prefix ending in "/" covers everything below it; any other covers
    /// that path and everything below it ("/login" covers "/login/x", not
    /// "/login-as"). A path with dot-segments, encoded separators or `;`
    /// never bypasses: the app might normalise "/static/../admin" or
    /// "/static/..;/admin" (Tomcat, Jetty) into a protected path.
    pub fn bypasses(&self, path: &str) -> bool {
        under_any(&self.cfg.bypass, path) && !is_ambiguous_path(path)
    }
}

/// Whether `path` is one of the prefixes or below one (see `bypasses`).
fn under_any(prefixes: &[String], path: &str) -> bool {
    prefixes.iter().any(|prefix| {
        path.starts_with(prefix.as_str())
            && (prefix.ends_with('/')
                || path.len() == prefix.len()
                || path.as_bytes()[prefix.len()] == b'/')
    })
}

/// Whether an app could decode `path` into another path than it reads as:
/// dot-segments (RFC 3986 §5.2.4) plain or encoded, encoded or backslash
/// separators, `;` path parameters (Tomcat, Jetty), double encoding (`%25`,
/// decoded twice by some stacks), NUL (C string ends), overlong or broken
/// UTF-8 (`%c0%ae` is "." to lenient decoders), IIS's `%u002e`, and
/// segments of three or more dots (Windows trims trailing dots).
fn is_ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.contains('\\')
        || path.contains(';')
        || path.contains('\0')
        || ["%2e", "%2f", "%5c", "%25", "%00", "%u"]
            .iter()
            .any(|e| lower.contains(e))
        || path
            .split('/')
            .any(|seg| !seg.is_empty() && seg.bytes().all(|b| b == b'.'))
        // Borrows, no allocation, when nothing is encoded (static assets).
        || percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .is_err()
}

pub struct State {
    pub settings: Settings,
    pub keys: Keys,
    /// The one clock of every store (wall-clock ms); a test may put its own.
    pub clock: SharedClock,
    pub apps: Vec<App>,
    /// One upstream pool per worker: a pooled connection is driven by the
    /// runtime that opened it, so sharing one across workers would bounce
    /// every request between threads.
    clients: Vec<UpstreamClient>,
    pub otp: OtpStore,
    pub limiter: SendLimiter,
    pub abuse: AbuseGuard,
    pub providers: Providers,
    /// Each provider failing: logged once, then summarised (`sending`).
    pub provider_failures: crate::events::failure_log::FailureLogs,
    pub deliveries: Deliveries,
    pub pumping: PumpingGuard,
    pub text: &'static Text,
    /// Upgraded connections, drained at shutdown.
    pub tunnels: proxy::Tunnels,
    pub request_ids: crate::http::request_id::RequestIds,
    /// Off here; `Gateway::bind` opens it when `[audit]` is configured.
    pub audit: Audit,
    /// Off here; `Gateway::bind` opens it when `[log] access = true`.
    pub access: crate::events::access::Access,
    /// Where OTP events go: the log here; `Gateway::bind` adds the audit log.
    pub events: Events,
    /// Stops the fallback timers when the gateway stops.
    pub timers: crate::delivery::Timers,
    /// The Prometheus metrics, when `[metrics]` is on; `None` costs the
    /// hot path one check.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether the stores are usable (readiness).
    pub store_health: Arc<dyn store::Health>,
    /// The gateway stopped accepting (shutdown): readiness says so while
    /// requests in flight finish.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl State {
    pub fn new(settings: Settings, secret: &[u8]) -> Result<Self, reqwest::Error> {
        Self::with_clock(settings, secret, store::system_clock())
    }

    /// As [`Self::new`], with the stores timed by `clock` (tests move a
    /// `store::ManualClock` instead of sleeping).
    pub fn with_clock(
        settings: Settings,
        secret: &[u8],
        clock: SharedClock,
    ) -> Result<Self, reqwest::Error> {
        let keys = Keys::derive(secret);
        let apps = settings
            .apps
            .iter()
            .enumerate()
            .map(|(index, cfg)| App {
                index,
                cfg: cfg.clone(),
                identities: Arc::new(MemoryIdentities::new(cfg.userinfo_cache)),
                sessions: Arc::new(MemorySessionFlags::new(
                    if cfg.recheck_interval.is_zero() {
                        settings.server.second_factor_lifetime
                    } else {
                        cfg.recheck_interval
                    },
                    settings.server.upstream_timeout + Duration::from_secs(1),
                    clock.clone(),
                )),
                suspicious: Default::default(),
                upstream_failures: Default::default(),
            })
            .collect();
        let o = &settings.otp;
        let callback = settings
            .server
            .public_url
            .as_ref()
            .map(|public_url| Callback {
                public_url: public_url.clone(),
                tokens: ["didfarm", "twilio"]
                    .map(|p| (p, keys.webhook_token(p)))
                    .into(),
            });
        let s = &settings.sms;
        let metrics = settings.metrics.listen.map(|_| {
            let names: Vec<String> = settings.apps.iter().map(|a| a.name.clone()).collect();
            Arc::new(Metrics::new(&names, settings.server.workers))
        });
        let providers = Providers::new(s, callback.as_ref())?;
        Ok(Self {
            otp: OtpStore::in_memory(&keys, o.ttl, o.max_attempts, o.length, clock.clone()),
            limiter: limits::in_memory(&settings.limits, clock.clone()),
            abuse: AbuseGuard::in_memory(&settings.limits, clock.clone()),
            provider_failures: crate::events::failure_log::FailureLogs::new(providers.names()),
            providers,
            deliveries: Deliveries::in_memory(
                o.ttl,
                s.fallback_after,
                s.delivery_timeout,
                clock.clone(),
            ),
            pumping: PumpingGuard::with_clock(settings.pumping.clone(), clock.clone()),
            clients: (0..settings.server.workers)
                .map(|_| proxy::client(settings.server.connect_timeout))
                .collect(),
            keys,
            clock,
            apps,
            settings,
            text: &EN,
            tunnels: proxy::Tunnels::default(),
            request_ids: Default::default(),
            audit: Audit::off(),
            access: crate::events::access::Access::off(),
            events: Events::default(),
            timers: Default::default(),
            metrics,
            store_health: Arc::new(crate::store::memory::MemoryHealth),
            stopping: Default::default(),
        })
    }

    /// Identifies an app's user: the key of their pending code and of
    /// their account lock.
    pub fn account_key(&self, app: usize, user: &str) -> [u8; 32] {
        self.keys
            .pending
            .of(&[&(app as u64).to_be_bytes(), user.as_bytes()])
    }

    /// Identifies a phone number for the limits, the delivery records and the
    /// audit log without keeping the number.
    pub fn number_id(&self, number: &crate::phone::Number) -> [u8; 32] {
        self.keys.phone.of(&[number.as_str().as_bytes()])
    }

    /// The upstream pool of `worker`.
    pub fn client(&self, worker: usize) -> &UpstreamClient {
        &self.clients[worker % self.clients.len()]
    }

    /// Identifies a client address for the per-address limits.
    pub fn ip_key(&self, ip: std::net::IpAddr) -> [u8; 32] {
        let bytes = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        self.keys.pending.of(&[b"client address", &bytes])
    }

    /// The app for a host name (lower-case, no port): an exact match first,
    /// then the catch-all `*`.
    pub fn app_for(&self, hostname: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(
                |a| matches!(&a.cfg.host, HostMatch::Exact(h) if h.eq_ignore_ascii_case(hostname)),
            )
            .or_else(|| self.apps.iter().find(|a| a.cfg.host == HostMatch::Any))
    }
}

#[cfg(test)]
mod tests {
    use super::is_ambiguous_path;

    #[test]
    fn dot_segments_and_encoded_separators_are_ambiguous() {
        for p in [
            "/static/../admin",
            "/static/%2e%2e/admin",
            "/static/..%2Fadmin",
            "/static\\..\\admin",
            "/static/./x",
            "/static/..;/admin",
            "/static/%252e%252e/admin",
            "/static/%00/../admin",
            "/static/\0x",
            "/static/%c0%ae%c0%ae/admin",
            "/static/%e0%80%ae/admin",
            "/static/%u002e%u002e/admin",
            "/static/.../admin",
            "/static/..../admin",
        ] {
            assert!(is_ambiguous_path(p), "{p}");
        }
        assert!(!is_ambiguous_path("/static/app.css"));
        assert!(!is_ambiguous_path("/static/v1.2/app..min.css"));
    }
}
