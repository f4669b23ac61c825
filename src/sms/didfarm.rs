//! The DIDfarm SMS API, as its guide describes it:
//! `POST {base_url}/api/v1/sms/messages` with JSON `{from, to, body}`,
//! `Authorization: Bearer <key>`, `X-DIDfarm-Test: true` in test mode; the
//! answer carries `data.message_id`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{OutgoingSms, Receipt, SendError};
use crate::config::{DidfarmSettings, Secret};

/// Longest error text from the provider kept for the log.
const DETAIL_MAX: usize = 200;

pub struct Didfarm {
    client: reqwest::Client,
    url: String,
    api_key: Secret,
    test_mode: bool,
}

#[derive(Serialize)]
struct SmsRequest<'a> {
    from: &'a str,
    to: &'a str,
    body: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    data: AnswerData,
}

#[derive(Deserialize)]
struct AnswerData {
    message_id: Option<String>,
}

impl Didfarm {
    pub fn new(
        s: &DidfarmSettings,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            // A redirect would resend the bearer key somewhere else; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("otpgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: format!("{}/api/v1/sms/messages", s.base_url),
            api_key: s.api_key.clone(),
            test_mode: s.test_mode,
        })
    }

    pub async fn send(&self, sms: &OutgoingSms) -> Result<Receipt, SendError> {
        let mut req = self
            .client
            .post(&self.url)
            .bearer_auth(&self.api_key.0)
            .json(&SmsRequest {
                from: &sms.from,
                to: &sms.to,
                body: &sms.body,
            });
        if self.test_mode {
            req = req.header("X-DIDfarm-Test", "true");
        }
        let res = req.send().await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            return Err(SendError::Rejected {
                status: status.as_u16(),
                detail: detail(&bytes, &sms.body, sms.code.as_str()),
            });
        }
        // serde's message may quote the answer, which may echo the code: only
        // the position is kept.
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            SendError::BadAnswer(format!(
                "expected JSON with data.message_id (error at line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        Ok(Receipt {
            message_id: answer.data.message_id,
        })
    }
}

/// A short reason from an error answer, for the log. The provider might echo
/// the message, so a reason holding the code or any longer word of the body
/// is dropped.
fn detail(bytes: &[u8], body: &str, code: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            ["/error/message", "/message", "/error"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(|m| m.as_str()).map(str::to_string))
        })
        .unwrap_or_default();
    if reason.is_empty()
        || reason.contains(code)
        || body
            .split_whitespace()
            .any(|w| w.len() >= 6 && reason.contains(w))
    {
        return String::new();
    }
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(DETAIL_MAX)
        .collect();
    format!(": {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reason_that_echoes_the_message_is_dropped() {
        let body = "Your code is 123456.";
        assert_eq!(
            detail(br#"{"error":{"message":"invalid number"}}"#, body, "123456"),
            ": invalid number"
        );
        assert_eq!(
            detail(
                br#"{"message":"bad body: Your code is 123456."}"#,
                body,
                "123456"
            ),
            ""
        );
        assert_eq!(detail(b"not json", body, "123456"), "");
        assert_eq!(
            detail(br#"{"message":"duplicate 123456"}"#, body, "123456"),
            ""
        );
    }
}
