//! The SMS providers' health in the process log, for the operator: a
//! provider that is down (unreachable, too slow, 5xx) is logged at once
//! (`provider.failing`), then at most once per `failure_log::INTERVAL`
//! with the count of failed sends, and once when it answers again
//! (`provider.recovered`), as an app's upstream failures are. A burst of
//! sends during an outage writes a few of these lines, however many sends
//! fail. The OTP events of each send (`otp.send_error`,
//! `delivery.failover`) keep their own lines and records: the audit trail
//! needs every one.

use std::time::Instant;

use crate::delivery::sms::SendError;
use crate::events::failure_log::Line;
use crate::state::State;

/// `provider` answered a send, or failed it; a refusal of the message
/// (4xx, an unreadable answer) is an answer: the provider is up.
pub(super) fn note(state: &State, provider: &'static str, result: Result<(), &SendError>) {
    let Some(log) = state.provider_failures.of(provider) else {
        return;
    };
    let now = Instant::now();
    let error = match result {
        Err(error) if error.is_outage() => error,
        _ => {
            if let Some(back) = log.succeeded(now) {
                tracing::warn!(
                    event = "provider.recovered",
                    provider,
                    failed = back.failed,
                    seconds = back.over.as_secs(),
                    "the SMS provider {provider} answers again, after {} failed sends over {} s",
                    back.failed,
                    back.over.as_secs()
                );
            }
            return;
        }
    };
    match log.failed(now) {
        Some(Line::First) => tracing::warn!(
            event = "provider.failing", provider, error = %error,
            "the SMS provider {provider} is failing: {error}"
        ),
        Some(Line::Summary { count, over }) => tracing::warn!(
            event = "provider.failing", provider, failed = count, seconds = over.as_secs(), error = %error,
            "the SMS provider {provider}: {count} more sends failed in the last {} s ({error})", over.as_secs()
        ),
        None => {}
    }
}
