//! The one body type every response and upstream request uses: a boxed
//! stream, so proxied bodies pass through without being buffered.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};

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

/// Why a small request body could not be read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    TooLarge,
    Broken,
}

/// Reads a request body of at most `max` bytes, for the gateway's own
/// endpoints; a larger one is refused, never buffered.
pub async fn read_small(incoming: hyper::body::Incoming, max: usize) -> Result<Bytes, ReadError> {
    Limited::new(incoming, max)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                ReadError::TooLarge
            } else {
                ReadError::Broken
            }
        })
}

/// [`read_small`] for the gateway's own endpoints: 413 beyond `max`, 400
/// with `unreadable` when the stream breaks.
pub async fn read_limited(
    body: hyper::body::Incoming,
    max: usize,
    unreadable: &'static str,
) -> Result<Bytes, crate::error::GateError> {
    use crate::error::GateError;
    read_small(body, max).await.map_err(|e| match e {
        ReadError::TooLarge => GateError::PayloadTooLarge,
        ReadError::Broken => GateError::BadRequest(unreadable),
    })
}
