//! The access log (`[log] access = true`): one line per request, written
//! after the gate has its answer, as JSON (`[log] format = "json"`) or as a
//! readable `key=value` line. Its own stream, not the process log's: an
//! operator turns it on and off without touching the log level, ships it
//! apart, and it goes through the same bounded queue and writer task as the
//! audit log ([`writer`](super::writer)), on a thread of its own, so a
//! request never waits for it and a full queue drops lines (counted,
//! warned about, noted in the output) instead of slowing the gateway.
//! Off, it costs one branch per request.
//!
//! A line never holds a cookie, a header value or a query string (a code
//! page's query carries `rd`, an app's may carry tokens), nor a webhook's
//! token (its path is cut after the provider's name).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, StatusCode, Uri};
use serde::Serialize;

use crate::events::metrics::Outcome;
use crate::events::writer::{Format, Names, Target, Writer};

/// Lines waiting for the writer: about a third of a second at 50,000
/// requests a second.
const QUEUE: usize = 16 * 1024;
/// Longest path written, in bytes; a longer one ends in "…".
const MAX_PATH: usize = 1024;

static NAMES: Names = Names {
    dropped: "access.dropped",
    lines: "access log lines",
    log: "the access log",
};

/// One request, as the access log writes it.
pub struct Entry {
    /// When the request came in.
    pub time: SystemTime,
    /// Until the response's head was ready (a streamed body goes on).
    pub duration: Duration,
    /// The client's address as the limits see it (behind
    /// `trusted_proxies`, the first untrusted hop of `X-Forwarded-For`).
    pub client: IpAddr,
    pub method: Method,
    /// Only its path is written.
    pub uri: Uri,
    pub status: StatusCode,
    /// The body's length when known before it is sent.
    pub bytes: Option<u64>,
    pub decision: Outcome,
    /// The app's index in the configuration.
    pub app: Option<usize>,
    pub request_id: HeaderValue,
}

#[derive(Debug, thiserror::Error)]
#[error("{target}: cannot open the access log: {source}")]
pub struct AccessError {
    target: String,
    source: std::io::Error,
}

/// The handle requests write through; cheap to clone, a no-op when off.
#[derive(Clone, Default)]
pub struct Access {
    w: Writer<Entry>,
}

impl Access {
    pub fn off() -> Self {
        Self::default()
    }

    /// Opens `path` (created with mode 0600, appended to), or stdout when
    /// there is none, and starts the writer on a thread of its own.
    /// `apps` are the apps' names, by index.
    pub fn open(
        path: Option<&std::path::Path>,
        json: bool,
        apps: Vec<String>,
    ) -> Result<Self, AccessError> {
        let target = path.map_or(Target::Stdout, |p| Target::File(p.to_path_buf()));
        let format = Lines {
            json,
            apps: apps.into(),
        };
        let failed = |source| AccessError {
            target: path.map_or("stdout".to_string(), |p| p.display().to_string()),
            source,
        };
        let (w, run) = Writer::open(&target, format, &NAMES, QUEUE).map_err(failed)?;
        // Its own thread: formatting and writing every request's line
        // must not take the time of a worker that serves requests.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        std::thread::Builder::new()
            .name("otpgate-access-log".into())
            .spawn(move || runtime.block_on(run))
            .map_err(failed)?;
        Ok(Self { w })
    }

    #[inline]
    pub fn is_on(&self) -> bool {
        self.w.is_on()
    }

    /// Queues one request's line; never waits (a full queue loses it, counted).
    pub fn log(&self, entry: Entry) {
        self.w.emit(|| entry);
    }

    /// Reopens the file (SIGHUP, after log rotation).
    pub fn reopen(&self) {
        self.w.reopen();
    }

    /// Waits, at most `within`, until the lines queued so far are written.
    pub async fn drain(&self, within: Duration) {
        self.w.drain(within).await;
    }
}

/// How the lines read: JSON or text, and the apps' names.
struct Lines {
    json: bool,
    apps: Arc<[String]>,
}

/// One JSON line; fields in this order.
#[derive(Serialize)]
struct Json<'a> {
    #[serde(serialize_with = "rfc3339_millis")]
    time: SystemTime,
    event: &'static str,
    client: IpAddr,
    method: &'a str,
    path: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    duration_ms: f64,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    request_id: &'a str,
}

fn rfc3339_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

impl Format for Lines {
    type Item = Entry;

    fn line(&self, e: &Entry, out: &mut Vec<u8>) {
        let path = loggable_path(e.uri.path());
        let app = e.app.and_then(|i| self.apps.get(i)).map(String::as_str);
        // Ours are hex and '-'; a trusted proxy's are visible ASCII.
        let request_id = e.request_id.to_str().unwrap_or("");
        let duration_ms = e.duration.as_micros() as f64 / 1000.0;
        if self.json {
            let line = Json {
                time: e.time,
                event: "access",
                client: e.client,
                method: e.method.as_str(),
                path: &path,
                status: e.status.as_u16(),
                bytes: e.bytes,
                duration_ms,
                decision: e.decision.as_str(),
                app,
                request_id,
            };
            if serde_json::to_writer(&mut *out, &line).is_err() {
                out.clear();
            }
            return;
        }
        use std::io::Write;
        let _ = write!(
            out,
            "{} ACCESS client={} method={} path=",
            humantime::format_rfc3339_millis(e.time),
            e.client,
            // A token (RFC 9110 §9.1): one plain word.
            e.method.as_str(),
        );
        push_value(out, &path);
        let _ = write!(out, " status={} bytes=", e.status.as_u16());
        match e.bytes {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push(b'-'),
        }
        let _ = write!(
            out,
            " duration_ms={duration_ms:.3} decision={} app=",
            e.decision.as_str()
        );
        push_value(out, app.unwrap_or("-"));
        out.extend_from_slice(b" request_id=");
        push_value(
            out,
            if request_id.is_empty() {
                "-"
            } else {
                request_id
            },
        );
    }

