//! The one body type every response and upstream request uses: a boxed
//! stream, so proxied bodies pass through without being buffered.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Streams a body received from hyper on as it is.
pub fn stream(incoming: hyper::body::Incoming) -> Body {
    incoming.boxed_unsync()
}

/// Reads a whole request body of at most `max` bytes: 413 beyond that, 400
/// with `unreadable` when the stream breaks.
pub async fn read_limited(
    body: hyper::body::Incoming,
    max: usize,
    unreadable: &'static str,
) -> Result<Bytes, crate::error::GateError> {
    use crate::error::GateError;
    http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GateError::PayloadTooLarge
            } else {
                GateError::BadRequest(unreadable)
            }
        })
}
