//! The audit log's writer task and its file: batches written and flushed
//! together, a gap noted as an `audit.dropped` line, and the file reopened
//! when asked (SIGHUP) or when its path names another file (logrotate).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{BATCH, Msg, Record, Shared};

pub(super) fn open_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

pub(super) async fn write_loop(mut rx: mpsc::Receiver<Msg>, shared: Arc<Shared>, mut sink: Output) {
    let (mut batch, mut records, mut waiting) = (Vec::with_capacity(BATCH), Vec::new(), Vec::new());
    loop {
        tokio::select! {
            // A reopen asked for before records were queued happens before they are written.
            biased;
            () = shared.reopen.notified() => sink.reopen().await,
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                for msg in batch.drain(..) {
                    match msg {
                        Msg::Record(r) => records.push(*r),
                        Msg::Drained(done) => waiting.push(done),
                    }
                }
                if !records.is_empty() {
                    sink.write(&mut records, &shared).await;
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
                shared.warn_if_due();
            }
        }
    }
}

/// The open file and how to tell whether its path still names it.
pub(super) struct Output {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// Device and inode of the open file.
    id: Option<(u64, u64)>,
    line: Vec<u8>,
}

impl Output {
    pub(super) fn new(path: PathBuf, file: std::fs::File) -> Self {
        Self {
            path,
            id: file.metadata().ok().as_ref().and_then(meta_id),
            out: Some(BufWriter::new(File::from_std(file))),
            line: Vec::with_capacity(512),
        }
    }

    async fn reopen(&mut self) {
        if let Some(out) = &mut self.out {
            // What is buffered belongs to the old file.
            let _ = out.flush().await;
        }
        self.out = None;
        self.id = None;
        let opened = tokio::fs::OpenOptions::from(open_options())
            .open(&self.path)
            .await;
        match opened {
            Ok(file) => {
                self.id = file.metadata().await.ok().as_ref().and_then(meta_id);
                self.out = Some(BufWriter::new(file));
                tracing::info!(path = %self.path.display(), "audit log (re)opened");
            }
            Err(e) => tracing::error!(
                path = %self.path.display(), error = %e,
                "cannot open the audit log; records are counted as lost until it opens"
            ),
        }
    }

    /// Whether the path names another file than the open one, or none.
    async fn moved(&self) -> bool {
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) => meta_id(&meta).is_some_and(|id| Some(id) != self.id),
            Err(_) => true,
        }
    }

    async fn write(&mut self, batch: &mut Vec<Record>, shared: &Shared) {
        if self.out.is_none() || self.moved().await {
            self.reopen().await;
        }
        let Some(out) = &mut self.out else {
            shared.lose(batch.len() as u64);
            batch.clear();
            return;
        };
        let gap = shared.unwritten.swap(0, Ordering::Relaxed);
        let note = (gap > 0).then(|| Record {
            count: Some(gap),
            reason: Some(Cow::Borrowed("queue full or file not writable")),
            ..Record::new("audit.dropped")
        });
        let mut result = Ok(());
        for record in note.iter().chain(batch.iter()) {
            self.line.clear();
            if serde_json::to_writer(&mut self.line, record).is_err() {
                continue;
            }
            self.line.push(b'\n');
            result = out.write_all(&self.line).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log; reopening it");
            // The whole batch counts as lost: which lines reached the disk is unknown.
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
