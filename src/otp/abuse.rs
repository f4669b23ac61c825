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

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::LimitSettings;
use crate::otp::limits::Limited;
use crate::store::memory::{AddressRules, MemoryAccountLocks, MemoryAddressLimits};
use crate::store::{AccountLocks, AddressLimits, Clock, SharedClock};

pub use crate::store::LockView;

/// Different accounts in an hour behind one untrusted peer that sends
/// `X-Forwarded-For` before that peer is probably the site's own proxy,
/// missing from `trusted_proxies`. An office NAT adds no such field.
const FORWARDER_HINT: usize = 10;

pub struct AbuseGuard {
    addresses: Arc<dyn AddressLimits>,
    locks: Arc<dyn AccountLocks>,
    /// When the untrusted-forwarder warning was last written (Unix seconds).
    forwarder_warned: AtomicU64,
}

impl AbuseGuard {
    /// The limits of `cfg` in memory, timed by `clock`.
    pub fn in_memory(cfg: &LimitSettings, clock: SharedClock) -> Self {
        let rules = AddressRules {
            sends_per_minute: cfg.per_ip_sends_per_minute,
            sends_per_hour: cfg.per_ip_sends_per_hour,
            accounts_per_hour: cfg.per_ip_accounts_per_hour,
            verifies_per_minute: cfg.per_ip_verifies_per_minute,
        };
        Self::with_stores(
            Arc::new(MemoryAddressLimits::new(rules, clock.clone())),
            Arc::new(MemoryAccountLocks::new(
                cfg.account_failure_cap,
                cfg.account_lock,
                clock,
            )),
        )
    }

    pub fn with_stores(addresses: Arc<dyn AddressLimits>, locks: Arc<dyn AccountLocks>) -> Self {
        Self {
            addresses,
            locks,
            forwarder_warned: AtomicU64::new(0),
        }
    }

    /// Counts a send to `account` requested from `ip`, or refuses it; on
    /// success, how many accounts `ip` had codes sent to in the last hour.
    pub async fn allow_send(&self, ip: &[u8; 32], account: &[u8; 32]) -> Result<usize, Limited> {
        self.addresses.allow_send(ip, account).await
    }

    /// `account` entered its code from `ip`: it no longer counts against
    /// the address's accounts.
    pub async fn code_entered(&self, ip: &[u8; 32], account: &[u8; 32]) {
        self.addresses.code_entered(ip, account).await;
    }

