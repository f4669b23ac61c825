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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::Channel;

/// Most messages remembered per code (resends are limited far below this).
const KEEP: usize = 16;

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
    fn rank(self) -> u8 {
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
    pub at: Instant,
    pub error_code: Option<String>,
}

impl Message {
    /// A message accepted just now.
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
            at: Instant::now(),
            error_code: None,
        }
    }
}

struct Track {
    /// Tells this code's record from a later code's: a timer armed for one
    /// never claims the fallback of another.
    generation: u64,
    number_id: [u8; 32],
    messages: Vec<Message>,
    /// The channel that follows the first message if it is not delivered
    /// in time, until it has been used.
    fallback: Option<Channel>,
    /// The sealed send for that fallback (`fallback::seal`), until it is
    /// claimed or no longer needed.
    sealed: Option<String>,
}

impl Track {
    /// No fallback will follow: the sealed code goes with it.
    fn disarm(&mut self) {
        self.fallback = None;
        self.sealed = None;
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

pub struct Deliveries {
    /// `provider \0 message id` → pending code key.
    ids: Cache<String, [u8; 32]>,
    tracks: Cache<[u8; 32], Arc<Mutex<Track>>>,
    fallback_after: Duration,
    delivery_timeout: Duration,
    generations: AtomicU64,
}

fn id_key(provider: &str, id: &str) -> String {
    format!("{provider}\0{id}")
}

impl Deliveries {
    /// Entries live as long as a code (`ttl`) plus the time late status
    /// reports may take to arrive.
    pub fn new(ttl: Duration, fallback_after: Duration, delivery_timeout: Duration) -> Self {
        let keep = ttl + delivery_timeout;
        Self {
            ids: Cache::builder()
                .max_capacity(4_000_000)
                .time_to_live(keep)
                .build(),
            tracks: Cache::builder()
                .max_capacity(2_000_000)
                .time_to_live(keep)
                .build(),
            fallback_after,
            delivery_timeout,
            generations: AtomicU64::new(0),
        }
    }

    /// The first message of a new code: forgets the messages of the code it
    /// replaces (and their sealed send). `fallback` follows up if this one
    /// is not delivered in time. Returns the record's generation.
    pub fn started(
        &self,
        pending: &[u8; 32],
        number_id: [u8; 32],
        msg: Message,
        fallback: Option<Fallback>,
    ) -> u64 {
        self.index(pending, &msg);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let (fallback, sealed) =
            fallback.map_or((None, None), |f| (Some(f.channel), Some(f.sealed)));
        let track = Track {
            generation,
            number_id,
            messages: vec![msg],
            fallback,
            sealed,
        };
        self.tracks.insert(*pending, Arc::new(Mutex::new(track)));
        generation
    }

    /// Another message carrying the same code (a resend or the fallback).
    /// One over the fallback's own channel (the user chose it) is the
    /// fallback: none follows it.
    pub fn added(&self, pending: &[u8; 32], number_id: [u8; 32], msg: Message) {
        self.index(pending, &msg);
        let track = self.tracks.get_with(*pending, || {
            Arc::new(Mutex::new(Track {
                generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
                number_id,
                messages: Vec::new(),
                fallback: None,
                sealed: None,
            }))
        });
        let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
        if t.fallback == Some(msg.channel) {
            t.disarm();
        }
        if t.messages.len() >= KEEP {
            t.messages.remove(0);
        }
        t.messages.push(msg);
    }

    fn index(&self, pending: &[u8; 32], msg: &Message) {
        if let Some(id) = &msg.id {
            self.ids.insert(id_key(msg.provider, id), *pending);
        }
    }

    /// Applies a provider's status report; `None` for ids this gateway did
    /// not send or no longer remembers.
    pub fn update(&self, provider: &str, u: &StatusUpdate) -> Option<Applied> {
        let pending = self.ids.get(&id_key(provider, &u.message_id))?;
        let track = self.tracks.get(&pending)?;
        let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
        let number_id = t.number_id;
        let last = t.messages.len().saturating_sub(1);
        let (index, msg) = t.messages.iter_mut().enumerate().find(|(_, m)| {
            m.provider == provider && m.id.as_deref() == Some(u.message_id.as_str())
        })?;
        let stale = u.status.rank() <= msg.status.rank();
        if !stale {
            msg.status = u.status;
            msg.error_code.clone_from(&u.error_code);
        }
        let (channel, status) = (msg.channel, msg.status);
        // The first message arrived: no fallback is needed any more.
        if index == 0 && status == Status::Delivered {
            t.disarm();
        }
        Some(Applied {
            pending,
            generation: t.generation,
            number_id,
            channel,
            status,
            stale,
            latest: index == last,
        })
    }

    pub fn view(&self, pending: &[u8; 32]) -> Option<View> {
        let track = self.tracks.get(pending)?;
        let t = track.lock().unwrap_or_else(|p| p.into_inner());
        let last = t.messages.last()?;
        let waiting = !matches!(last.status, Status::Delivered | Status::Failed);
        Some(View {
            channel: last.channel,
            status: last.status,
            late: waiting && last.reported && last.at.elapsed() >= self.delivery_timeout,
            fallback_due: self.fallback_due(&t),
        })
    }

    /// The fallback is due when the first message failed, or was not
    /// delivered within `fallback_after` (without delivery reports nothing
    /// can say it was, so the fallback follows too).
    fn fallback_due(&self, t: &Track) -> Option<Channel> {
        let first = t.messages.first()?;
        let due = match first.status {
            Status::Delivered => false,
            Status::Failed => true,
            Status::Queued | Status::Sent => first.at.elapsed() >= self.fallback_after,
        };
        t.fallback.filter(|_| due)
    }

    /// Claims the due fallback, once, with its sealed send: of the timer, a
    /// `failed` report and any number of tabs asking at once, one wins.
    /// `generation`: only that record's (a timer's own code). Checking that
    /// it is due and taking it are one operation on the store, under the
    /// record's lock; with state shared between gateways it stays one (a
    /// script that checks and deletes), so they too send one fallback.
    pub fn take_fallback(&self, pending: &[u8; 32], generation: Option<u64>) -> Option<Claimed> {
        let track = self.tracks.get(pending)?;
        let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
        if generation.is_some_and(|g| g != t.generation) {
            return None;
        }
        let channel = self.fallback_due(&t)?;
        t.fallback = None;
        Some(Claimed {
            channel,
            sealed: t.sealed.take(),
        })
    }

    /// Gives a claimed fallback's channel back when the page's send did not
    /// happen (its sealed send was opened and is not given back).
    pub fn restore_fallback(&self, pending: &[u8; 32], channel: Channel) {
        if let Some(track) = self.tracks.get(pending) {
            track.lock().unwrap_or_else(|p| p.into_inner()).fallback = Some(channel);
        }
    }

    /// The code died (verified, locked, expired): no fallback follows, and
    /// its sealed send goes. `generation`: only if the record is still that one.
    pub fn code_died(&self, pending: &[u8; 32], generation: Option<u64>) {
        if let Some(track) = self.tracks.get(pending) {
            let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
            if generation.is_none_or(|g| g == t.generation) {
                t.disarm();
            }
        }
    }

    /// Whether the record still keeps a sealed send (for tests and checks:
    /// it must go as soon as it is not needed).
    pub fn keeps_sealed(&self, pending: &[u8; 32]) -> bool {
        self.tracks
            .get(pending)
            .is_some_and(|t| t.lock().unwrap_or_else(|p| p.into_inner()).sealed.is_some())
    }

    /// How long until the automatic fallback is due; `None` when there is
    /// none to come (no fallback channel, taken, or the first message's fate
    /// is known).
    pub fn fallback_in(&self, pending: &[u8; 32]) -> Option<Duration> {
        let track = self.tracks.get(pending)?;
        let t = track.lock().unwrap_or_else(|p| p.into_inner());
        t.fallback?;
        let first = t.messages.first()?;
        if matches!(first.status, Status::Delivered | Status::Failed) {
            return None;
        }
        Some(self.fallback_after.saturating_sub(first.at.elapsed()))
    }
}

#[cfg(test)]
mod tests;
