//! The configuration file exactly as written: plain serde structs that
//! reject unknown keys, with spans kept on every value that validation may
//! have to complain about, so each error can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub otp: RawOtp,
    #[serde(default)]
    pub limits: RawLimits,
    pub sms: Option<S<RawSms>>,
    #[serde(default)]
    pub apps: Vec<S<RawApp>>,
    pub audit: Option<S<RawAudit>>,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub pumping: RawPumping,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<S<String>>,
    pub level: Option<S<String>>,
    pub access: Option<bool>,
    pub access_path: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub socket: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub allow_non_loopback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPumping {
    pub mode: Option<S<String>>,
    pub window: Option<S<String>>,
    pub min_sends: Option<S<i64>>,
    pub min_conversion: Option<S<f64>>,
    pub answer_time: Option<S<String>>,
    pub quarantine: Option<S<String>>,
    pub default_country_cap: Option<S<i64>>,
    #[serde(default)]
    pub country_caps: BTreeMap<String, S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub path: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
    pub tls_cert: Option<S<String>>,
    pub tls_key: Option<S<String>>,
    pub second_factor_lifetime: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub upstream_timeout: Option<S<String>>,
    pub header_read_timeout: Option<S<String>>,
    pub body_read_timeout: Option<S<String>>,
    pub shutdown_grace: Option<S<String>>,
    pub public_url: Option<S<String>>,
    pub workers: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtp {
    pub length: Option<S<i64>>,
    pub ttl: Option<S<String>>,
    pub max_attempts: Option<S<i64>>,
    pub message: Option<S<String>>,
    pub origin_bound: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub cooldown: Option<S<String>>,
    pub per_hour: Option<S<i64>>,
    pub per_day: Option<S<i64>>,
    pub per_ip_sends_per_minute: Option<S<i64>>,
    pub per_ip_sends_per_hour: Option<S<i64>>,
    pub per_ip_accounts_per_hour: Option<S<i64>>,
    pub per_ip_verifies_per_minute: Option<S<i64>>,
    pub account_failure_cap: Option<S<i64>>,
    pub account_lock: Option<S<String>>,
}

/// A list of strings, each with its place in the file.
pub type List = S<Vec<S<String>>>;
/// A table of name = value (country codes, form fields).
pub type Table<T> = S<BTreeMap<String, S<T>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSms {
    pub provider: Option<S<String>>,
    pub providers: Option<List>,
    pub channels: Option<List>,
    pub channels_by_country: Option<Table<Vec<S<String>>>>,
    pub fallback_after: Option<S<String>>,
    pub delivery_timeout: Option<S<String>>,
    pub from: Option<S<String>>,
    pub from_numeric: Option<S<String>>,
    pub from_by_country: Option<Table<String>>,
    pub sender_id_rules: Option<Table<String>>,
    pub allowed_countries: Option<List>,
    pub denied_countries: Option<List>,
    pub timeout: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub didfarm: Option<S<RawDidfarm>>,
    pub twilio: Option<S<RawTwilio>>,
    pub http: Option<S<RawHttpSms>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDidfarm {
    pub base_url: Option<S<String>>,
    pub api_key: Option<S<String>>,
    pub api_key_env: Option<S<String>>,
    pub api_key_file: Option<S<String>>,
    #[serde(default)]
    pub test_mode: bool,
    pub whatsapp_template: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub base_url: Option<S<String>>,
    pub account_sid: Option<S<String>>,
    pub auth_token: Option<S<String>>,
    pub auth_token_env: Option<S<String>>,
    pub auth_token_file: Option<S<String>>,
    pub messaging_service_sid: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSms {
    pub url: Option<S<String>>,
    pub method: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    pub secret: Option<S<String>>,
    pub secret_env: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    pub json: Option<S<toml::Value>>,
    pub form: Option<Table<String>>,
    pub message_id_pointer: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub name: S<String>,
    pub host: Option<S<String>>,
    pub upstream: S<String>,
    pub session_cookie: S<String>,
    pub userinfo_path: S<String>,
    pub userinfo_format: Option<S<String>>,
    pub user_pointer: Option<S<String>>,
    pub phone_pointer: Option<S<String>>,
    pub anonymous_pointer: Option<S<String>>,
    pub user_pattern: Option<S<String>>,
    pub phone_pattern: Option<S<String>>,
    pub user_header: Option<S<String>>,
    pub phone_header: Option<S<String>>,
    /// One number for every user of the app (single-owner apps).
    pub phone: Option<S<String>>,
    #[serde(default)]
    pub bypass: Vec<S<String>>,
    pub users_file: Option<S<String>>,
    pub userinfo_cache: Option<S<String>>,
    #[serde(default)]
    pub login_paths: Vec<S<String>>,
    pub recheck_interval: Option<S<String>>,
}
