//! Request ids: one per request, on the log lines about it, on its error
//! page (so a user can quote it) and sent to the app as `X-Request-Id`, so
//! a gateway line and the app's own log can be tied together. An incoming
//! id is believed only from `trusted_proxies` (a front proxy's id carries
//! on); anyone else's is replaced.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use rand::TryRngCore;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id taken over (a UUID is 36; some proxies add more).
const MAX_INCOMING: usize = 128;

/// Makes ids: a random prefix per process and a counter, so ids are unique
/// across restarts and gateways without a random draw per request.
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut bytes = [0u8; 6];
        // The OS RNG; an id is not a secret, only unique.
        let _ = rand::rngs::OsRng.try_fill_bytes(&mut bytes);
        Self {
            prefix: crate::keys::hex(&bytes),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// The id of a request: the trusted proxy's, or a new one.
    pub fn for_request(&self, headers: &HeaderMap, peer_trusted: bool) -> HeaderValue {
        if peer_trusted
            && let Some(id) = headers.get(X_REQUEST_ID)
            && (1..=MAX_INCOMING).contains(&id.len())
            && id.as_bytes().iter().all(|b| b.is_ascii_graphic())
        {
            return id.clone();
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // One allocation, handed over whole (hex and '-' are valid field bytes).
        HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("{}-{n:x}", self.prefix)))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// Sets the request's id on a request to the app: ours, or a trusted
/// proxy's, never one the client made up (an empty id sends none).
pub fn send_to_app(h: &mut http::HeaderMap, view: &crate::http::headers::ClientView) {
    if view.request_id.is_empty() {
        h.remove(X_REQUEST_ID);
    } else {
        h.insert(X_REQUEST_ID, view.request_id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_new_unless_a_trusted_proxy_sent_a_plain_one() {
        let ids = RequestIds::default();
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("front-42"));
        assert_eq!(ids.for_request(&h, true), "front-42");
        let own = ids.for_request(&h, false);
        assert_ne!(own, "front-42", "an untrusted peer's id is replaced");
        assert_ne!(ids.for_request(&h, false), own, "each request its own");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("with space"));
        assert_ne!(ids.for_request(&h, true), "with space");
    }
}
