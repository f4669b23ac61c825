//! HTTP plumbing shared by every front end: header rules and the client's
//! view of a request, bounded bodies, cookie handling, request ids, and the
//! upstream client that forwards to the app, and the TLS provider.

pub mod body;
pub mod cookies;
pub mod fetch;
pub mod headers;
pub mod proxy;
pub mod request_id;
pub mod tls;
