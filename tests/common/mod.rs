//! Test fixtures: a fake legacy app and a fake DIDfarm API, both real HTTP
//! servers on loopback, and a gateway started in-process in front of them.
#![allow(dead_code)]

pub mod delivery;
pub mod legacy;
pub mod twilio;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type TestBody = BoxBody<Bytes, std::io::Error>;

/// The fake app's sessions: token → (user, phone).
pub type Sessions = HashMap<String, (String, Option<String>)>;

fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// What the fake app saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, Vec<String>>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// The "legacy app": sessions by cookie `sessionid`, a who-am-I at
/// `/api/me`, and endpoints to probe the proxy with.
#[derive(Clone, Default)]
pub struct FakeApp {
    pub addr: Option<SocketAddr>,
    /// session token → (user, phone)
    pub sessions: Arc<Mutex<Sessions>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub me_calls: Arc<AtomicU64>,
    /// Extra Set-Cookie headers to send on every response.
    pub set_cookies: Arc<Mutex<Vec<String>>>,
    /// Extra response headers (name, value) to send on every response.
    pub response_headers: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeApp {
    pub async fn start() -> Self {
        let mut app = FakeApp::default();
        let handler_app = app.clone();
        let addr = serve(move |req| {
            let app = handler_app.clone();
            async move { app.handle(req).await }
        })
        .await;
        app.addr = Some(addr);
        app
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    /// Logs `user` in and returns the session cookie value.
    pub fn login(&self, user: &str, phone: Option<&str>) -> String {
        let token = format!("sess-{user}-{}", rand_suffix());
        self.sessions
            .lock()
            .unwrap()
            .insert(token.clone(), (user.into(), phone.map(Into::into)));
        token
    }

    pub fn logout(&self, token: &str) {
        self.sessions.lock().unwrap().remove(token);
    }

    /// Requests that reached the app, excluding who-am-I calls.
    pub fn hits(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path != "/api/me")
            .cloned()
            .collect()
    }

    pub fn hits_on(&self, path: &str) -> usize {
        self.hits().iter().filter(|s| s.path == path).count()
    }

    async fn handle(&self, mut req: Request<Incoming>) -> Response<TestBody> {
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in req.headers() {
            headers
                .entry(k.as_str().to_string())
                .or_default()
                .push(String::from_utf8_lossy(v.as_bytes()).into());
        }
        let path = req.uri().path().to_string();
        self.seen.lock().unwrap().push(Seen {
            method: req.method().to_string(),
            path: path.clone(),
            headers: headers.clone(),
        });
        let session = headers
            .get("cookie")
            .into_iter()
            .flatten()
            .flat_map(|c| c.split(';'))
            .filter_map(|p| p.trim().strip_prefix("sessionid="))
            .map(str::to_string)
            .next();
        let who = session
            .as_ref()
            .and_then(|s| self.sessions.lock().unwrap().get(s).cloned());
        let mut res = match (req.method().clone(), path.as_str()) {
            (Method::GET, "/api/me") => {
                self.me_calls.fetch_add(1, Ordering::SeqCst);
                match who {
                    Some((user, phone)) => {
                        json(200, serde_json::json!({ "username": user, "phone": phone }))
                    }
                    None => json(401, serde_json::json!({ "error": "login required" })),
                }
            }
            (Method::POST, "/logout") => {
                if let Some(s) = &session {
                    self.logout(s);
                }
                let mut r = text(200, "bye");
                r.headers_mut().append(
                    "set-cookie",
                    "sessionid=; Path=/; Max-Age=0".parse().unwrap(),
                );
                r
            }
            (_, "/echo") => {
                let body = req
                    .body_mut()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                json(
                    200,
                    serde_json::json!({ "method": req.method().as_str(), "headers": headers, "body_len": body.len() }),
                )
            }
            (Method::POST, "/upload") => {
                // Counts the body as it streams in, never holding it whole.
                let mut total = 0u64;
                let mut body = req.into_body();
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => total += f.data_ref().map_or(0, |d| d.len() as u64),
                        Err(_) => return text(400, "body error"),
                    }
                }
                text(200, &total.to_string())
            }
            (Method::GET, "/big") => {
                let n: usize = req
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("n="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1 << 20);
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = n / chunk.len();
                let stream = futures_util::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
                );
                Response::new(StreamBody::new(stream).boxed())
            }
            (Method::GET, "/slow") => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                text(200, "slow")
            }
            (Method::GET, "/ws") => return websocket_echo(req),
            _ => text(200, &format!("app page {path}")),
        };
        for c in self.set_cookies.lock().unwrap().iter() {
            res.headers_mut().append("set-cookie", c.parse().unwrap());
        }
        for (name, value) in self.response_headers.lock().unwrap().iter() {
            res.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        res
    }
}

