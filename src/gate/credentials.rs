//! What a request's cookies prove: the app session (as a keyed hash), the
//! user whose second factor is proven for it, and the one `Cookie` field
//! the app is sent.
//!
//! Reading them costs a cookie parse, an HMAC and an AES-GCM open on every
//! request. A browser sends the same `Cookie` field on every request of a
//! keep-alive connection, so each connection remembers the last field it
//! saw and what it proved ([`Memo`]): a repeat costs one constant-time
//! compare. The answer depends on nothing but those bytes, the app, the
//! process's keys and the clock, so the remembered answer is exactly what a
//! fresh read would give, as long as the proof has not expired (checked on
//! every use).

use std::sync::Mutex;

use http::header::{COOKIE, HeaderValue};
use http::{HeaderMap, Request};
use subtle::{Choice, ConstantTimeEq};

use crate::state::{App, State};
use crate::{gate::factor, http::cookies};

/// What a request's cookies prove, read in one pass over them.
#[derive(Clone)]
pub struct Credentials {
    /// The keyed hash of the app's session cookie, if there is one.
    pub session: Option<[u8; 32]>,
    /// The user whose second factor is proven for that very session.
    pub user: Option<String>,
    /// The only `Cookie` field the app (and its who-am-I path) is sent.
    pub forward: Option<HeaderValue>,
    /// Whether the request had any `Cookie` field (so it must be rewritten).
    pub had_cookies: bool,
    /// The name of a cookie pair that was dropped because a looser parser
    /// could read more out of it (see `cookies::read`).
    pub suspicious: Option<String>,
}

/// Longer `Cookie` fields are read afresh every time rather than kept for
/// the life of an idle connection (browsers send a few hundred bytes).
const MAX_REMEMBERED: usize = 4096;

/// The last `Cookie` field one connection sent and what it proved.
#[derive(Default)]
pub struct Memo(Mutex<Option<Remembered>>);

struct Remembered {
    app: usize,
    field: HeaderValue,
    creds: Credentials,
    /// Unix seconds from which `creds` no longer holds (the proof expired).
    until: u64,
}

impl Memo {
    fn recall(&self, app: usize, field: &HeaderValue, now: u64) -> Option<Credentials> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let r = slot.as_ref()?;
        let same = r.app == app && same_field(r.field.as_bytes(), field.as_bytes());
        (same && now < r.until).then(|| r.creds.clone())
    }

    fn remember(&self, app: usize, field: HeaderValue, creds: Credentials, until: u64) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Remembered {
            app,
            field,
            creds,
            until,
        });
    }
}

/// Whether two `Cookie` fields are equal, in constant time: they carry the
/// session and factor cookies, and a connection from a front proxy may carry
/// several users' requests. A length mismatch ends early (the length is not
/// secret). Eight bytes per `subtle` compare rather than one: the field is
/// a few hundred bytes and this runs on every request.
fn same_field(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |chunk: &[u8]| {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        u64::from_ne_bytes(w)
    };
    let eq = a
        .chunks(8)
        .zip(b.chunks(8))
        .fold(Choice::from(1), |eq, (x, y)| eq & word(x).ct_eq(&word(y)));
    eq.into()
}

/// What the request's cookies prove for `app`. With a `memo`, a request that
/// repeats the connection's last `Cookie` field is answered from it.
pub fn read<B>(state: &State, app: &App, req: &Request<B>, memo: Option<&Memo>) -> Credentials {
    let now = state.clock.now_ms() / 1000;
    // HTTP/2 may split cookies over several fields (RFC 9113 §8.2.3); only
    // the usual single field is remembered.
    let single = single_cookie_field(req.headers());
    if let (Some(memo), Some(field)) = (memo, single)
        && let Some(creds) = memo.recall(app.index, field, now)
    {
        return creds;
    }
    let (creds, until) = read_fresh(state, app, req.headers(), now);
    if let (Some(memo), Some(field)) = (memo, single)
        && field.len() <= MAX_REMEMBERED
    {
        // A copy: the field itself points into hyper's read buffer, which
        // would then stay allocated for as long as the connection is idle.
        if let Ok(copy) = HeaderValue::from_bytes(field.as_bytes()) {
            memo.remember(app.index, copy, creds.clone(), until);
        }
    }
    creds
}

