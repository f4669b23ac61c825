//! otpgate: a reverse proxy that adds an SMS second factor to a web app's
//! own login. See ARCHITECTURE.md for the request's way through these
//! modules.

#![forbid(unsafe_code)]

pub mod abuse;
pub mod admin;
pub mod answer;
pub mod audit;
pub mod body;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod credentials;
pub mod csrf;
pub mod decision;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod events;
pub mod explain;
pub mod factor;
pub mod failure_log;
pub mod fallback;
pub mod gate;
pub mod headers;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod otp;
pub mod pages;
pub mod phone;
pub mod proxy;
pub mod pumping;
pub mod redirect;
pub mod request_id;
pub mod routes;
pub mod send;
pub mod server;
pub mod sms;
pub mod standing;
pub mod state;
pub mod store;
pub mod text;
pub mod webhook;

pub use server::Gateway;