/// Accepts a WebSocket upgrade and echoes every message.
fn websocket_echo(mut req: Request<Incoming>) -> Response<TestBody> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return text(400, "not a websocket request");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use futures_util::{SinkExt, StreamExt};
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .unwrap()
}

pub fn json(status: u16, v: serde_json::Value) -> Response<TestBody> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

pub fn text(status: u16, t: &str) -> Response<TestBody> {
    let mut r = Response::new(full(t.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst) * 7919 + std::process::id() as u64
}

/// How the fake DIDfarm answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMode {
    Accept,
    Fail(u16),
    Hang,
}

/// One message the fake DIDfarm received.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub test_header: Option<String>,
    /// "sms" or "whatsapp", from the endpoint it came to.
    pub channel: &'static str,
    pub json: serde_json::Value,
}

impl Received {
    pub fn body(&self) -> &str {
        self.json["body"].as_str().unwrap_or("")
    }

    /// The code in the message: the template variable of a WhatsApp
    /// message, else the digits after the SMS's last '#'.
    pub fn code(&self) -> String {
        if let Some(code) = self.json["variables"]["code"].as_str() {
            return code.to_string();
        }
        self.body()
            .rsplit('#')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

#[derive(Clone)]
pub struct FakeDidfarm {
    pub addr: SocketAddr,
    pub mode: Arc<Mutex<ProviderMode>>,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// How long an accepted message takes to be answered (and counted).
    pub delay: Arc<Mutex<Duration>>,
}

impl FakeDidfarm {
    pub async fn start() -> Self {
        let mode = Arc::new(Mutex::new(ProviderMode::Accept));
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let (m, r, d) = (mode.clone(), received.clone(), delay.clone());
        let addr = serve(move |req: Request<Incoming>| {
            let (mode, received, delay) = (m.clone(), r.clone(), d.clone());
            async move {
                let channel = match req.uri().path() {
                    "/api/v1/sms/messages" => "sms",
                    "/api/v1/whatsapp/messages" => "whatsapp",
                    _ => return text(404, "no such endpoint"),
                };
                if req.method() != Method::POST {
                    return text(405, "POST only");
                }
                let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (authorization, test_header) = (h("authorization"), h("x-didfarm-test"));
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let current = *mode.lock().unwrap();
                match current {
                    ProviderMode::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        text(500, "too late")
                    }
                    ProviderMode::Fail(status) => json_status(status, serde_json::json!({"error": {"message": "simulated failure"}})),
                    ProviderMode::Accept => {
                        let delay = *delay.lock().unwrap();
                        tokio::time::sleep(delay).await;
                        let id = {
                            let mut list = received.lock().unwrap();
                            list.push(Received { authorization, test_header, channel, json: json.clone() });
                            format!("msg_{}", list.len())
                        };
                        json_status(200, serde_json::json!({"data": {"message_id": id, "to": json["to"], "status": "queued", "segments": 1}}))
                    }
                }
            }
        })
        .await;
        Self {
            addr,
            mode,
            received,
            delay,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: ProviderMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Answers (and counts) each accepted message only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// The codes of every message received, in order.
    pub fn codes(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(Received::code)
            .collect()
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a message was sent")
    }
}

impl FakeDidfarm {
    /// Posts a `message.status_update` for the `index`th message (from 0)
    /// to the webhook URL it came with, at the gateway's address, as
    /// DIDfarm would; returns the gateway's status code.
    pub async fn report(&self, gateway: SocketAddr, index: usize, status: &str) -> u16 {
        let webhook = self.received.lock().unwrap()[index].json["webhook_url"]
            .as_str()
            .expect("the message asked for status reports")
            .to_string();
        let mut event = serde_json::json!({
            "event": "message.status_update",
            "data": {"message_id": format!("msg_{}", index + 1), "to": "+31612345678", "status": status, "error_code": null}
        });
        if status == "failed" {
            event["data"]["error_code"] = "30003".into();
            event["data"]["error_message"] = "Unreachable destination handset".into();
        }
        post_to_gateway(
            gateway,
            &webhook,
            "application/json",
            event.to_string(),
            &[],
        )
        .await
    }
}

/// Posts `body` to the path of `url` at the gateway's address.
pub async fn post_to_gateway(
    gateway: SocketAddr,
    url: &str,
    content_type: &str,
    body: String,
    headers: &[(&str, &str)],
) -> u16 {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .expect("an absolute URL");
    let mut req = plain_client()
        .post(format!("http://{gateway}{path}"))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn json_status(status: u16, v: serde_json::Value) -> Response<TestBody> {
    json(status, v)
}

/// A running gateway with its fakes.
pub struct Env {
    pub app: FakeApp,
    pub sms: FakeDidfarm,
    pub addr: SocketAddr,
    /// The admin API's address (`[admin] listen` is on port 0 in tests).
    pub admin: Option<SocketAddr>,
    /// The metrics listener's address, when `[metrics]` is on.
    pub metrics: Option<SocketAddr>,
    /// The configuration the gateway was started with.
    pub config: String,
    pub dir: tempfile::TempDir,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// `Gateway::serve`'s task: it ends after `shutdown` and the grace.
    pub served: Option<tokio::task::JoinHandle<()>>,
    pub state: Arc<otpgate::state::State>,
}

/// An `[audit]` table for [`Env::with`]: the log at [`Env::audit_path`].
pub const AUDIT: &str = "[audit]\npath = \"audit.jsonl\"\n";

/// The configuration tests start from; `extra` is appended and may
/// override tables by redefining keys in new tables (`[otp]` etc. are left
/// out here so tests can add them).
pub fn config_text(app: &str, sms: &str, dir: &std::path::Path, tables: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
secret_file = "{secret}"
upstream_timeout = "2s"
connect_timeout = "1s"
shutdown_grace = "1s"

# Port 0: tests run in parallel and must not collide on 9090.
[admin]
listen = "127.0.0.1:0"

[sms]
provider = "didfarm"
from = "+31201234567"
timeout = "1s"

[sms.didfarm]
base_url = "{sms}"
api_key = "test-key"
test_mode = true

[[apps]]
name = "Test CRM"
host = "*"
upstream = "{app}"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
bypass = ["/static/", "/login"]
{tables}
"#,
        secret = dir.join("otpgate.key").display()
    )
}

impl Env {
    pub async fn start() -> Self {
        Self::with("").await
    }

    /// Starts with extra top-level TOML tables (`[otp]`, `[limits]`, ...).
    pub async fn with(tables: &str) -> Self {
        Self::with_config(|text| format!("{tables}\n{text}")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Where [`AUDIT`] puts the audit log.
    pub fn audit_path(&self) -> std::path::PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// A browser: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        client_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A browser already logged in to the app as `user` (phone +31612345678).
    pub fn logged_in(&self, user: &str) -> (reqwest::Client, String) {
        self.logged_in_with_phone(user, Some("+31612345678"))
    }

    pub fn logged_in_with_phone(
        &self,
        user: &str,
        phone: Option<&str>,
    ) -> (reqwest::Client, String) {
        let token = self.app.login(user, phone);
        let jar = Arc::new(reqwest::cookie::Jar::default());
        jar.add_cookie_str(
            &format!("sessionid={token}; Path=/"),
            &self.url("/").parse().unwrap(),
        );
        let client = client_builder()
            .cookie_provider(jar)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (client, token)
    }
}

/// The user agent of [`Env::logged_in`] browsers.
pub const USER_AGENT: &str = "Mozilla/5.0 (otpgate tests)";

/// Browser-like GET of a page.
pub async fn navigate(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap()
}

/// The CSRF token in a code page.
pub fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field")
        + 19;
    html[start..].split('"').next().unwrap().to_string()
}

/// Opens the code page (which sends a code) and returns its CSRF token.
pub async fn open_code_page(env: &Env, client: &reqwest::Client) -> String {
    let res = navigate(client, &env.url("/.otpgate/verify?rd=%2Freports")).await;
    let html = res.text().await.unwrap();
    csrf_of(&html)
}

/// Opens the code page as a new user `user` with `phone`; the response.
pub async fn ask_code(env: &Env, user: &str, phone: &str) -> reqwest::Response {
    let (client, _) = env.logged_in_with_phone(user, Some(phone));
    navigate(&client, &env.url("/.otpgate/verify?rd=%2F")).await
}

/// Submits a code; returns the response.
pub async fn submit_code(
    env: &Env,
    client: &reqwest::Client,
    csrf: &str,
    code: &str,
) -> reqwest::Response {
    client
        .post(env.url("/.otpgate/verify"))
        .form(&[("code", code), ("csrf", csrf), ("rd", "/reports")])
        .send()
        .await
        .unwrap()
}

/// Logs in, receives the code and enters it: an unlocked browser.
pub async fn unlocked(env: &Env, user: &str) -> reqwest::Client {
    let (client, _) = env.logged_in(user);
    let csrf = open_code_page(env, &client).await;
    let code = env.sms.last().code();
    let res = submit_code(env, &client, &csrf, &code).await;
    assert_eq!(res.status(), 303, "the right code unlocks");
    client
}

/// Posts the resend form of the code page.
pub async fn resend(env: &Env, client: &reqwest::Client, csrf: &str) -> reqwest::Response {
    client
        .post(env.url("/.otpgate/resend"))
        .form(&[("csrf", csrf), ("rd", "/reports")])
        .send()
        .await
        .unwrap()
}

/// A code that is not `code`.
pub fn wrong(code: &str) -> String {
    if code.starts_with('0') {
        code.replacen('0', "1", 1)
    } else {
        format!("0{}", &code[1..])
    }
}

/// The configuration with the (first) app's upstream replaced by `url`.
pub fn with_upstream(text: &str, url: &str) -> String {
    let start = text.find("upstream = \"").expect("the app has an upstream") + 12;
    let end = start + text[start..].find('"').unwrap();
    format!("{}{url}{}", &text[..start], &text[end..])
}

/// Adds `keys` (TOML lines) to the `[server]` table of a configuration made
/// by [`config_text`], right after its `listen` line.
pub fn with_server_keys(text: &str, keys: &str) -> String {
    const LISTEN: &str = "listen = \"127.0.0.1:0\"\n";
    assert!(
        text.contains(LISTEN),
        "the configuration has the base listen line"
    );
    text.replacen(LISTEN, &format!("{LISTEN}{keys}\n"), 1)
}

impl Env {
    /// Starts with the base configuration as changed by `edit`, for tests
    /// that need other `[server]` keys or other apps than [`Env::with`] allows.
    pub async fn with_config(edit: impl FnOnce(String) -> String) -> Self {
        Self::with_config_and_clock(edit, otpgate::store::system_clock()).await
    }

    /// As [`Env::with`], with the gateway's stores timed by `clock` (a
    /// `ManualClock` the test moves instead of sleeping).
    pub async fn with_clock(tables: &str, clock: otpgate::store::SharedClock) -> Self {
        Self::with_config_and_clock(|text| format!("{tables}\n{text}"), clock).await
    }

    /// As [`Env::with_config`], with the stores timed by `clock`.
    pub async fn with_config_and_clock(
        edit: impl FnOnce(String) -> String,
        clock: otpgate::store::SharedClock,
    ) -> Self {
        let app = FakeApp::start().await;
        let sms = FakeDidfarm::start().await;
        let dir = tempfile::tempdir().unwrap();
        let text = edit(config_text(&app.url(), &sms.url(), dir.path(), ""));
        let settings =
            otpgate::config::parse(&text, "test.toml", dir.path()).expect("test config is valid");
        let gw = otpgate::Gateway::bind_with_clock(settings, clock)
            .await
            .expect("gateway binds");
        let addr = gw.local_addr();
        let state = gw.state();
        let admin = gw.admin_addr();
        let metrics = gw.metrics_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(gw.serve(async move {
            let _ = rx.await;
        }));
        Env {
            served: Some(served),
            app,
            sms,
            addr,
            admin,
            metrics,
            config: text,
            dir,
            shutdown: Some(tx),
            state,
        }
    }
}

/// One HTTP/1.1 request sent exactly as given (no URL normalisation, no
/// added headers; set `host` yourself), on a fresh connection.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    send_on(&mut keep_alive(addr).await, method, target, headers).await
}

/// An HTTP/1.1 connection kept open for several requests in a row.
pub type KeepAlive = hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>;

pub async fn keep_alive(addr: SocketAddr) -> KeepAlive {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One request sent exactly as given on `conn`; answers are read in full.
pub async fn send_on(
    conn: &mut KeepAlive,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    conn.ready().await.expect("the connection is still open");
    let mut req = Request::builder().method(method).uri(target);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = conn
        .send_request(req.body(http_body_util::Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// The `Set-Cookie` lines of a response.
pub fn set_cookies_of(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// A session that has passed the second factor, as cookie values.
#[derive(Debug, Clone)]
pub struct Unlocked {
    /// The app's session cookie value (`sessionid`).
    pub session: String,
    /// The gateway's `otpgate` cookie value.
    pub otpgate: String,
    /// The whole `Set-Cookie` line that issued the `otpgate` cookie.
    pub set_cookie: String,
}

impl Unlocked {
    /// The `Cookie` header a browser would send with both cookies.
    pub fn cookie_header(&self) -> String {
        format!("sessionid={}; otpgate={}", self.session, self.otpgate)
    }
}

/// Logs `user` in at the app and passes the second factor through the
/// gateway at `base` ("http://..." or "https://...") with explicit `Cookie`
/// headers, so it works with any `client` (no cookie store needed).
pub async fn unlock_by_hand(
    env: &Env,
    client: &reqwest::Client,
    base: &str,
    user: &str,
) -> Unlocked {
    let session = env.app.login(user, Some("+31612345678"));
    let cookie = format!("sessionid={session}");
    let page = client
        .get(format!("{base}/.otpgate/verify?rd=%2F"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the code page opens");
    let csrf = csrf_of(&page.text().await.unwrap());
    let code = env.sms.last().code();
    let res = client
        .post(format!("{base}/.otpgate/verify"))
        .header("cookie", &cookie)
        .form(&[
            ("code", code.as_str()),
            ("csrf", csrf.as_str()),
            ("rd", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the right code unlocks");
    let set_cookie = set_cookies_of(res.headers())
        .into_iter()
        .find(|c| c.starts_with("otpgate="))
        .expect("the verify answer sets the otpgate cookie");
    let otpgate = set_cookie["otpgate=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    Unlocked {
        session,
        otpgate,
        set_cookie,
    }
}

/// `reqwest::Client::builder()` once the process has its TLS provider
/// (reqwest is built without one and panics when none is installed).
pub fn client_builder() -> reqwest::ClientBuilder {
    otpgate::http::tls::install_default_provider();
    reqwest::Client::builder()
}

/// A client without cookie store that does not follow redirects.
pub fn plain_client() -> reqwest::Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A log sink the test can read back.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs the test binary's global subscriber on first use and returns
/// its sink: everything of otpgate down to TRACE, INFO for the rest. No
/// timestamps: their digits could look like a code. Tests of one binary
/// share the sink, so each looks only for lines of its own.
pub fn capture_logs() -> Captured {
    static SINK: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Captured::default();
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,otpgate=trace"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .try_init()
            .expect("this test binary installs the only subscriber");
        sink
    })
    .clone()
}

/// The first audit record of `event` in [`Env::audit_path`], once it is
/// written (the writer is asynchronous; at most five seconds), and the
/// whole file as it was then.
pub async fn audit_record(env: &Env, event: &str) -> (serde_json::Value, String) {
    for _ in 0..100 {
        let text = std::fs::read_to_string(env.audit_path()).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["event"] == event);
        if let Some(record) = found {
            return (record, text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no {event} record in {} within 5 s",
        env.audit_path().display()
    );
}
