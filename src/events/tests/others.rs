//! Events without a user's number at a request: no phone, delivery
//! reports, pumping, admin actions; and the sinks themselves.

use super::*;

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
                ("request_id", "\"5f2a9c01d3e4-1f\""),
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
        after: None,
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
    // A report names the provider's webhook call it came in.
    let webhook_call = HeaderValue::from_static("5f2a9c01d3e4-2a");
    check(
        &Who::number(&id).in_request(&webhook_call),
        report(Status::Delivered),
        line(
            Level::INFO,
            &[
                ("event", "\"delivery.delivered\""),
                ("request_id", "\"5f2a9c01d3e4-2a\""),
                ("provider", "\"twilio\""),
                ("channel", "\"sms\""),
                ("message_id", "SM1"),
                ("message", "delivery status"),
            ],
        ),
        Some(json!({
            "event": "delivery.delivered", "phone_hash": HASH, "request_id": "5f2a9c01d3e4-2a", "channel": "sms",
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
