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
