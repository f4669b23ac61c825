//! Any other SMS API, described in `[sms.http]`: the URL, method, headers
//! (which may hold `{secret}`) and a JSON or form body whose string values
//! hold `{to}`, `{from}` and `{body}`. It reports no delivery.

use serde_json::Value;

use super::{Channel, Outgoing, Provider, Receipt, SendError, SendFuture};
use crate::config::{HttpSmsBody, HttpSmsSettings};

pub struct Generic {
    client: reqwest::Client,
    cfg: HttpSmsSettings,
}

impl Generic {
    pub fn new(cfg: &HttpSmsSettings, client: reqwest::Client) -> Self {
        Self {
            client,
            cfg: cfg.clone(),
        }
    }

    async fn post(&self, msg: &Outgoing) -> Result<Receipt, SendError> {
        let mut req = self.client.request(self.cfg.method.clone(), &self.cfg.url);
        for (name, value) in &self.cfg.headers {
            let secret = self.cfg.secret.as_ref().map_or("", |s| s.0.as_str());
            req = req.header(name, value.replace("{secret}", secret));
        }
        // Placeholders are filled into the parsed template and the whole is
        // encoded afterwards, so a message text cannot break out of its field.
        req = match &self.cfg.body {
            HttpSmsBody::Json(template) => req.json(&fill_json(template, msg)),
            HttpSmsBody::Form(fields) => {
                let filled: Vec<(&str, String)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), fill(v, msg)))
                    .collect();
                req.form(&filled)
            }
        };
        let bytes = super::answer(req.send().await?, msg).await?;
        let message_id = match &self.cfg.message_id_pointer {
            Some(p) => super::message_id(&bytes, p)?,
            None => None,
        };
        Ok(Receipt {
            message_id,
            delivered: false,
        })
    }
}

fn fill(template: &str, msg: &Outgoing) -> String {
    template
        .replace("{to}", &msg.to)
        .replace("{from}", &msg.from)
        .replace("{body}", &msg.body)
}

fn fill_json(v: &Value, msg: &Outgoing) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, msg)),
        Value::Array(items) => Value::Array(items.iter().map(|i| fill_json(i, msg)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_json(v, msg)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Provider for Generic {
    fn name(&self) -> &'static str {
        "http"
    }

    fn carries(&self, channel: Channel) -> bool {
        channel == Channel::Sms
    }

    fn reports_delivery(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(self.post(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn placeholders_are_filled_inside_strings_at_any_depth_and_stay_json() {
        let msg = Outgoing {
            channel: Channel::Sms,
            to: "+31612345678".into(),
            from: "Acme".into(),
            body: "code \"1\"\n".into(),
            code: crate::otp::test_code("123456"),
            ttl: Duration::from_secs(60),
        };
        let t = serde_json::json!({"to": "{to}", "msg": {"text": "{body}", "n": 1}, "list": ["{from}"]});
        let v = fill_json(&t, &msg);
        assert_eq!(v["to"], "+31612345678");
        assert_eq!(v["msg"]["text"], "code \"1\"\n");
        assert_eq!(v["msg"]["n"], 1);
        assert_eq!(v["list"][0], "Acme");
    }
}
