//! The DIDfarm API, as its guide describes it: `POST {base_url}/api/v1/sms/messages`
//! with JSON `{from, to, body, webhook_url}` and
//! `POST {base_url}/api/v1/whatsapp/messages` with `{from, to, template,
//! variables: {code, expiry_minutes}, webhook_url}`; `Authorization: Bearer
//! <key>`, `X-DIDfarm-Test: true` in test mode; the answer carries
//! `data.message_id`. Status arrives as `message.status_update` events at
//! the `webhook_url`; DIDfarm signs nothing, so the unguessable token in
//! that URL is the only authentication.

use serde::{Deserialize, Serialize};

use super::{Channel, Outgoing, Provider, Receipt, SendError, SendFuture};
use crate::config::{DidfarmSettings, Secret};
use crate::delivery::{Status, StatusUpdate};

pub struct Didfarm {
    client: reqwest::Client,
    sms_url: String,
    whatsapp_url: String,
    api_key: Secret,
    test_mode: bool,
    template: String,
    webhook_url: Option<String>,
}

#[derive(Serialize)]
struct SmsRequest<'a> {
    from: &'a str,
    to: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<&'a str>,
}

#[derive(Serialize)]
struct WhatsappRequest<'a> {
    from: &'a str,
    to: &'a str,
    template: &'a str,
    variables: Variables<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Variables<'a> {
    code: &'a str,
    expiry_minutes: String,
}

impl Didfarm {
    pub fn new(s: &DidfarmSettings, client: reqwest::Client, webhook_url: Option<String>) -> Self {
        Self {
            client,
            sms_url: format!("{}/api/v1/sms/messages", s.base_url),
            whatsapp_url: format!("{}/api/v1/whatsapp/messages", s.base_url),
            api_key: s.api_key.clone(),
            test_mode: s.test_mode,
            template: s.whatsapp_template.clone(),
            webhook_url,
        }
    }

    async fn post(&self, msg: &Outgoing) -> Result<Receipt, SendError> {
        let webhook_url = self.webhook_url.as_deref();
        let req = self.client.post(match msg.channel {
            Channel::Sms => &self.sms_url,
            Channel::Whatsapp => &self.whatsapp_url,
        });
        let mut req = match msg.channel {
            Channel::Sms => req.json(&SmsRequest {
                from: &msg.from,
                to: &msg.to,
                body: &msg.body,
                webhook_url,
            }),
            Channel::Whatsapp => req.json(&WhatsappRequest {
                from: &msg.from,
                to: &msg.to,
                template: &self.template,
                variables: Variables {
                    code: msg.code.as_str(),
                    expiry_minutes: super::minutes(msg.ttl).to_string(),
                },
                webhook_url,
            }),
        }
        .bearer_auth(&self.api_key.0);
        if self.test_mode {
            req = req.header("X-DIDfarm-Test", "true");
        }
        let bytes = super::answer(req.send().await?, msg).await?;
        Ok(Receipt {
            message_id: super::message_id(&bytes, "/data/message_id")?,
            delivered: false,
        })
    }
}

impl Provider for Didfarm {
    fn name(&self) -> &'static str {
        "didfarm"
    }

    fn carries(&self, _: Channel) -> bool {
        true
    }

    fn reports_delivery(&self) -> bool {
        self.webhook_url.is_some()
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(self.post(msg))
    }
}

#[derive(Deserialize)]
struct Event {
    event: String,
    data: Option<EventData>,
}

#[derive(Deserialize)]
struct EventData {
    message_id: String,
    status: String,
    error_code: Option<serde_json::Value>,
    error_message: Option<String>,
}

/// Why a webhook body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the body is not a DIDfarm event (expected JSON with event and data)")]
    Malformed,
}

/// Reads a webhook body: `Ok(None)` for events that are not status updates
/// or carry a status this gateway does not know (kept for later, not an
/// error: the provider would retry a refusal forever).
pub fn parse_webhook(body: &[u8]) -> Result<Option<StatusUpdate>, WebhookError> {
    let e: Event = serde_json::from_slice(body).map_err(|_| WebhookError::Malformed)?;
    if e.event != "message.status_update" {
        return Ok(None);
    }
    let d = e.data.ok_or(WebhookError::Malformed)?;
    let Some(status) = Status::parse(&d.status) else {
        return Ok(None);
    };
    let error_code = d.error_code.and_then(|c| match c {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    Ok(Some(StatusUpdate {
        message_id: d.message_id,
        status,
        error_code,
        error_message: d.error_message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_status_update_carries_its_error() {
        let body = br#"{"event":"message.status_update","data":{"message_id":"msg_1","to":"+4915112345678","status":"failed","error_code":"30003","error_message":"Unreachable destination handset"}}"#;
        let u = parse_webhook(body).unwrap().unwrap();
        assert_eq!(u.message_id, "msg_1");
        assert_eq!(u.status, Status::Failed);
        assert_eq!(u.error_code.as_deref(), Some("30003"));
    }

    #[test]
    fn other_events_and_unknown_statuses_are_ignored_but_garbage_is_refused() {
        assert_eq!(
            parse_webhook(br#"{"event":"number.ported","data":null}"#),
            Ok(None)
        );
        assert_eq!(
            parse_webhook(br#"{"event":"message.status_update","data":{"message_id":"m","status":"teleported"}}"#),
            Ok(None)
        );
        assert_eq!(parse_webhook(b"{"), Err(WebhookError::Malformed));
        assert_eq!(
            parse_webhook(br#"{"event":"message.status_update"}"#),
            Err(WebhookError::Malformed)
        );
    }
}
