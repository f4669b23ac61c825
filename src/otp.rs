//! One-time codes: drawn from the OS CSPRNG, kept only as a keyed hash,
//! checked in constant time, with attempts counted under moka's per-key
//! compute lock so that concurrent guesses are counted exactly.
//!
//! The store never holds a code, not even encrypted. To resend the *same*
//! code while it is alive (so a late SMS still works), the code travels
//! sealed (AES-256-GCM) in the user's own `otpgate_pending` cookie, which
//! only the gateway can open. The one copy on the server is the sealed one
//! a WhatsApp-first code's delivery record keeps for its SMS fallback
//! until that is sent or no longer needed (see `fallback`).

use std::fmt;
use std::time::{Duration, Instant};

use cookie::{Cookie, SameSite};
use moka::ops::compute::Op;
use moka::sync::Cache;
use rand::TryRngCore;
use rand::distr::{Distribution, Uniform};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use crate::keys::{KeyedHash, Keys};

pub const PENDING_COOKIE: &str = "otpgate_pending";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Alive,
    /// Too many wrong guesses: dead until a new code is sent.
    Locked,
    /// Verified once; can never verify again.
    Used,
    /// The send failed; the code never reached anyone.
    Abandoned,
}

#[derive(Clone)]
struct Pending {
    hash: [u8; 32],
    expires: Instant,
    attempts: u32,
    state: State,
}

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

pub struct OtpStore {
    entries: Cache<[u8; 32], Pending>,
    hasher: KeyedHash,
    ttl: Duration,
    max_attempts: u32,
    length: u32,
}

impl OtpStore {
    pub fn new(keys: &Keys, ttl: Duration, max_attempts: u32, length: u32) -> Self {
        let entries = Cache::builder()
            .max_capacity(2_000_000)
            .time_to_live(ttl)
            .build();
        Self {
            entries,
            hasher: keys.code.clone(),
            ttl,
            max_attempts,
            length,
        }
    }

    pub fn length(&self) -> u32 {
        self.length
    }

    fn hash(&self, key: &[u8; 32], code: &str) -> [u8; 32] {
        self.hasher.of(&[key, code.as_bytes()])
    }

    pub fn status(&self, key: &[u8; 32]) -> Status {
        match self.entries.get(key) {
            None => Status::None,
            Some(p) if p.state == State::Locked => Status::Locked,
            Some(p) if p.state == State::Alive && p.expires > Instant::now() => Status::Alive,
            Some(p) if p.state == State::Alive => Status::Expired,
            Some(_) => Status::None,
        }
    }

    /// Issues a code for `key` unless one is alive: `Some(code)` for a new
    /// code to send, `None` when a live one exists. Atomic per key, so two
    /// tabs opening the page at once send one code, not two.
    pub fn issue_if_none(&self, key: &[u8; 32]) -> Option<Code> {
        let mut issued = None;
        self.entries.entry(*key).and_compute_with(|existing| {
            let now = Instant::now();
            let alive = existing.as_ref().is_some_and(|e| {
                let p = e.value();
                p.state == State::Alive && p.expires > now
            });
            if alive {
                return Op::Nop;
            }
            let code = generate(self.length);
            let pending = self.fresh(key, &code);
            issued = Some(code);
            Op::Put(pending)
        });
        issued
    }

    /// Makes `code` the live code for `key`, replacing any other (a new code
    /// is installed only once it has been sent, so a failed send leaves the
    /// code the user already has working).
    pub fn install(&self, key: &[u8; 32], code: &Code) {
        self.entries.insert(*key, self.fresh(key, code));
    }

    fn fresh(&self, key: &[u8; 32], code: &Code) -> Pending {
        Pending {
            hash: self.hash(key, code.as_str()),
            expires: Instant::now() + self.ttl,
            attempts: 0,
            state: State::Alive,
        }
    }

    /// Whether `code` is the live code for `key` (to resend the same one).
    pub fn is_alive_code(&self, key: &[u8; 32], code: &Code) -> bool {
        let expected = self.hash(key, code.as_str());
        self.entries.get(key).is_some_and(|p| {
            p.state == State::Alive
                && p.expires > Instant::now()
                && bool::from(p.hash.ct_eq(&expected))
        })
    }

    /// Marks `code` as never delivered (the provider failed), so the next
    /// visit sends a new one instead of waiting for this one.
    pub fn abandon(&self, key: &[u8; 32], code: &Code) {
        let expected = self.hash(key, code.as_str());
        self.update_if(key, &expected, |p| p.state = State::Abandoned);
    }

