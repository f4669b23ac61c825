//! `otpgate explain`: the gate's decision for one request, step by step,
//! against the live app. It calls the app's who-am-I path for real (the
//! answer is the whole point) and sends no message. A wrong pointer, or an
//! API that ignores cookies, silently means no second factor at all; this
//! is where a sysadmin sees it before users do.
//!
//! Never printed: a cookie's value, a full phone number.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use http::header::{COOKIE, HOST, HeaderValue};
use http::{Request, Uri};

use crate::config::Settings;
use crate::error::GateError;
use crate::gate::answer::{PhoneFrom, Reading, Why};
use crate::gate::credentials::{self, Credentials};
use crate::gate::identity::{self, Identity};
use crate::http::headers::{self, ClientView, Peer};
use crate::phone::{self, Number};
use crate::state::{App, State};
use crate::{http::cookies, keys, web::routes};

/// Exit codes, in the order of severity; several `--cookie` runs exit with
/// the worst.
pub const DECIDED: u8 = 0;
/// A decision, with warnings of a likely misconfiguration.
pub const WARNED: u8 = 1;
/// The configuration or the command line is wrong (as `check-config`).
pub const BAD_INPUT: u8 = 2;
/// No decision: no app for the host, or the app could not be reached or
/// its answer could not be used (the gate would answer 421, 502 or 504).
pub const UNDECIDED: u8 = 3;

/// What one run concluded about the user, for comparing runs.
struct Outcome {
    code: u8,
    user: Option<String>,
}

pub async fn run(settings: Settings, url: &str, cookie_sets: &[String]) -> ExitCode {
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => return bad(&format!("{url:?} is not a URL")),
    };
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return bad("--url must start with http:// or https://"),
    };
    let Some(authority) = uri.authority().map(|a| a.as_str().to_string()) else {
        return bad("--url has no host");
    };
    let secret = match keys::load(&settings.server.secret_file) {
        Ok(s) => Some(s),
        Err(e) => {
            println!(
                "note: {e}; an otpgate cookie cannot be checked (run as the user otpgate runs as)"
            );
            None
        }
    };
    let secret = secret.unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
    let state = match State::new(settings, &secret) {
        Ok(s) => s,
        Err(e) => return bad(&format!("the SMS provider clients cannot be built: {e}")),
    };
    let no_cookie = [String::new()];
    let sets = if cookie_sets.is_empty() {
        &no_cookie[..]
    } else {
        cookie_sets
    };
    let mut outcomes = Vec::new();
    for (i, cookie) in sets.iter().enumerate() {
        if sets.len() > 1 {
            println!("\n== --cookie number {}", i + 1);
        }
        outcomes.push(explain_one(&state, &uri, &authority, https, cookie).await);
    }
    let mut code = outcomes.iter().map(|o| o.code).max().unwrap_or(DECIDED);
    let users: Vec<&str> = outcomes.iter().filter_map(|o| o.user.as_deref()).collect();
    if users.len() >= 2 && users.iter().all(|u| *u == users[0]) {
        warn(&format!(
            "every --cookie was taken for the same user {:?}: if they are different people's sessions, the user rule picks something that does not vary (the app's name, the owner's account)",
            users[0]
        ));
        code = code.max(WARNED);
    } else if users.len() == 1 && sets.len() == 1 {
        println!(
            "hint: to check that the user varies with the session, run again with a second --cookie from another user's session"
        );
    }
    ExitCode::from(code)
}

fn bad(message: &str) -> ExitCode {
    eprintln!("otpgate explain: {message}");
    ExitCode::from(BAD_INPUT)
}

fn warn(message: &str) {
    println!("warning: {message}");
}

