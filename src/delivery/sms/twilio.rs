//! Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded `To`, `From` (or `MessagingServiceSid`), `Body`,
//! `StatusCallback`, `ValidityPeriod`; HTTP Basic with the account SID and
//! auth token; the answer's `sid` is the message id. Status callbacks are
//! form posts signed in `X-Twilio-Signature`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{Channel, Outgoing, Provider, Receipt, SendError, SendFuture};
use crate::config::{Secret, TwilioSettings};
use crate::delivery::{Status, StatusUpdate};

pub struct Twilio {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: Secret,
    messaging_service_sid: Option<String>,
    callback_url: Option<String>,
}

impl Twilio {
    pub fn new(s: &TwilioSettings, client: reqwest::Client, callback_url: Option<String>) -> Self {
        Self {
            client,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                s.base_url, s.account_sid
            ),
            account_sid: s.account_sid.clone(),
            auth_token: s.auth_token.clone(),
            messaging_service_sid: s.messaging_service_sid.clone(),
            callback_url,
        }
    }

    async fn post(&self, msg: &Outgoing) -> Result<Receipt, SendError> {
        // Twilio drops a message still queued after ValidityPeriod
        // (1–36000 s): a code that arrives dead is worse than none.
        let validity = msg.ttl.as_secs().clamp(1, 36_000).to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("To", &msg.to),
            ("Body", &msg.body),
            ("ValidityPeriod", &validity),
        ];
        match &self.messaging_service_sid {
            Some(mg) => form.push(("MessagingServiceSid", mg)),
            None => form.push(("From", &msg.from)),
        }
        if let Some(cb) = &self.callback_url {
            form.push(("StatusCallback", cb));
        }
        let res = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(&self.auth_token.0))
            .form(&form)
            .send()
            .await?;
        let bytes = super::answer(res, msg).await?;
        Ok(Receipt {
            message_id: super::message_id(&bytes, "/sid")?,
            delivered: false,
        })
    }

    /// Checks `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth
    /// token, over the exact callback URL followed by each POST parameter's
    /// name and value, sorted by name (then value). Twilio is inconsistent
    /// about an explicit default port in the signed URL, so the URL with and
    /// without `:443`/`:80` is accepted, as its own SDKs do.
    pub fn signature_ok(&self, url: &str, params: &[(String, String)], signature: &[u8]) -> bool {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let tail: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
        url_variants(url).iter().any(|u| {
            let mut mac = Hmac::<Sha1>::new_from_slice(self.auth_token.0.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(u.as_bytes());
            mac.update(tail.as_bytes());
            let expected =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            bool::from(expected.as_bytes().ct_eq(signature))
        })
    }
}

/// The URL as given, and with its default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        let Some(rest) = url.strip_prefix(scheme) else {
            continue;
        };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        match host.strip_suffix(port) {
            Some(bare) => out.push(format!("{scheme}{bare}{path}")),
            None if !host.contains(':') => out.push(format!("{scheme}{host}{port}{path}")),
            None => {}
        }
    }
    out
}

impl Provider for std::sync::Arc<Twilio> {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn carries(&self, channel: Channel) -> bool {
        channel == Channel::Sms
    }

    fn reports_delivery(&self) -> bool {
        self.callback_url.is_some()
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(self.post(msg))
    }
}

/// Reads a status callback's parameters; `None` when they carry no message
/// or a status this gateway does not track (Twilio adds parameters and
/// statuses over time).
pub fn parse_callback(params: &[(String, String)]) -> Option<StatusUpdate> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let status = match get("MessageStatus")?.as_str() {
        "undelivered" => Status::Failed,
        // `sending` is Twilio's hand-over to the carrier.
        "sending" => Status::Sent,
        other => Status::parse(other)?,
    };
    Some(StatusUpdate {
        message_id: get("MessageSid")?,
        status,
        error_code: get("ErrorCode").filter(|c| !c.is_empty()),
        error_message: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio() -> Twilio {
        crate::http::tls::install_default_provider();
        Twilio::new(
            &TwilioSettings {
                base_url: "https://api.twilio.com".into(),
                account_sid: format!("AC{}", "0".repeat(32)),
                auth_token: Secret("12345".into()),
                messaging_service_sid: None,
            },
            reqwest::Client::new(),
            None,
        )
    }

    /// The worked example from Twilio's security documentation.
    #[test]
    fn the_signature_of_twilios_documented_example_verifies() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let t = twilio();
        assert!(t.signature_ok(url, &params, b"0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!t.signature_ok(url, &params, b"1/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!t.signature_ok(
            &url.replace("foo=1", "foo=2"),
            &params,
            b"0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn the_signed_url_may_carry_the_default_port_or_not() {
        assert_eq!(
            url_variants("https://gate.example.com/x"),
            [
                "https://gate.example.com/x",
                "https://gate.example.com:443/x"
            ]
        );
        assert_eq!(
            url_variants("https://gate.example.com:443/x"),
            [
                "https://gate.example.com:443/x",
                "https://gate.example.com/x"
            ]
        );
        assert_eq!(url_variants("http://h:8080/x"), ["http://h:8080/x"]);
    }

    #[test]
    fn undelivered_counts_as_failed_and_unknown_statuses_are_ignored() {
        let p = |s: &str| {
            vec![
                ("MessageSid".to_string(), "SM1".to_string()),
                ("MessageStatus".to_string(), s.to_string()),
                ("ErrorCode".to_string(), "30003".to_string()),
            ]
        };
        let u = parse_callback(&p("undelivered")).unwrap();
        assert_eq!(
            (u.status, u.error_code.as_deref()),
            (Status::Failed, Some("30003"))
        );
        assert_eq!(
            parse_callback(&p("delivered")).unwrap().status,
            Status::Delivered
        );
        assert!(parse_callback(&p("read")).is_none());
    }
}
