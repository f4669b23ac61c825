//! The metrics' event sink: what each OTP event counts. Events come at the
//! pace of people (a code page, a code, a report), so a label set is built
//! per event; its values are names from the configuration and fixed words.

use crate::config::PumpingMode;
use crate::delivery::Status;
use crate::events::{OtpEvent, Sink, Who};

use super::{
    AppLabel, AppResult, FailoverLabels, LimitLabels, Metrics, ProviderChannel, QuarantineLabels,
    ReportLabels, SendLabels,
};

/// The results of a code check, as `otpgate_code_checks_total` names them.
pub(super) const CHECK_RESULTS: [&str; 4] = ["right", "wrong", "expired", "locked"];

impl Sink for Metrics {
    fn take(&self, who: &Who<'_>, event: &OtpEvent<'_>) {
        let app = || who.app.unwrap_or("").to_string();
        let sent = |channel: crate::config::Channel, provider, result| {
            self.codes_sent
                .get_or_create(&SendLabels {
                    app: app(),
                    channel: channel.as_str(),
                    provider,
                    result,
                })
                .inc();
        };
        let checked = |i: usize| {
            self.code_checks
                .get_or_create(&AppResult {
                    app: app(),
                    result: CHECK_RESULTS[i],
                })
                .inc();
        };
        match *event {
            OtpEvent::Sent {
                channel, provider, ..
            } => sent(channel, provider, "accepted"),
            OtpEvent::SendUncertain { channel, provider } => sent(channel, provider, "uncertain"),
            OtpEvent::SendError {
                channel, provider, ..
            } => sent(channel, provider, "error"),
            OtpEvent::Failover {
                channel, from, to, ..
            } => {
                self.failovers
                    .get_or_create(&FailoverLabels {
                        channel: channel.as_str(),
                        from,
                        to,
                    })
                    .inc();
            }
            OtpEvent::SendLimited(l) | OtpEvent::CheckLimited(l) => {
                let action = match event {
                    OtpEvent::SendLimited(_) => "send",
                    _ => "check",
                };
                self.rate_limited
                    .get_or_create(&LimitLabels {
                        action,
                        window: l.window.as_str(),
                    })
                    .inc();
            }
            OtpEvent::Verified => checked(0),
            OtpEvent::Failed { .. } => checked(1),
            OtpEvent::Expired => checked(2),
            OtpEvent::CodeLocked => checked(3),
            OtpEvent::AccountLocked => {
                self.account_locks
                    .get_or_create(&AppLabel { app: app() })
                    .inc();
            }
            OtpEvent::Delivery {
                provider,
                channel,
                status,
                after,
                ..
            } => {
                let channel = channel.as_str();
                self.delivery_reports
                    .get_or_create(&ReportLabels {
                        provider,
                        channel,
                        status: status.as_str(),
                    })
                    .inc();
                if let (Status::Delivered, Some(after)) = (status, after) {
                    self.delivery_seconds
                        .get_or_create(&ProviderChannel { provider, channel })
                        .observe(after.as_secs_f64());
                }
            }
            OtpEvent::Quarantine { scope, mode, .. } => {
                let mode = match mode {
                    PumpingMode::Monitor => "monitor",
                    _ => "enforce",
                };
                self.quarantines
                    .get_or_create(&QuarantineLabels {
                        scope: scope.as_str(),
                        mode,
                    })
                    .inc();
            }
            OtpEvent::CountryRefused
            | OtpEvent::NoPhone { .. }
            | OtpEvent::FallbackUnreadable
            | OtpEvent::PumpingRefused { .. }
            | OtpEvent::CountryCap { .. }
            | OtpEvent::QuarantineLifted { .. }
            | OtpEvent::Unlocked => {}
        }
    }
}
