//! The delivery records' rules, without a gateway around them.

use super::*;

fn msg(channel: Channel, id: &str) -> Message {
    Message {
        provider: "didfarm",
        id: Some(Arc::from(id)),
        channel,
        status: Status::Queued,
        reported: true,
        at: Instant::now(),
        error_code: None,
    }
}

fn update(id: &str, status: Status) -> StatusUpdate {
    StatusUpdate {
        message_id: id.into(),
        status,
        error_code: None,
        error_message: None,
    }
}

fn sms_fallback() -> Fallback {
    Fallback {
        channel: Channel::Sms,
        sealed: "sealed".into(),
    }
}

#[test]
fn the_sealed_send_goes_when_the_first_message_is_delivered_or_the_code_dies() {
    let d = deliveries(Duration::from_secs(3600));
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    );
    assert!(d.keeps_sealed(&[1; 32]));
    d.update("didfarm", &update("w1", Status::Delivered));
    assert!(!d.keeps_sealed(&[1; 32]), "delivered");
    let g = d.started(
        &[2; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w2"),
        Some(sms_fallback()),
    );
    d.code_died(&[2; 32], Some(g + 1));
    assert!(d.keeps_sealed(&[2; 32]), "another record's death");
    d.code_died(&[2; 32], Some(g));
    assert!(!d.keeps_sealed(&[2; 32]), "verified, locked or expired");
    d.started(
        &[3; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w3"),
        Some(sms_fallback()),
    );
    d.added(&[3; 32], [9; 32], msg(Channel::Sms, "m3"));
    assert!(!d.keeps_sealed(&[3; 32]), "the user sent it by SMS already");
}

#[test]
fn a_claim_takes_the_sealed_send_once_and_only_for_its_own_record() {
    let d = deliveries(Duration::ZERO);
    let g = d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    );
    assert!(d.take_fallback(&[1; 32], Some(g + 1)).is_none());
    let c = d.take_fallback(&[1; 32], Some(g)).unwrap();
    assert_eq!(
        (c.channel, c.sealed.as_deref()),
        (Channel::Sms, Some("sealed"))
    );
    assert!(d.take_fallback(&[1; 32], None).is_none());
    assert!(!d.keeps_sealed(&[1; 32]));
}

fn deliveries(fallback_after: Duration) -> Deliveries {
    Deliveries::new(
        Duration::from_secs(300),
        fallback_after,
        Duration::from_secs(30),
    )
}

#[test]
fn a_failed_whatsapp_message_makes_the_sms_fallback_due_once() {
    let d = deliveries(Duration::from_secs(3600));
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    );
    assert_eq!(d.view(&[1; 32]).unwrap().fallback_due, None);
    let a = d.update("didfarm", &update("w1", Status::Failed)).unwrap();
    assert_eq!(
        (a.number_id, a.status, a.stale),
        ([9; 32], Status::Failed, false)
    );
    assert_eq!(d.view(&[1; 32]).unwrap().fallback_due, Some(Channel::Sms));
    assert_eq!(
        d.take_fallback(&[1; 32], None).map(|c| c.channel),
        Some(Channel::Sms)
    );
    assert!(d.take_fallback(&[1; 32], None).is_none());
}

#[test]
fn a_delivered_message_needs_no_fallback_even_after_the_wait() {
    let d = deliveries(Duration::ZERO);
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    );
    d.update("didfarm", &update("w1", Status::Delivered));
    assert!(d.take_fallback(&[1; 32], None).is_none());
    let v = d.view(&[1; 32]).unwrap();
    assert_eq!((v.status, v.late), (Status::Delivered, false));
}

#[test]
fn unknown_ids_and_other_providers_ids_match_nothing() {
    let d = deliveries(Duration::from_secs(10));
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m1"), None);
    assert!(d.update("didfarm", &update("m2", Status::Failed)).is_none());
    assert!(d.update("twilio", &update("m1", Status::Failed)).is_none());
    assert_eq!(d.view(&[1; 32]).unwrap().status, Status::Queued);
}

#[test]
fn a_late_sent_report_does_not_undo_delivered() {
    let d = deliveries(Duration::from_secs(10));
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m1"), None);
    d.update("didfarm", &update("m1", Status::Delivered));
    let a = d.update("didfarm", &update("m1", Status::Sent)).unwrap();
    assert!(a.stale);
    assert_eq!(d.view(&[1; 32]).unwrap().status, Status::Delivered);
}

#[test]
fn a_new_code_forgets_the_old_codes_messages() {
    let d = deliveries(Duration::ZERO);
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    );
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m2"), None);
    assert!(d.update("didfarm", &update("w1", Status::Failed)).is_none());
    assert!(d.take_fallback(&[1; 32], None).is_none());
}
