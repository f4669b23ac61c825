//! `otpgate demo`: a small "legacy app" with its own login and no second
//! factor, served on loopback at the configured upstream address, with the
//! gateway in front of it using the sandbox provider.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use http::header::{CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::TryRngCore;
use tokio::net::TcpListener;

use crate::config::{self, ProviderSettings};
use crate::http::body::{Body, full};

/// The shipped config.toml, used when no file is found.
const DEFAULT_CONFIG: &str = include_str!("../../config.toml");

/// The demo's users: name, password, phone.
const USERS: [(&str, &str, &str); 2] = [
    ("alice", "wonderland", "+31612345678"),
    ("bob", "builder", "+4915112345678"),
];

/// Where the demo listens, instead of what the configuration says; port 0
/// lets the system pick a free port (the printed URLs say which).
#[derive(clap::Args, Debug, Default)]
pub struct Ports {
    /// The gateway's address (instead of `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The demo app's address (instead of the first app's `upstream`).
    #[arg(long, value_name = "ADDR")]
    pub app_listen: Option<SocketAddr>,
    /// The admin API's address (instead of `[admin] listen`); "off" turns it off.
    #[arg(long, value_name = "ADDR|off", value_parser = admin_listen)]
    pub admin_listen: Option<AdminListen>,
}

/// `--admin-listen`: an address, or off.
#[derive(Debug, Clone, Copy)]
pub struct AdminListen(Option<SocketAddr>);

fn admin_listen(text: &str) -> Result<AdminListen, String> {
    if text == "off" {
        return Ok(AdminListen(None));
    }
    text.parse()
        .map(|a| AdminListen(Some(a)))
        .map_err(|e| format!("{e}: give IP:PORT or \"off\""))
}

