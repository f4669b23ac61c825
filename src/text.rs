//! Every string a user sees, in one place, so that a translation is one
//! more value of [`Text`].

use std::time::Duration;

use crate::config::Channel;
use crate::delivery::Progress;

pub struct Text {
    pub lang: &'static str,
    pub title: &'static str,
    pub heading: &'static str,
    pub intro: &'static str,
    pub code_label: &'static str,
    pub verify_button: &'static str,
    pub resend_button: &'static str,
    pub resend_in_before: &'static str,
    pub resend_in_after: &'static str,
    pub resend_ready: &'static str,
    /// For waits past 90 seconds; `{wait}` is filled in.
    pub resend_later: &'static str,
    pub code_sent: &'static str,
    pub code_resent: &'static str,
    pub send_failed: &'static str,
    pub send_uncertain: &'static str,
    pub expired: &'static str,
    pub locked: &'static str,
    pub no_phone: &'static str,
    pub malformed_code_before: &'static str,
    pub malformed_code_after: &'static str,
    pub wrong_code_one: &'static str,
    pub wrong_code_many: &'static str,
    pub wait_cooldown: &'static str,
    pub wait_hour: &'static str,
    pub wait_day: &'static str,
    pub wait_network: &'static str,
    pub wait_account: &'static str,
    pub wait_pumping: &'static str,
    pub error_title: &'static str,
    pub back: &'static str,
    pub back_to_code: &'static str,
    /// Before the request id on an error page.
    pub reference: &'static str,
    pub sandbox_title: &'static str,
    pub sandbox_intro: &'static str,
    pub sandbox_empty: &'static str,
    pub country_refused: &'static str,
    pub channel_sms: &'static str,
    pub channel_whatsapp: &'static str,
    /// `{channel}` is filled in.
    pub delivery_waiting: &'static str,
    pub delivery_delivered: &'static str,
    pub delivery_failed: &'static str,
    pub delivery_late: &'static str,
    /// `{from}` and `{to}` are channels.
    pub delivery_fallback: &'static str,
    pub send_by: &'static str,
    pub alternatives_label: &'static str,
}

pub const EN: Text = Text {
    lang: "en",
    title: "Confirm it's you",
    heading: "Confirm it's you",
    intro: "Enter the code we sent to your phone.",
    code_label: "Verification code",
    verify_button: "Verify",
    resend_button: "Resend code",
    resend_in_before: "You can ask for a new code in",
    resend_in_after: "seconds.",
    resend_ready: "Didn't get it? You can ask for a new code now.",
    resend_later: "You can ask for a new code in {wait}.",
    code_sent: "Code sent to {number}.",
    code_resent: "We sent the code again to {number}.",
    send_failed: "We could not send the code just now. Please try again.",
    send_uncertain: "The text message is taking longer than usual. If no code arrives, ask for a new one.",
    expired: "That code has expired or was already used. Ask for a new one.",
    locked: "Too many wrong codes. That code no longer works; ask for a new one.",
    no_phone: "Your phone number on file is not usable for verification codes. Please contact your administrator.",
    malformed_code_before: "Enter the",
    malformed_code_after: "digit code from the text message.",
    wrong_code_one: "Invalid code, 1 attempt left.",
    wrong_code_many: "Invalid code, {n} attempts left.",
    wait_cooldown: "Please wait {wait} before asking for another code.",
    wait_hour: "You have asked for many codes in the last hour. Please try again in {wait}.",
    wait_day: "You have reached today's limit of codes. Please try again in {wait}.",
    wait_network: "Too many requests for codes came from your network. Please try again in {wait}.",
    wait_account: "Too many wrong codes were entered for this account, so it is locked. Please try again in {wait} or ask your administrator.",
    wait_pumping: "Text messages to your phone's country or number range are paused because of unusual traffic. Please try again in {wait} or ask your administrator.",
    error_title: "Something went wrong",
    back: "Back",
    back_to_code: "Back to the code page",
    reference: "If you ask for help, quote this reference:",
    sandbox_title: "otpgate sandbox: messages",
    sandbox_intro: "The sandbox provider sends nothing. These are the messages it would have sent, newest first. Never use it in production.",
    sandbox_empty: "No messages yet.",
    country_refused: "Verification codes cannot be sent to phone numbers in this country. Please contact your administrator.",
    channel_sms: "SMS",
    channel_whatsapp: "WhatsApp",
    delivery_waiting: "Sent by {channel}.",
    delivery_delivered: "Delivered to your phone by {channel}.",
    delivery_failed: "The code could not be delivered by {channel}. Try again, or choose another way below.",
    delivery_late: "Delivery by {channel} has not been confirmed yet. If the code does not arrive, try again or choose another way below.",
    delivery_fallback: "Not delivered by {from} yet, so the same code is on its way by {to}.",
    send_by: "Send by {channel}",
    alternatives_label: "Other ways to get the code",
};

