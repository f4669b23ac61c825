//! Whether each provider's latest send worked, for the readiness check:
//! the only sign the gateway has of a provider being usable, since the
//! providers' APIs have no health endpoint the gateway could ask without
//! sending (or paying for) a message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::SendError;

/// A failure older than this says nothing about the provider now.
pub const RECENT: Duration = Duration::from_secs(10 * 60);

/// How a provider's latest send went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// No send since start-up.
    Unknown,
    Worked,
    Failed,
}

impl Last {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Worked => "worked",
            Self::Failed => "failed",
        }
    }
}

/// One provider's latest send, as readiness shows it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderHealth {
    pub name: &'static str,
    pub last: Last,
    /// How long ago that send was.
    pub ago: Option<Duration>,
}

impl ProviderHealth {
    /// Failed, and lately.
    pub fn failing(&self) -> bool {
        self.last == Last::Failed && self.ago.is_some_and(|a| a < RECENT)
    }
}

/// The latest send of each provider (by its place in the failover order):
/// milliseconds since `started` plus one, shifted left, with the low bit
/// set for a failure; zero while there was none.
pub struct SendHealth {
    started: Instant,
    last: Box<[AtomicU64]>,
}

impl SendHealth {
    pub fn new(providers: usize) -> Self {
        Self {
            started: Instant::now(),
            last: (0..providers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Notes how provider `i`'s send went. A failure is what makes the next
    /// provider try (unreachable, no answer in time, 5xx) or refused
    /// credentials (401, 403); a refusal of the message (another 4xx) or an
    /// unreadable answer came from a provider that works.
    pub fn record(&self, i: usize, result: Result<(), &SendError>) {
        let failed = match result {
            Ok(()) => false,
            Err(e) => {
                e.try_next()
                    || matches!(
                        e,
                        SendError::Rejected {
                            status: 401 | 403,
                            ..
                        }
                    )
            }
        };
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX >> 2);
        if let Some(slot) = self.last.get(i) {
            slot.store(((ms + 1) << 1) | u64::from(failed), Ordering::Relaxed);
        }
    }

    /// Provider `i`'s latest send and how long ago it was.
    pub fn of(&self, i: usize) -> (Last, Option<Duration>) {
        let v = self.last.get(i).map_or(0, |s| s.load(Ordering::Relaxed));
        if v == 0 {
            return (Last::Unknown, None);
        }
        let at = Duration::from_millis((v >> 1) - 1);
        let ago = self.started.elapsed().saturating_sub(at);
        let last = if v & 1 == 1 {
            Last::Failed
        } else {
            Last::Worked
        };
        (last, Some(ago))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_is_failing_after_an_outage_and_not_after_a_refused_number() {
        let h = SendHealth::new(2);
        assert_eq!(h.of(0).0, Last::Unknown);
        h.record(0, Err(&SendError::Timeout));
        h.record(
            1,
            Err(&SendError::Rejected {
                status: 400,
                detail: String::new(),
            }),
        );
        assert_eq!(h.of(0).0, Last::Failed);
        assert_eq!(h.of(1).0, Last::Worked, "the provider answered");
        h.record(
            0,
            Err(&SendError::Rejected {
                status: 401,
                detail: String::new(),
            }),
        );
        assert_eq!(
            h.of(0).0,
            Last::Failed,
            "refused credentials make it unusable"
        );
        h.record(0, Ok(()));
        assert_eq!(h.of(0).0, Last::Worked);
    }
}
