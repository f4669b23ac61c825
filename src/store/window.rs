//! The one sliding window behind every rate in the gateway: sends per
//! number (hour, day), sends and checks per client address (minute, hour),
//! and the pumping guard's sends and verified codes per country or prefix.
//!
//! A window counts hits in ticks of a fixed width (one second for the
//! limits, a thirtieth of the window for the pumping guard), so its memory
//! is bounded by the ticks that saw a hit, never by the hits themselves.
//! Ticks are `u32` counts from the Unix epoch, and a tick is never shorter
//! than a second, so they cannot wrap before 2106; a bucket is eight
//! bytes, what one send per number costs in the limiter (`benches/otp_memory`).
//!
//! The window holds no sizes of its own: each store keeps one [`Spec`] for
//! all its keys, and passes it (with the clock's reading) to every call.

use std::collections::VecDeque;
use std::time::Duration;

/// The shape of a window: how far back it reaches and how finely it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    tick_ms: u64,
    /// Ticks in the window, the current one included.
    span: u32,
}

impl Spec {
    /// A window of `span` moving in steps of `tick` (at least a second; the
    /// span is rounded up to whole ticks).
    pub fn new(span: Duration, tick: Duration) -> Self {
        let tick_ms = (tick.as_millis() as u64).max(1000);
        let span_ms = span.as_millis() as u64;
        let span = span_ms.div_ceil(tick_ms).clamp(1, u64::from(u32::MAX / 2)) as u32;
        Self { tick_ms, span }
    }

    /// A window of `span` in steps of one second.
    pub fn seconds(span: Duration) -> Self {
        Self::new(span, Duration::from_secs(1))
    }

    /// The tick `now_ms` falls in.
    pub fn tick(&self, now_ms: u64) -> u32 {
        (now_ms / self.tick_ms).min(u64::from(u32::MAX)) as u32
    }

    /// Ticks in `d`, rounded up, at most the window's.
    fn ticks_in(&self, d: Duration) -> u32 {
        (d.as_millis() as u64)
            .div_ceil(self.tick_ms)
            .min(u64::from(self.span)) as u32
    }

    /// How long from `now_ms` until a hit in `tick` is older than `span` ticks.
    fn leaves_after(&self, tick: u32, span: u32, now_ms: u64) -> Duration {
        let leaves_ms = (u64::from(tick) + u64::from(span)) * self.tick_ms;
        Duration::from_millis(leaves_ms.saturating_sub(now_ms))
    }
}

/// Hits per tick, oldest first; only ticks with hits are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlidingWindow {
    ticks: VecDeque<(u32, u32)>,
}

impl SlidingWindow {
    /// Whether `tick` is inside the last `span` ticks before `now`.
    fn within(tick: u32, now: u32, span: u32) -> bool {
        tick <= now && now - tick < span
    }

    /// Forgets the ticks that have left the window.
    pub fn prune(&mut self, spec: &Spec, now_ms: u64) {
        let now = spec.tick(now_ms);
        while self
            .ticks
            .front()
            .is_some_and(|&(t, _)| !Self::within(t, now, spec.span))
        {
            self.ticks.pop_front();
        }
    }

    /// Counts `n` hits now; returns the tick they were counted in (to take
    /// them back with [`Self::remove`]).
    pub fn add(&mut self, spec: &Spec, now_ms: u64, n: u32) -> u32 {
        self.prune(spec, now_ms);
        let now = spec.tick(now_ms);
        match self.ticks.back_mut() {
            Some((t, count)) if *t == now => *count = count.saturating_add(n),
            _ => {
                // Most windows (a number's sends) only ever hold one tick:
                // room for one, not the four a first push would allocate.
                if self.ticks.capacity() == 0 {
                    self.ticks.reserve_exact(1);
                }
                self.ticks.push_back((now, n));
            }
        }
        now
    }

    /// Takes back up to `n` hits counted in `tick`.
    pub fn remove(&mut self, tick: u32, n: u32) {
        if let Some(pos) = self.ticks.iter().rposition(|&(t, _)| t == tick) {
            let count = &mut self.ticks[pos].1;
            *count = count.saturating_sub(n);
            if *count == 0 {
                self.ticks.remove(pos);
            }
        }
    }

    /// Hits in the last `within` (at most the window), the current tick included.
    pub fn count_within(&self, spec: &Spec, now_ms: u64, within: Duration) -> u32 {
        let (now, span) = (spec.tick(now_ms), spec.ticks_in(within).max(1));
        self.live(now, span).map(|&(_, c)| c).sum()
    }

    /// Hits in the window.
    pub fn count(&self, spec: &Spec, now_ms: u64) -> u32 {
        let now = spec.tick(now_ms);
        self.live(now, spec.span).map(|&(_, c)| c).sum()
    }

    /// Hits in the window at least `age` old, in whole ticks (a hit may be
    /// up to one tick older before it counts); all of them when `age` is zero.
    pub fn count_older_than(&self, spec: &Spec, now_ms: u64, age: Duration) -> u32 {
        let now = spec.tick(now_ms);
        let settled = spec.tick(now_ms.saturating_sub(age.as_millis() as u64));
        self.live(now, spec.span)
            .filter(|&&(t, _)| age.is_zero() || t < settled)
            .map(|&(_, c)| c)
            .sum()
    }

    fn live(&self, now: u32, span: u32) -> impl Iterator<Item = &(u32, u32)> {
        self.ticks
            .iter()
            .filter(move |&&(t, _)| Self::within(t, now, span))
    }

