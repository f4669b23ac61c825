//! The OTP-pumping guard (SMS toll fraud). Pumpers make a service text
//! premium-rate numbers they share revenue on; those messages are never
//! answered. So the guard counts, per destination country and per number
//! prefix (the E.164 number without its last four digits), the codes sent
//! and the codes verified over a sliding window. A country or prefix that
//! has had `min_sends` codes with less than `min_conversion` of them
//! verified is quarantined: no more codes go there until the quarantine
//! ends or an admin lifts it. A send is judged only once it is
//! `answer_time` old: until then its code may still be typed in.
//! Countries also have an hourly cap. In `monitor` mode all of this is
//! logged and nothing is refused.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use moka::sync::Cache;

use crate::audit::{Audit, Record};
use crate::config::{PumpingMode, PumpingSettings};
use crate::limits::{Limited, Window};
use crate::phone::Number;
use crate::store::{self, SharedClock, SlidingWindow, Spec, ms};

/// Ticks per sliding window: the window moves in steps of 1/30 of its
/// length (at least a second).
const SLOTS: u32 = 30;
const HOUR: Duration = Duration::from_secs(3600);
/// Distinct countries and prefixes tracked at once; the least recently used
/// are forgotten first. Numbers come from the app's user records, so an
/// attacker needs an account per number to spread over many prefixes.
const MAX_TRACKED: u64 = 50_000;

/// What the guard counts for one country or prefix: sliding windows in
/// fixed ticks (bounded memory per key).
#[derive(Default)]
struct Tally {
    /// Over `window`, for the conversion rule.
    sends: SlidingWindow,
    verified: SlidingWindow,
    /// Sends over the last hour, for the country cap.
    hour: SlidingWindow,
}

/// Whether a key is a country or a number prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Country,
    Prefix,
}

#[derive(Debug, Clone)]
struct Quarantine {
    scope: Scope,
    /// Ms since the Unix epoch.
    until: u64,
    why: String,
}

/// A quarantine as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuarantineView {
    /// A region code ("NG") or a number prefix ("+234803123").
    pub key: String,
    pub scope: Scope,
    pub why: String,
    pub seconds_left: u64,
    /// False in monitor mode: the quarantine is only logged.
    pub enforced: bool,
}

/// How long a number that entered a right code passes the guard.
const PROVEN_FOR: Duration = Duration::from_secs(7 * 86_400);

pub struct PumpingGuard {
    cfg: PumpingSettings,
    tallies: Cache<String, Arc<Mutex<Tally>>>,
    /// The shapes of the conversion window and of the hour.
    judged: Spec,
    hour: Spec,
    quarantines: Cache<String, Arc<Quarantine>>,
    clock: SharedClock,
    /// Where `pumping.quarantine` records go, once the gateway opened it.
    audit: OnceLock<Audit>,
    /// Numbers (keyed hashes) that entered a right code lately: pumped
    /// numbers never do, so these always pass. Without this, a few stolen
    /// passwords, each good for unverified sends to its owner's real phone,
    /// could get the company's home country quarantined for everyone.
    /// With when that ends (ms).
    proven: Cache<[u8; 32], u64>,
}

/// The prefix of a number: E.164 without its last four digits, so that one
/// key covers a range of 10,000 numbers and no key is a whole number.
pub fn prefix(number: &Number) -> &str {
    let e164 = number.as_str();
    &e164[..e164.len().saturating_sub(4).max(1)]
}

impl PumpingGuard {
    /// A guard timed by the system clock.
    pub fn new(cfg: PumpingSettings) -> Self {
        Self::with_clock(cfg, store::system_clock())
    }

    pub fn with_clock(cfg: PumpingSettings, clock: SharedClock) -> Self {
        Self {
            judged: Spec::new(cfg.window, cfg.window / SLOTS),
            hour: Spec::new(HOUR, HOUR / SLOTS),
            tallies: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_idle(cfg.window.max(HOUR))
                .build(),
            quarantines: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(cfg.quarantine)
                .build(),
            cfg,
            clock,
            audit: OnceLock::new(),
            proven: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(PROVEN_FOR)
                .build(),
        }
    }

