//! The pumping guard's rules, with time passed in where they need it.

use super::*;

/// Any moment: the guard reads time only as given.
const START: u64 = 1_700_000_000_000;
const HOUR: Duration = Duration::from_secs(3600);

/// A guard that judges sends at once (`answer_time` zero), as the
/// tests below count on; `answer_time` has its own tests.
fn guard(mode: PumpingMode, min_sends: u32, cap: u32) -> PumpingGuard {
    PumpingGuard::new(PumpingSettings {
        mode,
        min_sends,
        default_country_cap: cap,
        answer_time: Duration::ZERO,
        ..PumpingSettings::default()
    })
}

#[tokio::test]
async fn codes_still_being_typed_in_are_not_held_against_their_range() {
    let g = PumpingGuard::new(PumpingSettings {
        min_sends: 20,
        ..PumpingSettings::default()
    });
    let start = START;
    // An office at 9:00: fifty colleagues with consecutive numbers get
    // their codes within a minute, before anyone has entered one.
    for i in 0..50 {
        let to = n(&format!("+316123450{i:02}"));
        let at = start + ms(Duration::from_millis(1000 * i));
        assert!(g.check_at(&to, at).await.is_ok(), "colleague {i}");
        g.record_at(&to, at, 1, 0).await;
    }
    for i in 0..50 {
        g.record_at(
            &n(&format!("+316123450{i:02}")),
            start + ms(Duration::from_secs(90)),
            0,
            1,
        )
        .await;
    }
    let later = start + ms(Duration::from_secs(600));
    assert!(g.check_at(&n("+31612345099"), later).await.is_ok());
    assert!(g.quarantines().await.is_empty());
}

#[tokio::test]
async fn unanswered_codes_are_judged_once_their_answer_time_has_passed() {
    let g = PumpingGuard::new(PumpingSettings {
        min_sends: 3,
        ..PumpingSettings::default()
    });
    let start = START;
    for i in 0..3 {
        g.record_at(&n(&format!("+234803123456{i}")), start, 1, 0)
            .await;
    }
    let to = n("+2348031234569");
    assert!(
        g.check_at(&to, start + ms(Duration::from_secs(60)))
            .await
            .is_ok()
    );
    let refused = g
        .check_at(&to, start + ms(Duration::from_secs(8 * 60)))
        .await;
    assert_eq!(refused.unwrap_err().window, Window::Pumping);
}

fn n(s: &str) -> Number {
    Number::parse(s).unwrap()
}

#[tokio::test]
async fn the_prefix_is_the_number_without_its_last_four_digits() {
    assert_eq!(prefix(&n("+2348031234567")), "+234803123");
    assert_eq!(prefix(&n("+31612345678")), "+3161234");
}

#[tokio::test]
async fn unverified_sends_to_a_prefix_quarantine_it_and_its_country() {
    let g = guard(PumpingMode::Enforce, 3, 1000);
    for i in 0..3 {
        let to = n(&format!("+234803123456{i}"));
        assert!(
            g.check(&to, &[0; 32]).await.is_ok(),
            "no judgement below min_sends"
        );
        g.record_send(&to).await;
    }
    let refused = g.check(&n("+2348031234569"), &[0; 32]).await.unwrap_err();
    assert_eq!(refused.window, Window::Pumping);
    assert_eq!(refused.wait, Duration::from_secs(3600));
    let keys: Vec<String> = g.quarantines().await.into_iter().map(|q| q.key).collect();
    assert_eq!(keys, ["+234803123"], "judged prefix first, one refusal");
    assert!(
        g.check(&n("+31612345678"), &[0; 32]).await.is_ok(),
        "another country"
    );
}

#[tokio::test]
async fn a_number_that_entered_a_right_code_passes_even_a_quarantine() {
    let g = guard(PumpingMode::Enforce, 3, 1000);
    let owner = n("+2348031234569");
    g.record_send(&owner).await;
    g.record_verified(&owner, &[9; 32]).await;
    for i in 0..6 {
        g.record_send(&n(&format!("+234803123456{i}"))).await;
    }
    assert!(
        g.check(&n("+2348031234568"), &[0; 32]).await.is_err(),
        "the range is quarantined"
    );
    assert!(
        g.check(&owner, &[9; 32]).await.is_ok(),
        "its proven number is not"
    );
}

#[tokio::test]
async fn a_quarantined_prefix_does_not_count_against_its_country() {
    let g = guard(PumpingMode::Enforce, 3, 1000);
    for i in 0..3 {
        g.record_send(&n(&format!("+234803123456{i}"))).await;
    }
    assert!(g.check(&n("+2348031234569"), &[0; 32]).await.is_err());
    assert!(g.lift("+234803123").await);
    assert!(
        g.check(&n("+2348091234567"), &[0; 32]).await.is_ok(),
        "NG is not judged on them"
    );
}

#[tokio::test]
async fn verified_sends_keep_a_destination_open() {
    let g = guard(PumpingMode::Enforce, 3, 1000);
    let to = n("+2348031234567");
    for _ in 0..10 {
        assert!(g.check(&to, &[0; 32]).await.is_ok());
        g.record_send(&to).await;
        g.record_verified(&to, &[7; 32]).await;
    }
    assert!(g.quarantines().await.is_empty());
}

#[tokio::test]
async fn sends_leave_the_window_after_it_has_passed() {
    let g = guard(PumpingMode::Enforce, 2, 1000);
    let to = n("+2348031234567");
    let start = START;
    g.record_at(&to, start, 2, 0).await;
    let later = start + ms(Duration::from_secs(3600 + 240));
    assert!(
        g.check_at(&to, later).await.is_ok(),
        "the old sends have left"
    );
    assert!(g.quarantines().await.is_empty());
}

#[tokio::test]
async fn a_country_past_its_hourly_cap_is_refused_until_the_oldest_send_leaves() {
    let g = guard(PumpingMode::Enforce, 1000, 2);
    let to = n("+2348031234567");
    for _ in 0..2 {
        g.check(&to, &[0; 32]).await.unwrap();
        g.record_send(&to).await;
    }
    let refused = g.check(&n("+2348091234567"), &[0; 32]).await.unwrap_err();
    assert!(refused.wait > Duration::from_secs(3400) && refused.wait <= HOUR);
    assert!(g.check(&n("+31612345678"), &[0; 32]).await.is_ok());
}

#[tokio::test]
async fn monitor_mode_refuses_nothing_but_remembers_what_it_would_have() {
    let g = guard(PumpingMode::Monitor, 2, 1);
    let to = n("+2348031234567");
    for _ in 0..5 {
        assert!(g.check(&to, &[0; 32]).await.is_ok());
        g.record_send(&to).await;
    }
    let q = g.quarantines().await;
    assert_eq!(q.len(), 1);
    assert!(!q[0].enforced);
}

#[tokio::test]
async fn a_lifted_quarantine_lets_codes_through_again() {
    let g = guard(PumpingMode::Enforce, 1, 1000);
    let to = n("+2348031234567");
    g.record_send(&to).await;
    assert!(g.check(&to, &[0; 32]).await.is_err());
    assert!(g.lift("+234803123").await);
    assert!(!g.lift("+234803123").await, "nothing left to lift");
    assert!(g.check(&to, &[0; 32]).await.is_ok());
}
