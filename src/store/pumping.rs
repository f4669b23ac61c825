//! What the pumping guard counts and remembers, and the store trait that
//! keeps it: sends and verified codes per country or prefix over sliding
//! windows, quarantines, and the numbers lately proven.
//!
//! The calls take the moment from the caller (the guard reads the State's
//! clock), as a shared store's script would take it as an argument, so
//! that the guard's rules can be tested at given moments.

use std::time::Duration;

use super::StoreFuture;

/// Whether a key is a country or a number prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Country,
    Prefix,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Prefix => "prefix",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Quarantine {
    pub scope: Scope,
    /// Ms since the Unix epoch.
    pub until: u64,
    pub why: String,
}

/// The conversion rule, applied inside the store's one step so that a
/// key found below it starts afresh exactly once.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// No judgement below this many sends in the window.
    pub min_sends: u32,
    pub min_conversion: f64,
    /// Sends younger than this are not judged yet.
    pub answer_time: Duration,
}

/// What one key's counts say now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judgement {
    /// Below the rule: the key's window counts were cleared (and a
    /// prefix's taken from its country's) in the same step.
    Below { sends: u32, verified: u32 },
    /// Within the rule; the sends of the last hour, and how long until the
    /// oldest of them leaves it.
    Within {
        hour_sends: u32,
        hour_wait: Duration,
    },
}

pub trait PumpingCounters: Send + Sync {
    /// Counts `sends` and `verified` for `key` at `now`.
    fn record<'a>(
        &'a self,
        key: &'a str,
        now: u64,
        sends: u32,
        verified: u32,
    ) -> StoreFuture<'a, ()>;
    /// Judges `key` at `now`; a prefix names its `country`, whose counts
    /// lose the prefix's when the prefix is found below the rule.
    fn judge<'a>(
        &'a self,
        key: &'a str,
        country: Option<&'a str>,
        now: u64,
        rule: Rule,
    ) -> StoreFuture<'a, Judgement>;
    /// Puts `key` in quarantine unless it is; `true` when this call did.
    fn quarantine<'a>(&'a self, key: &'a str, q: Quarantine) -> StoreFuture<'a, bool>;
    /// The key's quarantine, if one is in force at `now`.
    fn quarantined<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Quarantine>>;
    /// The quarantines in force at `now`, by key, in no particular order.
    fn quarantines(&self, now: u64) -> StoreFuture<'_, Vec<(String, Quarantine)>>;
    /// Ends a quarantine; `false` if none was in force at `now`.
    fn lift<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, bool>;
    /// The number (keyed hash) entered a right code: it passes until `until`.
    fn prove<'a>(&'a self, number_id: &'a [u8; 32], until: u64) -> StoreFuture<'a, ()>;
    fn is_proven<'a>(&'a self, number_id: &'a [u8; 32], now: u64) -> StoreFuture<'a, bool>;
}
