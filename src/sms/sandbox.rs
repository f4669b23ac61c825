//! The sandbox provider: sends nothing and keeps the last messages in
//! memory for `/.otpgate/sandbox`, for demos and local development only.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{OutgoingSms, Receipt};
use crate::phone;

const KEEP: usize = 50;

#[derive(Clone)]
pub struct SandboxMessage {
    pub id: String,
    pub at: String,
    /// Masked: the sandbox page is a fake phone, not a directory of numbers.
    pub to: String,
    pub from: String,
    pub body: String,
}

#[derive(Default)]
pub struct Sandbox {
    messages: Mutex<VecDeque<SandboxMessage>>,
    counter: std::sync::atomic::AtomicU64,
}

impl Sandbox {
    pub fn send(&self, sms: &OutgoingSms) -> Receipt {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let id = format!("sandbox_{n}");
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let msg = SandboxMessage {
            id: id.clone(),
            at,
            to: phone::mask(&sms.to),
            from: sms.from.clone(),
            body: sms.body.clone(),
        };
        let mut list = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        list.push_front(msg);
        list.truncate(KEEP);
        Receipt {
            message_id: Some(id),
        }
    }

    /// The kept messages, newest first.
    pub fn messages(&self) -> Vec<SandboxMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
