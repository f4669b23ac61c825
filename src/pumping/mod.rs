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

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::{PumpingMode, PumpingSettings};
use crate::events::{Events, OtpEvent, Who};
use crate::otp::limits::{Limited, Window};
use crate::phone::Number;
use crate::store::memory::MemoryPumping;
use crate::store::pumping::{Judgement, PumpingCounters, Quarantine, Rule};
use crate::store::{self, SharedClock, ms};

pub use crate::store::pumping::Scope;

/// Distinct countries and prefixes tracked at once; the least recently used
/// are forgotten first. Numbers come from the app's user records, so an
/// attacker needs an account per number to spread over many prefixes.
const MAX_TRACKED: u64 = 50_000;

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
    /// The counts, quarantines and proven numbers. Proven numbers (keyed
    /// hashes) entered a right code lately: pumped numbers never do, so
    /// these always pass. Without this, a few stolen passwords, each good
    /// for unverified sends to its owner's real phone, could get the
    /// company's home country quarantined for everyone.
    counters: Arc<dyn PumpingCounters>,
    clock: SharedClock,
    /// Where the guard's events go, once the gateway gave its sinks.
    events: OnceLock<Events>,
}

/// The prefix of a number: E.164 without its last four digits, so that one
/// key covers a range of 10,000 numbers and no key is a whole number.
pub fn prefix(number: &Number) -> &str {
    let e164 = number.as_str();
    &e164[..e164.len().saturating_sub(4).max(1)]
}

impl PumpingGuard {
    /// A guard timed by the system clock, counting in memory.
    pub fn new(cfg: PumpingSettings) -> Self {
        Self::with_clock(cfg, store::system_clock())
    }

    /// A guard counting in memory, timed by `clock`.
    pub fn with_clock(cfg: PumpingSettings, clock: SharedClock) -> Self {
        let counters = Arc::new(MemoryPumping::new(MAX_TRACKED, cfg.window, cfg.quarantine));
        Self::with_store(cfg, counters, clock)
    }

    pub fn with_store(
        cfg: PumpingSettings,
        counters: Arc<dyn PumpingCounters>,
        clock: SharedClock,
    ) -> Self {
        Self {
            cfg,
            counters,
            clock,
            events: OnceLock::new(),
        }
    }

    /// Sends the guard's events (quarantines, refusals, caps) to the
    /// gateway's sinks; before this they reach the log alone.
    pub fn events_to(&self, events: Events) {
        let _ = self.events.set(events);
    }

    fn emit(&self, event: OtpEvent<'_>) {
        let events = self.events.get().unwrap_or_else(|| Events::log_only());
        events.emit(&Who::nobody(), event);
    }

    /// Whether a code may be sent to `number`; in monitor mode always yes,
    /// with a log line for what would have been refused.
    pub async fn check(&self, number: &Number, number_id: &[u8; 32]) -> Result<(), Limited> {
        let now = self.clock.now_ms();
        if self.counters.is_proven(number_id, now).await {
            return Ok(());
        }
        self.check_at(number, now).await
    }

    /// Counts a code that went out (or may have) to `number`.
    pub async fn record_send(&self, number: &Number) {
        self.record_at(number, self.clock.now_ms(), 1, 0).await;
    }

    /// Counts a code to `number` that was entered correctly.
    pub async fn record_verified(&self, number: &Number, number_id: &[u8; 32]) {
        let now = self.clock.now_ms();
        if self.cfg.mode != PumpingMode::Off {
            let until = now.saturating_add(ms(PROVEN_FOR));
            self.counters.prove(number_id, until).await;
        }
        self.record_at(number, now, 0, 1).await;
    }

    fn keys(number: &Number) -> [(Scope, &str); 2] {
        [
            (Scope::Prefix, prefix(number)),
            (Scope::Country, number.country_code()),
        ]
    }

    async fn record_at(&self, number: &Number, now: u64, sends: u32, verified: u32) {
        if self.cfg.mode == PumpingMode::Off {
            return;
        }
        for (_, key) in Self::keys(number) {
            self.counters.record(key, now, sends, verified).await;
        }
    }

    async fn check_at(&self, number: &Number, now: u64) -> Result<(), Limited> {
        if self.cfg.mode == PumpingMode::Off {
            return Ok(());
        }
        let rule = Rule {
            min_sends: self.cfg.min_sends,
            min_conversion: self.cfg.min_conversion,
            answer_time: self.cfg.answer_time,
        };
        for (scope, key) in Self::keys(number) {
            if let Some(q) = self.counters.quarantined(key, now).await {
                let wait = Duration::from_millis(q.until.saturating_sub(now));
                self.emit(OtpEvent::PumpingRefused {
                    scope,
                    why: &q.why,
                    mode: self.cfg.mode,
                });
                return self.refuse(wait);
            }
            let country = (scope == Scope::Prefix).then(|| number.country_code());
            match self.counters.judge(key, country, now, rule).await {
                Judgement::Below { sends, verified } => {
                    let why = format!(
                        "{verified} of {sends} codes verified in the last {}, below the minimum of {:.0}%",
                        humantime::format_duration(self.cfg.window),
                        rule.min_conversion * 100.0
                    );
                    self.quarantine(scope, key, sends, verified, why, now).await;
                    return self.refuse(self.cfg.quarantine);
                }
                Judgement::Within {
                    hour_sends,
                    hour_wait,
                } if scope == Scope::Country => {
                    let cap = self.cfg.country_cap(key);
                    if hour_sends >= cap {
                        self.emit(OtpEvent::CountryCap {
                            country: key,
                            sends: hour_sends,
                            cap,
                            mode: self.cfg.mode,
                        });
                        return self.refuse(hour_wait);
                    }
                }
                Judgement::Within { .. } => {}
            }
        }
        Ok(())
    }

    async fn quarantine(
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
        let why = q.why.clone();
        if self.counters.quarantine(key, q).await {
            self.emit(OtpEvent::Quarantine {
                scope,
                key,
                sends,
                verified,
                why: &why,
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
    pub async fn quarantines(&self) -> Vec<QuarantineView> {
        let now = self.clock.now_ms();
        let mut list: Vec<QuarantineView> = self
            .counters
            .quarantines(now)
            .await
            .into_iter()
            .map(|(key, q)| QuarantineView {
                key,
                scope: q.scope,
                why: q.why,
                seconds_left: (q.until - now).div_ceil(1000),
                enforced: self.cfg.mode == PumpingMode::Enforce,
            })
            .collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// Ends a quarantine at once; `false` if there was none. The caller
    /// (the admin API) emits `pumping.lifted`.
    pub async fn lift(&self, key: &str) -> bool {
        self.counters.lift(key, self.clock.now_ms()).await
    }
}

#[cfg(test)]
mod tests;
