//! What one line of the audit log says: the record's fields and their JSON
//! names (`events` fills them in for each event).

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

/// One line of the audit log. Every field but `time` and `event` is
/// optional and left out when empty, so events of other kinds (pumping
/// quarantines, delivery reports) fill in only what they know.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(serialize_with = "rfc3339_millis")]
    pub time: SystemTime,
    pub event: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The masked number, `***5678`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Hex of the keyed hash of the full number ([`crate::keys::Keys::phone`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The request the event happened in (`X-Request-Id`, on error pages,
    /// in the process log and the access log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    /// The limit that refused (`rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// A delivery report's status and the provider's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The country (ISO 3166-1 alpha-2) and number prefix a pumping
    /// quarantine is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How many records were lost (`audit.dropped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Record {
    /// A record of `event` at this moment, with nothing else filled in.
    pub fn new(event: impl Into<Cow<'static, str>>) -> Self {
        Self {
            time: SystemTime::now(),
            event: event.into(),
            app: None,
            user: None,
            phone: None,
            phone_hash: None,
            client_ip: None,
            user_agent: None,
            request_id: None,
            channel: None,
            provider: None,
            message_id: None,
            outcome: None,
            reason: None,
            window: None,
            retry_after_s: None,
            attempts_left: None,
            status: None,
            error_code: None,
            country: None,
            prefix: None,
            count: None,
        }
    }
}

fn rfc3339_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_leaves_out_what_it_does_not_know() {
        let r = Record {
            count: Some(3),
            ..Record::new("audit.dropped")
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["count", "event", "time"]);
    }
}
