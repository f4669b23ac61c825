//! Reading the app's who-am-I answer: from its status, header fields and a
//! size-capped body, who is logged in and why the rules say so. JSON answers
//! name the user at a pointer (with explicit "nobody" rules), HTML pages
//! through a pattern, and header answers in a field. An answer that names
//! nobody is anonymous: a user is never made up from it.

use std::fmt;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body;

use crate::config::{AppSettings, Pattern, Userinfo};
use crate::error::GateError;
use crate::gate::identity::Identity;

/// Most bytes of an answer that are read. A JSON answer beyond it is
/// refused; a page is searched in its first part (where the user's name is).
pub const MAX_ANSWER: usize = 256 * 1024;

/// What the rules concluded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub status: StatusCode,
    pub identity: Identity,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// 401, 403 or a redirect: the app says nobody is logged in.
    Refused(StatusCode),
    /// A 2xx whose user rule found no one (the rule and what it found).
    NoUser(String),
    /// A 2xx whose `anonymous_pointer` says nobody.
    Marker(String),
    /// A user, and where the phone number came from.
    User(PhoneFrom),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneFrom {
    Answer,
    UsersFile,
    /// The app's `phone`.
    Fixed,
    /// Nowhere: why not.
    Nowhere(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(s) => write!(f, "HTTP {} means nobody is logged in", s.as_u16()),
            Self::NoUser(what) => write!(f, "{what}: nobody is logged in"),
            Self::Marker(what) => write!(f, "{what}: the app says nobody is logged in"),
            Self::User(PhoneFrom::Answer) => {
                f.write_str("a user; the phone number is in the answer")
            }
            Self::User(PhoneFrom::UsersFile) => {
                f.write_str("a user; the phone number is from users_file")
            }
            Self::User(PhoneFrom::Fixed) => {
                f.write_str("a user; the phone number is the app's phone")
            }
            Self::User(PhoneFrom::Nowhere(why)) => {
                write!(f, "a user without a phone number: {why}")
            }
        }
    }
}

/// Reads one answer of the who-am-I path.
pub async fn read<B>(
    app: &AppSettings,
    status: StatusCode,
    headers: &HeaderMap,
    body: B,
) -> Result<Reading, GateError>
where
    B: Body<Data = bytes::Bytes>,
    B::Error: fmt::Display,
{
    let anonymous = |why| Reading {
        status,
        identity: Identity::Anonymous,
        why,
    };
    let path = app.userinfo_path.as_str();
    if status.is_redirection()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
    {
        return Ok(anonymous(Why::Refused(status)));
    }
    if !status.is_success() {
        return Err(GateError::IdentityUnusable(format!(
            "{path} answered HTTP {status}; it should answer 2xx when logged in and 401/403 or a redirect when not"
        )));
    }
    let (found, answered_phone) = match &app.userinfo {
        Userinfo::Json {
            user_pointer,
            phone_pointer,
            anonymous_pointer,
        } => {
            let (bytes, cut) = read_capped(body, MAX_ANSWER).await?;
            if cut {
                return Err(GateError::IdentityUnusable(format!(
                    "{path} answered more than {} KiB of JSON",
                    MAX_ANSWER / 1024
                )));
            }
            let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                GateError::IdentityUnusable(format!("{path} did not answer JSON: {e}"))
            })?;
            if let Some(p) = anonymous_pointer
                && let Some(v) = json.pointer(p)
                && truthy(v)
            {
                return Ok(anonymous(Why::Marker(format!(
                    "anonymous_pointer {p:?} is {v}"
                ))));
            }
            // The keys (never the values) help put a wrong pointer right.
            let found = json_user(&json, user_pointer)?.map_err(|what| match json.as_object() {
                Some(o) => {
                    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
                    format!("{what} (the answer's top-level keys: {})", keys.join(", "))
                }
                None => what,
            });
            let phone = phone_pointer
                .as_ref()
                .and_then(|p| json.pointer(p))
                .and_then(scalar);
            (found, phone)
        }
        Userinfo::Html {
            user_pattern,
            phone_pattern,
        } => {
            let (bytes, cut) = read_capped(body, MAX_ANSWER).await?;
            let found = capture(user_pattern, &bytes).ok_or_else(|| {
                let part = if cut {
                    format!(" in its first {} KiB", MAX_ANSWER / 1024)
                } else {
                    String::new()
                };
                format!(
                    "user_pattern {:?} matched nothing{part}",
                    user_pattern.source
                )
            });
            (
                found,
                phone_pattern.as_ref().and_then(|p| capture(p, &bytes)),
            )
        }
        Userinfo::Header {
            user_header,
            phone_header,
        } => {
            let field = |name: &http::HeaderName| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            let found = field(user_header)
                .ok_or_else(|| format!("user_header {user_header} is missing or empty"));
            (found, phone_header.as_ref().and_then(field))
        }
    };
    let name = match found {
        Ok(name) => name,
        Err(what) => return Ok(anonymous(Why::NoUser(what))),
    };
    let (phone, from) = if let Some(p) = answered_phone {
        (Some(p), PhoneFrom::Answer)
    } else if let Some(p) = app.users.get(&name) {
        (Some(p.clone()), PhoneFrom::UsersFile)
    } else if let Some(p) = &app.phone {
        (Some(p.clone()), PhoneFrom::Fixed)
    } else {
        let mut why = Vec::new();
        if app.userinfo.has_phone() {
            why.push("the answer has no phone number".to_string());
        }
        if !app.users.is_empty() {
            why.push(format!("{name:?} is not in users_file"));
        }
        (None, PhoneFrom::Nowhere(why.join(" and ")))
    };
    Ok(Reading {
        status,
        identity: Identity::User { name, phone },
        why: Why::User(from),
    })
}

