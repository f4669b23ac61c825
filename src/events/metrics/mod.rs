//! Prometheus metrics (`[metrics] listen`), with `prometheus-client`: the
//! registry, its families, and the handles the gateway records into.
//!
//! Three kinds of sources feed them. Requests are recorded where the
//! response is final (`server::service::handle`), into per-worker cells
//! resolved by index ([`requests`]); who-am-I calls and upstream errors into
//! handles resolved per app at start-up; everything about codes arrives as
//! [`OtpEvent`](super::OtpEvent)s, through the [`Sink`](super::Sink) in
//! [`sink`], like the log line and the audit record.
//!
//! No label ever holds a user, a number, an address, a session or a message
//! id: only names from the configuration (apps, providers) and fixed words.

pub mod requests;
mod sink;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::error::GateError;

pub use requests::{Outcome, Requests};

/// The `Content-Type` of the OpenMetrics text format, for a scraper that
/// asks for it.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format (0.0.4), the default.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a who-am-I call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhoAmI {
    User,
    Anonymous,
    Unreachable,
    Timeout,
    /// An answer the rules could not read (or an error status).
    Unusable,
}

const WHOAMI: [WhoAmI; 5] = [
    WhoAmI::User,
    WhoAmI::Anonymous,
    WhoAmI::Unreachable,
    WhoAmI::Timeout,
    WhoAmI::Unusable,
];

impl WhoAmI {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Anonymous => "anonymous",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Unusable => "unusable",
        }
    }

    /// The result of a failed call.
    pub fn of_error(err: &GateError) -> Self {
        match err {
            GateError::UpstreamUnreachable(_) => Self::Unreachable,
            GateError::UpstreamTimeout => Self::Timeout,
            _ => Self::Unusable,
        }
    }
}

/// How the app failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Unreachable,
    Timeout,
    /// An answer the gateway cannot pass on.
    BadResponse,
    /// A who-am-I answer that could not be used.
    IdentityUnusable,
}

const UPSTREAM_ERRORS: [UpstreamError; 4] = [
    UpstreamError::Unreachable,
    UpstreamError::Timeout,
    UpstreamError::BadResponse,
    UpstreamError::IdentityUnusable,
];

