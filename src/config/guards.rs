//! Validation of the `[admin]`, `[log]`, `[metrics]` and `[pumping]`
//! tables: the admin API's and the metrics' addresses, the log's format and
//! level, and the OTP-pumping guard's rules.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{RawAdmin, RawLog, RawMetrics, RawPumping};
use super::validate::{Ctx, Result};
use super::{
    AdminSettings, LogSettings, MetricsSettings, PumpingMode, PumpingSettings, ServerSettings,
};
use crate::phone;

impl Ctx<'_> {
    pub(super) fn admin(&self, a: &RawAdmin, server: &ServerSettings) -> Result<AdminSettings> {
        let off = AdminSettings {
            socket: None,
            listen: None,
        };
        let Some(v) = &a.listen else {
            let socket = match &a.socket {
                None => self.path(&AdminSettings::default_socket(server.listen.port())),
                Some(s) if s.get_ref().trim().is_empty() => return Ok(off),
                Some(s) => self.path(s.get_ref().trim()),
            };
            // sockaddr_un holds 108 bytes with the terminating NUL (unix(7)).
            if socket.as_os_str().len() > 107 {
                let key = "admin.socket";
                let message = format!(
                    "the socket path {} is longer than the 107 bytes a Unix socket address holds; give a shorter path, e.g. \"/run/otpgate/admin.sock\"",
                    socket.display()
                );
                return Err(match &a.socket {
                    Some(s) => self.at(s, key, message),
                    None => self.err(None, key, message),
                });
            }
            return Ok(AdminSettings {
                socket: Some(socket),
                listen: None,
            });
        };
        if let Some(s) = &a.socket {
            return Err(self.at(s, "admin.socket", "set either socket (a Unix socket, the default) or listen (a TCP address), not both"));
        }
        let text = v.get_ref().trim();
        if text.is_empty() {
            return Ok(off);
        }
        let addr: SocketAddr = text.parse().map_err(|_| {
            self.at(
                v,
                "admin.listen",
                "not an address; write host and port, e.g. \"127.0.0.1:9091\", leave listen out to use the Unix socket, or write \"\" to turn the admin API off",
            )
        })?;
        // The token keeps strangers out, but an admin API that is not
        // reachable from the network cannot be attacked from it at all.
        if !addr.ip().is_loopback() && a.allow_non_loopback != Some(true) {
            return Err(self.at(
                v,
                "admin.listen",
                format!("{addr} is not a loopback address; use a loopback address such as \"127.0.0.1:9091\" (or leave listen out: the default is a Unix socket), or set allow_non_loopback = true if the admin API must be reachable from other machines"),
            ));
        }
        if clashes(addr, server.listen) {
            return Err(self.at(
                v,
                "admin.listen",
                format!("{addr} is where server.listen serves the public gateway; give the admin API a port of its own, or leave listen out to use the Unix socket"),
            ));
        }
        Ok(AdminSettings {
            socket: None,
            listen: Some(addr),
        })
    }

    /// The metrics listener's address. Any address may be given: Prometheus
    /// usually scrapes from another machine, and nothing there names a user
    /// (the readiness details name providers and the store, no more).
    pub(super) fn metrics(
        &self,
        m: &RawMetrics,
        server: &ServerSettings,
        admin: &AdminSettings,
    ) -> Result<MetricsSettings> {
        let Some(v) = &m.listen else {
            return Ok(MetricsSettings::default());
        };
        let text = v.get_ref().trim();
        if text.is_empty() {
            return Ok(MetricsSettings::default());
        }
        let key = "metrics.listen";
        let addr: SocketAddr = text.parse().map_err(|_| {
            self.at(v, key, "not an address; write host and port, e.g. \"127.0.0.1:9464\" (Prometheus scrapes TCP), or leave [metrics] out to keep it off")
        })?;
        if clashes(addr, server.listen) {
            return Err(self.at(v, key, format!("{addr} is where server.listen serves the public gateway; give the metrics a port of their own, e.g. 9464")));
        }
        if admin.listen.is_some_and(|a| clashes(addr, a)) {
            return Err(self.at(v, key, format!("{addr} is where admin.listen serves the admin API; give the metrics a port of their own, e.g. 9464")));
        }
        Ok(MetricsSettings { listen: Some(addr) })
    }

    pub(super) fn log(&self, l: &RawLog) -> Result<LogSettings> {
        let json = match &l.format {
            None => false,
            Some(f) => match f.get_ref().as_str() {
                "text" => false,
                "json" => true,
                other => {
                    return Err(self.at(f, "log.format", format!("{other:?} is not a log format; write \"text\" (the default) or \"json\" (one JSON object per line)")));
                }
            },
        };
        let level = match &l.level {
            None => "info".to_string(),
            Some(v) => {
                let text = v.get_ref().trim();
                tracing_subscriber::EnvFilter::builder()
                    .parse(text)
                    .map_err(|e| self.at(v, "log.level", format!("{text:?} is not a log level or filter ({e}); write \"info\", \"warn\", \"debug\" or a filter such as \"otpgate=debug,info\"")))?;
                text.to_string()
            }
        };
        let access_path = l
            .access_path
            .as_ref()
            .map(|p| {
                self.log_file(
                    p,
                    "log.access_path",
                    "must name a file, e.g. \"access.log\"; leave access_path out to write the access log to stdout",
                )
            })
            .transpose()?;
        Ok(LogSettings {
            json,
            level,
            access: l.access == Some(true),
            access_path,
        })
    }

    pub(super) fn pumping(&self, p: &RawPumping) -> Result<PumpingSettings> {
        let d = PumpingSettings::default();
        let mode = match &p.mode {
            None => d.mode,
            Some(m) => match m.get_ref().as_str() {
                "enforce" => PumpingMode::Enforce,
                "monitor" => PumpingMode::Monitor,
                "off" => PumpingMode::Off,
                other => {
                    return Err(self.at(
                        m,
                        "pumping.mode",
                        format!("unknown mode {other:?}; use \"enforce\", \"monitor\" or \"off\""),
                    ));
                }
            },
        };
        let min_conversion = match &p.min_conversion {
            None => d.min_conversion,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                return Err(self.at(
                    v,
                    "pumping.min_conversion",
                    format!(
                        "{} is not a share; write a number from 0.0 to 1.0, e.g. 0.2 for 20% verified",
                        v.get_ref()
                    ),
                ));
            }
        };
        let cap_range = 0..=1_000_000;
        let mut country_caps = HashMap::new();
        for (code, cap) in &p.country_caps {
            let Some(country) = phone::country(code) else {
                return Err(self.at(
                    cap,
                    &format!("pumping.country_caps.{code}"),
                    format!("{code:?} is not a region code; write two letters (ISO 3166-1), e.g. NG = 10"),
                ));
            };
            let key = format!("pumping.country_caps.{code}");
            let n = self.int(&Some(cap.clone()), &key, 0, cap_range.clone())?;
            country_caps.insert(country.as_ref().to_string(), n);
        }
        let secs = Duration::from_secs;
        let window = self.bounded(
            &p.window,
            "pumping.window",
            d.window,
            secs(60)..=secs(7 * 86_400),
        )?;
        // Sends must be judged before they leave the window.
        let answer_time = match &p.answer_time {
            None => d.answer_time.min(window / 2),
            Some(_) => self.bounded(
                &p.answer_time,
                "pumping.answer_time",
                d.answer_time,
                Duration::ZERO..=window / 2,
            )?,
        };
        Ok(PumpingSettings {
            mode,
            window,
            min_sends: self.int(
                &p.min_sends,
                "pumping.min_sends",
                d.min_sends,
                1..=1_000_000,
            )?,
            min_conversion,
            answer_time,
            quarantine: self.bounded(
                &p.quarantine,
                "pumping.quarantine",
                d.quarantine,
                secs(1)..=secs(30 * 86_400),
            )?,
            default_country_cap: self.int(
                &p.default_country_cap,
                "pumping.default_country_cap",
                d.default_country_cap,
                cap_range,
            )?,
            country_caps,
        })
    }
}

/// Whether two listeners would be the same socket: the same non-zero port on
/// the same address, or on any address when either is the wildcard. Port 0
/// asks the system for a free port, so two of them never clash.
fn clashes(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
