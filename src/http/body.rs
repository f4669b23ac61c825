//! The one body type every response and upstream request uses: a boxed
//! stream, so proxied bodies pass through without being buffered. Every
//! request body the gateway reads or passes on must keep arriving: a client
//! that trickles bytes cannot hold a connection for ever.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};
use tower_http::timeout::{TimeoutBody, TimeoutError};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Streams a body received from hyper on as it is (the app's answers).
pub fn stream(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(BoxError::from).boxed_unsync()
}

/// Streams a client's request body on to the app, failing when no data
/// arrives for `idle` (between any two frames, and before the first): the
/// app then sees an aborted request and the client a 408.
pub fn stream_idle(incoming: hyper::body::Incoming, idle: Duration) -> Body {
    use hyper::body::Body as _;
    // A request without a body (most GETs) needs no timer, and keeps its
    // "nothing follows" (`TimeoutBody` does not pass `is_end_stream` on).
    if incoming.is_end_stream() {
        return stream(incoming);
    }
    TimeoutBody::new(idle, incoming).boxed_unsync()
}

/// Whether an error (or one of its sources) is a request body that stopped
/// arriving ([`stream_idle`]).
pub fn is_stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<TimeoutError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Why a small request body could not be read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    TooLarge,
    Broken,
    /// Not all of it arrived within the deadline.
    TimedOut,
}

/// Reads a request body of at most `max` bytes within `deadline`, for the
/// gateway's own endpoints; a larger one is refused, never buffered.
pub async fn read_small(
    incoming: hyper::body::Incoming,
    max: usize,
    deadline: Duration,
) -> Result<Bytes, ReadError> {
    tokio::time::timeout(deadline, Limited::new(incoming, max).collect())
        .await
        .map_err(|_| ReadError::TimedOut)?
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                ReadError::TooLarge
            } else {
                ReadError::Broken
            }
        })
}

/// [`read_small`] for the gateway's own endpoints: 413 beyond `max`, 408
/// past the deadline, 400 with `unreadable` when the stream breaks.
pub async fn read_limited(
    body: hyper::body::Incoming,
    max: usize,
    deadline: Duration,
    unreadable: &'static str,
) -> Result<Bytes, crate::error::GateError> {
    use crate::error::GateError;
    read_small(body, max, deadline).await.map_err(|e| match e {
        ReadError::TooLarge => GateError::PayloadTooLarge,
        ReadError::TimedOut => GateError::BodyTimeout,
        ReadError::Broken => GateError::BadRequest(unreadable),
    })
}
