//! The audit log: one JSON object per line for every OTP event, for
//! investigators and fraud detection. Off unless `[audit] path` is set.
//!
//! The request path never waits for the disk: records go into a bounded
//! channel and one writer task appends them in batches. When the channel is
//! full a record is dropped, counted, and reported in the process log (at
//! most every ten seconds) and, once the writer catches up, in the file
//! itself as an `audit.dropped` line, so a gap is never silent. The file is
//! reopened on SIGHUP ([`Audit::reopen`]) and whenever its path no longer
//! names the open file (renamed or deleted by logrotate).
//!
//! A record never holds a code, a cookie value or a full phone number: the
//! number appears masked and as a keyed hash, so records about one number
//! can be found without the log revealing it.

mod file;
mod record;
pub(crate) mod sink;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::{Notify, oneshot};

pub use record::Record;

use file::{Output, open_options, write_loop};

/// Records waiting for the writer; beyond this they are dropped, not waited for.
const QUEUE: usize = 4096;
/// Records written per flush at most.
const BATCH: usize = 256;
/// Least time between two warnings about dropped records or a failing file.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot open the audit log: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

/// The handle the gateway writes through; cheap to clone, and a no-op when
/// the audit log is off.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Handle>>,
}

/// What goes through the queue: records, and requests to say when the
/// records queued before them are on disk.
enum Msg {
    /// Boxed: a record is some 450 bytes, and the queue's slots stay small.
    Record(Box<Record>),
    Drained(oneshot::Sender<()>),
}

struct Handle {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

/// What the request side and the writer share (not the sender: the writer
/// ends when the last handle is gone).
struct Shared {
    reopen: Notify,
    /// Records lost since start, not yet warned about, not yet noted in the file.
    lost: AtomicU64,
    unwarned: AtomicU64,
    unwritten: AtomicU64,
    /// Milliseconds after `start` before which no warning is logged.
    next_warning: AtomicU64,
    start: Instant,
}

impl Shared {
    fn lose(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
        self.unwarned.fetch_add(n, Ordering::Relaxed);
        self.unwritten.fetch_add(n, Ordering::Relaxed);
        self.warn_if_due();
    }

    /// Logs the records lost since the last warning, if there are any and
    /// the last warning is [`WARN_EVERY`] ago.
    fn warn_if_due(&self) {
        if self.unwarned.load(Ordering::Relaxed) == 0 || !self.due() {
            return;
        }
        let n = self.unwarned.swap(0, Ordering::Relaxed);
        tracing::warn!(
            event = "audit.dropped",
            dropped = n,
            dropped_total = self.lost.load(Ordering::Relaxed),
            "audit records lost (queue full or file not writable); the file notes the gap"
        );
    }

    /// Whether a warning may be logged now; if so, the next one waits.
    fn due(&self) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        let next = self.next_warning.load(Ordering::Relaxed);
        now >= next
            && self
                .next_warning
                .compare_exchange(
                    next,
                    now + WARN_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

impl Audit {
    /// The audit log turned off: every call does nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Opens (or creates, mode 0600) the file for appending and starts the
    /// writer task; must run inside the tokio runtime.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let file = open_options().open(path).map_err(|source| AuditError {
            path: path.display().to_string(),
            source,
        })?;
        let (audit, rx, shared) = Self::queue(QUEUE);
        tokio::spawn(write_loop(
            rx,
            shared,
            Output::new(path.to_path_buf(), file),
        ));
        Ok(audit)
    }

    fn queue(capacity: usize) -> (Self, mpsc::Receiver<Msg>, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            reopen: Notify::new(),
            lost: AtomicU64::new(0),
            unwarned: AtomicU64::new(0),
            unwritten: AtomicU64::new(0),
            next_warning: AtomicU64::new(0),
            start: Instant::now(),
        });
        let inner = Some(Arc::new(Handle {
            tx,
            shared: shared.clone(),
        }));
        (Self { inner }, rx, shared)
    }

    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues the record `build` makes; `build` runs only when the log is
    /// on. Never waits: with the queue full the record is counted as lost.
    pub fn emit(&self, build: impl FnOnce() -> Record) {
        let Some(h) = &self.inner else { return };
        // Full, or closed because the writer is gone: lost either way, and counted.
        if h.tx.try_send(Msg::Record(Box::new(build()))).is_err() {
            h.shared.lose(1);
        }
    }

    /// Closes and reopens the file at the configured path (after log
    /// rotation); the writer does it before its next batch.
    pub fn reopen(&self) {
        if let Some(h) = &self.inner {
            h.shared.reopen.notify_one();
        }
    }

    /// Waits, at most `within`, until every record queued so far is
    /// written and flushed: at shutdown, so the last events are not lost
    /// with the process.
    pub async fn drain(&self, within: Duration) {
        let Some(h) = &self.inner else { return };
        let (done, written) = oneshot::channel();
        let wait = async {
            if h.tx.send(Msg::Drained(done)).await.is_ok() {
                let _ = written.await;
            }
        };
        if tokio::time::timeout(within, wait).await.is_err() {
            tracing::warn!(
                queued = QUEUE - h.tx.capacity(),
                "the audit log was not fully written at shutdown"
            );
        }
    }

    /// Records lost since start (queue full, or the file not writable).
    pub fn lost(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |h| h.shared.lost.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (audit, mut rx, _) = Audit::queue(2);
        for _ in 0..5 {
            audit.emit(|| Record::new("otp.sent"));
        }
        assert_eq!(audit.lost(), 3);
        assert!(matches!(rx.try_recv(), Ok(Msg::Record(r)) if r.event == "otp.sent"));
    }

    #[tokio::test]
    async fn drain_returns_once_every_queued_record_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).unwrap();
        for _ in 0..3 {
            audit.emit(|| Record::new("otp.verified"));
        }
        // This runtime has one thread: the writer has not run yet.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        audit.drain(Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("otp.verified").count(), 3, "{text}");
    }

    #[test]
    fn an_audit_log_that_is_off_never_builds_a_record() {
        let audit = Audit::off();
        audit.emit(|| unreachable!("the record is not built"));
        audit.reopen();
        assert_eq!(audit.lost(), 0);
    }
}