pub async fn run(config_path: &Path, ports: Ports) -> ExitCode {
    let loaded = if config_path.exists() {
        config::load(config_path)
    } else {
        config::parse(DEFAULT_CONFIG, "config.toml (built in)", Path::new("."))
    };
    let mut settings = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    crate::cli::init_logging(Some(&settings.log));
    // The demo never sends real messages, whatever the file says.
    settings.sms.providers = vec![ProviderSettings::Sandbox];
    // Ports that are taken (a demo already running, another service) fall
    // back to free ones; the printed URLs say which.
    settings.server.listen = ports
        .listen
        .unwrap_or_else(|| free_or_any(settings.server.listen));
    match ports.admin_listen {
        Some(AdminListen(Some(addr))) => settings.admin.listen = Some(addr),
        Some(AdminListen(None)) => {
            settings.admin.listen = None;
            settings.admin.socket = None;
        }
        None => {
            if let Some(path) = &settings.admin.socket
                && std::os::unix::net::UnixStream::connect(path).is_ok()
            {
                println!(
                    "  (another otpgate answers on {}: this demo runs without the admin API)",
                    path.display()
                );
                settings.admin.socket = None;
            }
        }
    }
    let upstream = settings.apps[0].upstream.authority.as_str().to_string();
    let Some(app_addr) = ports
        .app_listen
        .or_else(|| upstream.parse().ok().map(free_or_any))
    else {
        eprintln!(
            "demo: the first app's upstream {upstream:?} must be an IP address and port on this machine"
        );
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(app_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: cannot start the demo app on {app_addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // With port 0 only the bound listener knows the port the gateway must use.
    let app_addr = listener.local_addr().unwrap_or(app_addr);
    settings.apps[0].upstream.authority = match app_addr.to_string().parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("demo: {app_addr} is not usable as an upstream: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(serve_legacy_app(listener));
    crate::cli::serve_then(settings, |gate| {
        println!();
        println!("  otpgate demo");
        println!("  The legacy app (no second factor):  http://{app_addr}/");
        println!("  The same app behind otpgate:        http://{gate}/");
        println!("  Log in as alice / wonderland or bob / builder.");
        println!("  The sandbox phone (codes appear here): http://{gate}/.otpgate/sandbox");
        println!("  Stop with Ctrl-C.");
        println!();
    })
    .await
}

/// `addr` if nothing listens there now, else the same address with port 0
/// (the system picks a free one). A look, not a reservation: whatever binds
/// in between makes the real bind fail with a clear message.
fn free_or_any(addr: SocketAddr) -> SocketAddr {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => addr,
        Err(_) => SocketAddr::new(addr.ip(), 0),
    }
}

type Sessions = Arc<Mutex<HashMap<String, &'static str>>>;

/// Serves the demo app on `listener` until the process ends.
pub async fn serve_legacy_app(listener: TcpListener) {
    let sessions: Sessions = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sessions = sessions.clone();
                async move { Ok::<_, std::convert::Infallible>(legacy_app(sessions, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn legacy_app(sessions: Sessions, req: Request<Incoming>) -> Response<Body> {
    let sid = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == "sessionid")
        .map(|c| c.value().to_string());
    let user = sid.as_ref().and_then(|s| {
        sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(s)
            .copied()
    });
    let seen_by_gate = req
        .headers()
        .get("x-otpgate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/api/me") => match user.and_then(|u| USERS.iter().find(|x| x.0 == u)) {
            Some((name, _, phone)) => json(
                StatusCode::OK,
                &serde_json::json!({ "username": name, "phone": phone }),
            ),
            None => json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({ "error": "not logged in" }),
            ),
        },
        (Method::GET, "/login") => page(StatusCode::OK, "Log in", LOGIN_FORM),
        (Method::POST, "/login") => {
            let bytes = match Limited::new(req.into_body(), 4096).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return page(StatusCode::PAYLOAD_TOO_LARGE, "Log in", "Too much data."),
            };
            let form: HashMap<String, String> =
                form_urlencoded::parse(&bytes).into_owned().collect();
            let found = USERS.iter().find(|(u, p, _)| {
                form.get("username").is_some_and(|x| x == u)
                    && form.get("password").is_some_and(|x| x == p)
            });
            let Some((name, _, _)) = found else {
                return page(
                    StatusCode::UNAUTHORIZED,
                    "Log in",
                    &format!("<p>Wrong name or password.</p>{LOGIN_FORM}"),
                );
            };
            let mut bytes = [0u8; 16];
            if rand::rngs::OsRng.try_fill_bytes(&mut bytes).is_err() {
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Log in",
                    "No randomness.",
                );
            }
            let sid: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(sid.clone(), name);
            redirect(
                "/",
                Some(&format!("sessionid={sid}; Path=/; HttpOnly; SameSite=Lax")),
            )
        }
        (Method::POST, "/logout") => {
            if let Some(s) = sid {
                sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&s);
            }
            redirect("/login", Some("sessionid=; Path=/; Max-Age=0"))
        }
        (Method::GET, "/static/app.css") => {
            let mut res = Response::new(full(
                "body{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}",
            ));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/css"));
            res
        }
        (Method::GET, "/") | (Method::GET, "/reports") => match user {
            None => redirect("/login", None),
            Some(name) => {
                let gate = match seen_by_gate {
                    Some(u) => format!(
                        "otpgate vouched for <b>{}</b> with a second factor.",
                        escape(&u)
                    ),
                    None => "This request did not come through otpgate.".to_string(),
                };
                let body = format!(
                    "<p>Hello, <b>{name}</b>. {gate}</p><p><a href=\"/\">Home</a> · <a href=\"/reports\">Reports</a> · <a href=\"/api/me\">/api/me</a></p><form method=\"post\" action=\"/logout\"><button>Log out</button></form>"
                );
                page(
                    StatusCode::OK,
                    if req.uri().path() == "/" {
                        "Demo CRM"
                    } else {
                        "Quarterly reports"
                    },
                    &body,
                )
            }
        },
        _ => page(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>No such page. <a href=\"/\">Home</a></p>",
        ),
    }
}

const LOGIN_FORM: &str = "<form method=\"post\" action=\"/login\"><p><label>Name <input name=\"username\" autocomplete=\"username\" autofocus></label></p><p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p><button>Log in</button></form><p>Try alice / wonderland or bob / builder.</p>";

fn page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><link rel=\"stylesheet\" href=\"/static/app.css\"><h1>{title}</h1>{body}</html>"
    );
    let mut res = Response::new(full(html));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut res = Response::new(full(v.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn redirect(to: &'static str, cookie: Option<&str>) -> Response<Body> {
    let mut res = Response::new(full(""));
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        res.headers_mut().insert(SET_COOKIE, c);
    }
    res
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
