//! Per-address windows and account locks in moka, each operation under
//! one lock per key.

use std::collections::HashMap;
use std::time::Duration;

use moka::sync::Cache;

use super::{Shared, lock};
use crate::store::{
    AccountLocks, AddressLimits, Limited, LockView, SharedClock, SlidingWindow, Spec, StoreFuture,
    Window, ms,
};

/// At most `limit` hits per key in any window of `spec`.
struct Counter {
    hits: Cache<[u8; 32], Shared<SlidingWindow>>,
    spec: Spec,
    limit: u32,
}

impl Counter {
    fn new(window: Duration, limit: u32) -> Self {
        let hits = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_idle(window)
            .build();
        Self {
            hits,
            spec: Spec::seconds(window),
            limit,
        }
    }

    /// Counts a hit, or says how long until one is allowed (and counts nothing).
    fn hit(&self, key: &[u8; 32], now: u64) -> Result<(), Duration> {
        let w = self.hits.get_with(*key, Default::default);
        let mut w = lock(&w);
        w.hit(&self.spec, now, self.limit).map(|_| ())
    }
}

/// When an account was last sent a code from one address (ms), and whether
/// that code was then entered from there.
#[derive(Clone, Copy)]
struct Sent {
    at: u64,
    entered: bool,
}

/// The accounts sent codes from each address over a window: not a count
/// but a set (an account asking again is no new account), so it keeps a
/// time per account rather than a `SlidingWindow`.
struct AccountsPerAddress {
    seen: Cache<[u8; 32], Shared<HashMap<[u8; 32], Sent>>>,
    window: u64,
    limit: u32,
}

impl AccountsPerAddress {
    fn new(window: Duration, limit: u32) -> Self {
        let seen = Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(window)
            .build();
        Self {
            seen,
            window: ms(window),
            limit,
        }
    }

    /// Counts a send to `account`, or says how long until the oldest
    /// unentered code leaves the window: refused only for an account that
    /// has no unentered code yet while `limit` others have. On success, the
    /// accounts sent codes in the window, entered or not.
    fn send(&self, ip: &[u8; 32], account: &[u8; 32], now: u64) -> Result<usize, Duration> {
        let map = self.seen.get_with(*ip, Default::default);
        let mut map = lock(&map);
        map.retain(|_, s| now.saturating_sub(s.at) < self.window);
        let open = || map.values().filter(|s| !s.entered);
        let already_open = map.get(account).is_some_and(|s| !s.entered);
        if !already_open && open().count() >= self.limit as usize {
            let oldest = open().map(|s| s.at).min().unwrap_or(now);
            let age = now.saturating_sub(oldest);
            return Err(Duration::from_millis(self.window.saturating_sub(age)));
        }
        map.insert(
            *account,
            Sent {
                at: now,
                entered: false,
            },
        );
        Ok(map.len())
    }

    fn entered(&self, ip: &[u8; 32], account: &[u8; 32]) {
        if let Some(map) = self.seen.get(ip)
            && let Some(sent) = lock(&map).get_mut(account)
        {
            sent.entered = true;
        }
    }
}

/// The limits per client address.
pub struct MemoryAddressLimits {
    sends_minute: Counter,
    sends_hour: Counter,
    accounts_hour: AccountsPerAddress,
    verifies_minute: Counter,
    clock: SharedClock,
}

/// What the per-address limits allow, as numbers (from `LimitSettings`).
#[derive(Debug, Clone, Copy)]
pub struct AddressRules {
    pub sends_per_minute: u32,
    pub sends_per_hour: u32,
    pub accounts_per_hour: u32,
    pub verifies_per_minute: u32,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl MemoryAddressLimits {
    pub fn new(rules: AddressRules, clock: SharedClock) -> Self {
        Self {
            sends_minute: Counter::new(MINUTE, rules.sends_per_minute),
            sends_hour: Counter::new(HOUR, rules.sends_per_hour),
            accounts_hour: AccountsPerAddress::new(HOUR, rules.accounts_per_hour),
            verifies_minute: Counter::new(MINUTE, rules.verifies_per_minute),
            clock,
        }
    }

    fn allow_send_now(&self, ip: &[u8; 32], account: &[u8; 32]) -> Result<usize, Limited> {
        let now = self.clock.now_ms();
        let limited = |window| move |wait| Limited { window, wait };
        let accounts = self
            .accounts_hour
            .send(ip, account, now)
            .map_err(limited(Window::NetworkAccounts))?;
        self.sends_minute
            .hit(ip, now)
            .map_err(limited(Window::NetworkMinute))?;
        self.sends_hour
            .hit(ip, now)
            .map_err(limited(Window::NetworkHour))?;
        Ok(accounts)
    }
}

impl AddressLimits for MemoryAddressLimits {
    fn allow_send<'a>(
        &'a self,
        ip: &'a [u8; 32],
        account: &'a [u8; 32],
    ) -> StoreFuture<'a, Result<usize, Limited>> {
        Box::pin(async move { self.allow_send_now(ip, account) })
    }

    fn code_entered<'a>(&'a self, ip: &'a [u8; 32], account: &'a [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.accounts_hour.entered(ip, account) })
    }

    fn allow_verify<'a>(&'a self, ip: &'a [u8; 32]) -> StoreFuture<'a, Result<(), Limited>> {
        Box::pin(async move {
            self.verifies_minute
                .hit(ip, self.clock.now_ms())
                .map_err(|wait| Limited {
                    window: Window::NetworkMinute,
                    wait,
                })
        })
    }
}

