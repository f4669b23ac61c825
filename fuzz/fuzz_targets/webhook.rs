//! The delivery-status webhook parsers: DIDfarm's JSON events and Twilio's
//! form callbacks (with the signature check), on arbitrary bytes.
//!
//! Property: no panic; a parsed report has a message id and a known status;
//! a signature made of arbitrary bytes never verifies.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use otpgate::config::{Secret, TwilioSettings};
use otpgate::delivery::sms::{Twilio, parse_didfarm_webhook, parse_twilio_callback};

static TWILIO: LazyLock<Twilio> = LazyLock::new(|| {
    Twilio::new(
        &TwilioSettings {
            base_url: "https://api.twilio.com".into(),
            account_sid: format!("AC{}", "0".repeat(32)),
            auth_token: Secret("fuzz-token".into()),
            messaging_service_sid: None,
        },
        reqwest::Client::new(),
        None,
    )
});

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(update)) = parse_didfarm_webhook(data) {
        let _ = update.status.as_str();
        let _ = update.message_id.len();
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    if let Some(update) = parse_twilio_callback(&params) {
        let _ = update.status.as_str();
    }
    let url = String::from_utf8_lossy(data.get(..data.len().min(64)).unwrap_or_default());
    assert!(!TWILIO.signature_ok(&format!("https://{url}/x"), &params, data));
});
