//! The sandbox provider: sends nothing and keeps the last messages in
//! memory for `/.otpgate/sandbox`, for demos and local development only.

use std::collections::VecDeque;
use std::sync::Mutex;

use std::sync::Arc;

use super::{Channel, Outgoing, Provider, Receipt, SendFuture};
use crate::phone;

const KEEP: usize = 50;

#[derive(Clone)]
pub struct SandboxMessage {
    pub id: String,
    pub at: String,
    /// Masked: the sandbox page is a fake phone, not a directory of numbers.
    pub to: String,
    pub from: String,
    pub channel: &'static str,
    pub body: String,
}

#[derive(Default)]
pub struct Sandbox {
    messages: Mutex<VecDeque<SandboxMessage>>,
    counter: std::sync::atomic::AtomicU64,
}

impl Sandbox {
    fn deliver(&self, sms: &Outgoing) -> Receipt {
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
            channel: sms.channel.as_str(),
            body: sms.body.clone(),
        };
        let mut list = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        list.push_front(msg);
        list.truncate(KEEP);
        // The inbox is the phone: the message is delivered on arrival.
        Receipt {
            message_id: Some(id),
            delivered: true,
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

impl Provider for Arc<Sandbox> {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn carries(&self, _: Channel) -> bool {
        true
    }

    fn reports_delivery(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a> {
        let receipt = self.deliver(msg);
        Box::pin(std::future::ready(Ok(receipt)))
    }
}
