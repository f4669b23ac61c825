//! Where the gateway keeps what it remembers between requests, and the one
//! clock that times it.
//!
//! Every time-dependent decision of a store (a code's expiry, a cooldown,
//! a sliding window, a lock's end) compares timestamps read from the
//! [`Clock`] of the `State`, in wall-clock milliseconds since the Unix
//! epoch: a reading any process can share (a later Redis store keeps the
//! same numbers) and that a test can move by hand ([`ManualClock`]) instead
//! of sleeping. moka's own time-to-live, where a store still uses it, only
//! bounds memory; it never decides.
//!
//! This folder depends on nothing above it in the crate, but for
//! `config::Channel` in the delivery records (`delivery.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod delivery;
pub mod identities;
pub mod memory;
pub mod pumping;
pub mod window;

use futures_util::future::BoxFuture;

pub use window::{SlidingWindow, Spec};

/// What a store call returns: boxed, so that a store is an `Arc<dyn …>`
/// chosen at start-up (moka in-process today, a shared one later). Only
/// the code pages, sends and reports pay for the box, never a proxied
/// request.
pub type StoreFuture<'a, T> = BoxFuture<'a, T>;

/// What a check of a submitted code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong {
        attempts_left: u32,
    },
    /// This guess used the last attempt, or the code was already locked.
    Locked,
    /// No live code: never sent, expired, abandoned or already used.
    NoCode,
    /// Not `length` digits; counted as no attempt, since it cannot match.
    Malformed,
}

/// What the store knows about a user's code, for the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Alive,
    Locked,
    Expired,
    None,
}

/// Whether the stores can be used now, for the readiness check: the
/// memory stores always can; a shared store answers with one round trip
/// (a Redis `PING`), its error as the reason.
pub trait Health: Send + Sync {
    /// The backend's name (`memory`), for the readiness details.
    fn backend(&self) -> &'static str;
    fn check(&self) -> StoreFuture<'_, Result<(), String>>;
}

/// Pending codes by account key, each kept only as a keyed hash of the
/// code (the caller hashes; the store never sees a code). Each call is one
/// atomic step on one key.
pub trait CodeStore: Send + Sync {
    /// Makes `hash` the live code for `key` unless one is alive; `true`
    /// when it did (two tabs opening the page at once send one code).
    fn issue_if_none<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, bool>;
    /// Makes `hash` the live code for `key`, replacing any other.
    fn install<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, ()>;
    /// Whether `hash` is the live code for `key`.
    fn is_alive<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, bool>;
    /// Marks the code `hash` as never delivered, if it is still `key`'s.
    fn abandon<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, ()>;
    /// Checks a submitted code's hash against the live one, counting the
    /// attempt in the same step (concurrent guesses are each counted).
    fn check<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, Verdict>;
    fn status<'a>(&'a self, key: &'a [u8; 32]) -> StoreFuture<'a, Status>;
}

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

impl Window {
    /// The limit's name as the configuration calls it (the audit log's
    /// `window`, the metrics' `window` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown => "cooldown",
            Self::Hour => "per_hour",
            Self::Day => "per_day",
            Self::NetworkMinute => "per_ip_minute",
            Self::NetworkHour => "per_ip_hour",
            Self::NetworkAccounts => "per_ip_accounts",
            Self::Account => "account_lock",
            Self::Pumping => "pumping",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub window: Window,
    pub wait: Duration,
}

impl Limited {
    /// The wait in whole seconds, rounded up: "retry in 0 s" never shows.
    pub fn wait_secs(&self) -> u64 {
        self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0)
    }
}

/// A send slot taken by [`SendLimits::reserve`]; hand it back with
/// [`SendLimits::release`] if the send did not happen.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    /// The window's tick the send was counted in.
    pub tick: u32,
    /// The cooldown's start before this send (ms), restored on release.
    pub previous_last: Option<u64>,
}

/// Send limits per recipient number (keyed hash): cooldown, per hour, per
/// day. Each call is one atomic step on one number.
pub trait SendLimits: Send + Sync {
    /// Takes a send slot, checking cooldown (unless `cooldown` is false:
    /// the automatic fallback), hour and day at once; or says how long to wait.
    fn reserve<'a>(
        &'a self,
        number: &'a [u8; 32],
        cooldown: bool,
    ) -> StoreFuture<'a, Result<Reservation, Limited>>;
    /// Gives back a slot whose send failed.
    fn release<'a>(&'a self, number: &'a [u8; 32], r: Reservation) -> StoreFuture<'a, ()>;
    /// Ends the cooldown (the last message failed); the send still counts.
    fn lift_cooldown<'a>(&'a self, number: &'a [u8; 32]) -> StoreFuture<'a, ()>;
    /// How long until the cooldown allows another send.
    fn cooldown_left<'a>(&'a self, number: &'a [u8; 32]) -> StoreFuture<'a, Duration>;
}

