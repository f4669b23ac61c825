//! Each event kind's log line (level and every field, as the text log
//! renders them) and audit record (every JSON field), from the sinks
//! themselves; and the stream reaching every sink. Here the harness;
//! `request` has the events of the request path, `others` the rest.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::*;

/// One captured log line: its level and its fields rendered as the text
/// log renders them (strings quoted, `%` values bare).
#[derive(Debug, PartialEq)]
struct Line {
    level: Level,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Line>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

/// The log line `Log` writes for `event`.
fn line_of(who: &Who<'_>, event: &OtpEvent<'_>) -> Line {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || Log.take(who, event));
    let mut lines = std::mem::take(&mut *capture.0.lock().unwrap());
    assert_eq!(lines.len(), 1, "one line per event: {lines:?}");
    lines.remove(0)
}

/// The audit record of `event` as JSON, without its time.
fn record_of(who: &Who<'_>, event: &OtpEvent<'_>) -> Option<Value> {
    let record = audit::sink::record(who, event)?;
    let mut v = serde_json::to_value(&record).unwrap();
    let time = v.as_object_mut().unwrap().remove("time").unwrap();
    assert!(time.as_str().unwrap().ends_with('Z'), "{time}");
    Some(v)
}

fn line(level: Level, fields: &[(&str, &str)]) -> Line {
    Line {
        level,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Checks both sinks' output for one event.
fn check(who: &Who<'_>, event: OtpEvent<'_>, log: Line, record: Option<Value>) {
    assert_eq!(line_of(who, &event), log, "the log line of {event:?}");
    assert_eq!(record_of(who, &event), record, "the record of {event:?}");
}

const HASH: &str = "0707070707070707070707070707070707070707070707070707070707070707";

struct Fixture {
    number: Number,
    id: [u8; 32],
    view: ClientView,
}

/// The request id of the fixture's request.
const REQUEST_ID: &str = "5f2a9c01d3e4-1f";

fn fixture() -> Fixture {
    let mut view = ClientView::restored(
        "192.0.2.7".parse().unwrap(),
        true,
        "crm.example".into(),
        Some(HeaderValue::from_static("Firefox/128.0")),
    );
    view.request_id = HeaderValue::from_static(REQUEST_ID);
    Fixture {
        number: Number::parse("+31612345678").unwrap(),
        id: [7; 32],
        view,
    }
}

impl Fixture {
    fn who(&self) -> Who<'_> {
        Who::subject("CRM", "alice", &self.number, &self.id, &self.view)
    }
}

/// The log fields of a subject, then `more`.
fn subject_line(level: Level, more: &[(&str, &str)]) -> Line {
    let mut all = vec![
        ("app", "CRM"),
        ("user", "\"alice\""),
        ("phone", "***5678"),
        ("client_ip", "192.0.2.7"),
        ("request_id", "\"5f2a9c01d3e4-1f\""),
    ];
    all.extend_from_slice(more);
    line(level, &all)
}

/// The record fields of a subject, then `more`.
fn subject_record(more: Value) -> Option<Value> {
    let mut v = json!({
        "app": "CRM", "user": "alice", "phone": "***5678", "phone_hash": HASH,
        "client_ip": "192.0.2.7", "user_agent": "Firefox/128.0", "request_id": REQUEST_ID,
    });
    v.as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    Some(v)
}

mod others;
mod request;
