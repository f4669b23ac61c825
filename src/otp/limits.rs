//! Send limits per recipient number (the guide's table: 60 s between sends,
//! 5 per hour, 20 per day), kept in a `store::SendLimits` under a keyed hash
//! of the number; reserve-then-release so a failed send costs nothing.

use std::sync::Arc;

use crate::config::LimitSettings;
use crate::store::memory::MemorySendLimits;
use crate::store::{SendLimits, SharedClock};

pub use crate::store::{Limited, Reservation, Window};

/// The per-number limits as the gateway holds them.
pub type SendLimiter = Arc<dyn SendLimits>;

/// The limits of `cfg` in memory, timed by `clock`.
pub fn in_memory(cfg: &LimitSettings, clock: SharedClock) -> SendLimiter {
    Arc::new(MemorySendLimits::new(
        cfg.cooldown,
        cfg.per_hour,
        cfg.per_day,
        clock,
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::ManualClock;

    fn limiter(cooldown: u64, per_hour: u32, per_day: u32) -> SendLimiter {
        limiter_at(cooldown, per_hour, per_day, ManualClock::starting_now())
    }

    fn limiter_at(
        cooldown: u64,
        per_hour: u32,
        per_day: u32,
        clock: Arc<ManualClock>,
    ) -> SendLimiter {
        in_memory(
            &LimitSettings {
                cooldown: Duration::from_secs(cooldown),
                per_hour,
                per_day,
                ..LimitSettings::default()
            },
            clock,
        )
    }

    #[tokio::test]
    async fn a_second_send_inside_the_cooldown_is_refused_with_the_wait() {
        let l = limiter(60, 5, 20);
        l.reserve(&[1; 32], true).await.unwrap();
        let e = l.reserve(&[1; 32], true).await.unwrap_err();
        assert_eq!(e.window, Window::Cooldown);
        assert!(e.wait > Duration::from_secs(58) && e.wait <= Duration::from_secs(60));
        assert!(
            l.reserve(&[2; 32], true).await.is_ok(),
            "another number is not affected"
        );
    }

    #[tokio::test]
    async fn the_hourly_and_daily_caps_apply_after_the_cooldown() {
        let l = limiter(0, 2, 3);
        l.reserve(&[1; 32], true).await.unwrap();
        l.reserve(&[1; 32], true).await.unwrap();
        let e = l.reserve(&[1; 32], true).await.unwrap_err();
        assert_eq!(e.window, Window::Hour);
        assert!(e.wait > Duration::from_secs(3590));
        let l = limiter(0, 10, 2);
        l.reserve(&[1; 32], true).await.unwrap();
        l.reserve(&[1; 32], true).await.unwrap();
        assert_eq!(
            l.reserve(&[1; 32], true).await.unwrap_err().window,
            Window::Day
        );
    }

    #[tokio::test]
    async fn a_released_slot_can_be_used_again_at_once() {
        let l = limiter(60, 5, 20);
        let r = l.reserve(&[1; 32], true).await.unwrap();
        l.release(&[1; 32], r).await;
        assert!(l.reserve(&[1; 32], true).await.is_ok());
        assert!(l.cooldown_left(&[1; 32]).await > Duration::from_secs(58));
    }

    #[tokio::test]
    async fn cooldowns_end_and_windows_slide_with_the_clock() {
        let clock = ManualClock::starting_now();
        let l = limiter_at(60, 2, 3, clock.clone());
        let n = [1; 32];
        l.reserve(&n, true).await.unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            l.reserve(&n, true).await.unwrap_err().window,
            Window::Cooldown
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.cooldown_left(&n).await, Duration::ZERO);
        l.reserve(&n, true).await.unwrap();
        clock.advance(Duration::from_secs(60));
        assert_eq!(l.reserve(&n, true).await.unwrap_err().window, Window::Hour);
        clock.advance(Duration::from_secs(3600));
        l.reserve(&n, true).await.unwrap();
        clock.advance(Duration::from_secs(3600));
        assert_eq!(l.reserve(&n, true).await.unwrap_err().window, Window::Day);
        clock.advance(Duration::from_secs(86_400));
        assert!(l.reserve(&n, true).await.is_ok(), "a day later");
    }

    #[tokio::test]
    async fn the_fallback_is_not_held_up_by_the_cooldown_but_counts() {
        let l = limiter(60, 2, 20);
        l.reserve(&[1; 32], true).await.unwrap();
        l.reserve(&[1; 32], false).await.unwrap();
        let e = l.reserve(&[1; 32], false).await.unwrap_err();
        assert_eq!(e.window, Window::Hour);
        l.lift_cooldown(&[1; 32]).await;
        assert_eq!(l.cooldown_left(&[1; 32]).await, Duration::ZERO);
    }
}