    fn update_if(&self, key: &[u8; 32], hash: &[u8; 32], change: impl FnOnce(&mut Pending)) {
        self.entries
            .entry(*key)
            .and_compute_with(|existing| match existing {
                Some(e) if bool::from(e.value().hash.ct_eq(hash)) => {
                    let mut p = e.into_value();
                    change(&mut p);
                    Op::Put(p)
                }
                _ => Op::Nop,
            });
    }

    /// Checks a submitted code. Every well-formed guess at a live code
    /// counts as an attempt, counted under the per-key lock.
    pub fn verify(&self, key: &[u8; 32], input: &str) -> Verdict {
        let input = input.trim();
        if input.len() != self.length as usize || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Verdict::Malformed;
        }
        let submitted = self.hash(key, input);
        let mut verdict = Verdict::NoCode;
        self.entries.entry(*key).and_compute_with(|existing| {
            let Some(e) = existing else { return Op::Nop };
            let mut p = e.into_value();
            match p.state {
                State::Locked => {
                    verdict = Verdict::Locked;
                    return Op::Nop;
                }
                State::Used | State::Abandoned => return Op::Nop,
                State::Alive if p.expires <= Instant::now() => return Op::Nop,
                State::Alive => {}
            }
            p.attempts += 1;
            if bool::from(p.hash.ct_eq(&submitted)) {
                p.state = State::Used;
                verdict = Verdict::Correct;
            } else if p.attempts >= self.max_attempts {
                p.state = State::Locked;
                verdict = Verdict::Locked;
            } else {
                verdict = Verdict::Wrong {
                    attempts_left: self.max_attempts - p.attempts,
                };
            }
            Op::Put(p)
        });
        verdict
    }
}

/// The user's sealed copy of their live code, for resends.
pub fn seal(keys: &Keys, code: &Code, ttl: Duration, secure: bool) -> Cookie<'static> {
    let cookie = Cookie::build((PENDING_COOKIE, code.as_str().to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(crate::routes::PREFIX)
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

    #[test]
    fn a_code_verifies_once_and_never_again() {
        let s = store(5);
        let code = s.issue_if_none(&[1; 32]).unwrap();
        assert_eq!(s.verify(&[1; 32], code.as_str()), Verdict::Correct);
        assert_eq!(s.verify(&[1; 32], code.as_str()), Verdict::NoCode);
    }

    #[test]
    fn a_code_is_locked_after_the_last_wrong_attempt() {
        let s = store(3);
        let code = s.issue_if_none(&[1; 32]).unwrap();
        let wrong = if code.as_str() == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert_eq!(
            s.verify(&[1; 32], wrong),
            Verdict::Wrong { attempts_left: 2 }
        );
        assert_eq!(
            s.verify(&[1; 32], wrong),
            Verdict::Wrong { attempts_left: 1 }
        );
        assert_eq!(s.verify(&[1; 32], wrong), Verdict::Locked);
        assert_eq!(
            s.verify(&[1; 32], code.as_str()),
            Verdict::Locked,
            "even the right code"
        );
        assert_eq!(s.status(&[1; 32]), Status::Locked);
    }

    #[test]
    fn a_code_belongs_to_its_key_only() {
        let s = store(5);
        let code = s.issue_if_none(&[1; 32]).unwrap();
        s.issue_if_none(&[2; 32]).unwrap();
        assert_ne!(s.verify(&[2; 32], code.as_str()), Verdict::Correct);
    }

    #[test]
    fn malformed_input_costs_no_attempt() {
        let s = store(1);
        let code = s.issue_if_none(&[1; 32]).unwrap();
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(s.verify(&[1; 32], bad), Verdict::Malformed);
        }
        assert_eq!(s.verify(&[1; 32], code.as_str()), Verdict::Correct);
    }

    #[test]
    fn a_live_code_is_not_replaced_but_an_installed_one_replaces_it() {
        let s = store(5);
        let first = s.issue_if_none(&[1; 32]).unwrap();
        assert!(s.issue_if_none(&[1; 32]).is_none());
        assert!(s.is_alive_code(&[1; 32], &first));
        let second = generate(6);
        s.install(&[1; 32], &second);
        assert!(s.is_alive_code(&[1; 32], &second));
        assert!(!s.is_alive_code(&[1; 32], &first) || first == second);
        s.abandon(&[1; 32], &second);
        assert_eq!(s.status(&[1; 32]), Status::None);
    }

    #[test]
    fn concurrent_wrong_guesses_are_each_counted() {
        let s = std::sync::Arc::new(store(5));
        let code = s.issue_if_none(&[1; 32]).unwrap();
        let wrong = if code.as_str() == "000000" {
            "000001"
        } else {
            "000000"
        };
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.verify(&[1; 32], wrong))
            })
            .collect();
        let verdicts: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
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
