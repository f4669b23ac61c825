//! Limits beyond the per-number ones: sends, accounts and code checks per
//! client address, and an account lock after too many consecutive wrong
//! codes across codes (NIST SP 800-63B §5.2.2 allows at most 100).
//!
//! Why accounts: an office behind one NAT and an attacker with a list of
//! stolen passwords both make many accounts ask for codes from one address.
//! The office's users enter their codes; the attacker cannot, because the
//! codes go to the owners' phones. So an address may have at most
//! `per_ip_accounts_per_hour` accounts with codes not entered, while the
//! send and check counts only pace bursts (see `LimitSettings::default`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::LimitSettings;
use crate::limits::{Limited, Window};

/// At most `limit` hits per key in any `window`.
struct WindowCounter {
    hits: Cache<[u8; 32], Arc<Mutex<VecDeque<Instant>>>>,
    window: Duration,
    limit: u32,
}

impl WindowCounter {
    fn new(window: Duration, limit: u32) -> Self {
        let hits = Cache::builder()
            .max_capacity(1_000_000)
            .time_to_idle(window)
            .build();
        Self {
            hits,
            window,
            limit,
        }
    }

    /// Counts a hit, or says how long until one is allowed (and counts nothing).
    fn hit(&self, key: &[u8; 32]) -> Result<(), Duration> {
        let log = self.hits.get_with(*key, Default::default);
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() >= self.limit as usize {
            let oldest = log.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        log.push_back(now);
        Ok(())
    }
}

/// When an account was last sent a code from one address, and whether that
/// code was then entered from there.
#[derive(Clone, Copy)]
struct Sent {
    at: Instant,
    entered: bool,
}

/// One address's accounts, by account key.
type Accounts = Arc<Mutex<HashMap<[u8; 32], Sent>>>;

/// The accounts sent codes from each address over a window.
struct AccountsPerAddress {
    seen: Cache<[u8; 32], Accounts>,
    window: Duration,
    /// Accounts with a code not entered, at most.
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
            window,
            limit,
        }
    }

    /// Counts a send to `account`, or says how long until the oldest
    /// unentered code leaves the window: refused only for an account that
    /// has no unentered code yet while `limit` others have. On success, the
    /// accounts sent codes in the window, entered or not.
    fn send(&self, ip: &[u8; 32], account: &[u8; 32]) -> Result<usize, Duration> {
        let map = self.seen.get_with(*ip, Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.at) < self.window);
        let open = || map.values().filter(|s| !s.entered);
        let already_open = map.get(account).is_some_and(|s| !s.entered);
        if !already_open && open().count() >= self.limit as usize {
            let oldest = open().map(|s| s.at).min().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
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
            && let Some(sent) = map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(account)
        {
            sent.entered = true;
        }
    }
}

/// Different accounts in an hour behind one untrusted peer that sends
/// `X-Forwarded-For` before that peer is probably the site's own proxy,
/// missing from `trusted_proxies`. An office NAT adds no such field.
const FORWARDER_HINT: usize = 10;

