//! One-time codes: drawn from the OS CSPRNG, kept only as a keyed hash in
//! the code store (`store::CodeStore`), checked there in constant time with
//! the attempt counted in the same step, so that concurrent guesses are
//! counted exactly.
//!
//! The store never holds a code, not even encrypted. To resend the *same*
//! code while it is alive (so a late SMS still works), the code travels
//! sealed (AES-256-GCM) in the user's own `otpgate_pending` cookie, which
//! only the gateway can open. The one copy on the server is the sealed one
//! a WhatsApp-first code's delivery record keeps for its SMS fallback
//! until that is sent or no longer needed (see `fallback`).

pub mod abuse;
pub mod limits;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use rand::TryRngCore;
use rand::distr::{Distribution, Uniform};
use rand::rngs::OsRng;

use crate::keys::{KeyedHash, Keys};
use crate::store::memory::MemoryCodes;
use crate::store::{self, CodeStore, SharedClock};

use crate::names::PENDING_COOKIE;

/// A code in plain text. The server holds it only while a message is being
/// sent (the user's browser keeps a sealed copy); its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(MASKED)")
    }
}

impl Code {
    /// A code read back from the server's own sealed copy (`fallback`):
    /// authenticated, so it is a code this gateway issued.
    pub(crate) fn opened(digits: String) -> Self {
        Code(digits)
    }
}

/// A code with a known value, for unit tests elsewhere.
#[cfg(test)]
pub fn test_code(digits: &str) -> Code {
    Code(digits.to_string())
}

/// A uniformly drawn code of `length` digits (6 to 10). `Uniform` samples
/// without modulo bias; the bytes come straight from the OS (getrandom).
pub fn generate(length: u32) -> Code {
    let upper = 10u64.pow(length);
    let range = Uniform::new(0, upper).expect("10^length is a non-empty range");
    let n = range.sample(&mut OsRng.unwrap_err());
    Code(format!("{n:0width$}", width = length as usize))
}

pub use crate::store::{Status, Verdict};

/// The codes of pending second factors: draws them, hashes them with the
/// code key (bound to the account key) and keeps only the hash in the
/// [`CodeStore`].
pub struct OtpStore {
    store: Arc<dyn CodeStore>,
    hasher: KeyedHash,
    length: u32,
}

impl OtpStore {
    /// Codes in memory, timed by the system clock.
    pub fn new(keys: &Keys, ttl: Duration, max_attempts: u32, length: u32) -> Self {
        Self::in_memory(keys, ttl, max_attempts, length, store::system_clock())
    }

    /// Codes in memory, timed by `clock`.
    pub fn in_memory(
        keys: &Keys,
        ttl: Duration,
        max_attempts: u32,
        length: u32,
        clock: SharedClock,
    ) -> Self {
        let store = Arc::new(MemoryCodes::new(ttl, max_attempts, clock));
        Self::with_store(keys, length, store)
    }

    pub fn with_store(keys: &Keys, length: u32, store: Arc<dyn CodeStore>) -> Self {
        Self {
            store,
            hasher: keys.code.clone(),
            length,
        }
    }

    pub fn length(&self) -> u32 {
        self.length
    }

    fn hash(&self, key: &[u8; 32], code: &str) -> [u8; 32] {
        self.hasher.of(&[key, code.as_bytes()])
    }

    pub async fn status(&self, key: &[u8; 32]) -> Status {
        self.store.status(key).await
    }

    /// Issues a code for `key` unless one is alive: `Some(code)` for a new
    /// code to send, `None` when a live one exists. Atomic per key, so two
    /// tabs opening the page at once send one code, not two.
    pub async fn issue_if_none(&self, key: &[u8; 32]) -> Option<Code> {
        let code = generate(self.length);
        let hash = self.hash(key, code.as_str());
        self.store.issue_if_none(key, hash).await.then_some(code)
    }

    /// Makes `code` the live code for `key`, replacing any other (a new code
    /// is installed only once it has been sent, so a failed send leaves the
    /// code the user already has working).
    pub async fn install(&self, key: &[u8; 32], code: &Code) {
        self.store.install(key, self.hash(key, code.as_str())).await;
    }

    /// Whether `code` is the live code for `key` (to resend the same one).
    pub async fn is_alive_code(&self, key: &[u8; 32], code: &Code) -> bool {
        self.store
            .is_alive(key, self.hash(key, code.as_str()))
            .await
    }

    /// Marks `code` as never delivered (the provider failed), so the next
    /// visit sends a new one instead of waiting for this one.
    pub async fn abandon(&self, key: &[u8; 32], code: &Code) {
        self.store.abandon(key, self.hash(key, code.as_str())).await;
    }

    /// Checks a submitted code. Every well-formed guess at a live code
    /// counts as an attempt, counted in the store's one step.
    pub async fn verify(&self, key: &[u8; 32], input: &str) -> Verdict {
        let input = input.trim();
        if input.len() != self.length as usize || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Verdict::Malformed;
        }
        self.store.check(key, self.hash(key, input)).await
    }
}

