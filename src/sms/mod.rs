//! Sending the code: the message text, and the providers that carry it.

mod didfarm;
mod sandbox;

use std::time::Duration;

pub use didfarm::Didfarm;
pub use sandbox::{Sandbox, SandboxMessage};

use crate::config::{ProviderSettings, SmsSettings};

/// One text message to send.
pub struct OutgoingSms {
    pub to: String,
    pub from: String,
    pub body: String,
    /// The code inside `body`, so that nothing a provider echoes of it is logged.
    pub code: crate::otp::Code,
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    pub message_id: Option<String>,
}

/// Why a send failed. None of these carries the message body.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the provider could not be reached: {0}")]
    Network(String),
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider refused the message with HTTP {status}{detail}")]
    Rejected { status: u16, detail: String },
    #[error("the provider's answer could not be read: {0}")]
    BadAnswer(String),
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            // Without the URL: it is the provider's, but keep logs short and uniform.
            Self::Network(e.without_url().to_string())
        }
    }
}

pub enum Provider {
    Didfarm(Didfarm),
    Sandbox(Sandbox),
}

impl Provider {
    pub fn from_settings(s: &SmsSettings) -> Result<Self, reqwest::Error> {
        Ok(match &s.provider {
            ProviderSettings::Didfarm(d) => {
                Self::Didfarm(Didfarm::new(d, s.timeout, s.connect_timeout)?)
            }
            ProviderSettings::Sandbox => Self::Sandbox(Sandbox::default()),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Didfarm(_) => "didfarm",
            Self::Sandbox(_) => "sandbox",
        }
    }

    pub async fn send(&self, sms: &OutgoingSms) -> Result<Receipt, SendError> {
        match self {
            Self::Didfarm(p) => p.send(sms).await,
            Self::Sandbox(p) => Ok(p.send(sms)),
        }
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        match self {
            Self::Sandbox(s) => Some(s),
            Self::Didfarm(_) => None,
        }
    }
}

/// The message text: the template with `{app}`, `{code}` and `{minutes}`
/// filled in and, when `origin_host` is given, the origin-bound last line
/// `@host #code` (WICG sms-one-time-codes §2: the last line, host without
/// port, no trailing newline) that lets WebOTP and iOS AutoFill offer the
/// code on that site only.
pub fn render_body(
    template: &str,
    app: &str,
    code: &str,
    ttl: Duration,
    origin_host: Option<&str>,
) -> String {
    let minutes = ttl.as_secs().div_ceil(60).max(1);
    let mut body = template
        .replace("{app}", app)
        .replace("{minutes}", &minutes.to_string())
        .replace("{code}", code);
    let body_trimmed = body.trim_end().len();
    body.truncate(body_trimmed);
    if let Some(host) = origin_host {
        body.push_str("\n\n@");
        body.push_str(host);
        body.push_str(" #");
        body.push_str(code);
    }
    body
}

#[cfg(test)]
mod tests {
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
}
