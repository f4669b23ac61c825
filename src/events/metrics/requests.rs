//! The request metrics, kept where a request costs least: per worker (the
//! gateway's threads never share these cache lines), per app and per
//! decision, resolved by index, so recording one request is two relaxed
//! atomic additions and no lookup, string or allocation. A scrape adds the
//! workers' cells up and hands them to `prometheus-client`'s encoder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// What became of a request, as its final response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed to the app.
    Pass,
    /// A navigation sent to the code page (303).
    CodePage,
    /// Anything else without a second factor: 401.
    Unauthorized,
    /// One of the gateway's own pages (code page, resend, status, assets).
    OwnRoute,
    /// A provider's delivery report.
    Webhook,
    /// `/.otpgate/healthz` or `/.otpgate/readyz`.
    Health,
    /// An error page (4xx or 5xx from the gateway itself).
    Error,
}

const OUTCOMES: [Outcome; 7] = [
    Outcome::Pass,
    Outcome::CodePage,
    Outcome::Unauthorized,
    Outcome::OwnRoute,
    Outcome::Webhook,
    Outcome::Health,
    Outcome::Error,
];

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::CodePage => "code_page",
            Self::Unauthorized => "unauthorized",
            Self::OwnRoute => "own_route",
            Self::Webhook => "webhook",
            Self::Health => "health",
            Self::Error => "error",
        }
    }

    /// Whether requests of an app can end this way (`app` set), or
    /// requests that no app answers (webhooks, health, unknown hosts).
    fn occurs(self, app: bool) -> bool {
        match self {
            Self::Pass | Self::CodePage | Self::Unauthorized | Self::OwnRoute => app,
            Self::Webhook | Self::Health => !app,
            Self::Error => true,
        }
    }
}

/// Upper bounds of the latency buckets, in seconds: from a proxied request
/// on loopback (under a millisecond) to the upstream timeout's range.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds, for the comparison on the hot path.
const BOUNDS_NS: [u64; 14] = {
    let mut ns = [0u64; 14];
    let mut i = 0;
    while i < 14 {
        ns[i] = (LATENCY_BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    ns
};

/// One histogram's cells: a count per bucket (the last is `+Inf`) and the
/// sum; the count of requests is the buckets' total.
#[derive(Default)]
struct Cells {
    buckets: [AtomicU64; 15],
    sum_ns: AtomicU64,
}

/// One app's cells (or those of requests without an app) in one worker,
/// aligned so that two workers' rows never share a cache line.
#[derive(Default)]
#[repr(align(128))]
struct Row([Cells; OUTCOMES.len()]);

/// The request metrics of every worker.
pub struct Requests {
    /// `workers × (apps + 1)` rows; the last row of each worker is for
    /// requests that no app answers.
    rows: Box<[Row]>,
    apps: Box<[String]>,
    workers: usize,
}

impl Requests {
    pub fn new(apps: &[String], workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            rows: (0..workers * (apps.len() + 1))
                .map(|_| Row::default())
                .collect(),
            apps: apps.into(),
            workers,
        }
    }

    /// Counts one request of `app` (its index; `None`: no app) that ended
    /// as `outcome` after `took`, on `worker`'s cells.
    pub fn record(&self, worker: usize, app: Option<usize>, outcome: Outcome, took: Duration) {
        let per_worker = self.apps.len() + 1;
        let app = app
            .filter(|&a| a < self.apps.len())
            .unwrap_or(self.apps.len());
        let row = &self.rows[(worker % self.workers) * per_worker + app];
        let cells = &row.0[outcome as usize];
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // `le` is inclusive: the first bound at or above the time.
        let bucket = BOUNDS_NS.partition_point(|&b| b < ns);
        cells.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        cells.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The workers' cells of one app and outcome, added up: the buckets
    /// (not cumulative), the count and the sum in seconds.
    fn total(&self, app: usize, outcome: Outcome) -> ([(f64, u64); 15], u64, f64) {
        let per_worker = self.apps.len() + 1;
        let mut buckets = [(f64::INFINITY, 0u64); 15];
        for (b, bound) in buckets.iter_mut().zip(LATENCY_BOUNDS) {
            b.0 = bound;
        }
        let mut sum_ns = 0u64;
        for w in 0..self.workers {
            let cells = &self.rows[w * per_worker + app].0[outcome as usize];
            for (b, cell) in buckets.iter_mut().zip(&cells.buckets) {
                b.1 += cell.load(Ordering::Relaxed);
            }
            sum_ns = sum_ns.wrapping_add(cells.sum_ns.load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|b| b.1).sum();
        (buckets, count, sum_ns as f64 / 1e9)
    }

    /// Every (app index, app label, outcome) that can occur.
    fn series(&self) -> impl Iterator<Item = (usize, &str, Outcome)> {
        let named = self.apps.iter().map(String::as_str).enumerate();
        let none = std::iter::once((self.apps.len(), ""));
        named.chain(none).flat_map(move |(i, name)| {
            OUTCOMES
                .into_iter()
                .filter(move |o| o.occurs(i < self.apps.len()))
                .map(move |o| (i, name, o))
        })
    }
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("apps", &self.apps)
            .field("workers", &self.workers)
            .finish()
    }
}

/// Encodes `otpgate_requests_total` and `otpgate_request_duration_seconds`
/// from the same cells.
impl Collector for Requests {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "otpgate_requests",
                "Requests by app and by what the gateway made of them (decision), counted when the response is final",
                None,
                MetricType::Counter,
            )?;
            for (i, app, outcome) in self.series() {
                let labels = [("app", app), ("decision", outcome.as_str())];
                let (_, count, _) = self.total(i, outcome);
                family
                    .encode_family(&labels.as_slice())?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "otpgate_request_duration_seconds",
            "Time from the request's head to the final response's head, by app and decision",
            None,
            MetricType::Histogram,
        )?;
        for (i, app, outcome) in self.series() {
            let labels = [("app", app), ("decision", outcome.as_str())];
            let (buckets, count, sum) = self.total(i, outcome);
            family
                .encode_family(&labels.as_slice())?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_the_first_bucket_at_or_above_its_time_and_workers_add_up() {
        let r = Requests::new(&["CRM".into()], 2);
        r.record(0, Some(0), Outcome::Pass, Duration::from_micros(500));
        r.record(1, Some(0), Outcome::Pass, Duration::from_millis(3));
        r.record(1, None, Outcome::Health, Duration::from_secs(60));
        let (buckets, count, sum) = r.total(0, Outcome::Pass);
        assert_eq!(count, 2);
        assert_eq!(buckets[0], (0.0005, 1), "le is inclusive");
        assert_eq!(buckets[3], (0.005, 1));
        assert!((sum - 0.0035).abs() < 1e-9);
        let (buckets, count, _) = r.total(1, Outcome::Health);
        assert_eq!((count, buckets[14]), (1, (f64::INFINITY, 1)));
    }
}
