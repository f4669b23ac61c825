//! The audit log: one JSON object per line for every OTP event, for
//! investigators and fraud detection. Off unless `[audit] path` is set.
//!
//! The request path never waits for the disk: records go through the
//! shared [`writer`](crate::events::writer) (a bounded queue, one writer
//! task appending batches). A record lost to a full queue is counted,
//! warned about in the process log and noted in the file as an
//! `audit.dropped` line. The file is reopened on SIGHUP ([`Audit::reopen`])
//! and whenever its path no longer names the open file (logrotate).
//!
//! A record never holds a code, a cookie value or a full phone number: the
//! number appears masked and as a keyed hash, so records about one number
//! can be found without the log revealing it.

mod record;
pub(crate) mod sink;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

pub use record::Record;

use crate::events::writer::{Format, Names, Target, Writer};

/// Records waiting for the writer; beyond this they are dropped, not waited for.
const QUEUE: usize = 4096;

static NAMES: Names = Names {
    dropped: "audit.dropped",
    lines: "audit records",
    log: "the audit log",
};

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
    /// Boxed: a record is some 450 bytes, and the queue's slots stay small.
    w: Writer<Box<Record>>,
}

/// Records as JSON lines.
struct Json;

impl Format for Json {
    type Item = Box<Record>;

    fn line(&self, record: &Box<Record>, out: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *out, record).is_err() {
            out.clear();
        }
    }

    fn gap(&self, count: u64, out: &mut Vec<u8>) {
        let note = Box::new(Record {
            count: Some(count),
            reason: Some(Cow::Borrowed("queue full or file not writable")),
            ..Record::new("audit.dropped")
        });
        self.line(&note, out);
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
        let target = Target::File(path.to_path_buf());
        let (w, run) = Writer::open(&target, Json, &NAMES, QUEUE).map_err(|source| AuditError {
            path: path.display().to_string(),
            source,
        })?;
        tokio::spawn(run);
        Ok(Self { w })
    }

    pub fn is_on(&self) -> bool {
        self.w.is_on()
    }

    /// Queues the record `build` makes; `build` runs only when the log is
    /// on. Never waits: with the queue full the record is counted as lost.
    pub fn emit(&self, build: impl FnOnce() -> Record) {
        self.w.emit(|| Box::new(build()));
    }

    /// Closes and reopens the file at the configured path (after log
    /// rotation); the writer does it before its next batch.
    pub fn reopen(&self) {
        self.w.reopen();
    }

    /// Waits, at most `within`, until every record queued so far is
    /// written and flushed: at shutdown, so the last events are not lost
    /// with the process.
    pub async fn drain(&self, within: Duration) {
        self.w.drain(within).await;
    }

    /// Records lost since start (queue full, or the file not writable).
    pub fn lost(&self) -> u64 {
        self.w.lost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_gap_is_an_audit_dropped_record() {
        let mut out = Vec::new();
        Json.gap(3, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"], "audit.dropped");
        assert_eq!(v["count"], 3);
    }
}