/// The user name at the pointer; `Err` with what it found when that means
/// nobody (missing, `null`, `""`, `false`).
fn json_user(json: &serde_json::Value, pointer: &str) -> Result<Result<String, String>, GateError> {
    use serde_json::Value;
    let nobody = |what: &str| Ok(Err(format!("user_pointer {pointer:?} {what}")));
    match json.pointer(pointer) {
        None => nobody("finds nothing"),
        Some(Value::Null) => nobody("is null"),
        Some(Value::Bool(false)) => nobody("is false"),
        Some(v) => match scalar(v) {
            Some(name) => Ok(Ok(name)),
            None if matches!(v, Value::String(_)) => nobody("is \"\""),
            None => Err(GateError::IdentityUnusable(format!(
                "user_pointer {pointer:?} is {}, not a name; point it at the name itself",
                kind(v)
            ))),
        },
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Object(_) => "an object",
        serde_json::Value::Array(_) => "a list",
        _ => "true",
    }
}

/// `anonymous_pointer` semantics: present and not `null`, `false`, `0` or `""`.
fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// A JSON string or number as text; an empty string is none.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The pattern's capture group in the page, HTML entities decoded
/// (`O&#39;Brien`, `&amp;`), trimmed; an empty capture is none.
fn capture(pattern: &Pattern, page: &[u8]) -> Option<String> {
    let m = pattern.regex.captures(page)?.get(1)?;
    let text = String::from_utf8_lossy(m.as_bytes());
    let decoded = html_escape::decode_html_entities(&text);
    Some(decoded.trim().to_string()).filter(|s| !s.is_empty())
}

/// The body up to `cap` bytes, frame by frame; `true` when it was longer
/// (the rest is not read).
async fn read_capped<B>(body: B, cap: usize) -> Result<(Vec<u8>, bool), GateError>
where
    B: Body<Data = bytes::Bytes>,
    B::Error: fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::new();
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame
            .map_err(|e| GateError::IdentityUnusable(format!("reading the answer failed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = cap - buf.len();
        if data.len() > room {
            buf.extend_from_slice(&data[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf, false))
}
