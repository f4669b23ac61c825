//! The delivery records' rules, without a gateway around them.

use std::sync::Arc;

use super::*;

fn msg(channel: Channel, id: &str) -> Message {
    Message {
        provider: "didfarm",
        id: Some(Arc::from(id)),
        channel,
        status: Status::Queued,
        reported: true,
        at: 0,
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

#[tokio::test]
async fn the_sealed_send_goes_when_the_first_message_is_delivered_or_the_code_dies() {
    let d = deliveries(Duration::from_secs(3600));
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    )
    .await;
    assert!(d.keeps_sealed(&[1; 32]).await);
    d.update("didfarm", &update("w1", Status::Delivered)).await;
    assert!(!d.keeps_sealed(&[1; 32]).await, "delivered");
    let g = d
        .started(
            &[2; 32],
            [9; 32],
            msg(Channel::Whatsapp, "w2"),
            Some(sms_fallback()),
        )
        .await;
    d.code_died(&[2; 32], Some(g + 1)).await;
    assert!(d.keeps_sealed(&[2; 32]).await, "another record's death");
    d.code_died(&[2; 32], Some(g)).await;
    assert!(
        !d.keeps_sealed(&[2; 32]).await,
        "verified, locked or expired"
    );
    d.started(
        &[3; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w3"),
        Some(sms_fallback()),
    )
    .await;
    d.added(&[3; 32], [9; 32], msg(Channel::Sms, "m3")).await;
    assert!(
        !d.keeps_sealed(&[3; 32]).await,
        "the user sent it by SMS already"
    );
}

#[tokio::test]
async fn a_claim_takes_the_sealed_send_once_and_only_for_its_own_record() {
    let d = deliveries(Duration::ZERO);
    let g = d
        .started(
            &[1; 32],
            [9; 32],
            msg(Channel::Whatsapp, "w1"),
            Some(sms_fallback()),
        )
        .await;
    assert!(d.take_fallback(&[1; 32], Some(g + 1)).await.is_none());
    let c = d.take_fallback(&[1; 32], Some(g)).await.unwrap();
    assert_eq!(
        (c.channel, c.sealed.as_deref()),
        (Channel::Sms, Some("sealed"))
    );
    assert!(d.take_fallback(&[1; 32], None).await.is_none());
    assert!(!d.keeps_sealed(&[1; 32]).await);
}

fn deliveries(fallback_after: Duration) -> Deliveries {
    Deliveries::in_memory(
        Duration::from_secs(300),
        fallback_after,
        Duration::from_secs(30),
        crate::store::ManualClock::starting_now(),
    )
}

#[tokio::test]
async fn a_failed_whatsapp_message_makes_the_sms_fallback_due_once() {
    let d = deliveries(Duration::from_secs(3600));
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    )
    .await;
    assert_eq!(d.view(&[1; 32]).await.unwrap().fallback_due, None);
    let a = d
        .update("didfarm", &update("w1", Status::Failed))
        .await
        .unwrap();
    assert_eq!(
        (a.number_id, a.status, a.stale),
        ([9; 32], Status::Failed, false)
    );
    assert_eq!(
        d.view(&[1; 32]).await.unwrap().fallback_due,
        Some(Channel::Sms)
    );
    assert_eq!(
        d.take_fallback(&[1; 32], None).await.map(|c| c.channel),
        Some(Channel::Sms)
    );
    assert!(d.take_fallback(&[1; 32], None).await.is_none());
}

#[tokio::test]
async fn a_delivered_message_needs_no_fallback_even_after_the_wait() {
    let d = deliveries(Duration::ZERO);
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    )
    .await;
    d.update("didfarm", &update("w1", Status::Delivered)).await;
    assert!(d.take_fallback(&[1; 32], None).await.is_none());
    let v = d.view(&[1; 32]).await.unwrap();
    assert_eq!((v.status, v.late), (Status::Delivered, false));
}

#[tokio::test]
async fn unknown_ids_and_other_providers_ids_match_nothing() {
    let d = deliveries(Duration::from_secs(10));
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m1"), None)
        .await;
    assert!(
        d.update("didfarm", &update("m2", Status::Failed))
            .await
            .is_none()
    );
    assert!(
        d.update("twilio", &update("m1", Status::Failed))
            .await
            .is_none()
    );
    assert_eq!(d.view(&[1; 32]).await.unwrap().status, Status::Queued);
}

#[tokio::test]
async fn a_late_sent_report_does_not_undo_delivered() {
    let d = deliveries(Duration::from_secs(10));
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m1"), None)
        .await;
    d.update("didfarm", &update("m1", Status::Delivered)).await;
    let a = d
        .update("didfarm", &update("m1", Status::Sent))
        .await
        .unwrap();
    assert!(a.stale);
    assert_eq!(d.view(&[1; 32]).await.unwrap().status, Status::Delivered);
}

#[tokio::test]
async fn a_new_code_forgets_the_old_codes_messages() {
    let d = deliveries(Duration::ZERO);
    d.started(
        &[1; 32],
        [9; 32],
        msg(Channel::Whatsapp, "w1"),
        Some(sms_fallback()),
    )
    .await;
    d.started(&[1; 32], [9; 32], msg(Channel::Sms, "m2"), None)
        .await;
    assert!(
        d.update("didfarm", &update("w1", Status::Failed))
            .await
            .is_none()
    );
    assert!(d.take_fallback(&[1; 32], None).await.is_none());
}
