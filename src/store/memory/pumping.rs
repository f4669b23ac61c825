//! The pumping guard's counters in moka: three sliding windows per country
//! or prefix under one lock, quarantines and proven numbers with their
//! ends compared with the caller's moment (moka TTL only frees memory).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;

use super::{Shared, lock};
use crate::store::pumping::{Judgement, PumpingCounters, Quarantine, Rule};
use crate::store::{SlidingWindow, Spec, StoreFuture};

/// Ticks per sliding window: the window moves in steps of 1/30 of its
/// length (at least a second).
const SLOTS: u32 = 30;
const HOUR: Duration = Duration::from_secs(3600);
/// How long a number that entered a right code passes the guard.
const PROVEN_FOR: Duration = Duration::from_secs(7 * 86_400);

/// What is counted for one country or prefix.
#[derive(Default)]
struct Tally {
    /// Over the conversion window.
    sends: SlidingWindow,
    verified: SlidingWindow,
    /// Sends over the last hour, for the country cap.
    hour: SlidingWindow,
}

pub struct MemoryPumping {
    tallies: Cache<String, Shared<Tally>>,
    quarantines: Cache<String, Arc<Quarantine>>,
    /// With when each stops passing (ms).
    proven: Cache<[u8; 32], u64>,
    judged: Spec,
    hour: Spec,
}

impl MemoryPumping {
    /// `tracked`: distinct countries and prefixes kept at once (the least
    /// recently used go first); `window` the conversion window.
    pub fn new(tracked: u64, window: Duration, quarantine: Duration) -> Self {
        Self {
            tallies: Cache::builder()
                .max_capacity(tracked)
                .time_to_idle(window.max(HOUR))
                .build(),
            quarantines: Cache::builder()
                .max_capacity(tracked)
                .time_to_live(quarantine)
                .build(),
            proven: Cache::builder()
                .max_capacity(tracked)
                .time_to_live(PROVEN_FOR)
                .build(),
            judged: Spec::new(window, window / SLOTS),
            hour: Spec::new(HOUR, HOUR / SLOTS),
        }
    }

    fn tally(&self, key: &str) -> Shared<Tally> {
        self.tallies
            .get_with_by_ref(key, || Arc::new(Mutex::new(Tally::default())))
    }

    fn record_now(&self, key: &str, now: u64, sends: u32, verified: u32) {
        let tally = self.tally(key);
        let mut tally = lock(&tally);
        if sends > 0 {
            tally.sends.add(&self.judged, now, sends);
            tally.hour.add(&self.hour, now, sends);
        }
        if verified > 0 {
            tally.verified.add(&self.judged, now, verified);
        }
    }

    fn judge_now(&self, key: &str, country: Option<&str>, now: u64, rule: Rule) -> Judgement {
        let tally = self.tally(key);
        let mut tally = lock(&tally);
        // The sends at least `answer_time` old (whole ticks, so a send may
        // be up to one tick older before it counts), and every verification.
        // A code that may still be typed in is not unanswered yet: judging
        // it would quarantine an office's range at 9:00, when twenty
        // colleagues got codes and none has entered one yet.
        let sends = tally
            .sends
            .count_older_than(&self.judged, now, rule.answer_time);
        let verified = tally.verified.count(&self.judged, now);
        if sends >= rule.min_sends && f64::from(verified) < rule.min_conversion * f64::from(sends) {
            // A quarantined prefix's sends are explained: its country is
            // judged on the rest, so lifting the prefix does not at once
            // quarantine the whole country for the same sends (a pumper
            // spread over many prefixes still adds up there).
            if let Some(country) = country {
                let other = self.tally(country);
                let mut other = lock(&other);
                other.sends.subtract(&tally.sends);
                other.verified.subtract(&tally.verified);
            }
            // A quarantined key starts afresh afterwards: it is judged
            // again only after another `min_sends` codes.
            tally.sends.clear();
            tally.verified.clear();
            return Judgement::Below { sends, verified };
        }
        Judgement::Within {
            hour_sends: tally.hour.count(&self.hour, now),
            hour_wait: tally.hour.until_oldest_leaves(&self.hour, now),
        }
    }
}

impl PumpingCounters for MemoryPumping {
    fn record<'a>(
        &'a self,
        key: &'a str,
        now: u64,
        sends: u32,
        verified: u32,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.record_now(key, now, sends, verified) })
    }

    fn judge<'a>(
        &'a self,
        key: &'a str,
        country: Option<&'a str>,
        now: u64,
        rule: Rule,
    ) -> StoreFuture<'a, Judgement> {
        Box::pin(async move { self.judge_now(key, country, now, rule) })
    }

    fn quarantine<'a>(&'a self, key: &'a str, q: Quarantine) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.quarantines
                .entry_by_ref(key)
                .or_insert_with(|| Arc::new(q))
                .is_fresh()
        })
    }

    fn quarantined<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Quarantine>> {
        Box::pin(async move {
            self.quarantines
                .get(key)
                .filter(|q| q.until > now)
                .map(|q| (*q).clone())
        })
    }

    fn quarantines(&self, now: u64) -> StoreFuture<'_, Vec<(String, Quarantine)>> {
        Box::pin(async move {
            self.quarantines
                .iter()
                .filter(|(_, q)| q.until > now)
                .map(|(key, q)| (key.to_string(), (*q).clone()))
                .collect()
        })
    }

    fn lift<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.quarantines.remove(key).is_some_and(|q| q.until > now) })
    }

    fn prove<'a>(&'a self, number_id: &'a [u8; 32], until: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.proven.insert(*number_id, until) })
    }

    fn is_proven<'a>(&'a self, number_id: &'a [u8; 32], now: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.proven.get(number_id).is_some_and(|until| until > now) })
    }
}
