//! The one TLS implementation of the process: rustls with its `ring` provider,
//! for the listener and for reqwest's clients (SMS providers, `otpgate admin`).
//! rustls's default provider, aws-lc-rs, is a C library built with cmake and
//! was the slowest part of a first build; ring builds with `cc` in seconds.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The provider the listener's `ServerConfig` is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process default, which reqwest takes its provider from:
/// built with `rustls-no-provider`, it panics when a client is built without
/// one. Call before building any `reqwest::Client`. Idempotent; a default
/// installed before (by a program embedding otpgate) stays.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Only fails when another thread installed one in between: fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
