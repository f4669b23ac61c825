//! The in-process stores (moka): the default, and what one gateway
//! process needs. Each operation is one moka compute (or one lock) on one
//! key, so it is atomic as the store traits require; their futures never
//! wait on anything.

mod abuse;
mod codes;
mod deliveries;
mod identities;
mod pumping;
mod sends;
mod sessions;

pub use abuse::{AddressRules, MemoryAccountLocks, MemoryAddressLimits};
pub use codes::MemoryCodes;
pub use deliveries::MemoryDeliveries;
pub use identities::MemoryIdentities;
pub use pumping::MemoryPumping;
pub use sends::MemorySendLimits;
pub use sessions::MemorySessionFlags;

use std::sync::{Arc, Mutex, MutexGuard};

/// The memory stores live in the process: usable whenever it serves.
pub struct MemoryHealth;

impl super::Health for MemoryHealth {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn check(&self) -> super::StoreFuture<'_, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Locks a per-key value; a panic while it was held leaves it usable (the
/// values here are plain counters, never half-written across an await).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A per-key value behind its own lock, as the caches hold it.
pub(crate) type Shared<T> = Arc<Mutex<T>>;
