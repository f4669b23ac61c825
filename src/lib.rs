//! otpgate: a reverse proxy that adds an SMS second factor to a web app's
//! own login. See ARCHITECTURE.md for the request's way through these
//! modules.

#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod error;
pub mod events;
pub mod gate;
pub mod http;
pub mod keys;
pub mod names;
pub mod otp;
pub mod phone;
pub mod pumping;
pub mod sending;
pub mod server;
pub mod state;
pub mod store;
pub mod text;
pub mod web;

pub use server::Gateway;