    /// Warns, at most hourly, when `accounts` different accounts asked for
    /// codes in an hour through `peer`, which sent `X-Forwarded-For` but is
    /// not in `trusted_proxies`: every user behind it is one address to the
    /// per-address limits, and they will soon refuse them all.
    pub fn note_untrusted_forwarder(&self, peer: IpAddr, accounts: usize) {
        if accounts < FORWARDER_HINT {
            return;
        }
        let now = crate::store::SystemClock.now_ms() / 1000;
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
    pub async fn allow_verify(&self, ip: &[u8; 32]) -> Result<(), Limited> {
        self.addresses.allow_verify(ip).await
    }

    /// How long the account stays locked, if it is.
    pub async fn account_locked(&self, account: &[u8; 32]) -> Option<Limited> {
        self.locks.locked(account).await
    }

    /// Records a wrong code by `user` of `app`; `true` when this failure
    /// locks the account.
    pub async fn record_failure(&self, account: &[u8; 32], app: &str, user: &str) -> bool {
        self.locks.record_failure(account, app, user).await
    }

    /// A correct code ends the run of failures.
    pub async fn record_success(&self, account: &[u8; 32]) {
        self.locks.record_success(account).await;
    }

    /// The accounts locked now, by app and user.
    pub async fn locks(&self) -> Vec<LockView> {
        let mut list = self.locks.locks().await;
        list.sort_by(|a, b| (&a.app, &a.user).cmp(&(&b.app, &b.user)));
        list
    }

    /// Lifts an account's lock and forgets its failures; `false` if it was
    /// not locked.
    pub async fn unlock(&self, account: &[u8; 32]) -> bool {
        self.locks.unlock(account).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::otp::limits::Window;
    use crate::store::ManualClock;

    fn new(cfg: &LimitSettings) -> AbuseGuard {
        AbuseGuard::in_memory(cfg, ManualClock::starting_now())
    }

    fn guard(per_minute: u32, cap: u32) -> AbuseGuard {
        new(&LimitSettings {
            per_ip_sends_per_minute: per_minute,
            per_ip_verifies_per_minute: per_minute,
            account_failure_cap: cap,
            ..LimitSettings::default()
        })
    }

    #[tokio::test]
    async fn sends_from_one_address_are_capped_per_minute_and_others_are_not_affected() {
        let g = guard(2, 100);
        assert!(g.allow_send(&[1; 32], &[10; 32]).await.is_ok());
        assert!(g.allow_send(&[1; 32], &[11; 32]).await.is_ok());
        let refused = g.allow_send(&[1; 32], &[12; 32]).await.unwrap_err();
        assert_eq!(refused.window, Window::NetworkMinute);
        assert!(refused.wait > Duration::from_secs(58));
        assert!(g.allow_send(&[2; 32], &[12; 32]).await.is_ok());
    }

    #[tokio::test]
    async fn an_address_may_have_codes_out_for_a_limited_number_of_accounts_that_did_not_enter_them()
     {
        let g = new(&LimitSettings {
            per_ip_accounts_per_hour: 2,
            ..LimitSettings::default()
        });
        let ip = [1; 32];
        assert_eq!(g.allow_send(&ip, &[10; 32]).await, Ok(1));
        assert_eq!(g.allow_send(&ip, &[11; 32]).await, Ok(2));
        assert_eq!(
            g.allow_send(&ip, &[11; 32]).await,
            Ok(2),
            "the same account again"
        );
        let refused = g.allow_send(&ip, &[12; 32]).await.unwrap_err();
        assert_eq!(refused.window, Window::NetworkAccounts);
        assert!(refused.wait > Duration::from_secs(3590));
        g.code_entered(&ip, &[10; 32]).await;
        assert_eq!(
            g.allow_send(&ip, &[12; 32]).await,
            Ok(3),
            "an entered code frees its place"
        );
        assert!(
            g.allow_send(&[2; 32], &[13; 32]).await.is_ok(),
            "another address"
        );
    }

    #[tokio::test]
    async fn consecutive_failures_lock_the_account_and_a_success_resets_them() {
        let g = guard(10, 3);
        let fail = || g.record_failure(&[1; 32], "CRM", "alice");
        assert!(!fail().await);
        assert!(!fail().await);
        g.record_success(&[1; 32]).await;
        assert!(!fail().await);
        assert!(!fail().await);
        assert!(g.account_locked(&[1; 32]).await.is_none());
        assert!(fail().await);
        let locked = g.account_locked(&[1; 32]).await.unwrap();
        assert_eq!(locked.window, Window::Account);
        assert!(locked.wait > Duration::from_secs(3590));
    }

    #[tokio::test]
    async fn a_lock_is_listed_by_app_and_user_and_can_be_lifted() {
        let g = guard(10, 2);
        g.record_failure(&[1; 32], "CRM", "alice").await;
        assert!(g.locks().await.is_empty(), "one failure is no lock");
        g.record_failure(&[1; 32], "CRM", "alice").await;
        let locks = g.locks().await;
        assert_eq!(locks.len(), 1);
        assert_eq!(
            (locks[0].app.as_str(), locks[0].user.as_str()),
            ("CRM", "alice")
        );
        assert_eq!(locks[0].failures, 2);
        assert!(locks[0].seconds_left > 3590);
        assert!(g.unlock(&[1; 32]).await);
        assert!(g.account_locked(&[1; 32]).await.is_none());
        assert!(!g.unlock(&[1; 32]).await, "nothing left to lift");
        assert!(
            !g.record_failure(&[1; 32], "CRM", "alice").await,
            "the count starts afresh"
        );
    }

    #[tokio::test]
    async fn windows_slide_and_locks_end_with_the_clock() {
        let clock = ManualClock::starting_now();
        let g = AbuseGuard::in_memory(
            &LimitSettings {
                per_ip_sends_per_minute: 1,
                per_ip_verifies_per_minute: 1,
                account_failure_cap: 1,
                ..LimitSettings::default()
            },
            clock.clone(),
        );
        assert!(g.allow_send(&[1; 32], &[10; 32]).await.is_ok());
        assert!(g.allow_verify(&[1; 32]).await.is_ok());
        assert!(g.allow_send(&[1; 32], &[10; 32]).await.is_err());
        assert!(g.allow_verify(&[1; 32]).await.is_err());
        clock.advance(Duration::from_secs(60));
        assert!(g.allow_send(&[1; 32], &[10; 32]).await.is_ok());
        assert!(g.allow_verify(&[1; 32]).await.is_ok());
        assert!(g.record_failure(&[2; 32], "CRM", "bob").await);
        let wait = g.account_locked(&[2; 32]).await.unwrap().wait;
        clock.advance(wait);
        assert!(g.account_locked(&[2; 32]).await.is_none(), "the lock ended");
        assert!(g.locks().await.is_empty());
    }
}