struct Account {
    failures: u32,
    /// Ms since the Unix epoch.
    locked_until: Option<u64>,
    /// Kept so that an admin can see and lift locks by name.
    app: String,
    user: String,
}

/// Account locks after consecutive wrong codes.
pub struct MemoryAccountLocks {
    accounts: Cache<[u8; 32], Shared<Account>>,
    failure_cap: u32,
    lock: u64,
    clock: SharedClock,
}

impl MemoryAccountLocks {
    pub fn new(failure_cap: u32, lock: Duration, clock: SharedClock) -> Self {
        Self {
            // Consecutive failures persist until a success; an idle account
            // is forgotten after a day (or its lock, if longer).
            accounts: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(lock.max(Duration::from_secs(86_400)))
                .build(),
            failure_cap,
            lock: ms(lock),
            clock,
        }
    }

    fn locked_now(&self, account: &[u8; 32]) -> Option<Limited> {
        let state = self.accounts.get(account)?;
        let until = lock(&state).locked_until?;
        let wait = Duration::from_millis(until.saturating_sub(self.clock.now_ms()));
        (!wait.is_zero()).then_some(Limited {
            window: Window::Account,
            wait,
        })
    }

    fn record_failure_now(&self, account: &[u8; 32], app: &str, user: &str) -> bool {
        let state = self.accounts.get_with(*account, || {
            std::sync::Arc::new(std::sync::Mutex::new(Account {
                failures: 0,
                locked_until: None,
                app: app.to_string(),
                user: user.to_string(),
            }))
        });
        let mut state = lock(&state);
        let now = self.clock.now_ms();
        // A lock that has ended leaves a fresh run (the count stays at the
        // cap while locked, so that an admin sees why).
        if state.locked_until.take_if(|until| *until <= now).is_some() {
            state.failures = 0;
        }
        state.failures += 1;
        if state.failures >= self.failure_cap && state.locked_until.is_none() {
            state.locked_until = Some(now.saturating_add(self.lock));
            return true;
        }
        false
    }

    fn locks_now(&self) -> Vec<LockView> {
        let now = self.clock.now_ms();
        self.accounts
            .iter()
            .filter_map(|(_, state)| {
                let state = lock(&state);
                let until = state.locked_until.filter(|until| *until > now)?;
                Some(LockView {
                    app: state.app.clone(),
                    user: state.user.clone(),
                    failures: state.failures,
                    seconds_left: (until - now).div_ceil(1000),
                })
            })
            .collect()
    }
}

impl AccountLocks for MemoryAccountLocks {
    fn locked<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, Option<Limited>> {
        Box::pin(async move { self.locked_now(account) })
    }

    fn record_failure<'a>(
        &'a self,
        account: &'a [u8; 32],
        app: &'a str,
        user: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.record_failure_now(account, app, user) })
    }

    fn record_success<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.accounts.invalidate(account) })
    }

    fn locks(&self) -> StoreFuture<'_, Vec<LockView>> {
        Box::pin(async move { self.locks_now() })
    }

    fn unlock<'a>(&'a self, account: &'a [u8; 32]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // One step: a lock found is removed under the same key's lock.
            let mut lifted = false;
            self.accounts
                .entry(*account)
                .and_compute_with(|existing| match existing {
                    Some(e)
                        if lock(e.value())
                            .locked_until
                            .is_some_and(|u| u > self.clock.now_ms()) =>
                    {
                        lifted = true;
                        moka::ops::compute::Op::Remove
                    }
                    _ => moka::ops::compute::Op::Nop,
                });
            lifted
        })
    }
}
