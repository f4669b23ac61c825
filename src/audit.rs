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

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use serde::Serialize;
use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::sync::{Notify, oneshot};

use crate::config::Channel;
use crate::headers::ClientView;
use crate::keys::hex;
use crate::limits::{Limited, Window};
use crate::phone::Number;
use crate::sms::SendError;

/// Records waiting for the writer; beyond this they are dropped, not waited for.
const QUEUE: usize = 4096;
/// Records written per flush at most.
const BATCH: usize = 256;
/// Longest user agent kept, in bytes: enough to tell browsers apart, not
/// enough for a client to bloat the log.
const MAX_USER_AGENT: usize = 256;
/// Least time between two warnings about dropped records or a failing file.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot open the audit log: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

/// One line of the audit log. Every field but `time` and `event` is
/// optional and left out when empty, so events of other kinds (pumping
/// quarantines, delivery reports) fill in only what they know.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(serialize_with = "rfc3339_millis")]
    pub time: SystemTime,
    pub event: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The masked number, `***5678`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Hex of the keyed hash of the full number ([`crate::keys::Keys::phone`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    /// The limit that refused (`rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// A delivery report's status and the provider's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The country (ISO 3166-1 alpha-2) and number prefix a pumping
    /// quarantine is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How many records were lost (`audit.dropped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Record {
    /// A record of `event` at this moment, with nothing else filled in.
    pub fn new(event: impl Into<Cow<'static, str>>) -> Self {
        Self {
            time: SystemTime::now(),
            event: event.into(),
            app: None,
            user: None,
            phone: None,
            phone_hash: None,
            client_ip: None,
            user_agent: None,
            channel: None,
            provider: None,
            message_id: None,
            outcome: None,
            reason: None,
            window: None,
            retry_after_s: None,
            attempts_left: None,
            status: None,
            error_code: None,
            country: None,
            prefix: None,
            count: None,
        }
    }
}

fn rfc3339_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Who an event is about and where the request came from, as the request
/// path knows it.
pub struct Subject<'a> {
    pub app: &'a str,
    pub user: &'a str,
    pub number: &'a Number,
    /// The keyed hash of the full number (`state.keys.phone`), which the
    /// per-number limits already computed.
    pub number_id: &'a [u8; 32],
    pub view: &'a ClientView,
}

impl<'a> Subject<'a> {
    pub fn new(
        app: &'a str,
        user: &'a str,
        number: &'a Number,
        number_id: &'a [u8; 32],
        view: &'a ClientView,
    ) -> Self {
        Self {
            app,
            user,
            number,
            number_id,
            view,
        }
    }

    /// A record of `event` about this subject. Events built elsewhere
    /// (`pumping.quarantine`, ...) start here and add their own fields.
    pub fn record(&self, event: impl Into<Cow<'static, str>>) -> Record {
        Record {
            app: Some(self.app.to_string()),
            user: Some(self.user.to_string()),
            phone: Some(self.number.masked()),
            phone_hash: Some(hex(self.number_id)),
            client_ip: Some(self.view.ip),
            user_agent: self.view.user_agent.as_ref().map(bounded_agent),
            ..Record::new(event)
        }
    }
}

/// The OTP events of the request path.
pub enum Event<'a> {
    /// A provider accepted a code.
    Sent {
        /// `otp.sent`, `otp.resent` or `delivery.fallback`.
        event: &'static str,
        channel: Channel,
        provider: &'static str,
        message_id: Option<&'a str>,
    },
    /// The provider did not answer in time: the message may still arrive.
    SendUncertain(Channel, &'static str),
    /// The provider refused or could not be reached: nothing was sent.
    SendError(Channel, &'static str, &'a SendError),
    /// Codes may not go to the number's country.
    CountryRefused,
    /// A send refused by a limit.
    SendLimited(Limited),
    /// A code check refused by a limit (per address, or the account lock).
    CheckLimited(Limited),
    Verified,
    Failed {
        attempts_left: u32,
    },
    /// The code took its last wrong guess and is dead.
    CodeLocked,
    /// Consecutive wrong codes reached `account_failure_cap`.
    AccountLocked,
    /// A check with no live code: expired, used, replaced or never sent.
    Expired,
}