    /// Sends each new quarantine to the audit log too.
    pub fn audit_to(&self, audit: Audit) {
        let _ = self.audit.set(audit);
    }

    /// Whether a code may be sent to `number`; in monitor mode always yes,
    /// with a log line for what would have been refused.
    pub fn check(&self, number: &Number, number_id: &[u8; 32]) -> Result<(), Limited> {
        let now = self.clock.now_ms();
        if self.proven.get(number_id).is_some_and(|until| until > now) {
            return Ok(());
        }
        self.check_at(number, now)
    }

    /// Counts a code that went out (or may have) to `number`.
    pub fn record_send(&self, number: &Number) {
        self.record_at(number, self.clock.now_ms(), 1, 0);
    }

    /// Counts a code to `number` that was entered correctly.
    pub fn record_verified(&self, number: &Number, number_id: &[u8; 32]) {
        let now = self.clock.now_ms();
        if self.cfg.mode != PumpingMode::Off {
            self.proven
                .insert(*number_id, now.saturating_add(ms(PROVEN_FOR)));
        }
        self.record_at(number, now, 0, 1);
    }

    fn keys(number: &Number) -> [(Scope, &str); 2] {
        [
            (Scope::Prefix, prefix(number)),
            (Scope::Country, number.country_code()),
        ]
    }

    fn tally(&self, key: &str) -> Arc<Mutex<Tally>> {
        self.tallies.get_with_by_ref(key, Default::default)
    }

    fn record_at(&self, number: &Number, now: u64, sends: u32, verified: u32) {
        if self.cfg.mode == PumpingMode::Off {
            return;
        }
        for (_, key) in Self::keys(number) {
            let tally = self.tally(key);
            let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
            if sends > 0 {
                tally.sends.add(&self.judged, now, sends);
                tally.hour.add(&self.hour, now, sends);
            }
            if verified > 0 {
                tally.verified.add(&self.judged, now, verified);
            }
        }
    }

    fn check_at(&self, number: &Number, now: u64) -> Result<(), Limited> {
        if self.cfg.mode == PumpingMode::Off {
            return Ok(());
        }
        for (scope, key) in Self::keys(number) {
            if let Some(q) = self.quarantines.get(key) {
                let wait = Duration::from_millis(q.until.saturating_sub(now));
                if !wait.is_zero() {
                    // Not the key: a prefix beside this user's masked number elsewhere
                    // would make the whole number; the quarantine line names it once.
                    tracing::info!(event = "pumping.refused", scope = ?scope, mode = ?self.cfg.mode, why = %q.why, "send to a quarantined destination");
                    return self.refuse(wait);
                }
            }
            let tally = self.tally(key);
            let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
            // The sends at least `answer_time` old (whole ticks, so a send
            // may be up to one tick older before it counts), and every
            // verification. A code that may still be typed in is not
            // unanswered yet: judging it would quarantine an office's range
            // at 9:00, when twenty colleagues got codes and none has entered
            // one yet.
            let sends = tally
                .sends
                .count_older_than(&self.judged, now, self.cfg.answer_time);
            let verified = tally.verified.count(&self.judged, now);
            let min = self.cfg.min_conversion;
            if sends >= self.cfg.min_sends && f64::from(verified) < min * f64::from(sends) {
                let why = format!(
                    "{verified} of {sends} codes verified in the last {}, below the minimum of {:.0}%",
                    humantime::format_duration(self.cfg.window),
                    min * 100.0
                );
                // A quarantined prefix's sends are explained: its country is
                // judged on the rest, so lifting the prefix does not at once
                // quarantine the whole country for the same sends (a pumper
                // spread over many prefixes still adds up there).
                if scope == Scope::Prefix {
                    let country = self.tally(number.country_code());
                    let mut country = country.lock().unwrap_or_else(|p| p.into_inner());
                    country.sends.subtract(&tally.sends);
                    country.verified.subtract(&tally.verified);
                }
                // A quarantined key starts afresh afterwards: it is judged
                // again only after another `min_sends` codes.
                tally.sends.clear();
                tally.verified.clear();
                drop(tally);
                self.quarantine(scope, key, sends, verified, why, now);
                return self.refuse(self.cfg.quarantine);
            }
            if scope == Scope::Country {
                let cap = self.cfg.country_cap(key);
                let in_hour = tally.hour.count(&self.hour, now);
                if in_hour >= cap {
                    tracing::warn!(
                        event = "pumping.country_cap", country = key, sends = in_hour, cap, mode = ?self.cfg.mode,
                        "{}the country has reached its hourly cap of codes", self.prefix_for_mode()
                    );
                    return self.refuse(tally.hour.until_oldest_leaves(&self.hour, now));
                }
            }
        }
        Ok(())
    }

