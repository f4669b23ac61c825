//! A log of lines the request path must never wait for (the audit log,
//! the access log): lines go into a bounded queue, and one writer appends
//! them to a file or to stdout in batches, flushing each batch. When the
//! queue is full a line is dropped, counted, and reported in the process
//! log (at most every ten seconds) and, once the writer catches up, in the
//! output itself as one line with the count, so a gap is never silent. A
//! file is reopened when asked ([`Writer::reopen`], on SIGHUP) and whenever
//! its path no longer names the open file (renamed or deleted by
//! logrotate).
//!
//! Each log says how its lines read ([`Format`]); the queue carries the
//! items, so what a line costs to write is paid by the writer, not by the
//! request that queued it.

mod output;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::{Notify, oneshot};

use output::{Output, open_options, write_loop};

/// Items written per flush at most.
const BATCH: usize = 256;
/// Least time between two warnings about lost lines or a failing output.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How a log's items read as lines.
pub(crate) trait Format: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    /// Appends the line of `item`, without its line break; nothing leaves
    /// the item out.
    fn line(&self, item: &Self::Item, out: &mut Vec<u8>);
    /// Appends the line that notes `count` lines lost before it.
    fn gap(&self, count: u64, out: &mut Vec<u8>);
}

/// What a log is called in the process log's warnings about it.
pub(crate) struct Names {
    /// The warning's `event`: `audit.dropped`.
    pub dropped: &'static str,
    /// What is lost: "audit records".
    pub lines: &'static str,
    /// The log itself: "the audit log".
    pub log: &'static str,
}

/// Where the lines go.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Appended to this file (created with mode 0600).
    File(PathBuf),
    /// The process's standard output, beside the process log's lines.
    Stdout,
}

/// The handle lines are queued through; cheap to clone, and a no-op when
/// the log is off.
pub(crate) struct Writer<T> {
    inner: Option<Arc<Handle<T>>>,
}

impl<T> Clone for Writer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Writer<T> {
    fn default() -> Self {
        Self { inner: None }
    }
}

/// What goes through the queue: items, and requests to say when the items
/// queued before them are written.
enum Msg<T> {
    Item(T),
    Drained(oneshot::Sender<()>),
}

struct Handle<T> {
    tx: mpsc::Sender<Msg<T>>,
    capacity: usize,
    shared: Arc<Shared>,
}

/// What the request side and the writer share (not the sender: the writer
/// ends when the last handle is gone).
struct Shared {
    names: &'static Names,
    reopen: Notify,
    /// Lines lost since start, not yet warned about, not yet noted in the output.
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

    /// Logs the lines lost since the last warning, if there are any and
    /// the last warning is [`WARN_EVERY`] ago.
    fn warn_if_due(&self) {
        if self.unwarned.load(Ordering::Relaxed) == 0 || !self.due() {
            return;
        }
        let n = self.unwarned.swap(0, Ordering::Relaxed);
        tracing::warn!(
            event = self.names.dropped,
            dropped = n,
            dropped_total = self.lost.load(Ordering::Relaxed),
            "{} lost (queue full or output not writable); {} notes the gap",
            self.names.lines,
            self.names.log
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

/// The writer's task: run it wherever it should not slow requests down.
pub(crate) type WriteLoop = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl<T: Send + Sync + 'static> Writer<T> {
    /// Opens the target (a file is created, mode 0600, and appended to)
    /// and returns the handle and the writer's loop, which the caller runs
    /// (spawns) inside a tokio runtime; it ends when the last handle is
    /// dropped. Holds at most `capacity` lines in memory.
    pub(crate) fn open<F: Format<Item = T>>(
        target: &Target,
        format: F,
        names: &'static Names,
        capacity: usize,
    ) -> std::io::Result<(Self, WriteLoop)> {
        let output = match target {
            Target::File(path) => Output::file(path.clone(), open_options().open(path)?),
            Target::Stdout => Output::stdout(),
        };
        let (writer, rx, shared) = Self::queue(capacity, names);
        Ok((writer, Box::pin(write_loop(rx, shared, output, format))))
    }

    fn queue(
        capacity: usize,
        names: &'static Names,
    ) -> (Self, mpsc::Receiver<Msg<T>>, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            names,
            reopen: Notify::new(),
            lost: AtomicU64::new(0),
            unwarned: AtomicU64::new(0),
            unwritten: AtomicU64::new(0),
            next_warning: AtomicU64::new(0),
            start: Instant::now(),
        });
        let inner = Some(Arc::new(Handle {
            tx,
            capacity,
            shared: shared.clone(),
        }));
        (Self { inner }, rx, shared)
    }

    pub(crate) fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues the item `build` makes; `build` runs only when the log is
    /// on. Never waits: with the queue full the item is counted as lost.
    pub(crate) fn emit(&self, build: impl FnOnce() -> T) {
        let Some(h) = &self.inner else { return };
        // Full, or closed because the writer is gone: lost either way, and counted.
        if h.tx.try_send(Msg::Item(build())).is_err() {
            h.shared.lose(1);
        }
    }

    /// Closes and reopens the file at its path (after log rotation); the
    /// writer does it before its next batch. Nothing for stdout.
    pub(crate) fn reopen(&self) {
        if let Some(h) = &self.inner {
            h.shared.reopen.notify_one();
        }
    }

    /// Waits, at most `within`, until every line queued so far is written
    /// and flushed: at shutdown, so the last lines are not lost with the
    /// process.
    pub(crate) async fn drain(&self, within: Duration) {
        let Some(h) = &self.inner else { return };
        let (done, written) = oneshot::channel();
        let wait = async {
            if h.tx.send(Msg::Drained(done)).await.is_ok() {
                let _ = written.await;
            }
        };
        if tokio::time::timeout(within, wait).await.is_err() {
            tracing::warn!(
                queued = h.capacity - h.tx.capacity(),
                "{} was not fully written at shutdown",
                h.shared.names.log
            );
        }
    }

    /// Lines lost since start (queue full, or the output not writable).
    pub(crate) fn lost(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |h| h.shared.lost.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NAMES: Names = Names {
        dropped: "test.dropped",
        lines: "test lines",
        log: "the test log",
    };

    struct Plain;

    impl Format for Plain {
        type Item = &'static str;
        fn line(&self, item: &&'static str, out: &mut Vec<u8>) {
            out.extend_from_slice(item.as_bytes());
        }
        fn gap(&self, count: u64, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("lost {count}").as_bytes());
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (w, mut rx, _) = Writer::<&'static str>::queue(2, &NAMES);
        for _ in 0..5 {
            w.emit(|| "a line");
        }
        assert_eq!(w.lost(), 3);
        assert!(matches!(rx.try_recv(), Ok(Msg::Item("a line"))));
    }

    #[tokio::test]
    async fn drain_returns_once_every_queued_line_is_in_the_file_and_a_gap_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (w, run) = Writer::open(&Target::File(path.clone()), Plain, &NAMES, 2).unwrap();
        for _ in 0..3 {
            w.emit(|| "a line");
        }
        tokio::spawn(run);
        // This runtime has one thread: the writer has not run yet.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        w.drain(Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "lost 1\na line\na line\n");
    }

    #[test]
    fn a_log_that_is_off_never_builds_a_line() {
        let w = Writer::<&'static str>::default();
        w.emit(|| unreachable!("the line is not built"));
        w.reopen();
        assert_eq!(w.lost(), 0);
        assert!(!w.is_on());
    }
}