impl Text {
    pub fn wrong_code(&self, left: u32) -> String {
        if left == 1 {
            self.wrong_code_one.to_string()
        } else {
            self.wrong_code_many.replace("{n}", &left.to_string())
        }
    }

    pub fn malformed_code(&self, length: u32) -> String {
        format!(
            "{} {length}-{}",
            self.malformed_code_before, self.malformed_code_after
        )
    }

    pub fn sent_to(&self, masked: &str, again: bool) -> String {
        let t = if again {
            self.code_resent
        } else {
            self.code_sent
        };
        t.replace("{number}", masked)
    }

    pub fn channel(&self, c: Channel) -> &'static str {
        match c {
            Channel::Sms => self.channel_sms,
            Channel::Whatsapp => self.channel_whatsapp,
        }
    }

    /// The line that follows the latest message's delivery.
    pub fn delivery(&self, channel: Channel, progress: Progress) -> String {
        let template = match progress {
            Progress::Waiting => self.delivery_waiting,
            Progress::Delivered => self.delivery_delivered,
            Progress::Failed => self.delivery_failed,
            Progress::Late => self.delivery_late,
            Progress::FallbackDue(to) => {
                return self
                    .delivery_fallback
                    .replace("{from}", self.channel(channel))
                    .replace("{to}", self.channel(to));
            }
        };
        template.replace("{channel}", self.channel(channel))
    }

    pub fn send_by(&self, c: Channel) -> String {
        self.send_by.replace("{channel}", self.channel(c))
    }

    pub fn wait(&self, template: &str, wait: Duration) -> String {
        template.replace("{wait}", &human_wait(wait))
    }

    /// The resend line for a wait `human_wait` says in minutes or hours;
    /// shorter ones are counted down in seconds on the page.
    pub fn resend_later(&self, wait: Duration) -> Option<String> {
        (ceil_secs(wait) > COUNTDOWN_MAX).then(|| self.wait(self.resend_later, wait))
    }
}

/// Whole seconds, rounded up: a wait shown or sent as 0 would be a lie.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The longest wait said in seconds (and counted down on the page).
const COUNTDOWN_MAX: u64 = 90;

/// "45 seconds", "3 minutes", "2 hours": rounded up, so the user never
/// comes back too early.
pub fn human_wait(d: Duration) -> String {
    let secs = ceil_secs(d);
    let (n, unit) = match secs {
        0..=COUNTDOWN_MAX => (secs.max(1), "second"),
        91..=5400 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_rounded_up_and_pluralised() {
        assert_eq!(human_wait(Duration::from_millis(200)), "1 second");
        assert_eq!(human_wait(Duration::from_secs(59)), "59 seconds");
        assert_eq!(human_wait(Duration::from_secs(61 * 60)), "61 minutes");
        assert_eq!(human_wait(Duration::from_secs(3 * 3600 + 1)), "4 hours");
    }

    #[test]
    fn attempts_left_reads_naturally() {
        assert_eq!(EN.wrong_code(1), "Invalid code, 1 attempt left.");
        assert_eq!(EN.wrong_code(4), "Invalid code, 4 attempts left.");
    }
}