    fn quarantine(
        &self,
        scope: Scope,
        key: &str,
        sends: u32,
        verified: u32,
        why: String,
        now: u64,
    ) {
        let q = Quarantine {
            scope,
            until: now.saturating_add(ms(self.cfg.quarantine)),
            why,
        };
        let entry = self
            .quarantines
            .entry_by_ref(key)
            .or_insert_with(|| Arc::new(q));
        if entry.is_fresh() {
            let q = entry.value();
            tracing::warn!(
                event = "pumping.quarantine", scope = ?scope, key, sends, verified,
                quarantine_s = self.cfg.quarantine.as_secs(), mode = ?self.cfg.mode,
                "{}possible SMS pumping: {}", self.prefix_for_mode(), q.why
            );
            if let Some(audit) = self.audit.get() {
                let (country, prefix) = match scope {
                    Scope::Country => (Some(key.to_string()), None),
                    Scope::Prefix => (None, Some(key.to_string())),
                };
                audit.emit(|| Record {
                    country,
                    prefix,
                    reason: Some(Cow::Owned(q.why.clone())),
                    outcome: Some(Cow::Borrowed(match self.cfg.mode {
                        PumpingMode::Enforce => "quarantined",
                        _ => "monitor_only",
                    })),
                    ..Record::new("pumping.quarantine")
                });
            }
        }
    }

    fn prefix_for_mode(&self) -> &'static str {
        match self.cfg.mode {
            PumpingMode::Monitor => "monitor mode, nothing refused: ",
            _ => "",
        }
    }

    fn refuse(&self, wait: Duration) -> Result<(), Limited> {
        match self.cfg.mode {
            PumpingMode::Enforce => Err(Limited {
                window: Window::Pumping,
                wait,
            }),
            PumpingMode::Monitor | PumpingMode::Off => Ok(()),
        }
    }

    /// The quarantines in force (or, in monitor mode, that would be).
    pub fn quarantines(&self) -> Vec<QuarantineView> {
        let now = self.clock.now_ms();
        let mut list: Vec<QuarantineView> = self
            .quarantines
            .iter()
            .filter(|(_, q)| q.until > now)
            .map(|(key, q)| QuarantineView {
                key: key.to_string(),
                scope: q.scope,
                why: q.why.clone(),
                seconds_left: (q.until - now).div_ceil(1000),
                enforced: self.cfg.mode == PumpingMode::Enforce,
            })
            .collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// Ends a quarantine at once; `false` if there was none.
    pub fn lift(&self, key: &str) -> bool {
        let live = self
            .quarantines
            .remove(key)
            .is_some_and(|q| q.until > self.clock.now_ms());
        if live {
            tracing::warn!(
                event = "pumping.lifted",
                key,
                "quarantine lifted by an admin"
            );
        }
        live
    }
}

#[cfg(test)]
mod tests;
