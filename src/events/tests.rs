//! Each event kind's log line (level and every field, as the text log
//! renders them) and audit record (every JSON field), from the sinks
//! themselves; and the stream reaching every sink.

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
    let record = audit::record(who, event)?;
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

fn fixture() -> Fixture {
    Fixture {
        number: Number::parse("+31612345678").unwrap(),
        id: [7; 32],
        view: ClientView::restored(
            "192.0.2.7".parse().unwrap(),
            true,
            "crm.example".into(),
            Some(HeaderValue::from_static("Firefox/128.0")),
        ),
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
    ];
    all.extend_from_slice(more);
    line(level, &all)
}

/// The record fields of a subject, then `more`.
fn subject_record(more: Value) -> Option<Value> {
    let mut v = json!({
        "app": "CRM", "user": "alice", "phone": "***5678", "phone_hash": HASH,
        "client_ip": "192.0.2.7", "user_agent": "Firefox/128.0",
    });
    v.as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    Some(v)
}

#[test]
fn sends_have_their_lines_and_records() {
    let f = fixture();
    let sent = |kind| OtpEvent::Sent {
        kind,
        channel: Channel::Sms,
        provider: "didfarm",
        message_id: Some("msg_1"),
        from: "+31201234567",
    };
    for (kind, name) in [
        (SentKind::First, "otp.sent"),
        (SentKind::Again, "otp.resent"),
        (SentKind::Fallback, "delivery.fallback"),
    ] {
        check(
            &f.who(),
            sent(kind),
            subject_line(
                Level::INFO,
                &[
                    ("event", &format!("{name:?}")),
                    ("channel", "\"sms\""),
                    ("from", "+31201234567"),
                    ("provider", "\"didfarm\""),
                    ("message_id", "\"msg_1\""),
                    ("message", "code sent"),
                ],
            ),
            subject_record(json!({
                "event": name, "channel": "sms", "provider": "didfarm",
                "message_id": "msg_1", "outcome": "accepted",
            })),
        );
    }
    check(
        &f.who(),
        OtpEvent::SendUncertain {
            channel: Channel::Whatsapp,
            provider: "didfarm",
        },
        subject_line(
            Level::WARN,
            &[
                ("event", "\"otp.send_uncertain\""),
                ("channel", "\"whatsapp\""),
                ("provider", "\"didfarm\""),
                (
                    "message",
                    "the provider did not answer in time; the code may still arrive",
                ),
            ],
        ),
        subject_record(json!({
            "event": "otp.send_uncertain", "channel": "whatsapp", "provider": "didfarm",
            "outcome": "uncertain",
            "reason": "the provider did not answer in time; the message may still arrive",
        })),
    );
    let error = SendError::Rejected {
        status: 503,
        detail: String::new(),
    };
    check(
        &f.who(),
        OtpEvent::SendError {
            channel: Channel::Sms,
            provider: "twilio",
            error: &error,
            maybe_sent: false,
        },
        subject_line(
            Level::ERROR,
            &[
                ("event", "\"otp.send_error\""),
                ("channel", "\"sms\""),
                ("provider", "\"twilio\""),
                ("error", "the provider refused the message with HTTP 503"),
                ("maybe_sent", "false"),
                ("message", "code could not be sent"),
            ],
        ),
        subject_record(json!({
            "event": "otp.send_error", "channel": "sms", "provider": "twilio",
            "outcome": "error", "reason": "the provider refused the message",
            "error_code": "http_503",
        })),
    );
    check(
        &f.who(),
        OtpEvent::Failover {
            channel: Channel::Sms,
            from: "didfarm",
            to: "twilio",
            error: &SendError::Timeout,
        },
        subject_line(
            Level::WARN,
            &[
                ("event", "\"delivery.failover\""),
                ("from", "\"didfarm\""),
                ("to", "\"twilio\""),
                ("channel", "\"sms\""),
                ("error", "the provider did not answer in time"),
                ("message", "provider failed; trying the next one"),
            ],
        ),
        None,
    );
    check(
        &f.who(),
        OtpEvent::CountryRefused,
        subject_line(
            Level::WARN,
            &[
                ("event", "\"otp.country_refused\""),
                ("country", "\"NL\""),
                (
                    "message",
                    "codes may not be sent to this country (sms.allowed_countries / sms.denied_countries)",
                ),
            ],
        ),
        subject_record(json!({"event": "otp.country_refused", "reason": "country_not_allowed"})),
    );
}

fn limited(window: Window) -> Limited {
    Limited {
        window,
        wait: Duration::from_millis(29_500),
    }
}

