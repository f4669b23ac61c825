use super::*;

#[test]
fn the_origin_bound_line_is_last_and_has_no_trailing_newline() {
    let body = render_body(
        crate::config::DEFAULT_MESSAGE,
        "Acme",
        "747723",
        Duration::from_secs(300),
        Some("acme.example"),
    );
    assert_eq!(
        body,
        "Your Acme verification code is 747723. It expires in 5 minutes.\n\n@acme.example #747723"
    );
}

#[test]
fn without_a_host_the_message_is_the_template_alone() {
    let body = render_body(
        "{code} for {app}\n",
        "A",
        "123456",
        Duration::from_secs(90),
        None,
    );
    assert_eq!(body, "123456 for A");
}

fn outgoing() -> Outgoing {
    Outgoing {
        channel: Channel::Sms,
        to: "+31612345678".into(),
        from: "X".into(),
        body: "Your code is 123456.".into(),
        code: crate::otp::test_code("123456"),
        ttl: Duration::from_secs(300),
    }
}

#[test]
fn an_error_reason_that_echoes_the_message_is_dropped() {
    let msg = outgoing();
    assert_eq!(
        detail(br#"{"error":{"message":"invalid number"}}"#, &msg),
        ": invalid number"
    );
    assert_eq!(
        detail(br#"{"message":"bad body: Your code is 123456."}"#, &msg),
        ""
    );
    assert_eq!(detail(b"not json", &msg), "");
    assert_eq!(detail(br#"{"message":"duplicate 123456"}"#, &msg), "");
    assert_eq!(
        detail(
            br#"{"message":"The 'To' number +4915199999999 is not a valid phone number."}"#,
            &msg
        ),
        ": The 'To' number +… is not a valid phone number."
    );
}

#[test]
fn loggable_text_has_no_control_characters_and_no_long_numbers() {
    assert_eq!(
        loggable("error 30003\nforged line"),
        "error 30003forged line"
    );
    assert_eq!(loggable("to 4915112345678, code 12"), "to …, code 12");
}

#[test]
fn only_unreachable_slow_or_broken_providers_fail_over() {
    assert!(SendError::Timeout.try_next());
    assert!(SendError::Network("refused".into()).try_next());
    let rejected = |status| SendError::Rejected {
        status,
        detail: String::new(),
    };
    assert!(rejected(503).try_next());
    assert!(!rejected(400).try_next());
    assert!(!rejected(422).try_next());
    assert!(!SendError::BadAnswer("x".into()).try_next());
}
