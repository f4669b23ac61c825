//! What the delivery records hold (messages, statuses, the fallback and
//! its sealed send) and the store trait that keeps them.
//!
//! `Channel` comes from `config`: the one name this folder takes from above
//! it, until the layout of issue 13 item 3 gives channels a lower home.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFuture;
use crate::config::Channel;

/// A message's delivery status, as providers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted by the provider, not yet handed on.
    Queued,
    /// Handed to the carrier (or WhatsApp).
    Sent,
    Delivered,
    Failed,
}

impl Status {
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "queued" | "accepted" => Some(Self::Queued),
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Statuses only move forward; a late `sent` does not undo `delivered`.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered | Self::Failed => 2,
        }
    }
}

/// One status event from a provider's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub message_id: String,
    pub status: Status,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// A message a provider accepted.
#[derive(Debug, Clone)]
pub struct Message {
    pub provider: &'static str,
    pub id: Option<Arc<str>>,
    pub channel: Channel,
    pub status: Status,
    /// Whether the provider will report delivery.
    pub reported: bool,
    /// When the provider accepted it (ms since the Unix epoch): stamped by
    /// the store from its clock when the message is recorded.
    pub at: u64,
    pub error_code: Option<String>,
}

impl Message {
    /// A message accepted just now (the store stamps the time).
    pub fn new(
        provider: &'static str,
        id: Option<Arc<str>>,
        channel: Channel,
        status: Status,
        reported: bool,
    ) -> Self {
        Self {
            provider,
            id,
            channel,
            status,
            reported,
            at: 0,
            error_code: None,
        }
    }
}

/// The follow-up a new code's first message gets if it is not delivered.
pub struct Fallback {
    pub channel: Channel,
    /// What the gateway needs to send it by itself, sealed.
    pub sealed: String,
}

/// A claimed fallback: the channel, and the sealed send if it was still
/// kept (a page that claimed before and failed gives back only the channel).
#[derive(Debug)]
pub struct Claimed {
    pub channel: Channel,
    pub sealed: Option<String>,
}

/// A status update matched to its code.
#[derive(Debug)]
pub struct Applied {
    /// The pending code's key, and which of its records.
    pub pending: [u8; 32],
    pub generation: u64,
    pub number_id: [u8; 32],
    pub channel: Channel,
    pub status: Status,
    /// The update changed nothing (a repeat or an older status).
    pub stale: bool,
    /// It is about the code's latest message (not one a resend followed).
    pub latest: bool,
    /// When the provider accepted the message (ms since the Unix epoch,
    /// the store's clock): a `delivered` report tells how long it took.
    pub sent_at: u64,
}

/// Where the latest message stands, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub channel: Channel,
    pub status: Status,
    /// Reported by the provider, and still not delivered after
    /// `delivery_timeout`.
    pub late: bool,
    /// The automatic fallback is due now, over this channel.
    pub fallback_due: Option<Channel>,
}

/// The delivery records of pending codes (by the code's key), with the
/// index from a provider's message id to its code. Each call is one atomic
/// step on one record.
pub trait DeliveryRecords: Send + Sync {
    /// The first message of a new code: forgets the messages of the code
    /// it replaces (and their sealed send). Returns the record's generation.
    fn started<'a>(
        &'a self,
        pending: &'a [u8; 32],
        number_id: [u8; 32],
        msg: Message,
        fallback: Option<Fallback>,
    ) -> StoreFuture<'a, u64>;
    /// Another message carrying the same code; one over the fallback's own
    /// channel is the fallback: none follows it.
    fn added<'a>(
        &'a self,
        pending: &'a [u8; 32],
        number_id: [u8; 32],
        msg: Message,
    ) -> StoreFuture<'a, ()>;
    /// Applies a provider's status report; `None` for unknown ids.
    fn update<'a>(
        &'a self,
        provider: &'a str,
        u: &'a StatusUpdate,
    ) -> StoreFuture<'a, Option<Applied>>;
    fn view<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, Option<View>>;
    /// Claims the due fallback once, with its sealed send (checking that it
    /// is due and taking it are one step); `generation`: only that record's.
    fn take_fallback<'a>(
        &'a self,
        pending: &'a [u8; 32],
        generation: Option<u64>,
    ) -> StoreFuture<'a, Option<Claimed>>;
    /// Gives a claimed fallback's channel back (the page's send failed).
    fn restore_fallback<'a>(
        &'a self,
        pending: &'a [u8; 32],
        channel: Channel,
    ) -> StoreFuture<'a, ()>;
    /// The code died: no fallback follows, its sealed send goes.
    fn code_died<'a>(
        &'a self,
        pending: &'a [u8; 32],
        generation: Option<u64>,
    ) -> StoreFuture<'a, ()>;
    /// Whether the record still keeps a sealed send.
    fn keeps_sealed<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, bool>;
    /// How long until the automatic fallback is due; `None` when none is to come.
    fn fallback_in<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, Option<Duration>>;
}