fn single_cookie_field(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut fields = headers.get_all(COOKIE).iter();
    match (fields.next(), fields.next()) {
        (Some(field), None) => Some(field),
        _ => None,
    }
}

/// The credentials and until when they hold: the proof's expiry, or for
/// ever when nothing is proven (an invalid or expired cookie never becomes
/// valid later; should the wall clock step back, the memo refuses where a
/// fresh read would accept, the safe side).
fn read_fresh(state: &State, app: &App, headers: &HeaderMap, now: u64) -> (Credentials, u64) {
    let read = cookies::read(headers, &app.cfg.session_cookie);
    let session = read.session.map(|v| {
        let index = (app.index as u64).to_be_bytes();
        state.keys.session.of(&[&index, v.as_bytes()])
    });
    let proof = match (&session, read.factor) {
        (Some(s), Some(v)) => factor::check(&state.keys, v, app.index, s, now),
        _ => None,
    };
    let until = proof.as_ref().map_or(u64::MAX, |p| p.expires);
    let creds = Credentials {
        session,
        user: proof.map(|p| p.user),
        forward: read.forward,
        had_cookies: read.present,
        suspicious: read.suspicious.map(str::to_string),
    };
    (creds, until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proven(user: &str) -> Credentials {
        Credentials {
            session: Some([7; 32]),
            user: Some(user.to_string()),
            forward: Some(HeaderValue::from_static("sessionid=s")),
            had_cookies: true,
            suspicious: None,
        }
    }

    #[test]
    fn a_memo_answers_only_the_same_field_for_the_same_app_before_the_proof_expires() {
        let memo = Memo::default();
        let field = HeaderValue::from_static("sessionid=s; otpgate=sealed");
        assert!(
            memo.recall(0, &field, 100).is_none(),
            "nothing remembered yet"
        );
        memo.remember(0, field.clone(), proven("alice"), 200);

        let same = memo.recall(0, &field, 199).expect("the same field");
        assert_eq!(same.user.as_deref(), Some("alice"));
        assert_eq!(same.session, Some([7; 32]));
        assert!(memo.recall(1, &field, 100).is_none(), "another app");
        let other = HeaderValue::from_static("sessionid=s; otpgate=sealeD");
        assert!(memo.recall(0, &other, 100).is_none(), "one byte differs");
        let longer = HeaderValue::from_static("sessionid=s; otpgate=sealed; x=1");
        assert!(memo.recall(0, &longer, 100).is_none(), "a longer field");
        assert!(memo.recall(0, &field, 200).is_none(), "the proof expired");
    }

    #[test]
    fn fields_are_equal_only_when_every_byte_is() {
        let a = b"sessionid=s; otpgate=0123456789abcdef0123";
        assert!(same_field(a, a));
        for i in 0..a.len() {
            let mut b = *a;
            b[i] ^= 1;
            assert!(!same_field(a, &b), "byte {i} differs");
        }
        assert!(!same_field(a, &a[..a.len() - 1]));
        assert!(same_field(b"", b""));
    }

    #[test]
    fn a_memo_keeps_only_the_last_field() {
        let memo = Memo::default();
        let first = HeaderValue::from_static("sessionid=a");
        let second = HeaderValue::from_static("sessionid=b");
        memo.remember(0, first.clone(), proven("alice"), u64::MAX);
        memo.remember(0, second.clone(), proven("bob"), u64::MAX);
        assert!(memo.recall(0, &first, 1).is_none());
        assert_eq!(
            memo.recall(0, &second, 1).unwrap().user.as_deref(),
            Some("bob")
        );
    }
}