impl UpstreamError {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::BadResponse => "bad_response",
            Self::IdentityUnusable => "identity_unusable",
        }
    }

    /// The kind of a request's error, if the app caused it.
    pub fn of(err: &GateError) -> Option<Self> {
        match err {
            GateError::UpstreamUnreachable(_) => Some(Self::Unreachable),
            GateError::UpstreamTimeout => Some(Self::Timeout),
            GateError::BadUpstream(_) => Some(Self::BadResponse),
            GateError::IdentityUnusable(_) => Some(Self::IdentityUnusable),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppResult {
    app: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppKind {
    app: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    app: String,
    channel: &'static str,
    provider: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    provider: &'static str,
    channel: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderChannel {
    provider: &'static str,
    channel: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailoverLabels {
    channel: &'static str,
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    action: &'static str,
    window: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuarantineLabels {
    scope: &'static str,
    mode: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Who-am-I calls take a round trip to the app: the request buckets.
fn whoami_histogram() -> Histogram {
    Histogram::new(requests::LATENCY_BOUNDS)
}

/// Delivery takes seconds (SMS) to minutes (a phone out of coverage).
fn delivery_histogram() -> Histogram {
    Histogram::new([
        1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ])
}

/// One app's who-am-I handles, by [`WhoAmI`].
struct WhoAmIHandles {
    calls: [Counter; WHOAMI.len()],
    seconds: [Histogram; WHOAMI.len()],
}

/// The gateway's metrics: present in the state only when `[metrics]` is on.
pub struct Metrics {
    registry: Registry,
    pub requests: Arc<Requests>,
    whoami: Box<[WhoAmIHandles]>,
    upstream_errors: Box<[[Counter; UPSTREAM_ERRORS.len()]]>,
    codes_sent: Family<SendLabels, Counter>,
    code_checks: Family<AppResult, Counter>,
    account_locks: Family<AppLabel, Counter>,
    delivery_reports: Family<ReportLabels, Counter>,
    delivery_seconds: Histograms<ProviderChannel>,
    failovers: Family<FailoverLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    quarantines: Family<QuarantineLabels, Counter>,
}

impl Metrics {
    /// The metrics of a gateway serving `apps` (their names) on `workers`
    /// threads; every series that is known in advance starts at zero.
    pub fn new(apps: &[String], workers: usize) -> Self {
        let mut registry = Registry::default();
        let requests = Arc::new(Requests::new(apps, workers));
        registry.register_collector(Box::new(requests.clone()));
        let whoami_calls = Family::<AppResult, Counter>::default();
        let whoami_seconds: Histograms<AppResult> = Family::new_with_constructor(whoami_histogram);
        let upstream = Family::<AppKind, Counter>::default();
        let code_checks = Family::<AppResult, Counter>::default();
        let whoami = apps
            .iter()
            .map(|app| {
                let at = |r: WhoAmI| AppResult {
                    app: app.clone(),
                    result: r.as_str(),
                };
                WhoAmIHandles {
                    calls: WHOAMI.map(|r| whoami_calls.get_or_create_owned(&at(r))),
                    seconds: WHOAMI.map(|r| whoami_seconds.get_or_create_owned(&at(r))),
                }
            })
            .collect();
        let upstream_errors = apps
            .iter()
            .map(|app| {
                UPSTREAM_ERRORS.map(|k| {
                    upstream.get_or_create_owned(&AppKind {
                        app: app.clone(),
                        kind: k.as_str(),
                    })
                })
            })
            .collect();
        for app in apps {
            for result in sink::CHECK_RESULTS {
                let _ = code_checks.get_or_create(&AppResult {
                    app: app.clone(),
                    result,
                });
            }
        }
        let m = Self {
            requests,
            whoami,
            upstream_errors,
            codes_sent: Family::default(),
            code_checks,
            account_locks: Family::default(),
            delivery_reports: Family::default(),
            delivery_seconds: Family::new_with_constructor(delivery_histogram),
            failovers: Family::default(),
            rate_limited: Family::default(),
            quarantines: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "otpgate_upstream_errors",
            "Requests the app failed, by app and kind",
            upstream,
        );
        r.register(
            "otpgate_whoami_calls",
            "Calls to an app's who-am-I path (cache misses), by app and result",
            whoami_calls,
        );
        r.register(
            "otpgate_whoami_duration_seconds",
            "Time a who-am-I call took, by app and result",
            whoami_seconds,
        );
        r.register(
            "otpgate_codes_sent",
            "Messages with a code handed to a provider, by app, channel, provider and result (accepted, uncertain, error)",
            m.codes_sent.clone(),
        );
        r.register(
            "otpgate_code_checks",
            "Codes entered, by app and result (right, wrong, expired, locked)",
            m.code_checks.clone(),
        );
        r.register(
            "otpgate_account_locks",
            "Accounts locked after account_failure_cap consecutive wrong codes, by app",
            m.account_locks.clone(),
        );
        r.register(
            "otpgate_delivery_reports",
            "Providers' delivery reports, by provider, channel and status",
            m.delivery_reports.clone(),
        );
        r.register(
            "otpgate_delivery_duration_seconds",
            "Time from the provider accepting a message to its delivered report, by provider and channel",
            m.delivery_seconds.clone(),
        );
        r.register(
            "otpgate_provider_failovers",
            "Messages a provider failed and the next one tried, by channel and provider (from, to)",
            m.failovers.clone(),
        );
        r.register(
            "otpgate_rate_limited",
            "Sends and code checks refused by a limit, by action (send, check) and window",
            m.rate_limited.clone(),
        );
        r.register(
            "otpgate_pumping_quarantines",
            "Countries and number prefixes quarantined by the pumping guard, by scope and mode (monitor: nothing refused)",
            m.quarantines.clone(),
        );
        r.register(
            "otpgate_build",
            "The running otpgate's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self { registry, ..m }
    }

    /// Counts a who-am-I call of the app with index `app`.
    pub fn whoami(&self, app: usize, result: WhoAmI, took: Duration) {
        if let Some(h) = self.whoami.get(app) {
            let i = WHOAMI.iter().position(|r| *r == result).unwrap_or(0);
            h.calls[i].inc();
            h.seconds[i].observe(took.as_secs_f64());
        }
    }

    /// Counts a request the app with index `app` failed.
    pub fn upstream_error(&self, app: usize, kind: UpstreamError) {
        if let Some(c) = self.upstream_errors.get(app) {
            let i = UPSTREAM_ERRORS.iter().position(|k| *k == kind).unwrap_or(0);
            c[i].inc();
        }
    }

    /// The exposition: OpenMetrics when asked for, else the Prometheus
    /// text format; both written by `prometheus-client`.
    pub fn encode(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_counters_with_total_and_durations_in_seconds() {
        let m = Metrics::new(&["CRM".into()], 2);
        m.requests
            .record(1, Some(0), Outcome::Pass, Duration::from_millis(2));
        m.whoami(0, WhoAmI::User, Duration::from_millis(3));
        m.upstream_error(0, UpstreamError::Timeout);
        let text = m.encode(false).unwrap();
        for line in [
            "# TYPE otpgate_requests_total counter",
            "otpgate_requests_total{app=\"CRM\",decision=\"pass\"} 1",
            "otpgate_requests_total{app=\"\",decision=\"health\"} 0",
            "# TYPE otpgate_request_duration_seconds histogram",
            "otpgate_request_duration_seconds_bucket{app=\"CRM\",decision=\"pass\",le=\"0.0025\"} 1",
            "otpgate_request_duration_seconds_bucket{app=\"CRM\",decision=\"pass\",le=\"+Inf\"} 1",
            "otpgate_request_duration_seconds_count{app=\"CRM\",decision=\"pass\"} 1",
            "otpgate_whoami_calls_total{app=\"CRM\",result=\"user\"} 1",
            "otpgate_whoami_duration_seconds_count{app=\"CRM\",result=\"user\"} 1",
            "otpgate_upstream_errors_total{app=\"CRM\",kind=\"timeout\"} 1",
            "otpgate_code_checks_total{app=\"CRM\",result=\"right\"} 0",
            "otpgate_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
        assert!(m.encode(true).unwrap().ends_with("# EOF\n"), "OpenMetrics");
    }
}