    /// `Err(wait)` when the last `within` already holds `limit` hits: how
    /// long until the `limit`-th newest of them leaves it, so that one more
    /// fits. Counts nothing.
    pub fn room(
        &self,
        spec: &Spec,
        now_ms: u64,
        within: Duration,
        limit: u32,
    ) -> Result<(), Duration> {
        let (now, span) = (spec.tick(now_ms), spec.ticks_in(within).max(1));
        let mut newer = 0u32;
        for &(t, c) in self.ticks.iter().rev() {
            if !Self::within(t, now, span) {
                break;
            }
            newer = newer.saturating_add(c);
            if newer >= limit {
                return Err(spec.leaves_after(t, span, now_ms));
            }
        }
        if limit == 0 {
            return Err(spec.leaves_after(now, span, now_ms));
        }
        Ok(())
    }

    /// Counts a hit unless the window already holds `limit`; `Err(wait)`
    /// as [`Self::room`], counting nothing.
    pub fn hit(&mut self, spec: &Spec, now_ms: u64, limit: u32) -> Result<u32, Duration> {
        self.prune(spec, now_ms);
        let whole = Duration::from_millis(u64::from(spec.span) * spec.tick_ms);
        self.room(spec, now_ms, whole, limit)?;
        Ok(self.add(spec, now_ms, 1))
    }

    /// How long until the oldest hit in the window leaves it (a whole
    /// window if there is none).
    pub fn until_oldest_leaves(&self, spec: &Spec, now_ms: u64) -> Duration {
        let now = spec.tick(now_ms);
        let oldest = self
            .live(now, spec.span)
            .find(|&&(_, c)| c > 0)
            .map_or(now, |&(t, _)| t);
        spec.leaves_after(oldest, spec.span, now_ms)
    }

    /// Takes away what `part` counted in the same ticks (a prefix's hits
    /// from its country's, which were counted at the same moments).
    pub fn subtract(&mut self, part: &SlidingWindow) {
        for &(tick, n) in &part.ticks {
            self.remove(tick, n);
        }
    }

    pub fn clear(&mut self) {
        self.ticks.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Clock, ManualClock};

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn hits_leave_the_window_as_the_clock_moves() {
        let clock = ManualClock::new(1_700_000_000_000);
        let spec = Spec::seconds(MIN);
        let mut w = SlidingWindow::default();
        assert!(w.hit(&spec, clock.now_ms(), 2).is_ok());
        clock.advance(Duration::from_secs(10));
        assert!(w.hit(&spec, clock.now_ms(), 2).is_ok());
        let wait = w.hit(&spec, clock.now_ms(), 2).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50), "until the first hit leaves");
        clock.advance(Duration::from_secs(49));
        assert!(w.hit(&spec, clock.now_ms(), 2).is_err());
        clock.advance(Duration::from_secs(1));
        assert!(
            w.hit(&spec, clock.now_ms(), 2).is_ok(),
            "the first one left"
        );
        assert_eq!(w.count(&spec, clock.now_ms()), 2);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(w.count(&spec, clock.now_ms()), 0);
        w.prune(&spec, clock.now_ms());
        assert!(w.is_empty(), "nothing kept once the window has passed");
    }

    #[test]
    fn a_part_of_the_window_is_counted_apart_and_a_hit_can_be_taken_back() {
        let clock = ManualClock::new(1_700_000_000_000);
        let day = Spec::seconds(Duration::from_secs(86_400));
        let hour = Duration::from_secs(3600);
        let mut w = SlidingWindow::default();
        w.add(&day, clock.now_ms(), 1);
        clock.advance(Duration::from_secs(2 * 3600));
        let tick = w.add(&day, clock.now_ms(), 1);
        assert_eq!(w.count_within(&day, clock.now_ms(), hour), 1);
        assert_eq!(w.count(&day, clock.now_ms()), 2);
        let wait = w.room(&day, clock.now_ms(), hour, 1).unwrap_err();
        assert_eq!(wait, hour);
        w.remove(tick, 1);
        assert!(w.room(&day, clock.now_ms(), hour, 1).is_ok());
        assert_eq!(w.count(&day, clock.now_ms()), 1);
    }

    #[test]
    fn coarse_ticks_bound_memory_and_judge_only_settled_hits() {
        let clock = ManualClock::new(1_700_000_000_000);
        // An hour in 30 ticks of two minutes, as the pumping guard counts.
        let spec = Spec::new(Duration::from_secs(3600), Duration::from_secs(120));
        let mut w = SlidingWindow::default();
        for _ in 0..100 {
            w.add(&spec, clock.now_ms(), 1);
            clock.advance(Duration::from_secs(1));
        }
        assert!(w.ticks.len() <= 2, "one bucket per tick, not per hit");
        let five = Duration::from_secs(300);
        assert_eq!(w.count_older_than(&spec, clock.now_ms(), five), 0);
        clock.advance(Duration::from_secs(600));
        assert_eq!(w.count_older_than(&spec, clock.now_ms(), five), 100);
        assert_eq!(
            w.count_older_than(&spec, clock.now_ms(), Duration::ZERO),
            100
        );
        let mut part = w.clone();
        part.remove(part.ticks[0].0, part.ticks[0].1);
        w.subtract(&part);
        assert!(w.count(&spec, clock.now_ms()) < 100);
        let left = w.until_oldest_leaves(&spec, clock.now_ms());
        assert!(left > Duration::from_secs(2800) && left <= Duration::from_secs(3600));
    }
}