async fn explain_one(
    state: &State,
    uri: &Uri,
    authority: &str,
    https: bool,
    cookie: &str,
) -> Outcome {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::get(target).header(HOST, authority);
    if !cookie.is_empty() {
        builder = builder.header(COOKIE, cookie);
    }
    let Ok(req) = builder.body(()) else {
        println!("the --cookie or --url cannot be sent in an HTTP request");
        return Outcome {
            code: BAD_INPUT,
            user: None,
        };
    };
    // The request is explained as if from this machine, directly.
    let peer = Peer::new(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let trusted = &state.settings.server.trusted_proxies;
    let view = ClientView::new(req.headers(), Some(authority), &peer, https, trusted);
    println!("request: GET {target} on host {authority}, as a browser navigation");

    let hostname = headers::host_without_port(&view.host).to_ascii_lowercase();
    let Some(app) = state.app_for(&hostname) else {
        println!("1. app: none serves host {hostname:?}");
        println!("decision: 421, no application is configured for this host");
        return Outcome {
            code: UNDECIDED,
            user: None,
        };
    };
    println!(
        "1. app: {:?} (upstream {}, who-am-I {}, userinfo_format = \"{}\")",
        app.cfg.name,
        app.cfg.upstream.authority,
        app.cfg.userinfo_path,
        app.cfg.userinfo.format()
    );
    let decided = |user| Outcome {
        code: DECIDED,
        user,
    };
    if req.uri().path().starts_with(crate::names::PREFIX) {
        println!("decision: otpgate's own page (code page, assets); the app is not involved");
        return decided(None);
    }
    let creds = credentials::read(state, app, &req, None);
    if app.bypasses(req.uri().path()) {
        println!("2. bypass: yes, under one of {:?}", app.cfg.bypass);
        println!("decision: pass to the app without any check");
        return decided(None);
    }
    println!("2. bypass: no");
    let sent = cookie_names(creds.forward.as_ref());
    if creds.session.is_none() {
        println!(
            "3. session cookie: {:?} not found (the app would be sent: {})",
            app.cfg.session_cookie.to_string(),
            list(&sent)
        );
        println!("decision: pass to the app untouched (it shows its login)");
        if !cookie.is_empty() {
            warn(&format!(
                "the cookies given hold no {:?}: if the app's session cookie has another name, fix session_cookie",
                app.cfg.session_cookie.to_string()
            ));
            return Outcome {
                code: WARNED,
                user: None,
            };
        }
        return decided(None);
    }
    println!(
        "3. session cookie: {:?} found; the app is sent the cookies {}",
        app.cfg.session_cookie.to_string(),
        list(&sent)
    );
    match (
        &creds.user,
        cookies::get(req.headers(), crate::names::FACTOR_COOKIE),
    ) {
        (Some(user), _) => {
            println!(
                "4. second factor: the otpgate cookie proves it for {user:?} with this very session"
            );
            println!(
                "decision: pass to the app with X-Otpgate-User: {user} (the gateway checks that the app still names {user} at most every recheck_interval, and after anything that may have logged someone in)"
            );
            return decided(Some(user.clone()));
        }
        (None, Some(_)) => println!(
            "4. second factor: an otpgate cookie is there but proves nothing for this session (another session, expired, or another secret)"
        ),
        (None, None) => println!("4. second factor: no otpgate cookie"),
    }
    explain_identity(state, app, &creds, &view, target).await
}

async fn explain_identity(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
    target: &str,
) -> Outcome {
    let reading = ask(state, app, creds, view).await;
    println!(
        "5. who-am-I: GET http://{}{} with Host {} and the cookies above",
        app.cfg.upstream.authority, app.cfg.userinfo_path, view.host
    );
    let reading = match reading {
        Ok(r) => r,
        Err(e) => {
            println!("   failed: {e}");
            println!(
                "decision: {}, the gate cannot tell who this is",
                e.status().as_u16()
            );
            return Outcome {
                code: UNDECIDED,
                user: None,
            };
        }
    };
    println!("   answered HTTP {}", reading.status.as_u16());
    println!("6. rules: {}", reading.why);
    let mut code = DECIDED;
    let mut warned = |m: &str| {
        warn(m);
        code = WARNED;
    };
    let (name, phone) = match &reading.identity {
        Identity::Anonymous => {
            println!("decision: pass to the app as anonymous (no second factor is asked)");
            if reading.status.is_success() {
                let why = match &reading.why {
                    Why::NoUser(what) => what.clone(),
                    other => other.to_string(),
                };
                warned(&format!(
                    "the session cookie was sent and the app answered 2xx, yet the rules found nobody ({why}). If this session is logged in, the rule matched nothing or this API may ignore cookies (some take only API keys): then every visitor passes without a second factor"
                ));
            }
            return Outcome { code, user: None };
        }
        Identity::User { name, phone } => (name, phone),
    };
    let shown = match phone.as_deref().map(|p| (p, Number::parse(p))) {
        Some((_, Ok(n))) => format!("phone {}", n.masked()),
        Some((p, Err(e))) => format!("phone {} that {e}", phone::mask(p)),
        None => "no phone".to_string(),
    };
    println!("   user {name:?}, {shown}");
    let usable = phone.as_deref().is_some_and(|p| Number::parse(p).is_ok());
    println!(
        "decision: a browser navigation gets 303 to {}, where {}; an XHR, a POST or an API client gets 401 second_factor_required",
        routes::verify_url(target),
        if usable {
            "a code is texted (explain sends none)"
        } else {
            "the page answers 409: the phone number on file is not usable"
        }
    );
    if name.parse::<IpAddr>().is_ok() || *name == view.ip.to_string() {
        warned(&format!(
            "the user name {name:?} is an IP address: apps often name anonymous visitors after their address; if so, set anonymous_pointer to the answer's \"nobody\" marker"
        ));
    }
    if let Why::User(PhoneFrom::Nowhere(why)) = &reading.why
        && app.cfg.userinfo.has_phone()
    {
        warned(&format!("the phone rule matched nothing: {why}"));
    }
    // An answer that names a user even without cookies does not depend on
    // the session at all.
    let nobody = Credentials {
        session: None,
        user: None,
        forward: None,
        had_cookies: false,
        suspicious: None,
    };
    if let Ok(Reading {
        identity: Identity::User { name: other, .. },
        ..
    }) = ask(state, app, &nobody, view).await
    {
        warned(&format!(
            "without any cookie the who-am-I path still names the user {other:?}: its answer does not depend on the session, so the rules would take every visitor with a session cookie for a user"
        ));
    }
    Outcome {
        code,
        user: Some(name.clone()),
    }
}

async fn ask(
    state: &State,
    app: &App,
    creds: &Credentials,
    view: &ClientView,
) -> Result<Reading, GateError> {
    tokio::time::timeout(
        state.settings.server.upstream_timeout,
        identity::ask_reading(state, app, creds, view),
    )
    .await
    .map_err(|_| GateError::UpstreamTimeout)?
}

/// The names of the cookies in a `Cookie` field, never their values.
fn cookie_names(field: Option<&HeaderValue>) -> Vec<String> {
    let Some(text) = field.and_then(|f| f.to_str().ok()) else {
        return Vec::new();
    };
    text.split(';')
        .filter_map(|pair| pair.split('=').next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
