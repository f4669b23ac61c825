//! Per-session flags of one app in moka: which proven sessions the app's
//! answer lately confirmed (and for which user), and which sessions were
//! just forgotten. Both are timestamps compared with the clock; moka's
//! time-to-live only frees the memory.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::store::{SessionFlags, SharedClock, StoreFuture, ms};

pub struct MemorySessionFlags {
    /// The user and until when (ms).
    confirmed: Cache<[u8; 32], (Arc<str>, u64)>,
    /// Until when (ms) a session counts as just forgotten.
    forgotten: Cache<[u8; 32], u64>,
    confirm_for: u64,
    forget_for: u64,
    clock: SharedClock,
}

impl MemorySessionFlags {
    /// Confirmations hold for `confirm_for`, a forgotten mark for `forget_for`.
    pub fn new(confirm_for: Duration, forget_for: Duration, clock: SharedClock) -> Self {
        Self {
            confirmed: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(confirm_for)
                .build(),
            forgotten: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(forget_for)
                .build(),
            confirm_for: ms(confirm_for),
            forget_for: ms(forget_for),
            clock,
        }
    }
}

impl SessionFlags for MemorySessionFlags {
    fn is_confirmed(&self, session: &[u8; 32], user: &str) -> bool {
        // One cache read and an `Arc` clone: no allocation.
        self.confirmed
            .get(session)
            .is_some_and(|(u, until)| &*u == user && until > self.clock.now_ms())
    }

    fn confirm<'a>(&'a self, session: [u8; 32], user: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let until = self.clock.now_ms().saturating_add(self.confirm_for);
            self.confirmed.insert(session, (Arc::from(user), until));
        })
    }

    fn forget<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let until = self.clock.now_ms().saturating_add(self.forget_for);
            self.forgotten.insert(*session, until);
            self.confirmed.invalidate(session);
        })
    }

    fn just_forgotten<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.forgotten
                .get(session)
                .is_some_and(|until| until > self.clock.now_ms())
        })
    }
}
