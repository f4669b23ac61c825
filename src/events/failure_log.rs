//! Repeated failures of one kind, logged as a few lines instead of one per
//! request: the first failure at once, then at most one summary per
//! interval with the count, and one line when it works again. An app that
//! is down under load would otherwise write a line per request (hundreds of
//! thousands in seconds), fill the disk and hide the line that matters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a failure that goes on is summarised.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// What to log about a failure, if anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The first failure after things worked: log it as it is.
    First,
    /// `count` more failures in the last `over` (the latest cause given).
    Summary { count: u64, over: Duration },
}

/// Things work again after `failed` failures over `over`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovered {
    pub failed: u64,
    pub over: Duration,
}

/// One kind of failure (one app's upstream, one provider).
#[derive(Default)]
pub struct FailureLog {
    /// Set while failing: a success costs one relaxed load otherwise.
    failing: AtomicBool,
    state: Mutex<Option<Failing>>,
}

struct Failing {
    since: Instant,
    /// Failures since the last line.
    unlogged: u64,
    /// All failures since `since`.
    total: u64,
    last_line: Instant,
}

impl FailureLog {
    /// Counts a failure at `now`; says what to log.
    pub fn failed(&self, now: Instant) -> Option<Line> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.failing.store(true, Ordering::Relaxed);
        match &mut *state {
            None => {
                *state = Some(Failing {
                    since: now,
                    unlogged: 0,
                    total: 1,
                    last_line: now,
                });
                Some(Line::First)
            }
            Some(f) => {
                f.total += 1;
                f.unlogged += 1;
                let over = now.saturating_duration_since(f.last_line);
                if over < INTERVAL {
                    return None;
                }
                let count = std::mem::take(&mut f.unlogged);
                f.last_line = now;
                Some(Line::Summary { count, over })
            }
        }
    }

    /// Notes a success at `now`; after failures, says how many there were.
    pub fn succeeded(&self, now: Instant) -> Option<Recovered> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.failing.store(false, Ordering::Relaxed);
        state.take().map(|f| Recovered {
            failed: f.total,
            over: now.saturating_duration_since(f.since),
        })
    }
}

/// One [`FailureLog`] per name fixed at start (each SMS provider).
#[derive(Default)]
pub struct FailureLogs(Vec<(&'static str, FailureLog)>);

impl FailureLogs {
    pub fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        Self(
            names
                .into_iter()
                .map(|n| (n, FailureLog::default()))
                .collect(),
        )
    }

    /// The log of `name`, if it is one of them.
    pub fn of(&self, name: &str) -> Option<&FailureLog> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, log)| log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_gives_one_line_then_a_summary_per_interval_then_a_recovery() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        assert_eq!(log.failed(t0), Some(Line::First));
        let mut lines = 0;
        for i in 1..=30_000u64 {
            // 30,000 failures over 25 s.
            let now = t0 + Duration::from_micros(i * 833);
            if log.failed(now).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 2, "a summary at 10 s and at 20 s");
        let back = log.succeeded(t0 + Duration::from_secs(26)).unwrap();
        assert_eq!(back.failed, 30_001);
        assert_eq!(back.over, Duration::from_secs(26));
        assert_eq!(log.succeeded(t0 + Duration::from_secs(27)), None);
        assert_eq!(log.failed(t0 + Duration::from_secs(28)), Some(Line::First));
    }

    #[test]
    fn a_summary_counts_the_failures_since_the_last_line() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        log.failed(t0);
        for s in 1..=9 {
            assert_eq!(log.failed(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(
            log.failed(t0 + Duration::from_secs(10)),
            Some(Line::Summary {
                count: 10,
                over: Duration::from_secs(10)
            })
        );
    }
}
