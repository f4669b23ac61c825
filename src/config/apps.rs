//! Validation of the `[[apps]]` tables: each protected app's upstream,
//! session cookie, who-am-I path and rules, bypass and login paths, phone
//! sources, and that no two apps claim one host.

use std::collections::HashMap;
use std::time::Duration;

use http::Uri;
use http::uri::{PathAndQuery, Scheme};

use super::raw::{RawApp, S};
use super::validate::{Ctx, RESERVED_COOKIES, Result};
use super::*;
use crate::phone;

impl Ctx<'_> {
    pub(super) fn app(&self, app: &S<RawApp>) -> Result<AppSettings> {
        let a = app.get_ref();
        let name = a.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(self.at(
                &a.name,
                "apps.name",
                "is empty; give the name users know the app by",
            ));
        }
        let host = match a.host.as_ref() {
            None => HostMatch::Any,
            Some(h) if h.get_ref() == "*" => HostMatch::Any,
            Some(h) => {
                let v = h.get_ref().trim().to_ascii_lowercase();
                let ok = !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !ok {
                    return Err(self.at(h, "apps.host", format!("{v:?} is not a host name; write it without scheme or port, e.g. \"crm.example.com\", or \"*\" for any")));
                }
                HostMatch::Exact(v)
            }
        };
        let upstream = self.upstream(&a.upstream)?;
        let cookie = a.session_cookie.get_ref().trim();
        if cookie.is_empty() || !cookie.bytes().all(is_token_byte) {
            return Err(self.at(&a.session_cookie, "apps.session_cookie", format!("{cookie:?} is not a cookie name (RFC 6265 §4.1.1: letters, digits and !#$%&'*+-.^_`|~)")));
        }
        // A trailing `*` makes the name a prefix (`*` is a token byte, so
        // no real cookie name is lost by this reading).
        let session_cookie = match cookie.strip_suffix('*') {
            Some(stem) if stem.is_empty() || stem.contains('*') => {
                return Err(self.at(&a.session_cookie, "apps.session_cookie", format!("{cookie:?}: write the fixed start of the name followed by one `*`, e.g. \"wordpress_logged_in_*\"")));
            }
            Some(stem) => SessionCookie::Prefix(stem.to_string()),
            None => SessionCookie::Exact(cookie.to_string()),
        };
        if RESERVED_COOKIES
            .iter()
            .any(|r| session_cookie.matches(r) || *r == session_cookie.stem())
        {
            return Err(self.at(
                &a.session_cookie,
                "apps.session_cookie",
                format!("{cookie:?} names otpgate's own cookie; name the app's session cookie"),
            ));
        }
        let userinfo_path = a
            .userinfo_path
            .get_ref()
            .parse::<PathAndQuery>()
            .ok()
            .filter(|p| p.as_str().starts_with('/'))
            .ok_or_else(|| {
                self.at(
                    &a.userinfo_path,
                    "apps.userinfo_path",
                    "must be a path on the app starting with \"/\", e.g. \"/api/me\"",
                )
            })?;
        let bypass = self.prefixes(&a.bypass, "apps.bypass")?;
        let login_paths = self.prefixes(&a.login_paths, "apps.login_paths")?;
        let users = match &a.users_file {
            None => HashMap::new(),
            Some(f) => self.users_file(f)?,
        };
        let userinfo = self.userinfo(app)?;
        let phone = self.phone_source(app, &userinfo, !users.is_empty())?;
        Ok(AppSettings {
            name,
            host,
            upstream,
            session_cookie,
            userinfo_path,
            userinfo,
            bypass,
            users,
            phone,
            userinfo_cache: self.bounded(
                &a.userinfo_cache,
                "apps.userinfo_cache",
                Duration::from_secs(60),
                Duration::ZERO..=Duration::from_secs(3600),
            )?,
            login_paths,
            recheck_interval: self.bounded(
                &a.recheck_interval,
                "apps.recheck_interval",
                Duration::from_secs(300),
                Duration::ZERO..=Duration::from_secs(24 * 3600),
            )?,
        })
    }

    /// Path prefixes on the app (`bypass`, `login_paths`).
    fn prefixes(&self, list: &[S<String>], key: &str) -> Result<Vec<String>> {
        list.iter()
            .map(|b| {
                let v = b.get_ref();
                if !v.starts_with('/') {
                    return Err(self.at(
                        b,
                        key,
                        format!("{v:?} must be a path prefix starting with \"/\""),
                    ));
                }
                if v.starts_with(crate::names::PREFIX) {
                    return Err(self.at(
                        b,
                        key,
                        "the gateway's own /.otpgate/ paths cannot be listed here",
                    ));
                }
                Ok(v.clone())
            })
            .collect()
    }

    fn upstream(&self, v: &S<String>) -> Result<Upstream> {
        let text = v.get_ref().trim();
        let bad = |why: &str| {
            self.at(
                v,
                "apps.upstream",
                format!("{text:?} {why}; write e.g. \"http://127.0.0.1:8080\""),
            )
        };
        let uri: Uri = text.parse().map_err(|_| bad("is not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(bad(
                "must use http:// (TLS to the upstream is not supported yet)",
            ));
        }
        let authority = uri.authority().cloned().ok_or_else(|| bad("has no host"))?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad("must not have a path"));
        }
        Ok(Upstream {
            scheme: Scheme::HTTP,
            authority,
        })
    }

    pub(super) fn pointer(&self, v: &S<String>, key: &str) -> Result<String> {
        let p = v.get_ref();
        if !p.is_empty() && !p.starts_with('/') {
            return Err(self.at(v, key, format!("{p:?} is not a JSON pointer (RFC 6901); write e.g. \"/username\" or \"/user/phone\"")));
        }
        Ok(p.clone())
    }

    fn users_file(&self, f: &S<String>) -> Result<HashMap<String, String>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct UsersFile {
            users: HashMap<String, S<String>>,
        }
        let path = self.path(f.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.at(
                f,
                "apps.users_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let file = path.display().to_string();
        let inner = Ctx {
            file: &file,
            text: &text,
            base: self.base,
        };
        let parsed: UsersFile = toml::from_str(&text).map_err(|e| ConfigError {
            file: file.clone(),
            line: e.span().map(|s| inner.line_of(&s)),
            key: String::new(),
            message: format!(
                "{}; the file holds a [users] table of user = \"+E164\"",
                e.message().trim_end()
            ),
        })?;
        parsed
            .users
            .into_iter()
            .map(|(user, number)| {
                let n = number.get_ref().trim();
                if let Err(e) = phone::Number::parse(n) {
                    return Err(inner.at(&number, &format!("users.{user}"), format!("{n:?} {e}; write it as \"+\" then country code and number, e.g. \"+31612345678\"")));
                }
                Ok((user, n.to_string()))
            })
            .collect()
    }

    pub(super) fn distinct_hosts(&self, raw: &[S<RawApp>], apps: &[AppSettings]) -> Result<()> {
        for (i, app) in apps.iter().enumerate() {
            if apps[..i].iter().any(|other| other.host == app.host) {
                return Err(self.at(
                    &raw[i],
                    "apps.host",
                    "another [[apps]] table already serves this host; each host goes to one app",
                ));
            }
            // Logs, the audit log and `otpgate admin unlock APP USER` name apps.
            if apps[..i].iter().any(|other| other.name == app.name) {
                return Err(self.at(
                    &raw[i].get_ref().name,
                    "apps.name",
                    format!(
                        "another [[apps]] table is already called {:?}; give each app its own name",
                        app.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Cookie names are RFC 9110 tokens (RFC 6265 §4.1.1).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
