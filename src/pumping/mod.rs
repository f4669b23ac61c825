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

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::{PumpingMode, PumpingSettings};
use crate::events::{Events, OtpEvent, Who};
use crate::limits::{Limited, Window};
use crate::phone::Number;

/// Slots per sliding window: the window moves in steps of 1/30 of its length.
const SLOTS: usize = 30;
const HOUR: Duration = Duration::from_secs(3600);
/// Distinct countries and prefixes tracked at once; the least recently used
/// are forgotten first. Numbers come from the app's user records, so an
/// attacker needs an account per number to spread over many prefixes.
const MAX_TRACKED: u64 = 50_000;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Which step of time this slot counts; an older one is stale.
    step: u64,
    sends: u32,
    verified: u32,
}

/// Counts over a sliding window, in fixed slots (bounded memory per key).
#[derive(Debug, Clone)]
struct Slots {
    slots: [Slot; SLOTS],
    width: Duration,
}

impl Slots {
    fn new(window: Duration) -> Self {
        Self {
            slots: [Slot::default(); SLOTS],
            width: (window / SLOTS as u32).max(Duration::from_millis(1)),
        }
    }

    fn step(&self, since_epoch: Duration) -> u64 {
        (since_epoch.as_nanos() / self.width.as_nanos()) as u64
    }

    fn add(&mut self, since_epoch: Duration, sends: u32, verified: u32) {
        let step = self.step(since_epoch);
        let slot = &mut self.slots[step as usize % SLOTS];
        if slot.step != step {
            *slot = Slot {
                step,
                ..Slot::default()
            };
        }
        slot.sends += sends;
        slot.verified += verified;
    }

    fn live(&self, since_epoch: Duration) -> impl Iterator<Item = &Slot> {
        let now = self.step(since_epoch);
        self.slots
            .iter()
            .filter(move |s| s.step <= now && now - s.step < SLOTS as u64)
    }

    /// Sends and verifications in the window.
    fn sums(&self, since_epoch: Duration) -> (u32, u32) {
        self.live(since_epoch)
            .fold((0, 0), |(s, v), slot| (s + slot.sends, v + slot.verified))
    }

    /// The sends in the window that are at least `answer_time` old (whole
    /// slots only, so a send may be up to one slot older before it counts),
    /// and every verification in it. A code that may still be typed in is
    /// not unanswered yet: judging it would quarantine an office's range at
    /// 9:00, when twenty colleagues got codes and none has entered one yet.
    fn judged(&self, since_epoch: Duration, answer_time: Duration) -> (u32, u32) {
        let settled = self.step(since_epoch.saturating_sub(answer_time));
        self.live(since_epoch).fold((0, 0), |(s, v), slot| {
            let old_enough = answer_time.is_zero() || slot.step < settled;
            (
                s + if old_enough { slot.sends } else { 0 },
                v + slot.verified,
            )
        })
    }

    /// How long until the oldest counted send leaves the window.
    fn until_oldest_leaves(&self, since_epoch: Duration) -> Duration {
        let oldest = self
            .live(since_epoch)
            .filter(|s| s.sends > 0)
            .map(|s| s.step)
            .min()
            .unwrap_or(self.step(since_epoch));
        let steps = u32::try_from(oldest + SLOTS as u64).unwrap_or(u32::MAX);
        let leaves = self.width.saturating_mul(steps);
        leaves.saturating_sub(since_epoch)
    }

    /// Takes away what `part` counted. Both must have the same width and
    /// have been counted at the same moments, as a prefix and its country are.
    fn subtract(&mut self, part: &Slots) {
        for (mine, theirs) in self.slots.iter_mut().zip(&part.slots) {
            if mine.step == theirs.step {
                mine.sends = mine.sends.saturating_sub(theirs.sends);
                mine.verified = mine.verified.saturating_sub(theirs.verified);
            }
        }
    }

    fn clear(&mut self) {
        self.slots = [Slot::default(); SLOTS];
    }
}

/// What the guard counts for one country or prefix.
struct Tally {
    /// Over `window`, for the conversion rule.
    judged: Slots,
    /// Sends over the last hour, for the country cap.
    hour: Slots,
}

pub use crate::events::Scope;

#[derive(Debug, Clone)]
struct Quarantine {
    scope: Scope,
    until: Instant,
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
    quarantines: Cache<String, Arc<Quarantine>>,
    epoch: Instant,
    /// Where the guard's events go, once the gateway gave its sinks.
    events: OnceLock<Events>,
    /// Numbers (keyed hashes) that entered a right code lately: pumped
    /// numbers never do, so these always pass. Without this, a few stolen
    /// passwords, each good for unverified sends to its owner's real phone,
    /// could get the company's home country quarantined for everyone.
    proven: Cache<[u8; 32], ()>,
}

/// The prefix of a number: E.164 without its last four digits, so that one
/// key covers a range of 10,000 numbers and no key is a whole number.
pub fn prefix(number: &Number) -> &str {
    let e164 = number.as_str();
    &e164[..e164.len().saturating_sub(4).max(1)]
}