struct Account {
    failures: u32,
    locked_until: Option<Instant>,
    /// Kept so that an admin can see and lift locks by name.
    app: String,
    user: String,
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

pub struct AbuseGuard {
    ip_sends_minute: WindowCounter,
    ip_sends_hour: WindowCounter,
    ip_accounts_hour: AccountsPerAddress,
    ip_verifies_minute: WindowCounter,
    /// When the untrusted-forwarder warning was last written (Unix seconds).
    forwarder_warned: AtomicU64,
    accounts: Cache<[u8; 32], Arc<Mutex<Account>>>,
    failure_cap: u32,
    lock: Duration,
}

impl AbuseGuard {
    pub fn new(cfg: &LimitSettings) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            ip_sends_minute: WindowCounter::new(minute, cfg.per_ip_sends_per_minute),
            ip_sends_hour: WindowCounter::new(Duration::from_secs(3600), cfg.per_ip_sends_per_hour),
            ip_accounts_hour: AccountsPerAddress::new(
                Duration::from_secs(3600),
                cfg.per_ip_accounts_per_hour,
            ),
            ip_verifies_minute: WindowCounter::new(minute, cfg.per_ip_verifies_per_minute),
            forwarder_warned: AtomicU64::new(0),
            // Consecutive failures persist until a success; an idle account
            // is forgotten after a day (or its lock, if longer).
            accounts: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(cfg.account_lock.max(Duration::from_secs(86_400)))
                .build(),
            failure_cap: cfg.account_failure_cap,
            lock: cfg.account_lock,
        }
    }

    /// Counts a send to `account` requested from `ip`, or refuses it; on
    /// success, how many accounts `ip` had codes sent to in the last hour.
    pub fn allow_send(&self, ip: &[u8; 32], account: &[u8; 32]) -> Result<usize, Limited> {
        let accounts = self
            .ip_accounts_hour
            .send(ip, account)
            .map_err(|wait| Limited {
                window: Window::NetworkAccounts,
                wait,
            })?;
        self.ip_sends_minute.hit(ip).map_err(|wait| Limited {
            window: Window::NetworkMinute,
            wait,
        })?;
        self.ip_sends_hour.hit(ip).map_err(|wait| Limited {
            window: Window::NetworkHour,
            wait,
        })?;
        Ok(accounts)
    }

    /// `account` entered its code from `ip`: it no longer counts against
    /// the address's accounts.
    pub fn code_entered(&self, ip: &[u8; 32], account: &[u8; 32]) {
        self.ip_accounts_hour.entered(ip, account);
    }

    /// Warns, at most hourly, when `accounts` different accounts asked for
    /// codes in an hour through `peer`, which sent `X-Forwarded-For` but is
    /// not in `trusted_proxies`: every user behind it is one address to the
    /// per-address limits, and they will soon refuse them all.
    pub fn note_untrusted_forwarder(&self, peer: IpAddr, accounts: usize) {
        if accounts < FORWARDER_HINT {
            return;
        }
        let now = crate::factor::now_secs();
        let last = self.forwarder_warned.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 3600
            || self
                .forwarder_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        tracing::warn!(
            event = "limits.untrusted_forwarder", %peer, accounts,
            "{accounts} accounts asked for codes in the last hour through {peer}, which sends X-Forwarded-For but is not in server.trusted_proxies, so they all count as that one address for the per-address limits; if {peer} is your own reverse proxy or load balancer, add it to server.trusted_proxies"
        );
    }

    /// Counts a code check from `ip`, or refuses it.
    pub fn allow_verify(&self, ip: &[u8; 32]) -> Result<(), Limited> {
        self.ip_verifies_minute.hit(ip).map_err(|wait| Limited {
            window: Window::NetworkMinute,
            wait,
        })
    }

    /// How long the account stays locked, if it is.
    pub fn account_locked(&self, account: &[u8; 32]) -> Option<Limited> {
        let state = self.accounts.get(account)?;
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        let until = state.locked_until?;
        let wait = until.saturating_duration_since(Instant::now());
        (!wait.is_zero()).then_some(Limited {
            window: Window::Account,
            wait,
        })
    }

    /// Records a wrong code by `user` of `app`; `true` when this failure
    /// locks the account.
    pub fn record_failure(&self, account: &[u8; 32], app: &str, user: &str) -> bool {
        let state = self.accounts.get_with(*account, || {
            Arc::new(Mutex::new(Account {
                failures: 0,
                locked_until: None,
                app: app.to_string(),
                user: user.to_string(),
            }))
        });
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // A lock that has ended leaves a fresh run (the count stays at the
        // cap while locked, so that an admin sees why).
        if state.locked_until.take_if(|until| *until <= now).is_some() {
            state.failures = 0;
        }
        state.failures += 1;
        if state.failures >= self.failure_cap && state.locked_until.is_none() {
            state.locked_until = Some(now + self.lock);
            return true;
        }
        false
    }

    /// A correct code ends the run of failures.
    pub fn record_success(&self, account: &[u8; 32]) {
        self.accounts.invalidate(account);
    }

    /// The accounts locked now, by app and user.
    pub fn locks(&self) -> Vec<LockView> {
        let now = Instant::now();
        let mut list: Vec<LockView> = self
            .accounts
            .iter()
            .filter_map(|(_, state)| {
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                let until = state.locked_until.filter(|until| *until > now)?;
                Some(LockView {
                    app: state.app.clone(),
                    user: state.user.clone(),
                    failures: state.failures,
                    seconds_left: crate::text::ceil_secs(until - now),
                })
            })
            .collect();
        list.sort_by(|a, b| (&a.app, &a.user).cmp(&(&b.app, &b.user)));
        list
    }

    /// Lifts an account's lock and forgets its failures; `false` if it was
    /// not locked.
    pub fn unlock(&self, account: &[u8; 32]) -> bool {
        let locked = self.account_locked(account).is_some();
        if locked {
            self.accounts.invalidate(account);
        }
        locked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_minute: u32, cap: u32) -> AbuseGuard {
        AbuseGuard::new(&LimitSettings {
            per_ip_sends_per_minute: per_minute,
            per_ip_verifies_per_minute: per_minute,
            account_failure_cap: cap,
            ..LimitSettings::default()
        })
    }

    #[test]
    fn sends_from_one_address_are_capped_per_minute_and_others_are_not_affected() {
        let g = guard(2, 100);
        assert!(g.allow_send(&[1; 32], &[10; 32]).is_ok());
        assert!(g.allow_send(&[1; 32], &[11; 32]).is_ok());
        let refused = g.allow_send(&[1; 32], &[12; 32]).unwrap_err();
        assert_eq!(refused.window, Window::NetworkMinute);
        assert!(refused.wait > Duration::from_secs(58));
        assert!(g.allow_send(&[2; 32], &[12; 32]).is_ok());
    }

    #[test]
    fn an_address_may_have_codes_out_for_a_limited_number_of_accounts_that_did_not_enter_them() {
        let g = AbuseGuard::new(&LimitSettings {
            per_ip_accounts_per_hour: 2,
            ..LimitSettings::default()
        });
        let ip = [1; 32];
        assert_eq!(g.allow_send(&ip, &[10; 32]), Ok(1));
        assert_eq!(g.allow_send(&ip, &[11; 32]), Ok(2));
        assert_eq!(
            g.allow_send(&ip, &[11; 32]),
            Ok(2),
            "the same account again"
        );
        let refused = g.allow_send(&ip, &[12; 32]).unwrap_err();
        assert_eq!(refused.window, Window::NetworkAccounts);
        assert!(refused.wait > Duration::from_secs(3590));
        g.code_entered(&ip, &[10; 32]);
        assert_eq!(
            g.allow_send(&ip, &[12; 32]),
            Ok(3),
            "an entered code frees its place"
        );
        assert!(g.allow_send(&[2; 32], &[13; 32]).is_ok(), "another address");
    }

    #[test]
    fn consecutive_failures_lock_the_account_and_a_success_resets_them() {
        let g = guard(10, 3);
        let fail = || g.record_failure(&[1; 32], "CRM", "alice");
        assert!(!fail());
        assert!(!fail());
        g.record_success(&[1; 32]);
        assert!(!fail());
        assert!(!fail());
        assert!(g.account_locked(&[1; 32]).is_none());
        assert!(fail());
        let locked = g.account_locked(&[1; 32]).unwrap();
        assert_eq!(locked.window, Window::Account);
        assert!(locked.wait > Duration::from_secs(3590));
    }

    #[test]
    fn a_lock_is_listed_by_app_and_user_and_can_be_lifted() {
        let g = guard(10, 2);
        g.record_failure(&[1; 32], "CRM", "alice");
        assert!(g.locks().is_empty(), "one failure is no lock");
        g.record_failure(&[1; 32], "CRM", "alice");
        let locks = g.locks();
        assert_eq!(locks.len(), 1);
        assert_eq!(
            (locks[0].app.as_str(), locks[0].user.as_str()),
            ("CRM", "alice")
        );
        assert_eq!(locks[0].failures, 2);
        assert!(locks[0].seconds_left > 3590);
        assert!(g.unlock(&[1; 32]));
        assert!(g.account_locked(&[1; 32]).is_none());
        assert!(!g.unlock(&[1; 32]), "nothing left to lift");
        assert!(
            !g.record_failure(&[1; 32], "CRM", "alice"),
            "the count starts afresh"
        );
    }
}
