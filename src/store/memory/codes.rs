//! Pending codes in moka: attempts counted under moka's per-key compute
//! lock, so that concurrent guesses are counted exactly; expiry from the
//! clock (moka's time-to-live only frees the memory).

use std::time::Duration;

use moka::ops::compute::Op;
use moka::sync::Cache;
use subtle::ConstantTimeEq;

use crate::store::{CodeStore, SharedClock, Status, StoreFuture, Verdict, ms};

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

/// 48 bytes: what `benches/otp_memory` weighs per pending code.
#[derive(Clone)]
struct Entry {
    hash: [u8; 32],
    /// Milliseconds since the Unix epoch.
    expires: u64,
    attempts: u32,
    state: State,
}

pub struct MemoryCodes {
    entries: Cache<[u8; 32], Entry>,
    clock: SharedClock,
    ttl: u64,
    max_attempts: u32,
}

impl MemoryCodes {
    pub fn new(ttl: Duration, max_attempts: u32, clock: SharedClock) -> Self {
        let entries = Cache::builder()
            .max_capacity(2_000_000)
            .time_to_live(ttl)
            .build();
        Self {
            entries,
            clock,
            ttl: ms(ttl),
            max_attempts,
        }
    }

    fn fresh(&self, hash: [u8; 32]) -> Entry {
        Entry {
            hash,
            expires: self.clock.now_ms().saturating_add(self.ttl),
            attempts: 0,
            state: State::Alive,
        }
    }

    fn alive(&self, e: &Entry) -> bool {
        e.state == State::Alive && e.expires > self.clock.now_ms()
    }

    fn issue_now(&self, key: &[u8; 32], hash: [u8; 32]) -> bool {
        let mut issued = false;
        self.entries.entry(*key).and_compute_with(|existing| {
            if existing.is_some_and(|e| self.alive(e.value())) {
                return Op::Nop;
            }
            issued = true;
            Op::Put(self.fresh(hash))
        });
        issued
    }

    fn abandon_now(&self, key: &[u8; 32], hash: &[u8; 32]) {
        self.entries
            .entry(*key)
            .and_compute_with(|existing| match existing {
                Some(e) if bool::from(e.value().hash.ct_eq(hash)) => {
                    let mut p = e.into_value();
                    p.state = State::Abandoned;
                    Op::Put(p)
                }
                _ => Op::Nop,
            });
    }

    fn check_now(&self, key: &[u8; 32], submitted: &[u8; 32]) -> Verdict {
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
                State::Alive if p.expires <= self.clock.now_ms() => return Op::Nop,
                State::Alive => {}
            }
            p.attempts += 1;
            if bool::from(p.hash.ct_eq(submitted)) {
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

    fn status_now(&self, key: &[u8; 32]) -> Status {
        match self.entries.get(key) {
            None => Status::None,
            Some(p) if p.state == State::Locked => Status::Locked,
            Some(p) if self.alive(&p) => Status::Alive,
            Some(p) if p.state == State::Alive => Status::Expired,
            Some(_) => Status::None,
        }
    }
}

impl CodeStore for MemoryCodes {
    fn issue_if_none<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.issue_now(key, hash) })
    }

    fn install<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.entries.insert(*key, self.fresh(hash)) })
    }

    fn is_alive<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.entries
                .get(key)
                .is_some_and(|p| self.alive(&p) && bool::from(p.hash.ct_eq(&hash)))
        })
    }

    fn abandon<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.abandon_now(key, &hash) })
    }

    fn check<'a>(&'a self, key: &'a [u8; 32], hash: [u8; 32]) -> StoreFuture<'a, Verdict> {
        Box::pin(async move { self.check_now(key, &hash) })
    }

    fn status<'a>(&'a self, key: &'a [u8; 32]) -> StoreFuture<'a, Status> {
        Box::pin(async move { self.status_now(key) })
    }
}
