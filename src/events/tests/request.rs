//! The request path's events: sends, refusals, code checks.

use super::*;

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
