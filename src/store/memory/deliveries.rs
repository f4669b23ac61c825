//! Delivery records in moka: one lock per code's record, so a status
//! update, a claim of the fallback and the code's death never interleave;
//! message times and the fallback's due time from the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;

use super::{Shared, lock};
use crate::config::Channel;
use crate::store::delivery::{
    Applied, Claimed, DeliveryRecords, Fallback, Message, Status, StatusUpdate, View,
};
use crate::store::{SharedClock, StoreFuture};

/// Most messages remembered per code (resends are limited far below this).
const KEEP: usize = 16;

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

pub struct MemoryDeliveries {
    /// `provider \0 message id` → pending code key.
    ids: Cache<String, [u8; 32]>,
    tracks: Cache<[u8; 32], Shared<Track>>,
    fallback_after: Duration,
    delivery_timeout: Duration,
    generations: AtomicU64,
    clock: SharedClock,
}

fn id_key(provider: &str, id: &str) -> String {
    format!("{provider}\0{id}")
}

impl MemoryDeliveries {
    /// Entries live as long as a code (`ttl`) plus the time late status
    /// reports may take to arrive.
    pub fn new(
        ttl: Duration,
        fallback_after: Duration,
        delivery_timeout: Duration,
        clock: SharedClock,
    ) -> Self {
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
            clock,
        }
    }

    /// The first message of a new code: forgets the messages of the code it
    /// replaces (and their sealed send). `fallback` follows up if this one
    /// is not delivered in time. Returns the record's generation.
    fn started_now(
        &self,
        pending: &[u8; 32],
        number_id: [u8; 32],
        mut msg: Message,
        fallback: Option<Fallback>,
    ) -> u64 {
        msg.at = self.clock.now_ms();
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
    fn added_now(&self, pending: &[u8; 32], number_id: [u8; 32], mut msg: Message) {
        msg.at = self.clock.now_ms();
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
        let mut t = lock(&track);
        if t.fallback == Some(msg.channel) {
            t.disarm();
        }
        if t.messages.len() >= KEEP {
            t.messages.remove(0);
        }
        t.messages.push(msg);
    }

    /// How long ago `at` (ms) was, by the store's clock.
    fn since(&self, at: u64) -> Duration {
        Duration::from_millis(self.clock.now_ms().saturating_sub(at))
    }

    fn index(&self, pending: &[u8; 32], msg: &Message) {
        if let Some(id) = &msg.id {
            self.ids.insert(id_key(msg.provider, id), *pending);
        }
    }

    /// Applies a provider's status report; `None` for ids this gateway did
    /// not send or no longer remembers.
    fn update_now(&self, provider: &str, u: &StatusUpdate) -> Option<Applied> {
        let pending = self.ids.get(&id_key(provider, &u.message_id))?;
        let track = self.tracks.get(&pending)?;
        let mut t = lock(&track);
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
        let (channel, status, sent_at) = (msg.channel, msg.status, msg.at);
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
            sent_at,
        })
    }

    fn view_now(&self, pending: &[u8; 32]) -> Option<View> {
        let track = self.tracks.get(pending)?;
        let t = lock(&track);
        let last = t.messages.last()?;
        let waiting = !matches!(last.status, Status::Delivered | Status::Failed);
        Some(View {
            channel: last.channel,
            status: last.status,
            late: waiting && last.reported && self.since(last.at) >= self.delivery_timeout,
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
            Status::Queued | Status::Sent => self.since(first.at) >= self.fallback_after,
        };
        t.fallback.filter(|_| due)
    }

    /// Claims the due fallback, once, with its sealed send: of the timer, a
    /// `failed` report and any number of tabs asking at once, one wins.
    /// `generation`: only that record's (a timer's own code). Checking that
    /// it is due and taking it are one operation on the store, under the
    /// record's lock; with state shared between gateways it stays one (a
    /// script that checks and deletes), so they too send one fallback.
    fn take_fallback_now(&self, pending: &[u8; 32], generation: Option<u64>) -> Option<Claimed> {
        let track = self.tracks.get(pending)?;
        let mut t = lock(&track);
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
    fn restore_fallback_now(&self, pending: &[u8; 32], channel: Channel) {
        if let Some(track) = self.tracks.get(pending) {
            lock(&track).fallback = Some(channel);
        }
    }

    /// The code died (verified, locked, expired): no fallback follows, and
    /// its sealed send goes. `generation`: only if the record is still that one.
    fn code_died_now(&self, pending: &[u8; 32], generation: Option<u64>) {
        if let Some(track) = self.tracks.get(pending) {
            let mut t = lock(&track);
            if generation.is_none_or(|g| g == t.generation) {
                t.disarm();
            }
        }
    }

    /// Whether the record still keeps a sealed send (for tests and checks:
    /// it must go as soon as it is not needed).
    fn keeps_sealed_now(&self, pending: &[u8; 32]) -> bool {
        self.tracks
            .get(pending)
            .is_some_and(|t| lock(&t).sealed.is_some())
    }

    /// How long until the automatic fallback is due; `None` when there is
    /// none to come (no fallback channel, taken, or the first message's fate
    /// is known).
    fn fallback_in_now(&self, pending: &[u8; 32]) -> Option<Duration> {
        let track = self.tracks.get(pending)?;
        let t = lock(&track);
        t.fallback?;
        let first = t.messages.first()?;
        if matches!(first.status, Status::Delivered | Status::Failed) {
            return None;
        }
        Some(self.fallback_after.saturating_sub(self.since(first.at)))
    }
}

impl DeliveryRecords for MemoryDeliveries {
    fn started<'a>(
        &'a self,
        pending: &'a [u8; 32],
        number_id: [u8; 32],
        msg: Message,
        fallback: Option<Fallback>,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move { self.started_now(pending, number_id, msg, fallback) })
    }

    fn added<'a>(
        &'a self,
        pending: &'a [u8; 32],
        number_id: [u8; 32],
        msg: Message,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.added_now(pending, number_id, msg) })
    }

    fn update<'a>(
        &'a self,
        provider: &'a str,
        u: &'a StatusUpdate,
    ) -> StoreFuture<'a, Option<Applied>> {
        Box::pin(async move { self.update_now(provider, u) })
    }

    fn view<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, Option<View>> {
        Box::pin(async move { self.view_now(pending) })
    }

    fn take_fallback<'a>(
        &'a self,
        pending: &'a [u8; 32],
        generation: Option<u64>,
    ) -> StoreFuture<'a, Option<Claimed>> {
        Box::pin(async move { self.take_fallback_now(pending, generation) })
    }

    fn restore_fallback<'a>(
        &'a self,
        pending: &'a [u8; 32],
        channel: Channel,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.restore_fallback_now(pending, channel) })
    }

    fn code_died<'a>(
        &'a self,
        pending: &'a [u8; 32],
        generation: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.code_died_now(pending, generation) })
    }

    fn keeps_sealed<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.keeps_sealed_now(pending) })
    }

    fn fallback_in<'a>(&'a self, pending: &'a [u8; 32]) -> StoreFuture<'a, Option<Duration>> {
        Box::pin(async move { self.fallback_in_now(pending) })
    }
}