impl Event<'_> {
    fn record(&self, who: &Subject<'_>) -> Record {
        let name = match self {
            Self::Sent { event, .. } => event,
            Self::SendUncertain(..) => "otp.send_uncertain",
            Self::CountryRefused => "otp.country_refused",
            Self::SendError(..) => "otp.send_error",
            Self::SendLimited(_) | Self::CheckLimited(_) => "rate_limited",
            Self::Verified => "otp.verified",
            Self::Failed { .. } => "otp.failed",
            Self::CodeLocked | Self::AccountLocked => "otp.locked",
            Self::Expired => "otp.expired",
        };
        let mut r = who.record(name);
        let text = |s: &'static str| Some(Cow::Borrowed(s));
        match self {
            Self::Sent {
                channel,
                provider,
                message_id,
                ..
            } => {
                r.channel = text(channel.as_str());
                r.provider = text(provider);
                r.message_id = message_id.map(str::to_string);
                r.outcome = text("accepted");
            }
            Self::SendUncertain(channel, provider) => {
                r.channel = text(channel.as_str());
                r.provider = text(provider);
                r.outcome = text("uncertain");
                r.reason =
                    text("the provider did not answer in time; the message may still arrive");
            }
            Self::SendError(channel, provider, error) => {
                r.channel = text(channel.as_str());
                r.provider = text(provider);
                r.outcome = text("error");
                // Coarse on purpose: the provider's own words could quote the number.
                (r.reason, r.error_code) = match error {
                    SendError::Network(_) => (text("the provider could not be reached"), None),
                    SendError::Timeout => (text("the provider did not answer in time"), None),
                    SendError::Rejected { status, .. } => (
                        text("the provider refused the message"),
                        Some(format!("http_{status}")),
                    ),
                    SendError::BadAnswer(_) => {
                        (text("the provider's answer could not be read"), None)
                    }
                    SendError::NoProvider(_) => {
                        (text("no configured provider carries this channel"), None)
                    }
                };
            }
            Self::SendLimited(l) | Self::CheckLimited(l) => {
                let send = matches!(self, Self::SendLimited(_));
                r.outcome = text(if send {
                    "send_refused"
                } else {
                    "check_refused"
                });
                r.window = Some(window_name(l.window));
                if l.window == Window::Pumping {
                    // Pumping records name the prefix: no last digits beside it.
                    r.phone = None;
                }
                r.retry_after_s = Some(crate::text::ceil_secs(l.wait));
            }
            Self::Failed { attempts_left } => r.attempts_left = Some(*attempts_left),
            Self::CodeLocked => r.reason = text("code_attempts"),
            Self::AccountLocked => r.reason = text("account_failures"),
            Self::CountryRefused => r.reason = text("country_not_allowed"),
            Self::Verified | Self::Expired => {}
        }
        r
    }
}

/// The limit's name as the configuration calls it.
fn window_name(w: Window) -> &'static str {
    match w {
        Window::Cooldown => "cooldown",
        Window::Hour => "per_hour",
        Window::Day => "per_day",
        Window::NetworkMinute => "per_ip_minute",
        Window::NetworkHour => "per_ip_hour",
        Window::NetworkAccounts => "per_ip_accounts",
        Window::Account => "account_lock",
        Window::Pumping => "pumping",
    }
}

/// The user agent as text, cut to [`MAX_USER_AGENT`] bytes; bytes that are
/// not UTF-8 become U+FFFD. JSON encoding escapes the rest.
fn bounded_agent(v: &HeaderValue) -> String {
    let bytes = v.as_bytes();
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_USER_AGENT)]).into_owned()
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
        tokio::spawn(write_loop(rx, shared, Sink::new(path.to_path_buf(), file)));
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

    /// Queues the record of one request-path OTP event.
    pub fn otp(&self, who: &Subject<'_>, event: Event<'_>) {
        self.emit(|| event.record(who));
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

fn open_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

async fn write_loop(mut rx: mpsc::Receiver<Msg>, shared: Arc<Shared>, mut sink: Sink) {
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
struct Sink {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// Device and inode of the open file.
    id: Option<(u64, u64)>,
    line: Vec<u8>,
}

impl Sink {
    fn new(path: PathBuf, file: std::fs::File) -> Self {
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

    #[test]
    fn a_record_leaves_out_what_it_does_not_know() {
        let r = Record {
            count: Some(3),
            ..Record::new("audit.dropped")
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["count", "event", "time"]);
    }

    #[test]
    fn a_user_agent_is_cut_to_its_bound_and_never_breaks_utf8() {
        let long = HeaderValue::from_bytes(&[b'\xe9'; 1000]).unwrap();
        let kept = bounded_agent(&long);
        assert_eq!(kept.chars().count(), MAX_USER_AGENT);
        assert!(kept.chars().all(|c| c == '\u{fffd}'));
    }
}
