//! The health checks of the main listener, answered for any Host (or none)
//! before an app is looked up: `/.otpgate/healthz` says the process serves,
//! `/.otpgate/readyz` whether it can do its work, with one word for why not
//! (a load balancer needs no more, and strangers get no more). The reasons
//! in full are on the metrics listener (`/ready`, [`Readiness::to_json`]).

use http::{Method, Request, Response, StatusCode};

use crate::delivery::sms::health::{self, ProviderHealth};
use crate::error::GateError;
use crate::gate::decision::Probe;
use crate::http::body::Body;
use crate::state::State;

/// What the gateway can tell about being able to do its work.
pub struct Readiness {
    /// Shutting down: requests in flight finish, new ones belong elsewhere.
    pub stopping: bool,
    pub store_backend: &'static str,
    pub store: Result<(), String>,
    /// Each provider's latest send. Providers have no health endpoint the
    /// gateway could ask without sending a message, so this is all it knows.
    pub providers: Vec<ProviderHealth>,
}

impl Readiness {
    pub async fn of(state: &State) -> Self {
        Self {
            stopping: state.stopping.load(std::sync::atomic::Ordering::Relaxed),
            store_backend: state.store_health.backend(),
            store: state.store_health.check().await,
            providers: state.providers.health(),
        }
    }

    /// Why it is not ready, in one word, or `None` when it is. Providers
    /// count as down only when every one failed its latest send lately; one
    /// never tried since start-up may work.
    pub fn reason(&self) -> Option<&'static str> {
        if self.stopping {
            Some("stopping")
        } else if self.store.is_err() {
            Some("store")
        } else if !self.providers.is_empty() && self.providers.iter().all(ProviderHealth::failing) {
            Some("providers")
        } else {
            None
        }
    }

    /// The details, for the metrics listener.
    pub fn to_json(&self) -> serde_json::Value {
        let providers: Vec<_> = self
            .providers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "last_send": p.last.as_str(),
                    "seconds_ago": p.ago.map(|a| a.as_secs()),
                    "failing": p.failing(),
                })
            })
            .collect();
        serde_json::json!({
            "ready": self.reason().is_none(),
            "reason": self.reason(),
            "stopping": self.stopping,
            "store": {
                "backend": self.store_backend,
                "ok": self.store.is_ok(),
                "error": self.store.as_ref().err(),
            },
            "providers": providers,
            "provider_failure_window_s": health::RECENT.as_secs(),
        })
    }
}

/// Answers a probe: `200 ok`, or `503` with the reason, as plain text.
pub async fn serve<B>(
    state: &State,
    probe: Probe,
    req: &Request<B>,
) -> Result<Response<Body>, GateError> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(GateError::MethodNotAllowed);
    }
    let reason = match probe {
        Probe::Live => None,
        Probe::Ready => Readiness::of(state).await.reason(),
    };
    Ok(match reason {
        None => super::plain("ok\n"),
        Some(word) => {
            let mut res = super::plain(format!("{word}\n"));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::delivery::sms::health::Last;

    fn provider(last: Last, ago_s: u64) -> ProviderHealth {
        ProviderHealth {
            name: "didfarm",
            last,
            ago: Some(Duration::from_secs(ago_s)),
        }
    }

    #[test]
    fn readiness_names_one_reason_and_providers_only_when_all_failed_lately() {
        let failed = provider(Last::Failed, 1);
        let rows = [
            (false, Ok(()), vec![], None),
            (false, Ok(()), vec![failed], Some("providers")),
            (false, Ok(()), vec![failed, provider(Last::Worked, 1)], None),
            (
                false,
                Ok(()),
                vec![failed, provider(Last::Unknown, 0)],
                None,
            ),
            (false, Ok(()), vec![provider(Last::Failed, 3600)], None),
            (false, Err("down".to_string()), vec![failed], Some("store")),
            (true, Err("down".to_string()), vec![], Some("stopping")),
        ];
        for (stopping, store, providers, reason) in rows {
            let r = Readiness {
                stopping,
                store_backend: "memory",
                store,
                providers,
            };
            assert_eq!(r.reason(), reason, "{}", r.to_json());
            assert_eq!(r.to_json()["ready"], reason.is_none());
        }
    }
}
