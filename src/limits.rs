//! Send limits per recipient number (the guide's table: 60 s between sends,
//! 5 per hour, 20 per day), kept in moka under a keyed hash of the number.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::LimitSettings;

const HOUR: u32 = 3600;
const DAY: u32 = 86_400;

/// Which limit stopped a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Cooldown,
    Hour,
    Day,
    /// Per client address (see `abuse`).
    NetworkMinute,
    NetworkHour,
    /// Too many accounts sent codes from the address and not entered.
    NetworkAccounts,
    /// Too many consecutive wrong codes for the account.
    Account,
    /// The destination country or number range is quarantined or past its
    /// cap (see `pumping`).
    Pumping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub window: Window,
    pub wait: Duration,
}

/// A send slot taken by [`SendLimiter::reserve`]; hand it back with
/// [`SendLimiter::release`] if the send did not happen.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    at: u32,
    previous_last: Option<Instant>,
}

#[derive(Default)]
struct SendLog {
    last: Option<Instant>,
    /// Send times in whole seconds since the limiter started, oldest first.
    day: VecDeque<u32>,
}

pub struct SendLimiter {
    logs: Cache<[u8; 32], Arc<Mutex<SendLog>>>,
    cfg: LimitSettings,
    epoch: Instant,
}

impl SendLimiter {
    pub fn new(cfg: LimitSettings) -> Self {
        let logs = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_idle(Duration::from_secs(u64::from(DAY)))
            .build();
        Self {
            logs,
            cfg,
            epoch: Instant::now(),
        }
    }

    fn secs(&self, t: Instant) -> u32 {
        t.duration_since(self.epoch).as_secs() as u32
    }

    /// Takes a send slot for the number, or says how long to wait. Checking
    /// and taking happen under one lock, so two concurrent sends cannot both
    /// slip through the cooldown.
    pub fn reserve(&self, number: &[u8; 32]) -> Result<Reservation, Limited> {
        self.reserve_with(number, true)
    }

    /// As [`Self::reserve`]; `cooldown: false` for a send the cooldown must
    /// not hold up (the automatic fallback after an undelivered message),
    /// which still counts toward the hourly and daily limits.
    pub fn reserve_with(&self, number: &[u8; 32], cooldown: bool) -> Result<Reservation, Limited> {
        let log = self.logs.get_with(*number, Default::default);
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let now_s = self.secs(now);
        while log
            .day
            .front()
            .is_some_and(|t| now_s.saturating_sub(*t) >= DAY)
        {
            log.day.pop_front();
        }
        if let Some(last) = log.last.filter(|_| cooldown) {
            let since = now.duration_since(last);
            if since < self.cfg.cooldown {
                return Err(Limited {
                    window: Window::Cooldown,
                    wait: self.cfg.cooldown - since,
                });
            }
        }
        let in_hour = log
            .day
            .iter()
            .rev()
            .take_while(|t| now_s - **t < HOUR)
            .count();
        if in_hour >= self.cfg.per_hour as usize {
            let oldest = log.day[log.day.len() - in_hour];
            return Err(Limited {
                window: Window::Hour,
                wait: Duration::from_secs(u64::from(oldest + HOUR - now_s)),
            });
        }
        if log.day.len() >= self.cfg.per_day as usize {
            let oldest = log.day[log.day.len() - self.cfg.per_day as usize];
            return Err(Limited {
                window: Window::Day,
                wait: Duration::from_secs(u64::from(oldest + DAY - now_s)),
            });
        }
        let previous_last = log.last.replace(now);
        log.day.push_back(now_s);
        Ok(Reservation {
            at: now_s,
            previous_last,
        })
    }

    /// Ends the cooldown: the last message failed, and the user should not
    /// wait for one that will never come. The send still counts toward the
    /// hourly and daily limits.
    pub fn lift_cooldown(&self, number: &[u8; 32]) {
        if let Some(log) = self.logs.get(number) {
            log.lock().unwrap_or_else(|p| p.into_inner()).last = None;
        }
    }

    /// Gives back a slot whose send failed, so the user may retry at once.
    pub fn release(&self, number: &[u8; 32], r: Reservation) {
        if let Some(log) = self.logs.get(number) {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pos) = log.day.iter().rposition(|t| *t == r.at) {
                log.day.remove(pos);
            }
            log.last = r.previous_last;
        }
    }

    /// How long until the cooldown allows another send.
    pub fn cooldown_left(&self, number: &[u8; 32]) -> Duration {
        let Some(log) = self.logs.get(number) else {
            return Duration::ZERO;
        };
        let log = log.lock().unwrap_or_else(|p| p.into_inner());
        log.last.map_or(Duration::ZERO, |last| {
            self.cfg.cooldown.saturating_sub(last.elapsed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(cooldown: u64, per_hour: u32, per_day: u32) -> SendLimiter {
        SendLimiter::new(LimitSettings {
            cooldown: Duration::from_secs(cooldown),
            per_hour,
            per_day,
            ..LimitSettings::default()
        })
    }

    #[test]
    fn a_second_send_inside_the_cooldown_is_refused_with_the_wait() {
        let l = limiter(60, 5, 20);
        l.reserve(&[1; 32]).unwrap();
        let e = l.reserve(&[1; 32]).unwrap_err();
        assert_eq!(e.window, Window::Cooldown);
        assert!(e.wait > Duration::from_secs(58) && e.wait <= Duration::from_secs(60));
        assert!(
            l.reserve(&[2; 32]).is_ok(),
            "another number is not affected"
        );
    }

    #[test]
    fn the_hourly_and_daily_caps_apply_after_the_cooldown() {
        let l = limiter(0, 2, 3);
        l.reserve(&[1; 32]).unwrap();
        l.reserve(&[1; 32]).unwrap();
        let e = l.reserve(&[1; 32]).unwrap_err();
        assert_eq!(e.window, Window::Hour);
        assert!(e.wait > Duration::from_secs(3590));
        let l = limiter(0, 10, 2);
        l.reserve(&[1; 32]).unwrap();
        l.reserve(&[1; 32]).unwrap();
        assert_eq!(l.reserve(&[1; 32]).unwrap_err().window, Window::Day);
    }

    #[test]
    fn a_released_slot_can_be_used_again_at_once() {
        let l = limiter(60, 5, 20);
        let r = l.reserve(&[1; 32]).unwrap();
        l.release(&[1; 32], r);
        assert!(l.reserve(&[1; 32]).is_ok());
        assert!(l.cooldown_left(&[1; 32]) > Duration::from_secs(58));
    }
}