#[test]
fn refusals_name_their_window_and_a_pumping_one_shows_no_last_digits() {
    let f = fixture();
    check(
        &f.who(),
        OtpEvent::SendLimited(limited(Window::Cooldown)),
        subject_line(
            Level::INFO,
            &[
                ("event", "\"rate_limited\""),
                ("window", "Cooldown"),
                ("wait_s", "29"),
                ("message", "send refused by rate limit"),
            ],
        ),
        subject_record(json!({
            "event": "rate_limited", "outcome": "send_refused", "window": "cooldown",
            "retry_after_s": 30,
        })),
    );
    let mut log = subject_line(
        Level::INFO,
        &[
            ("event", "\"rate_limited\""),
            ("window", "Pumping"),
            ("wait_s", "29"),
            ("message", "send refused by rate limit"),
        ],
    );
    log.fields.remove("phone");
    let mut record = subject_record(json!({
        "event": "rate_limited", "outcome": "send_refused", "window": "pumping",
        "retry_after_s": 30,
    }));
    record
        .as_mut()
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("phone");
    check(
        &f.who(),
        OtpEvent::SendLimited(limited(Window::Pumping)),
        log,
        record,
    );
    for (window, log_name, name) in [
        (Window::Account, "otp.account_locked", "account_lock"),
        (Window::NetworkMinute, "rate_limited", "per_ip_minute"),
    ] {
        check(
            &f.who(),
            OtpEvent::CheckLimited(limited(window)),
            subject_line(
                Level::INFO,
                &[
                    ("event", &format!("{log_name:?}")),
                    ("window", &format!("{window:?}")),
                    ("wait_s", "29"),
                    ("message", "code check refused by rate limit"),
                ],
            ),
            subject_record(json!({
                "event": "rate_limited", "outcome": "check_refused", "window": name,
                "retry_after_s": 30,
            })),
        );
    }
}

#[test]
fn checks_have_their_lines_and_records() {
    let f = fixture();
    let checked = |name: &str| {
        subject_line(
            Level::INFO,
            &[("event", &format!("{name:?}")), ("message", "code checked")],
        )
    };
    check(
        &f.who(),
        OtpEvent::Verified,
        checked("otp.verified"),
        subject_record(json!({"event": "otp.verified"})),
    );
    check(
        &f.who(),
        OtpEvent::Expired,
        checked("otp.expired"),
        subject_record(json!({"event": "otp.expired"})),
    );
    let mut failed = checked("otp.failed");
    failed.fields.insert("attempts_left".into(), "4".into());
    check(
        &f.who(),
        OtpEvent::Failed { attempts_left: 4 },
        failed,
        subject_record(json!({"event": "otp.failed", "attempts_left": 4})),
    );
    check(
        &f.who(),
        OtpEvent::CodeLocked,
        checked("otp.locked"),
        subject_record(json!({"event": "otp.locked", "reason": "code_attempts"})),
    );
    check(
        &f.who(),
        OtpEvent::AccountLocked,
        subject_line(
            Level::WARN,
            &[
                ("event", "\"otp.account_locked\""),
                (
                    "message",
                    "too many consecutive wrong codes: account locked",
                ),
            ],
        ),
        subject_record(json!({"event": "otp.locked", "reason": "account_failures"})),
    );
}

#[test]
fn a_user_without_a_number_is_logged_not_recorded() {
    let f = fixture();
    check(
        &Who::user("CRM", "bob\nINFO forged", &f.view),
        OtpEvent::NoPhone { why: "is missing" },
        line(
            Level::ERROR,
            &[
                ("event", "\"otp.no_phone\""),
                ("app", "CRM"),
                // Quoted and escaped: the name cannot start a line of its own.
                ("user", "\"bob\\nINFO forged\""),
                ("client_ip", "192.0.2.7"),
                (
                    "message",
                    "the user's phone number is missing; fix it in the app or in users_file",
                ),
            ],
        ),
        None,
    );
}

#[test]
fn delivery_reports_show_the_number_only_as_its_hash_and_clean_the_providers_text() {
    let id = [7; 32];
    let report = |status| OtpEvent::Delivery {
        provider: "twilio",
        channel: Channel::Sms,
        status,
        message_id: "SM1\n",
        error_code: Some("30003"),
        error_message: Some("+31612345678 is unreachable"),
    };
    check(
        &Who::number(&id),
        report(Status::Failed),
        line(
            Level::WARN,
            &[
                ("event", "\"delivery.failed\""),
                ("provider", "\"twilio\""),
                ("channel", "\"sms\""),
                ("message_id", "SM1"),
                ("error_code", "30003"),
                ("error", "+… is unreachable"),
                ("message", "message not delivered"),
            ],
        ),
        Some(json!({
            "event": "delivery.failed", "phone_hash": HASH, "channel": "sms",
            "provider": "twilio", "message_id": "SM1", "status": "failed", "error_code": "30003",
        })),
    );
    check(
        &Who::number(&id),
        report(Status::Delivered),
        line(
            Level::INFO,
            &[
                ("event", "\"delivery.delivered\""),
                ("provider", "\"twilio\""),
                ("channel", "\"sms\""),
                ("message_id", "SM1"),
                ("message", "delivery status"),
            ],
        ),
        Some(json!({
            "event": "delivery.delivered", "phone_hash": HASH, "channel": "sms",
            "provider": "twilio", "message_id": "SM1", "status": "delivered",
            "error_code": "30003",
        })),
    );
    check(
        &Who::nobody(),
        OtpEvent::FallbackUnreadable,
        line(
            Level::ERROR,
            &[
                ("event", "\"delivery.fallback_unreadable\""),
                (
                    "message",
                    "a sealed fallback did not open (was the secret file replaced?); no SMS follows",
                ),
            ],
        ),
        None,
    );
}