    fn gap(&self, count: u64, out: &mut Vec<u8>) {
        let time = SystemTime::now();
        if self.json {
            #[derive(Serialize)]
            struct Gap {
                #[serde(serialize_with = "rfc3339_millis")]
                time: SystemTime,
                event: &'static str,
                count: u64,
            }
            let gap = Gap {
                time,
                event: "access.dropped",
                count,
            };
            if serde_json::to_writer(&mut *out, &gap).is_err() {
                out.clear();
            }
        } else {
            use std::io::Write;
            let _ = write!(
                out,
                "{} ACCESS event=access.dropped count={count}",
                humantime::format_rfc3339_millis(time)
            );
        }
    }
}

/// The path as written: a webhook's cut after the provider's name (the
/// rest is its secret token), any path cut to [`MAX_PATH`] bytes.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let prefix = crate::names::WEBHOOK_PREFIX;
    if let Some(rest) = path.strip_prefix(prefix) {
        let provider = rest.split('/').next().unwrap_or("");
        let named = !provider.is_empty()
            && provider.len() <= 16
            && provider.bytes().all(|b| b.is_ascii_lowercase());
        return Cow::Owned(if named {
            format!("{prefix}{provider}/…")
        } else {
            format!("{prefix}…")
        });
    }
    if path.len() <= MAX_PATH {
        return Cow::Borrowed(path);
    }
    let mut end = MAX_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &path[..end]))
}

/// A text line's value: as it is when it is one plain word, else quoted
/// with `"` and `\` escaped and control characters as `\u{…}`, so no
/// value can end the line or forge a field.
fn push_value(out: &mut Vec<u8>, v: &str) {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '"' | '\\' | '='));
    if plain {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.push(b'"');
    for c in v.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if c.is_control() => {
                use std::io::Write;
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uri: &str) -> Entry {
        Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123),
            duration: Duration::from_micros(1412),
            client: "203.0.113.9".parse().unwrap(),
            method: Method::GET,
            uri: uri.parse().unwrap(),
            status: StatusCode::OK,
            bytes: Some(1024),
            decision: Outcome::Pass,
            app: Some(0),
            request_id: HeaderValue::from_static("5f2a9c01d3e4-1f"),
        }
    }

    fn lines(json: bool) -> Lines {
        Lines {
            json,
            apps: vec!["Demo CRM".to_string()].into(),
        }
    }

    fn line(json: bool, e: &Entry) -> String {
        let mut out = Vec::new();
        lines(json).line(e, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_json_line_has_every_field_and_no_query() {
        let text = line(true, &entry("/reports?token=s3cret"));
        assert_eq!(
            text,
            r#"{"time":"2026-09-21T14:13:20.123Z","event":"access","client":"203.0.113.9","method":"GET","path":"/reports","status":200,"bytes":1024,"duration_ms":1.412,"decision":"pass","app":"Demo CRM","request_id":"5f2a9c01d3e4-1f"}"#
        );
    }

    #[test]
    fn a_text_line_is_key_value_pairs_with_quoted_values_where_needed() {
        let mut e = entry("/.otpgate/verify?rd=%2Fsecret");
        e.bytes = None;
        e.decision = Outcome::OwnRoute;
        assert_eq!(
            line(false, &e),
            r#"2026-09-21T14:13:20.123Z ACCESS client=203.0.113.9 method=GET path=/.otpgate/verify status=200 bytes=- duration_ms=1.412 decision=own_route app="Demo CRM" request_id=5f2a9c01d3e4-1f"#
        );
    }

    #[test]
    fn a_webhook_s_token_and_a_hostile_request_id_stay_out_of_the_line() {
        let mut e = entry("/.otpgate/webhook/didfarm/0123456789abcdef");
        e.request_id = HeaderValue::from_static("x\" app=forged");
        e.app = None;
        let text = line(false, &e);
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("path=/.otpgate/webhook/didfarm/…"), "{text}");
        assert!(
            text.ends_with(r#"app=- request_id="x\" app=forged""#),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&line(true, &e)).unwrap();
        assert_eq!(json["path"], "/.otpgate/webhook/didfarm/…");
        assert!(json.get("app").is_none());
        assert_eq!(
            loggable_path("/.otpgate/webhook/Bad%2F/x"),
            "/.otpgate/webhook/…"
        );
    }

    #[test]
    fn a_gap_is_a_line_of_its_own_in_either_format() {
        let mut out = Vec::new();
        lines(true).gap(7, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["count"].as_u64()),
            (Some("access.dropped"), Some(7))
        );
        out.clear();
        lines(false).gap(7, &mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with(" ACCESS event=access.dropped count=7")
        );
    }

    #[test]
    fn a_long_path_is_cut_on_a_character_boundary() {
        let long = format!("/{}", "é".repeat(800));
        let cut = loggable_path(&long);
        assert!(cut.len() <= MAX_PATH + "…".len(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
