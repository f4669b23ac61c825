//! A fake Twilio Programmable Messaging API on loopback: takes form posts at
//! `/2010-04-01/Accounts/{sid}/Messages.json` with HTTP Basic, answers with
//! a `sid`, and signs status callbacks the way Twilio does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{ProviderMode, json, post_to_gateway, serve, text};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "twilio-test-token";

/// One message the fake Twilio received: its form fields.
#[derive(Debug, Clone)]
pub struct TwilioMessage {
    pub authorization: Option<String>,
    pub form: Vec<(String, String)>,
}

impl TwilioMessage {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> String {
        let body = self.field("Body").unwrap_or("");
        body.rsplit('#').next().unwrap_or("").trim().to_string()
    }
}

pub struct FakeTwilio {
    pub addr: SocketAddr,
    mode: Arc<Mutex<ProviderMode>>,
    received: Arc<Mutex<Vec<TwilioMessage>>>,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let mode = Arc::new(Mutex::new(ProviderMode::Accept));
        let received: Arc<Mutex<Vec<TwilioMessage>>> = Arc::default();
        let (m, r) = (mode.clone(), received.clone());
        let addr = serve(move |req: Request<Incoming>| {
            let (mode, received) = (m.clone(), r.clone());
            async move {
                let expected = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
                if req.uri().path() != expected || req.method() != Method::POST {
                    return text(404, "no such endpoint");
                }
                let authorization = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let form: Vec<(String, String)> =
                    form_urlencoded::parse(&body).into_owned().collect();
                let current = *mode.lock().unwrap();
                match current {
                    ProviderMode::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        text(500, "too late")
                    }
                    ProviderMode::Fail(status) => json(
                        status,
                        serde_json::json!({"code": 21211, "message": "simulated failure"}),
                    ),
                    ProviderMode::Accept => {
                        let sid = {
                            let mut list = received.lock().unwrap();
                            list.push(TwilioMessage {
                                authorization,
                                form,
                            });
                            format!("SM{:032}", list.len())
                        };
                        json(
                            201,
                            serde_json::json!({"sid": sid, "status": "queued", "num_segments": "1"}),
                        )
                    }
                }
            }
        })
        .await;
        Self {
            addr,
            mode,
            received,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: ProviderMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn last(&self) -> TwilioMessage {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a message was sent")
    }

    /// Posts a status callback for the `index`th message to its
    /// StatusCallback URL at the gateway's address, signed with `token`.
    pub async fn report(
        &self,
        gateway: SocketAddr,
        index: usize,
        status: &str,
        token: &str,
    ) -> u16 {
        let callback = self.received.lock().unwrap()[index]
            .field("StatusCallback")
            .expect("the message asked for status callbacks")
            .to_string();
        let params = vec![
            ("AccountSid".to_string(), ACCOUNT_SID.to_string()),
            ("MessageSid".to_string(), format!("SM{:032}", index + 1)),
            ("MessageStatus".to_string(), status.to_string()),
            (
                "ErrorCode".to_string(),
                if status == "undelivered" {
                    "30003".into()
                } else {
                    String::new()
                },
            ),
        ];
        let signature = sign(token, &callback, &params);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        post_to_gateway(
            gateway,
            &callback,
            "application/x-www-form-urlencoded",
            body,
            &[("x-twilio-signature", &signature)],
        )
        .await
    }
}

/// Twilio's request signature: HMAC-SHA1 over the URL and the sorted
/// parameters, base64.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in &sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