/// The user's sealed copy of their live code, for resends.
pub fn seal(keys: &Keys, code: &Code, ttl: Duration, secure: bool) -> Cookie<'static> {
    let cookie = Cookie::build((PENDING_COOKIE, code.as_str().to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(crate::names::PREFIX)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64))
        .build();
    keys.seal_cookie(cookie)
}

pub fn unseal(keys: &Keys, value: &str) -> Option<Code> {
    keys.open_cookie(PENDING_COOKIE, value).map(Code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(attempts: u32) -> OtpStore {
        OtpStore::new(
            &Keys::derive(&[3u8; 64]),
            Duration::from_secs(60),
            attempts,
            6,
        )
    }

    #[test]
    fn codes_have_the_configured_number_of_digits_and_vary() {
        for len in 6..=10 {
            let c = generate(len);
            assert_eq!(c.as_str().len(), len as usize);
            assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| generate(6).0).collect();
        assert!(distinct.len() > 45);
    }

    #[test]
    fn every_digit_appears_in_every_position() {
        let mut seen = [[false; 10]; 6];
        for _ in 0..2000 {
            for (i, b) in generate(6).0.bytes().enumerate() {
                seen[i][(b - b'0') as usize] = true;
            }
        }
        assert!(seen.iter().all(|p| p.iter().all(|d| *d)));
    }

    #[tokio::test]
    async fn a_code_verifies_once_and_never_again() {
        let s = store(5);
        let code = s.issue_if_none(&[1; 32]).await.unwrap();
        assert_eq!(s.verify(&[1; 32], code.as_str()).await, Verdict::Correct);
        assert_eq!(s.verify(&[1; 32], code.as_str()).await, Verdict::NoCode);
    }

    #[tokio::test]
    async fn a_code_is_locked_after_the_last_wrong_attempt() {
        let s = store(3);
        let code = s.issue_if_none(&[1; 32]).await.unwrap();
        let wrong = if code.as_str() == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert_eq!(
            s.verify(&[1; 32], wrong).await,
            Verdict::Wrong { attempts_left: 2 }
        );
        assert_eq!(
            s.verify(&[1; 32], wrong).await,
            Verdict::Wrong { attempts_left: 1 }
        );
        assert_eq!(s.verify(&[1; 32], wrong).await, Verdict::Locked);
        assert_eq!(
            s.verify(&[1; 32], code.as_str()).await,
            Verdict::Locked,
            "even the right code"
        );
        assert_eq!(s.status(&[1; 32]).await, Status::Locked);
    }

    #[tokio::test]
    async fn a_code_belongs_to_its_key_only() {
        let s = store(5);
        let code = s.issue_if_none(&[1; 32]).await.unwrap();
        s.issue_if_none(&[2; 32]).await.unwrap();
        assert_ne!(s.verify(&[2; 32], code.as_str()).await, Verdict::Correct);
    }

    #[tokio::test]
    async fn malformed_input_costs_no_attempt() {
        let s = store(1);
        let code = s.issue_if_none(&[1; 32]).await.unwrap();
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(s.verify(&[1; 32], bad).await, Verdict::Malformed);
        }
        assert_eq!(s.verify(&[1; 32], code.as_str()).await, Verdict::Correct);
    }

    #[tokio::test]
    async fn a_live_code_is_not_replaced_but_an_installed_one_replaces_it() {
        let s = store(5);
        let first = s.issue_if_none(&[1; 32]).await.unwrap();
        assert!(s.issue_if_none(&[1; 32]).await.is_none());
        assert!(s.is_alive_code(&[1; 32], &first).await);
        let second = generate(6);
        s.install(&[1; 32], &second).await;
        assert!(s.is_alive_code(&[1; 32], &second).await);
        assert!(!s.is_alive_code(&[1; 32], &first).await || first == second);
        s.abandon(&[1; 32], &second).await;
        assert_eq!(s.status(&[1; 32]).await, Status::None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_wrong_guesses_are_each_counted() {
        let s = std::sync::Arc::new(store(5));
        let code = s.issue_if_none(&[1; 32]).await.unwrap();
        let wrong = if code.as_str() == "000000" {
            "000001"
        } else {
            "000000"
        };
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.verify(&[1; 32], wrong).await })
            })
            .collect();
        let mut verdicts = Vec::new();
        for t in threads {
            verdicts.push(t.await.unwrap());
        }
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Wrong { .. }))
                .count(),
            4
        );
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Locked).count(),
            4
        );
    }

    #[test]
    fn a_sealed_code_opens_only_with_the_same_keys() {
        let keys = Keys::derive(&[3u8; 64]);
        let code = generate(6);
        let c = seal(&keys, &code, Duration::from_secs(60), false);
        assert!(!c.value().contains(code.as_str()));
        assert_eq!(unseal(&keys, c.value()), Some(code));
        assert_eq!(unseal(&Keys::derive(&[4u8; 64]), c.value()), None);
    }
}