/// Wall-clock time for the stores, and for the timers that act on what
/// they keep (the WhatsApp→SMS fallback), so that a test moves one clock
/// for both.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves once the clock reads `at_ms` or later.
    fn sleep_until(&self, at_ms: u64) -> BoxFuture<'static, ()>;
}

/// The system's wall clock: the product's.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep_until(&self, at_ms: u64) -> BoxFuture<'static, ()> {
        let wait = Duration::from_millis(at_ms.saturating_sub(self.now_ms()));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to, for tests: expiry, cooldowns,
/// windows and the fallback timer are tested by advancing it, without
/// sleeping.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    /// Wakes the sleepers when the clock moves.
    moved: tokio::sync::watch::Sender<u64>,
}

impl ManualClock {
    /// A clock that reads `start_ms` until advanced.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: AtomicU64::new(start_ms),
            moved: tokio::sync::watch::channel(start_ms).0,
        }
    }

    /// A clock that starts at the system's time now.
    pub fn starting_now() -> Arc<Self> {
        Arc::new(Self::new(SystemClock.now_ms()))
    }

    pub fn advance(&self, by: Duration) {
        let now = self.now.fetch_add(ms(by), Ordering::SeqCst) + ms(by);
        self.moved.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at_ms: u64) -> BoxFuture<'static, ()> {
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; a dropped clock never
            // reaches `at_ms`, so its sleepers wait for ever, as time would.
            if moved.wait_for(|now| *now >= at_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// A shared clock, as the stores hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The product's clock.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// `d` in milliseconds (saturating: configured durations are far smaller).
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A locked account as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockView {
    pub app: String,
    pub user: String,
    /// Consecutive wrong codes that caused the lock.
    pub failures: u32,
    pub seconds_left: u64,
}

/// Limits per client address (keyed hash): sends per minute and hour,
/// accounts with codes not entered per hour, code checks per minute. Each
/// call counts and checks in one step.
pub trait AddressLimits: Send + Sync {
    /// Counts a send to `account` requested from `ip`, or refuses it
    /// (accounts first, then the minute, then the hour); on success, how
    /// many accounts `ip` had codes sent to in the last hour.
    fn allow_send<'a>(
        &'a self,
        ip: &'a [u8; 32],
        account: &'a [u8; 32],
    ) -> StoreFuture<'a, Result<usize, Limited>>;
    /// `account` entered its code from `ip`: it no longer counts there.
    fn code_entered<'a>(&'a self, ip: &'a [u8; 32], account: &'a [u8; 32]) -> StoreFuture<'a, ()>;
    /// Counts a code check from `ip`, or refuses it.
    fn allow_verify<'a>(&'a self, ip: &'a [u8; 32]) -> StoreFuture<'a, Result<(), Limited>>;
}

/// Account locks after consecutive wrong codes across codes.
pub trait AccountLocks: Send + Sync {
    /// How long the account stays locked, if it is.
    fn locked<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, Option<Limited>>;
    /// Counts a wrong code by `user` of `app`; `true` when this one locks.
    fn record_failure<'a>(
        &'a self,
        account: &'a [u8; 32],
        app: &'a str,
        user: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// A correct code ends the run of failures.
    fn record_success<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, ()>;
    /// The accounts locked now, in no particular order.
    fn locks(&self) -> StoreFuture<'_, Vec<LockView>>;
    /// Lifts a lock and forgets its failures; `false` if it was not locked.
    fn unlock<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, bool>;
}

/// One app's flags per session (the app's keyed hash of the session
/// cookie): the proven sessions whose proof the app's answer lately
/// confirmed, and the sessions just forgotten (a login may be under way).
pub trait SessionFlags: Send + Sync {
    /// Whether the session's proof for `user` was confirmed lately.
    ///
    /// Synchronous, unlike the rest: every proven request asks it, and a
    /// boxed future per request would be the hot path's only allocation
    /// (the memory store answers with one cache read). A shared store must
    /// answer it without a round trip too, from a local copy that another
    /// gateway's `forget` reaches (issue 14 decides how); a miss only costs
    /// one who-am-I lookup.
    fn is_confirmed(&self, session: &[u8; 32], user: &str) -> bool;
    /// The app's answer for the session names `user`, whose proof it holds.
    fn confirm<'a>(&'a self, session: [u8; 32], user: &'a str) -> StoreFuture<'a, ()>;
    /// The session may have changed hands: it counts as just forgotten,
    /// and its confirmation goes, in one step.
    fn forget<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, ()>;
    /// Whether the session was forgotten a moment ago (an answer fetched
    /// now may predate a login, so it is not cached).
    fn just_forgotten<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_clock_moves_only_when_advanced_and_the_system_clock_is_wall_time() {
        let c = ManualClock::new(5_000);
        assert_eq!(c.now_ms(), 5_000);
        c.advance(Duration::from_millis(1_500));
        assert_eq!(c.now_ms(), 6_500);
        let wall = SystemClock.now_ms();
        assert!(wall > 1_700_000_000_000, "milliseconds since 1970");
    }
}
