//! The gateway's own pages and endpoints under `/.otpgate/`: the code page,
//! resend and status, the forward-auth endpoints, the provider webhooks, their CSRF rule, the page
//! rendering and the redirect rule.

pub mod authz;
pub mod csrf;
pub mod pages;
pub mod redirect;
pub mod routes;
pub mod webhook;
