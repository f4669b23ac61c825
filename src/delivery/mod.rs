//! What became of the messages that carried a code: each accepted message
//! with its provider's id and its latest status (from the providers'
//! webhooks), kept with the pending code, so the page can follow delivery
//! and a WhatsApp message that is not delivered in time is followed once by
//! the same code over the next channel.
//!
//! For that fallback the record also keeps, until it is claimed, the first
//! message is delivered or the code dies, what the gateway needs to send it
//! by itself: the code and the number, sealed (see `fallback`). Nothing
//! here ever holds a code in plain text.

pub mod sms;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Channel;
use crate::store::SharedClock;
use crate::store::delivery::DeliveryRecords;
use crate::store::memory::MemoryDeliveries;

pub use crate::store::delivery::{Applied, Claimed, Fallback, Message, Status, StatusUpdate, View};

/// What the page tells the user about the latest message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Accepted; a delivery report may follow.
    Waiting,
    Delivered,
    Failed,
    /// No delivery report within `delivery_timeout`.
    Late,
    /// The same code is about to go out over this channel.
    FallbackDue(Channel),
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Late => "late",
            Self::FallbackDue(_) => "fallback",
        }
    }

    /// Whether the user should be offered other ways to get the code.
    pub fn offers_alternatives(self) -> bool {
        matches!(self, Self::Failed | Self::Late)
    }
}

impl View {
    pub fn progress(&self) -> Progress {
        match (self.fallback_due, self.status) {
            (Some(next), _) => Progress::FallbackDue(next),
            (None, Status::Delivered) => Progress::Delivered,
            (None, Status::Failed) => Progress::Failed,
            (None, _) if self.late => Progress::Late,
            (None, _) => Progress::Waiting,
        }
    }
}

/// The delivery records as the gateway reaches them: the store's calls,
/// awaited.
pub struct Deliveries {
    records: Arc<dyn DeliveryRecords>,
}

impl Deliveries {
    /// Records in memory, timed by `clock`. Entries live as long as a code
    /// (`ttl`) plus the time late status reports may take to arrive.
    pub fn in_memory(
        ttl: Duration,
        fallback_after: Duration,
        delivery_timeout: Duration,
        clock: SharedClock,
    ) -> Self {
        Self::with_store(Arc::new(MemoryDeliveries::new(
            ttl,
            fallback_after,
            delivery_timeout,
            clock,
        )))
    }

    pub fn with_store(records: Arc<dyn DeliveryRecords>) -> Self {
        Self { records }
    }

    /// The first message of a new code: forgets the messages of the code it
    /// replaces (and their sealed send). `fallback` follows up if this one
    /// is not delivered in time. Returns the record's generation.
    pub async fn started(
        &self,
        pending: &[u8; 32],
        number_id: [u8; 32],
        msg: Message,
        fallback: Option<Fallback>,
    ) -> u64 {
        self.records
            .started(pending, number_id, msg, fallback)
            .await
    }

    /// Another message carrying the same code (a resend or the fallback).
    /// One over the fallback's own channel (the user chose it) is the
    /// fallback: none follows it.
    pub async fn added(&self, pending: &[u8; 32], number_id: [u8; 32], msg: Message) {
        self.records.added(pending, number_id, msg).await;
    }

    /// Applies a provider's status report; `None` for ids this gateway did
    /// not send or no longer remembers.
    pub async fn update(&self, provider: &str, u: &StatusUpdate) -> Option<Applied> {
        self.records.update(provider, u).await
    }

    pub async fn view(&self, pending: &[u8; 32]) -> Option<View> {
        self.records.view(pending).await
    }

    /// Claims the due fallback, once, with its sealed send: of the timer, a
    /// `failed` report and any number of tabs asking at once, one wins.
    /// `generation`: only that record's (a timer's own code). Checking that
    /// it is due and taking it are one store call; with state shared
    /// between gateways it stays one (a script that checks and deletes), so
    /// they too send one fallback.
    pub async fn take_fallback(
        &self,
        pending: &[u8; 32],
        generation: Option<u64>,
    ) -> Option<Claimed> {
        self.records.take_fallback(pending, generation).await
    }

    /// Gives a claimed fallback's channel back when the page's send did not
    /// happen (its sealed send was opened and is not given back).
    pub async fn restore_fallback(&self, pending: &[u8; 32], channel: Channel) {
        self.records.restore_fallback(pending, channel).await;
    }

    /// The code died (verified, locked, expired): no fallback follows, and
    /// its sealed send goes. `generation`: only if the record is still that one.
    pub async fn code_died(&self, pending: &[u8; 32], generation: Option<u64>) {
        self.records.code_died(pending, generation).await;
    }

    /// Whether the record still keeps a sealed send (for tests and checks:
    /// it must go as soon as it is not needed).
    pub async fn keeps_sealed(&self, pending: &[u8; 32]) -> bool {
        self.records.keeps_sealed(pending).await
    }

    /// How long until the automatic fallback is due; `None` when there is
    /// none to come (no fallback channel, taken, or the first message's fate
    /// is known).
    pub async fn fallback_in(&self, pending: &[u8; 32]) -> Option<Duration> {
        self.records.fallback_in(pending).await
    }
}

/// Tells the fallback timers that the gateway stopped: a stopped gateway
/// sends nothing, and no timer holds the state (or the process) beyond
/// `Gateway::serve`.
pub struct Timers {
    stop: watch::Sender<bool>,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
        }
    }
}

impl Timers {
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// A receiver that sees the stop (a timer waits on it).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

#[cfg(test)]
mod tests;
