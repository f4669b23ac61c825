//! The writer task and its output: batches written and flushed together, a
//! gap noted as a line, and a file reopened when asked (SIGHUP) or when its
//! path names another file (logrotate).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{BATCH, Format, Msg, Shared};

/// Buffered output between flushes: a batch of access lines fits.
const BUFFER: usize = 64 * 1024;

pub(super) fn open_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

pub(super) async fn write_loop<F: Format>(
    mut rx: mpsc::Receiver<Msg<F::Item>>,
    shared: Arc<Shared>,
    mut sink: Output,
    format: F,
) {
    let (mut batch, mut items, mut waiting) = (Vec::with_capacity(BATCH), Vec::new(), Vec::new());
    loop {
        tokio::select! {
            // A reopen asked for before items were queued happens before they are written.
            biased;
            () = shared.reopen.notified() => sink.reopen(&shared).await,
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                for msg in batch.drain(..) {
                    match msg {
                        Msg::Item(item) => items.push(item),
                        Msg::Drained(done) => waiting.push(done),
                    }
                }
                if !items.is_empty() {
                    sink.write(&mut items, &shared, &format).await;
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
                shared.warn_if_due();
            }
        }
    }
}

type Sink = BufWriter<Box<dyn AsyncWrite + Send + Sync + Unpin>>;

/// The open output and, for a file, how to tell whether its path still
/// names it.
pub(super) struct Output {
    /// `None`: stdout.
    path: Option<PathBuf>,
    out: Option<Sink>,
    /// Device and inode of the open file.
    id: Option<(u64, u64)>,
    line: Vec<u8>,
}

fn sink(w: impl AsyncWrite + Send + Sync + Unpin + 'static) -> Sink {
    BufWriter::with_capacity(BUFFER, Box::new(w))
}

impl Output {
    pub(super) fn file(path: PathBuf, file: std::fs::File) -> Self {
        Self {
            path: Some(path),
            id: file.metadata().ok().as_ref().and_then(meta_id),
            out: Some(sink(tokio::fs::File::from_std(file))),
            line: Vec::with_capacity(512),
        }
    }

    pub(super) fn stdout() -> Self {
        Self {
            path: None,
            id: None,
            out: Some(sink(tokio::io::stdout())),
            line: Vec::with_capacity(512),
        }
    }

    async fn reopen(&mut self, shared: &Shared) {
        let Some(path) = &self.path else {
            // Standard output is what it is; after a failed write, a new handle.
            if self.out.is_none() {
                self.out = Some(sink(tokio::io::stdout()));
            }
            return;
        };
        if let Some(out) = &mut self.out {
            // What is buffered belongs to the old file.
            let _ = out.flush().await;
        }
        self.out = None;
        self.id = None;
        let opened = tokio::fs::OpenOptions::from(open_options())
            .open(path)
            .await;
        let log = shared.names.log;
        match opened {
            Ok(file) => {
                self.id = file.metadata().await.ok().as_ref().and_then(meta_id);
                self.out = Some(sink(file));
                tracing::info!(path = %path.display(), "{log} (re)opened");
            }
            Err(e) => tracing::error!(
                path = %path.display(), error = %e,
                "cannot open {log}; its lines are counted as lost until it opens"
            ),
        }
    }

    /// Whether the path names another file than the open one, or none.
    async fn moved(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match tokio::fs::metadata(path).await {
            Ok(meta) => meta_id(&meta).is_some_and(|id| Some(id) != self.id),
            Err(_) => true,
        }
    }

    async fn write<F: Format>(&mut self, batch: &mut Vec<F::Item>, shared: &Shared, format: &F) {
        if self.out.is_none() || self.moved().await {
            self.reopen(shared).await;
        }
        let Some(out) = &mut self.out else {
            shared.lose(batch.len() as u64);
            batch.clear();
            return;
        };
        let gap = shared.unwritten.swap(0, Ordering::Relaxed);
        let mut result = Ok(());
        if gap > 0 {
            self.line.clear();
            format.gap(gap, &mut self.line);
            self.line.push(b'\n');
            result = out.write_all(&self.line).await;
        }
        for item in batch.iter() {
            if result.is_err() {
                break;
            }
            self.line.clear();
            format.line(item, &mut self.line);
            if self.line.is_empty() {
                continue;
            }
            self.line.push(b'\n');
            result = out.write_all(&self.line).await;
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            let (log, at) = (
                shared.names.log,
                self.path
                    .as_ref()
                    .map_or("stdout".into(), |p| p.display().to_string()),
            );
            tracing::error!(path = %at, error = %e, "cannot write {log}; reopening it");
            // The whole batch counts as lost: which lines reached the output is unknown.
            self.out = None;
            shared.lose(batch.len() as u64 + gap);
        }
        batch.clear();
    }
}

#[cfg(unix)]
fn meta_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// Without device and inode numbers a rename cannot be seen; SIGHUP-less
/// platforms keep the open file.
#[cfg(not(unix))]
fn meta_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}
