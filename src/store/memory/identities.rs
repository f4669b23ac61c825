//! Who-am-I answers in a moka cache: entries live `userinfo_cache`, and
//! moka's `try_get_with` makes concurrent lookups of one session share one
//! call to the app.

use std::sync::Arc;
use std::time::Duration;

use crate::error::GateError;
use crate::store::StoreFuture;
use crate::store::identities::{Answer, Fetch, IdentityAnswers};

pub struct MemoryIdentities(moka::future::Cache<[u8; 32], Arc<Answer>>);

impl MemoryIdentities {
    pub fn new(ttl: Duration) -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(ttl)
                .build(),
        )
    }
}

impl IdentityAnswers for MemoryIdentities {
    fn get<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, Option<Arc<Answer>>> {
        Box::pin(self.0.get(session))
    }

    fn get_or_fetch<'a>(
        &'a self,
        session: [u8; 32],
        fetch: Fetch<'a>,
    ) -> StoreFuture<'a, Result<Arc<Answer>, Arc<GateError>>> {
        Box::pin(self.0.try_get_with(session, fetch))
    }

    fn forget<'a>(&'a self, session: &'a [u8; 32]) -> StoreFuture<'a, ()> {
        Box::pin(self.0.invalidate(session))
    }
}
