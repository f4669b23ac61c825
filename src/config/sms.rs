//! The `[sms]` table: providers in failover order, channels, senders by
//! country and the countries codes may go to.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use http::Uri;

use super::raw::{List, RawDidfarm, RawHttpSms, RawSms, RawTwilio, S};
use super::validate::{Ctx, Result};
use super::*;
use crate::phone::{self, Number};

/// The provider guide's sender-ID table: alphanumeric senders work without
/// registration in NL, DE and GB and in BE (registration recommended);
/// France requires a numeric sender for transactional SMS and the US does
/// not support them. Countries not listed get the numeric sender.
const SENDER_ID_TABLE: [(Country, bool); 6] = [
    (Country::NL, true),
    (Country::DE, true),
    (Country::GB, true),
    (Country::BE, true),
    (Country::FR, false),
    (Country::US, false),
];

impl Ctx<'_> {
    pub(super) fn sms(&self, sms: &S<RawSms>) -> Result<SmsSettings> {
        let raw = sms.get_ref();
        let providers = self.providers(sms)?;
        let sandbox = matches!(providers[..], [ProviderSettings::Sandbox]);
        let whatsapp_capable = providers
            .iter()
            .any(|p| matches!(p, ProviderSettings::Didfarm(_) | ProviderSettings::Sandbox));
        let channels = match &raw.channels {
            None => vec![Channel::Sms],
            Some(list) => self.channels(list, "sms.channels", whatsapp_capable)?,
        };
        let mut channels_by_country = HashMap::new();
        for (code, list) in raw.channels_by_country.iter().flat_map(|t| t.get_ref()) {
            let key = "sms.channels_by_country";
            let country = self.country(code, list, key)?;
            let chosen = self.channels(list, key, whatsapp_capable)?;
            channels_by_country.insert(country, chosen);
        }
        let from = match &raw.from {
            Some(f) => {
                let v = f.get_ref().trim();
                if !phone::is_e164(v) && !is_sender_id(v) {
                    return Err(self.at(f, "sms.from", format!("{v:?} is neither an E.164 number (\"+31201234567\") nor an alphanumeric sender ID of 1 to 11 letters, digits or spaces with at least one letter")));
                }
                v.to_string()
            }
            None if sandbox => "otpgate".to_string(),
            None => return Err(self.at(
                sms,
                "sms.from",
                "missing; set the sending number (\"+31201234567\") or sender ID (\"YourBrand\")",
            )),
        };
        let from_numeric = raw
            .from_numeric
            .as_ref()
            .map(|v| self.sender_number(v, "sms.from_numeric"))
            .transpose()?;
        let mut from_by_country = HashMap::new();
        for (code, v) in raw.from_by_country.iter().flat_map(|t| t.get_ref()) {
            let key = "sms.from_by_country";
            let country = self.country(code, v, key)?;
            from_by_country.insert(country, self.sender_number(v, key)?);
        }
        let mut alphanumeric_sender: HashMap<Country, bool> = SENDER_ID_TABLE.into();
        for (code, v) in raw.sender_id_rules.iter().flat_map(|t| t.get_ref()) {
            let key = "sms.sender_id_rules";
            let country = self.country(code, v, key)?;
            let allowed = match v.get_ref().as_str() {
                "alphanumeric" => true,
                "numeric" => false,
                other => {
                    return Err(self.at(v, key, format!("{other:?} for {code}: write \"alphanumeric\" (sender IDs allowed) or \"numeric\" (a phone number is required)")));
                }
            };
            alphanumeric_sender.insert(country, allowed);
        }
        let allowed_countries = raw
            .allowed_countries
            .as_ref()
            .map(|l| self.countries(l, "sms.allowed_countries"))
            .transpose()?;
        let denied_countries = raw
            .denied_countries
            .as_ref()
            .map(|l| self.countries(l, "sms.denied_countries"))
            .transpose()?
            .unwrap_or_default();
        if let (Some(allowed), Some(list)) = (&allowed_countries, &raw.denied_countries)
            && let Some(both) = allowed.intersection(&denied_countries).next()
        {
            return Err(self.at(
                list,
                "sms.denied_countries",
                format!(
                    "{} is also in allowed_countries; a country is either allowed or denied",
                    both.as_ref()
                ),
            ));
        }
        if is_sender_id(&from) && from_numeric.is_none() {
            // WhatsApp and countries without sender IDs need a number.
            let needs_number = channels.contains(&Channel::Whatsapp)
                || channels_by_country
                    .values()
                    .any(|c| c.contains(&Channel::Whatsapp))
                || match &allowed_countries {
                    None => true,
                    Some(allowed) => allowed.iter().any(|c| {
                        !alphanumeric_sender.get(c).copied().unwrap_or(false)
                            && !from_by_country.contains_key(c)
                    }),
                };
            if needs_number && !sandbox {
                let at = raw.from.as_ref().expect("an alphanumeric from was written");
                return Err(self.at(at, "sms.from", format!("{from:?} is a sender ID, which some destinations (FR, US, countries not in the sender ID table) and WhatsApp do not accept; add from_numeric = \"+...\" for them, or limit allowed_countries to countries that take sender IDs")));
            }
        }
        let secs = Duration::from_secs;
        Ok(SmsSettings {
            providers,
            channels,
            channels_by_country,
            fallback_after: self.bounded(
                &raw.fallback_after,
                "sms.fallback_after",
                secs(10),
                secs(1)..=secs(300),
            )?,
            delivery_timeout: self.bounded(
                &raw.delivery_timeout,
                "sms.delivery_timeout",
                secs(30),
                secs(1)..=secs(600),
            )?,
            from,
            from_numeric,
            from_by_country,
            alphanumeric_sender,
            allowed_countries,
            denied_countries,
            timeout: self.bounded(
                &raw.timeout,
                "sms.timeout",
                secs(10),
                Duration::from_millis(10)..=secs(120),
            )?,
            connect_timeout: self.bounded(
                &raw.connect_timeout,
                "sms.connect_timeout",
                secs(5),
                Duration::from_millis(10)..=secs(60),
            )?,
        })
    }

    fn providers(&self, sms: &S<RawSms>) -> Result<Vec<ProviderSettings>> {
        let raw = sms.get_ref();
        let names: Vec<&S<String>> = match (&raw.provider, &raw.providers) {
            (Some(one), None) => vec![one],
            (None, Some(list)) if !list.get_ref().is_empty() => list.get_ref().iter().collect(),
            (None, Some(list)) => {
                return Err(self.at(
                    list,
                    "sms.providers",
                    "is empty; list at least one provider, e.g. [\"didfarm\"]",
                ));
            }
            (Some(one), Some(_)) => {
                return Err(self.at(
                    one,
                    "sms.provider",
                    "set either provider (one) or providers (a failover list), not both",
                ));
            }
            (None, None) => {
                return Err(self.at(
                    sms,
                    "sms.providers",
                    "missing; set providers = [\"didfarm\"] (or [\"sandbox\"] for local testing)",
                ));
            }
        };
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let key = "sms.providers";
            let n = name.get_ref().as_str();
            if names[..i].iter().any(|m| m.get_ref() == n) {
                return Err(self.at(*name, key, format!("{n:?} is listed twice")));
            }
            let missing = |table: &str| {
                self.at(*name, key, format!("{n:?} is listed but there is no [sms.{table}] table; add one (see README, \"SMS providers\")"))
            };
            out.push(match n {
                "sandbox" if names.len() == 1 => ProviderSettings::Sandbox,
                "sandbox" => {
                    return Err(self.at(*name, key, "the sandbox sends nothing; it cannot be part of a failover list"));
                }
                "didfarm" => {
                    ProviderSettings::Didfarm(self.didfarm(raw.didfarm.as_ref().ok_or_else(|| missing("didfarm"))?)?)
                }
                "twilio" => {
                    ProviderSettings::Twilio(self.twilio(raw.twilio.as_ref().ok_or_else(|| missing("twilio"))?)?)
                }
                "http" => ProviderSettings::Http(self.http_sms(raw.http.as_ref().ok_or_else(|| missing("http"))?)?),
                other => {
                    return Err(self.at(*name, key, format!("unknown provider {other:?}; use \"didfarm\", \"twilio\", \"http\" or \"sandbox\"")));
                }
            });
        }
        Ok(out)
    }

    fn channels(&self, list: &List, key: &str, whatsapp_capable: bool) -> Result<Vec<Channel>> {
        let mut out = Vec::new();
        for v in list.get_ref() {
            let channel = Channel::parse(v.get_ref()).ok_or_else(|| {
                self.at(
                    v,
                    key,
                    format!(
                        "unknown channel {:?}; use \"sms\" or \"whatsapp\"",
                        v.get_ref()
                    ),
                )
            })?;
            if out.contains(&channel) {
                return Err(self.at(v, key, format!("{:?} is listed twice", v.get_ref())));
            }
            if channel == Channel::Whatsapp && !whatsapp_capable {
                return Err(self.at(v, key, "none of the providers sends WhatsApp messages; add \"didfarm\" to sms.providers or drop \"whatsapp\""));
            }
            out.push(channel);
        }
        if out.is_empty() {
            return Err(self.at(list, key, "is empty; list at least \"sms\""));
        }
        Ok(out)
    }

    fn country<T>(&self, code: &str, at: &S<T>, key: &str) -> Result<Country> {
        phone::country(code).ok_or_else(|| {
            self.at(at, key, format!("{code:?} is not a country code; use two-letter ISO 3166 codes such as \"NL\" or \"DE\""))
        })
    }

    fn countries(&self, list: &List, key: &str) -> Result<HashSet<Country>> {
        list.get_ref()
            .iter()
            .map(|v| self.country(v.get_ref(), v, key))
            .collect()
    }

    fn sender_number(&self, v: &S<String>, key: &str) -> Result<String> {
        let n = v.get_ref().trim();
        Number::parse(n).map_err(|e| {
            self.at(
                v,
                key,
                format!(
                    "{n:?} {e}; write the sending number as \"+\" then country code and number"
                ),
            )
        })?;
        Ok(n.to_string())
    }

    /// An optional http(s) base URL: `default` when absent.
    pub(super) fn base_url(
        &self,
        v: &Option<S<String>>,
        key: &str,
        default: &str,
    ) -> Result<String> {
        match v {
            None => Ok(default.to_string()),
            Some(u) => self.http_url(u, key, default),
        }
    }

    /// An http(s) URL without a query, kept without a trailing slash.
    pub(super) fn http_url(&self, u: &S<String>, key: &str, example: &str) -> Result<String> {
        let text = u.get_ref().trim().trim_end_matches('/');
        let ok = text.parse::<Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && uri.query().is_none()
        });
        if !ok {
            return Err(self.at(
                u,
                key,
                format!("{text:?} is not an http(s) URL without a query; write e.g. {example:?}"),
            ));
        }
        Ok(text.to_string())
    }

    fn didfarm(&self, d: &S<RawDidfarm>) -> Result<DidfarmSettings> {
        let raw = d.get_ref();
        let api_key = self.secret(
            d,
            "sms.didfarm.api_key",
            &raw.api_key,
            &raw.api_key_env,
            &raw.api_key_file,
        )?;
        let whatsapp_template = match &raw.whatsapp_template {
            None => "otp_verification".to_string(),
            Some(t) => {
                let v = t.get_ref().trim();
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(self.at(t, "sms.didfarm.whatsapp_template", format!("{v:?} is not a template name; use the approved template's name, e.g. \"otp_verification\"")));
                }
                v.to_string()
            }
        };
        Ok(DidfarmSettings {
            base_url: self.base_url(
                &raw.base_url,
                "sms.didfarm.base_url",
                "https://didfarm.com",
            )?,
            api_key,
            test_mode: raw.test_mode,
            whatsapp_template,
        })
    }

    fn twilio(&self, t: &S<RawTwilio>) -> Result<TwilioSettings> {
        let raw = t.get_ref();
        let sid = |v: &Option<S<String>>, key: &str, prefix: &str| -> Result<Option<String>> {
            let Some(v) = v else { return Ok(None) };
            let s = v.get_ref().trim();
            let ok = s.len() == 34
                && s.starts_with(prefix)
                && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(self.at(v, key, format!("{s:?} is not a Twilio SID; it is \"{prefix}\" and 32 hexadecimal digits, from the Twilio console")));
            }
            Ok(Some(s.to_string()))
        };
        let account_sid =
            sid(&raw.account_sid, "sms.twilio.account_sid", "AC")?.ok_or_else(|| {
                self.at(
                    t,
                    "sms.twilio.account_sid",
                    "missing; copy the Account SID (\"AC...\") from the Twilio console",
                )
            })?;
        Ok(TwilioSettings {
            base_url: self.base_url(
                &raw.base_url,
                "sms.twilio.base_url",
                "https://api.twilio.com",
            )?,
            account_sid,
            auth_token: self.secret(
                t,
                "sms.twilio.auth_token",
                &raw.auth_token,
                &raw.auth_token_env,
                &raw.auth_token_file,
            )?,
            messaging_service_sid: sid(
                &raw.messaging_service_sid,
                "sms.twilio.messaging_service_sid",
                "MG",
            )?,
        })
    }

    fn http_sms(&self, h: &S<RawHttpSms>) -> Result<HttpSmsSettings> {
        let raw = h.get_ref();
        let url = raw.url.as_ref().ok_or_else(|| {
            self.at(
                h,
                "sms.http.url",
                "missing; the URL the SMS API takes messages at",
            )
        })?;
        let url = self.http_url(url, "sms.http.url", "https://sms.example.com/send")?;
        let method = match &raw.method {
            None => http::Method::POST,
            Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
                "POST" => http::Method::POST,
                "PUT" => http::Method::PUT,
                other => {
                    return Err(self.at(
                        m,
                        "sms.http.method",
                        format!("{other:?}: use \"POST\" or \"PUT\""),
                    ));
                }
            },
        };
        let mut headers = Vec::new();
        for (name, value) in &raw.headers {
            let key = "sms.http.headers";
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.at(value, key, format!("{name:?} is not a header name")))?;
            if http::HeaderValue::from_str(value.get_ref()).is_err() {
                return Err(self.at(
                    value,
                    key,
                    format!("the value of {name} is not a valid header value (visible ASCII only)"),
                ));
            }
            headers.push((header, value.get_ref().clone()));
        }
        let secret = match (&raw.secret, &raw.secret_env, &raw.secret_file) {
            (None, None, None) => None,
            _ => Some(self.secret(
                h,
                "sms.http.secret",
                &raw.secret,
                &raw.secret_env,
                &raw.secret_file,
            )?),
        };
        let body = match (&raw.json, &raw.form) {
            (Some(json), None) => {
                let value = serde_json::to_value(json.get_ref()).map_err(|e| {
                    self.at(
                        json,
                        "sms.http.json",
                        format!("cannot be sent as JSON: {e}"),
                    )
                })?;
                self.placeholders(json, "sms.http.json", &value.to_string())?;
                HttpSmsBody::Json(value)
            }
            (None, Some(form)) => {
                let fields: Vec<(String, String)> = form
                    .get_ref()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect();
                let all: String = fields.iter().map(|(_, v)| v.as_str()).collect();
                self.placeholders(form, "sms.http.form", &all)?;
                HttpSmsBody::Form(fields)
            }
            (Some(json), Some(_)) => {
                return Err(self.at(json, "sms.http.json", "set either json or form, not both"));
            }
            (None, None) => return Err(self.at(
                h,
                "sms.http",
                "has no body; add json = { to = \"{to}\", text = \"{body}\" } or form = { ... }",
            )),
        };
        Ok(HttpSmsSettings {
            url,
            method,
            headers,
            secret,
            body,
            message_id_pointer: raw
                .message_id_pointer
                .as_ref()
                .map(|p| self.pointer(p, "sms.http.message_id_pointer"))
                .transpose()?,
        })
    }

    /// The request must carry the number and the message somewhere.
    fn placeholders<T>(&self, at: &S<T>, key: &str, text: &str) -> Result<()> {
        for p in ["{to}", "{body}"] {
            if !text.contains(p) {
                return Err(self.at(at, key, format!("never uses {p}; put \"{{to}}\" and \"{{body}}\" where the API wants the number and the text")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_sender_table_says_fr_and_us_need_numbers() {
        let t: HashMap<Country, bool> = SENDER_ID_TABLE.into();
        assert_eq!(t.get(&Country::FR), Some(&false));
        assert_eq!(t.get(&Country::US), Some(&false));
        assert_eq!(t.get(&Country::DE), Some(&true));
    }
}