impl PumpingGuard {
    pub fn new(cfg: PumpingSettings) -> Self {
        Self {
            tallies: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_idle(cfg.window.max(HOUR))
                .build(),
            quarantines: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(cfg.quarantine)
                .build(),
            cfg,
            epoch: Instant::now(),
            events: OnceLock::new(),
            proven: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_live(PROVEN_FOR)
                .build(),
        }
    }

    /// Sends the guard's events (quarantines, refusals, caps) to the
    /// gateway's sinks; before this, to the log alone.
    pub fn events_to(&self, events: Events) {
        let _ = self.events.set(events);
    }

    fn emit(&self, event: OtpEvent<'_>) {
        let events = self.events.get().unwrap_or_else(|| Events::log_only());
        events.emit(&Who::nobody(), event);
    }

    /// Whether a code may be sent to `number`; in monitor mode always yes,
    /// with a log line for what would have been refused.
    pub fn check(&self, number: &Number, number_id: &[u8; 32]) -> Result<(), Limited> {
        if self.proven.contains_key(number_id) {
            return Ok(());
        }
        self.check_at(number, Instant::now())
    }

    /// Counts a code that went out (or may have) to `number`.
    pub fn record_send(&self, number: &Number) {
        self.record_at(number, Instant::now(), 1, 0);
    }

    /// Counts a code to `number` that was entered correctly.
    pub fn record_verified(&self, number: &Number, number_id: &[u8; 32]) {
        if self.cfg.mode != PumpingMode::Off {
            self.proven.insert(*number_id, ());
        }
        self.record_at(number, Instant::now(), 0, 1);
    }

    fn keys(number: &Number) -> [(Scope, &str); 2] {
        [
            (Scope::Prefix, prefix(number)),
            (Scope::Country, number.country_code()),
        ]
    }

    fn tally(&self, key: &str) -> Arc<Mutex<Tally>> {
        self.tallies.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Tally {
                judged: Slots::new(self.cfg.window),
                hour: Slots::new(HOUR),
            }))
        })
    }

    fn record_at(&self, number: &Number, now: Instant, sends: u32, verified: u32) {
        if self.cfg.mode == PumpingMode::Off {
            return;
        }
        let t = now.duration_since(self.epoch);
        for (_, key) in Self::keys(number) {
            let tally = self.tally(key);
            let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
            tally.judged.add(t, sends, verified);
            tally.hour.add(t, sends, 0);
        }
    }

    fn check_at(&self, number: &Number, now: Instant) -> Result<(), Limited> {
        if self.cfg.mode == PumpingMode::Off {
            return Ok(());
        }
        let t = now.duration_since(self.epoch);
        for (scope, key) in Self::keys(number) {
            if let Some(q) = self.quarantines.get(key) {
                let wait = q.until.saturating_duration_since(now);
                if !wait.is_zero() {
                    self.emit(OtpEvent::PumpingRefused {
                        scope,
                        why: &q.why,
                        mode: self.cfg.mode,
                    });
                    return self.refuse(wait);
                }
            }
            let tally = self.tally(key);
            let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
            let (sends, verified) = tally.judged.judged(t, self.cfg.answer_time);
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
                    country.judged.subtract(&tally.judged);
                }
                // A quarantined key starts afresh afterwards: it is judged
                // again only after another `min_sends` codes.
                tally.judged.clear();
                drop(tally);
                self.quarantine(scope, key, sends, verified, why, now);
                return self.refuse(self.cfg.quarantine);
            }
            if scope == Scope::Country {
                let cap = self.cfg.country_cap(key);
                let (in_hour, _) = tally.hour.sums(t);
                if in_hour >= cap {
                    self.emit(OtpEvent::CountryCap {
                        country: key,
                        sends: in_hour,
                        cap,
                        mode: self.cfg.mode,
                    });
                    return self.refuse(tally.hour.until_oldest_leaves(t));
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
        now: Instant,
    ) {
        let q = Quarantine {
            scope,
            until: now + self.cfg.quarantine,
            why,
        };
        let entry = self
            .quarantines
            .entry_by_ref(key)
            .or_insert_with(|| Arc::new(q));
        if entry.is_fresh() {
            self.emit(OtpEvent::Quarantine {
                scope,
                key,
                sends,
                verified,
                why: &entry.value().why,
                lasts: self.cfg.quarantine,
                mode: self.cfg.mode,
            });
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
        let now = Instant::now();
        let mut list: Vec<QuarantineView> = self
            .quarantines
            .iter()
            .filter(|(_, q)| q.until > now)
            .map(|(key, q)| QuarantineView {
                key: key.to_string(),
                scope: q.scope,
                why: q.why.clone(),
                seconds_left: crate::text::ceil_secs(q.until - now),
                enforced: self.cfg.mode == PumpingMode::Enforce,
            })
            .collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// Ends a quarantine at once; `false` if there was none. The caller
    /// (the admin API) emits `pumping.lifted`.
    pub fn lift(&self, key: &str) -> bool {
        self.quarantines
            .remove(key)
            .is_some_and(|q| q.until > Instant::now())
    }
}

#[cfg(test)]
mod tests;
