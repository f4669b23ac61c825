//! Send limits per number in moka: the cooldown's start and one sliding
//! window of a day (the hour is its last part), under one lock per number.

use std::time::Duration;

use moka::sync::Cache;

use super::{Shared, lock};
use crate::store::{
    Limited, Reservation, SendLimits, SharedClock, SlidingWindow, Spec, StoreFuture, Window,
};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Default)]
struct SendLog {
    /// When the last send's cooldown started (ms since the Unix epoch).
    last: Option<u64>,
    day: SlidingWindow,
}

pub struct MemorySendLimits {
    logs: Cache<[u8; 32], Shared<SendLog>>,
    clock: SharedClock,
    day: Spec,
    cooldown: Duration,
    per_hour: u32,
    per_day: u32,
}

impl MemorySendLimits {
    pub fn new(cooldown: Duration, per_hour: u32, per_day: u32, clock: SharedClock) -> Self {
        let logs = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_idle(DAY)
            .build();
        Self {
            logs,
            clock,
            day: Spec::seconds(DAY),
            cooldown,
            per_hour,
            per_day,
        }
    }

    fn reserve_now(&self, number: &[u8; 32], cooldown: bool) -> Result<Reservation, Limited> {
        let log = self.logs.get_with(*number, Default::default);
        let mut log = lock(&log);
        let now = self.clock.now_ms();
        log.day.prune(&self.day, now);
        if let Some(last) = log.last.filter(|_| cooldown) {
            let since = Duration::from_millis(now.saturating_sub(last));
            if since < self.cooldown {
                return Err(Limited {
                    window: Window::Cooldown,
                    wait: self.cooldown - since,
                });
            }
        }
        let limited = |window| move |wait| Limited { window, wait };
        log.day
            .room(&self.day, now, HOUR, self.per_hour)
            .map_err(limited(Window::Hour))?;
        log.day
            .room(&self.day, now, DAY, self.per_day)
            .map_err(limited(Window::Day))?;
        let previous_last = log.last.replace(now);
        let tick = log.day.add(&self.day, now, 1);
        Ok(Reservation {
            tick,
            previous_last,
        })
    }
}

impl SendLimits for MemorySendLimits {
    fn reserve<'a>(
        &'a self,
        number: &'a [u8; 32],
        cooldown: bool,
    ) -> StoreFuture<'a, Result<Reservation, Limited>> {
        Box::pin(async move { self.reserve_now(number, cooldown) })
    }

    fn release<'a>(&'a self, number: &'a [u8; 32], r: Reservation) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Some(log) = self.logs.get(number) {
                let mut log = lock(&log);
                log.day.remove(r.tick, 1);
                log.last = r.previous_last;
            }
        })
    }

    fn lift_cooldown<'a>(&'a self, number: &'a [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Some(log) = self.logs.get(number) {
                lock(&log).last = None;
            }
        })
    }

    fn cooldown_left<'a>(&'a self, number: &'a [u8; 32]) -> StoreFuture<'a, Duration> {
        Box::pin(async move {
            let Some(log) = self.logs.get(number) else {
                return Duration::ZERO;
            };
            let since = lock(&log)
                .last
                .map(|last| Duration::from_millis(self.clock.now_ms().saturating_sub(last)));
            since.map_or(Duration::ZERO, |since| self.cooldown.saturating_sub(since))
        })
    }
}