#[test]
fn pumping_events_name_the_prefix_or_country_and_say_when_nothing_was_refused() {
    let why = "0 of 5 codes verified";
    for (mode, outcome, prefix) in [
        (PumpingMode::Enforce, "quarantined", ""),
        (
            PumpingMode::Monitor,
            "monitor_only",
            "monitor mode, nothing refused: ",
        ),
    ] {
        check(
            &Who::nobody(),
            OtpEvent::Quarantine {
                scope: Scope::Prefix,
                key: "+234803123",
                sends: 5,
                verified: 0,
                why,
                lasts: Duration::from_secs(3600),
                mode,
            },
            line(
                Level::WARN,
                &[
                    ("event", "\"pumping.quarantine\""),
                    ("scope", "Prefix"),
                    ("key", "\"+234803123\""),
                    ("sends", "5"),
                    ("verified", "0"),
                    ("quarantine_s", "3600"),
                    ("mode", &format!("{mode:?}")),
                    ("message", &format!("{prefix}possible SMS pumping: {why}")),
                ],
            ),
            Some(json!({
                "event": "pumping.quarantine", "prefix": "+234803123", "reason": why,
                "outcome": outcome,
            })),
        );
    }
    check(
        &Who::nobody(),
        OtpEvent::PumpingRefused {
            scope: Scope::Country,
            why,
            mode: PumpingMode::Enforce,
        },
        line(
            Level::INFO,
            &[
                ("event", "\"pumping.refused\""),
                ("scope", "Country"),
                ("mode", "Enforce"),
                ("why", why),
                ("message", "send to a quarantined destination"),
            ],
        ),
        None,
    );
    check(
        &Who::nobody(),
        OtpEvent::CountryCap {
            country: "GH",
            sends: 2,
            cap: 1,
            mode: PumpingMode::Monitor,
        },
        line(
            Level::WARN,
            &[
                ("event", "\"pumping.country_cap\""),
                ("country", "\"GH\""),
                ("sends", "2"),
                ("cap", "1"),
                ("mode", "Monitor"),
                (
                    "message",
                    "monitor mode, nothing refused: the country has reached its hourly cap of codes",
                ),
            ],
        ),
        None,
    );
}

#[test]
fn admin_actions_are_logged_and_recorded() {
    for (key, field) in [("NG", "country"), ("+234803123", "prefix")] {
        check(
            &Who::nobody(),
            OtpEvent::QuarantineLifted { key },
            line(
                Level::WARN,
                &[
                    ("event", "\"pumping.lifted\""),
                    ("key", &format!("{key:?}")),
                    ("message", "quarantine lifted by an admin"),
                ],
            ),
            Some(json!({"event": "pumping.lifted", field: key, "outcome": "lifted_by_admin"})),
        );
    }
    check(
        &Who::account("CRM", "alice"),
        OtpEvent::Unlocked,
        line(
            Level::WARN,
            &[
                ("event", "\"otp.unlocked\""),
                ("app", "CRM"),
                ("user", "\"alice\""),
                ("message", "account lock lifted by an admin"),
            ],
        ),
        Some(json!({
            "event": "otp.unlocked", "app": "CRM", "user": "alice", "outcome": "lifted_by_admin",
        })),
    );
}

/// A sink that keeps the names of the events it saw.
#[derive(Default)]
struct Names(Mutex<Vec<&'static str>>);

impl Sink for Names {
    fn take(&self, _: &Who<'_>, event: &OtpEvent<'_>) {
        self.0.lock().unwrap().push(event.name());
    }
}

#[test]
fn every_sink_sees_every_event_once_in_order() {
    let (a, b) = (Arc::new(Names::default()), Arc::new(Names::default()));
    let events = Events::new(vec![a.clone(), b.clone()]);
    events.emit(&Who::nobody(), OtpEvent::FallbackUnreadable);
    events.emit(&Who::account("CRM", "alice"), OtpEvent::Unlocked);
    for sink in [a, b] {
        assert_eq!(
            *sink.0.lock().unwrap(),
            ["delivery.fallback_unreadable", "otp.unlocked"]
        );
    }
}

#[test]
fn a_user_agent_is_cut_to_its_bound_and_never_breaks_utf8() {
    let long = HeaderValue::from_bytes(&[b'\xe9'; 1000]).unwrap();
    let kept = bounded_agent(&long);
    assert_eq!(kept.chars().count(), MAX_USER_AGENT);
    assert!(kept.chars().all(|c| c == '\u{fffd}'));
}
