//! Names both sides of the gateway agree on: the path prefix of its own
//! routes and of the provider webhooks, the code page's address, and the
//! names of its cookies.
//! They live here, below everything, so that the config's checks, the
//! cookie rules and the pages can all name them without depending on each
//! other.

/// Every route of the gateway's own lives under this prefix; an app's path
/// there never reaches the app.
pub const PREFIX: &str = "/.otpgate/";

/// Where the SMS providers post their delivery reports.
pub const WEBHOOK_PREFIX: &str = "/.otpgate/webhook/";

/// The forward-auth endpoint for nginx `auth_request` (see `web::authz`).
pub const AUTHZ_NGINX: &str = "/.otpgate/authz/nginx";

/// The forward-auth endpoint for Caddy `forward_auth` and Traefik
/// `forwardAuth`.
pub const AUTHZ_FORWARD: &str = "/.otpgate/authz/forward";

/// Liveness: the process serves (answered for any Host, a load balancer
/// asks by address).
pub const HEALTHZ: &str = "/.otpgate/healthz";

/// Readiness: the store and, as far as the gateway can tell, the SMS
/// providers are usable.
pub const READYZ: &str = "/.otpgate/readyz";

/// The older name of [`HEALTHZ`].
pub const HEALTH: &str = "/.otpgate/health";

/// The second-factor cookie (see `gate::factor`).
pub const FACTOR_COOKIE: &str = "otpgate";

/// The cookie that carries a pending code, sealed (see `otp`).
pub const PENDING_COOKIE: &str = "otpgate_pending";

/// The code page's address, coming back to `target` afterwards.
pub fn verify_url(target: &str) -> String {
    endpoint_url("verify", target)
}

/// One of our endpoints with `rd` in the query. The forms post there and
/// carry `rd` in the body too (the body's is the one used): a post refused
/// before its body is read (too large, not a form) can still link back to
/// the same code page.
pub fn endpoint_url(endpoint: &str, target: &str) -> String {
    let rd: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("{PREFIX}{endpoint}?rd={rd}")
}
