//! A legacy app as the bypasses need it: it keeps the session id across
//! login and logout (session fixation: no new cookie on login), reads
//! cookies the way Python's `http.cookies.SimpleCookie` does, and records
//! every request it serves with the user it served it as.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use regex::bytes::Regex;

use super::{TestBody, json, serve, text};

/// One request the app served.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub path: String,
    /// The user the app took the session for, if any.
    pub user: Option<String>,
    /// What the gateway said in `X-Otpgate-User`.
    pub otpgate_user: Option<String>,
}

#[derive(Clone, Default)]
pub struct LegacyApp {
    pub url: String,
    /// Session id → (user, phone). Ids are never replaced on login.
    sessions: Arc<Mutex<HashMap<String, (String, String)>>>,
    served: Arc<Mutex<Vec<Served>>>,
}

pub const PHONES: [(&str, &str); 2] = [("alice", "+31612345678"), ("bob", "+4915112345678")];

impl LegacyApp {
    pub async fn start() -> Self {
        let mut app = LegacyApp::default();
        let handler = app.clone();
        let addr = serve(move |req| {
            let app = handler.clone();
            async move {
                if req.uri().path() == "/upload" {
                    // Reads the whole body first, as a form handler does.
                    let (parts, body) = req.into_parts();
                    let read = http_body_util::BodyExt::collect(body).await;
                    let mut res = app.handle(Request::from_parts(parts, ()));
                    if read.is_err() {
                        *res.status_mut() = http::StatusCode::BAD_REQUEST;
                    }
                    return res;
                }
                app.handle(req)
            }
        })
        .await;
        app.url = format!("http://{addr}");
        app
    }

    /// Puts `user` on session `sid` without changing the id.
    pub fn log_in(&self, sid: &str, user: &str) {
        let phone = PHONES.iter().find(|(u, _)| *u == user).map_or("", |p| p.1);
        self.sessions
            .lock()
            .unwrap()
            .insert(sid.into(), (user.into(), phone.into()));
    }

    /// The protected pages (not who-am-I, not login or logout) served to a
    /// logged-in user without a second factor: each one is a bypass.
    pub fn bypasses(&self) -> Vec<Served> {
        self.served
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with("/private") && s.user.is_some())
            .filter(|s| s.otpgate_user != s.user)
            .cloned()
            .collect()
    }

    pub fn served_on(&self, path: &str) -> Vec<Served> {
        let served = self.served.lock().unwrap();
        served.iter().filter(|s| s.path == path).cloned().collect()
    }

    fn handle<B>(&self, req: Request<B>) -> Response<TestBody> {
        let header = req
            .headers()
            .get_all("cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join("; ");
        let sid = simple_cookie(&header).remove("sessionid");
        let who = sid
            .as_ref()
            .and_then(|s| self.sessions.lock().unwrap().get(s).cloned());
        let path = req.uri().path().to_string();
        self.served.lock().unwrap().push(Served {
            method: req.method().to_string(),
            path: path.clone(),
            user: who.as_ref().map(|w| w.0.clone()),
            otpgate_user: req
                .headers()
                .get("x-otpgate-user")
                .map(|v| v.to_str().unwrap().to_string()),
        });
        let query_user = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("u="))
            .map(str::to_string);
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/api/me") => match who {
                Some((user, phone)) => {
                    json(200, serde_json::json!({ "username": user, "phone": phone }))
                }
                None => json(401, serde_json::json!({ "error": "login required" })),
            },
            // A login keeps the session id: no Set-Cookie at all.
            (Method::POST, "/login") | (Method::GET, "/sso") => match (sid, query_user) {
                (Some(sid), Some(user)) => {
                    self.log_in(&sid, &user);
                    text(200, &format!("welcome {user}"))
                }
                _ => text(400, "no session or no user"),
            },
            (Method::POST, "/logout") => {
                if let Some(sid) = sid {
                    self.sessions.lock().unwrap().remove(&sid);
                }
                text(200, "bye")
            }
            _ => match who {
                Some((user, _)) => text(200, &format!("private page of {user}")),
                None => {
                    let mut r = text(302, "log in first");
                    r.headers_mut()
                        .insert("location", "/login".parse().unwrap());
                    r
                }
            },
        }
    }
}

/// The cookies Python's `http.cookies.SimpleCookie().load(header)` finds,
/// name → value (a later duplicate wins, as in a dict). A port of
/// `_CookiePattern` and `BaseCookie.__parse_string` (CPython 3.11,
/// Lib/http/cookies.py), cross-checked against python3 in tests/bypass.rs.
pub fn simple_cookie(header: &str) -> HashMap<String, String> {
    const KEY: &str = r"\w\d!#%&'~_`><@,:/\$\*\+\-\.\^\|\)\(\?\}\{\=";
    let pattern = format!(
        r#"(?-u)\A\s*(?P<key>[{KEY}]+?)(\s*=\s*(?P<val>"(?:[^\\"]|\\.)*"|\w{{3}},\s[\w\d\s-]{{9,11}}\s[\d:]{{8}}\sGMT|[{KEY}\[\]]*))?\s*(\s+|;|$)"#
    );
    let re = Regex::new(&pattern).unwrap();
    const RESERVED: [&str; 9] = [
        "expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version",
        "samesite",
    ];
    let mut found = Vec::new();
    let mut morsel_seen = false;
    let mut i = 0;
    let bytes = header.as_bytes();
    while i < bytes.len() {
        let Some(c) = re.captures(&bytes[i..]) else {
            break;
        };
        let end = c.get(0).unwrap().end();
        if end == 0 {
            break;
        }
        i += end;
        let key = String::from_utf8_lossy(&c["key"]).into_owned();
        let value = c
            .name("val")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let value = value.as_deref();
        if key.starts_with('$') {
            continue;
        } else if RESERVED.contains(&key.to_ascii_lowercase().as_str()) {
            if !morsel_seen {
                return HashMap::new();
            }
            if value.is_none()
                && !["secure", "httponly"].contains(&key.to_ascii_lowercase().as_str())
            {
                return HashMap::new();
            }
        } else if let Some(v) = value {
            found.push((key.clone(), unquote(v)));
            morsel_seen = true;
        } else {
            return HashMap::new();
        }
    }
    found.into_iter().collect()
}

/// `http.cookies._unquote` for the values the tests use: the quotes go,
/// `\"` and `\\` become the character.
fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}
