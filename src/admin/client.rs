//! `otpgate admin ...`: calls the running gateway's admin API (the running
//! process holds the locks and quarantines) with the token derived from the
//! same secret file, and prints readable tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LIFT, LOCKS, Lift, Locks, QUARANTINES, Quarantines, UNLOCK, Unlock};
use crate::config::Settings;
use crate::keys::{self, Keys, SecretError};

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// List locked accounts: app, user, wrong codes in a row, time left.
    Locks,
    /// Lift the lock of USER of APP (the app's `name` in the configuration).
    Unlock { app: String, user: String },
    /// List quarantined countries and number prefixes, and why.
    Quarantines,
    /// Lift the quarantine of KEY: a region code ("NG") or a prefix ("+234803123").
    Lift { key: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the admin API is turned off ([admin] socket = \"\" or listen = \"\"); remove that line (or set a socket or address) and restart otpgate"
    )]
    Off,
    #[error("{0}; run `otpgate admin` as the user otpgate runs as")]
    Secret(#[from] SecretError),
    #[error(
        "otpgate is not running, or its admin API is not at {at} ({source}); start it, or check [admin] in the configuration"
    )]
    NotRunning { at: String, source: reqwest::Error },
    #[error("the gateway refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the admin API at {at} answered in a way this otpgate does not understand: {source}")]
    Unreadable { at: String, source: reqwest::Error },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Runs one admin command; the text to print on success.
pub async fn run(settings: &Settings, command: &AdminCommand) -> Result<String, ClientError> {
    crate::http::tls::install_default_provider();
    let builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    let (base, at, builder) = match (&settings.admin.socket, settings.admin.listen) {
        (_, Some(listen)) => {
            let addr = reachable(listen);
            (format!("http://{addr}"), addr.to_string(), builder)
        }
        // Over the socket the host name is only what the Host field says.
        (Some(path), None) => (
            "http://localhost".to_string(),
            format!("unix:{}", path.display()),
            builder.unix_socket(path.as_path()),
        ),
        (None, None) => return Err(ClientError::Off),
    };
    let secret = keys::load(&settings.server.secret_file)?;
    let api = Api {
        base,
        at,
        token: Keys::derive(&secret).admin_token(),
        http: builder.build().map_err(ClientError::Client)?,
    };
    match command {
        AdminCommand::Locks => {
            let Locks { locks } = api.get(LOCKS).await?;
            if locks.is_empty() {
                return Ok("No account is locked.".into());
            }
            let rows = locks
                .iter()
                .map(|l| {
                    vec![
                        l.app.clone(),
                        l.user.clone(),
                        l.failures.to_string(),
                        crate::text::human_wait(Duration::from_secs(l.seconds_left)),
                    ]
                })
                .collect();
            Ok(table(&["APP", "USER", "WRONG CODES", "LOCKED FOR"], rows))
        }
        AdminCommand::Unlock { app, user } => {
            let body = Unlock {
                app: app.clone(),
                user: user.clone(),
            };
            api.post(UNLOCK, &body).await?;
            Ok(format!("Unlocked {user} of {app}."))
        }
        AdminCommand::Quarantines => {
            let Quarantines { quarantines } = api.get(QUARANTINES).await?;
            if quarantines.is_empty() {
                return Ok("Nothing is quarantined.".into());
            }
            let rows = quarantines
                .iter()
                .map(|q| {
                    vec![
                        q.key.clone(),
                        format!("{:?}", q.scope).to_lowercase(),
                        crate::text::human_wait(Duration::from_secs(q.seconds_left)),
                        if q.enforced {
                            "enforced"
                        } else {
                            "monitor only"
                        }
                        .to_string(),
                        q.why.clone(),
                    ]
                })
                .collect();
            Ok(table(&["KEY", "SCOPE", "FOR", "MODE", "WHY"], rows))
        }
        AdminCommand::Lift { key } => {
            let body = Lift { key: key.clone() };
            api.post(LIFT, &body).await?;
            Ok(format!("Lifted the quarantine of {key}."))
        }
    }
}

struct Api {
    /// The scheme and authority every path is appended to.
    base: String,
    /// Where that is, for messages.
    at: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.http.get(self.url(path))).await
    }

    /// Posts JSON; the answer only says that it worked.
    async fn post(&self, path: &str, body: &impl Serialize) -> Result<(), ClientError> {
        let _: serde_json::Value = self.call(self.http.post(self.url(path)).json(body)).await?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let at = || self.at.clone();
        let req = req.bearer_auth(&self.token);
        let res = req
            .send()
            .await
            .map_err(|source| ClientError::NotRunning { at: at(), source })?;
        let status = res.status();
        if !status.is_success() {
            let message = res
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| "no reason given".into());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        res.json()
            .await
            .map_err(|source| ClientError::Unreadable { at: at(), source })
    }
}

/// Where to reach a listener: a wildcard address is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}  ", w = widths[i])
                }
            })
            .collect::<String>()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns() {
        let t = table(
            &["APP", "USER"],
            vec![vec!["Test CRM".into(), "alice".into()]],
        );
        assert_eq!(t, "APP       USER\nTest CRM  alice");
    }

    #[test]
    fn a_wildcard_listener_is_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9090".parse().unwrap()),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:9090".parse().unwrap()),
            "[::1]:9090".parse().unwrap()
        );
    }
}
