//! The gateway's own endpoints under `/.otpgate/`: the code page, code
//! checks, resends (`resend`), assets and the sandbox inbox; `page`
//! renders the code page for all of them. The health checks (`health`) are
//! answered before any app is looked up.

pub mod health;
mod page;
mod resend;

use std::sync::Arc;

use http::header::{CONTENT_TYPE, HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::GateError;
use crate::events::OtpEvent;
use crate::gate::credentials;
use crate::gate::standing::{self, Standing};
use crate::http::body::{Body, empty, full};
use crate::http::headers::ClientView;
use crate::otp::{Status, Verdict};
use crate::phone::Number;
use crate::sending;
use crate::state::{App, State};
use crate::text::Text;
use crate::web::pages::{self, Back, Notice, SandboxPage};
use crate::{gate::factor, web::csrf, web::redirect};

use page::{after_send, no_phone, page_ctx, usable_number};

pub use crate::names::{PREFIX, endpoint_url, verify_url};
/// Largest form body accepted by the gateway's endpoints.
const MAX_FORM: usize = 8 * 1024;

/// The one link of an error page answering a request for `uri`: for our
/// own endpoints the code page, going on to the same `rd`; else the site.
pub fn error_back(t: &'static Text, uri: &http::Uri) -> Back {
    if !uri.path().starts_with(PREFIX) {
        return Back {
            href: "/".into(),
            label: t.back,
        };
    }
    let rd = query_param(uri.query().unwrap_or(""), "rd").unwrap_or_default();
    Back {
        href: verify_url(redirect::sanitize(&rd)),
        label: t.back_to_code,
    }
}

pub async fn serve(
    state: &Arc<State>,
    app: &App,
    view: &ClientView,
    req: Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    let path = &req.uri().path()[PREFIX.len()..];
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    match path {
        "verify" if read_only => code_page(state, app, view, &req).await,
        "verify" if req.method() == Method::POST => check_code(state, app, view, req).await,
        "resend" if req.method() == Method::POST => resend::resend(state, app, view, req).await,
        "verify" | "resend" => Err(GateError::MethodNotAllowed),
        "status" if read_only => status(state, app, view, &req).await,
        "sandbox" if read_only => match state.providers.sandbox() {
            Some(sandbox) => Ok(pages::html(
                StatusCode::OK,
                &SandboxPage {
                    t: state.text,
                    messages: sandbox.messages(),
                },
            )),
            None => Err(GateError::NotFound),
        },
        _ if read_only && path.starts_with("static/") => {
            pages::asset(&path["static/".len()..]).ok_or(GateError::NotFound)
        }
        _ => Err(GateError::NotFound),
    }
}

/// Who is at the code page.
enum Visitor {
    /// No app session, or the app says not logged in: back to the app.
    NotLoggedIn,
    /// Already proven: back to where they were going.
    Proven,
    User(User),
}

struct User {
    session: [u8; 32],
    name: String,
    phone: Option<String>,
    /// Identifies this app's and user's pending code.
    pending: [u8; 32],
}

impl User {
    fn recipient<'a>(&'a self, number: &'a Number) -> sending::Recipient<'a> {
        sending::Recipient {
            user: &self.name,
            pending: &self.pending,
            number,
        }
    }
}

async fn visitor<B>(
    state: &State,
    app: &App,
    view: &ClientView,
    req: &Request<B>,
) -> Result<Visitor, GateError> {
    let creds = credentials::read(state, app, req, None);
    Ok(match standing::of(state, app, &creds, view).await? {
        Standing::NoSession | Standing::Anonymous(_) => Visitor::NotLoggedIn,
        Standing::Proven(_) => Visitor::Proven,
        Standing::Unproven {
            session,
            name,
            phone,
            ..
        } => {
            let pending = state.account_key(app.index, &name);
            Visitor::User(User {
                session,
                name,
                phone,
                pending,
            })
        }
    })
}

async fn code_page(
    state: &Arc<State>,
    app: &App,
    view: &ClientView,
    req: &Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    let query = req.uri().query().unwrap_or("");
    let rd_raw = query_param(query, "rd").unwrap_or_default();
    let rd = redirect::sanitize(&rd_raw);
    let user = match visitor(state, app, view, req).await? {
        Visitor::NotLoggedIn | Visitor::Proven => return Ok(see_other(rd)),
        Visitor::User(u) => u,
    };
    let Some(number) = usable_number(state, app, view, &user) else {
        return Ok(no_phone(state, app));
    };
    let page = page_ctx(state, app, rd, &user, &number);
    // A locked account gets no code at all until the lock ends.
    if let Some(locked) = state.abuse.account_locked(&user.pending).await {
        let who = page.who(&user, &number, view);
        state.events.emit(&who, OtpEvent::SendLimited(locked));
        return Ok(page.limited(locked).await);
    }
    let again = query_param(query, "m").as_deref() == Some("resent");
    // A HEAD (a link checker, a prefetch probe) never sends a message.
    if state.otp.status(&user.pending).await == Status::Alive || req.method() == Method::HEAD {
        let notice = again.then(|| Notice::ok(state.text.sent_to(&page.masked, true)));
        return Ok(page.render(StatusCode::OK, notice, false).await);
    }
    // Arriving with no live code sends one; a reload finds it alive and does not.
    let outcome = sending::code(
        state,
        app,
        view,
        &user.recipient(&number),
        sending::Mode::IfNone,
        sending::Pick::Preferred,
    )
    .await;
    Ok(after_send(&page, outcome, view).await)
}

/// The delivery of the latest message, for the page to follow without
/// reloading: JSON, polled every few seconds.
async fn status(
    state: &State,
    app: &App,
    view: &ClientView,
    req: &Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    let user = match visitor(state, app, view, req).await? {
        Visitor::NotLoggedIn | Visitor::Proven => {
            return Ok(json(&serde_json::json!({"progress": "done"})));
        }
        Visitor::User(u) => u,
    };
    let t = state.text;
    let delivery = state.deliveries.view(&user.pending).await;
    let progress = delivery.as_ref().map(|v| v.progress());
    let number_id = user
        .phone
        .as_deref()
        .and_then(|n| Number::parse(n).ok())
        .map(|n| state.number_id(&n));
    let fallback_in = state.deliveries.fallback_in(&user.pending).await;
    let resend_in = match number_id {
        Some(id) => crate::text::ceil_secs(state.limiter.cooldown_left(&id).await),
        None => 0,
    };
    Ok(json(&serde_json::json!({
        "progress": progress.map_or("none", |p| p.as_str()),
        "channel": delivery.as_ref().map(|v| v.channel.as_str()),
        "text": delivery.as_ref().zip(progress).map(|(v, p)| t.delivery(v.channel, p)),
        "alternatives": progress.is_some_and(|p| p.offers_alternatives()),
        "fallback_in": fallback_in.map(crate::text::ceil_secs),
        "resend_in": resend_in,
    })))
}

fn json(value: &serde_json::Value) -> Response<Body> {
    let mut res = Response::new(full(value.to_string()));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

type Form = std::collections::HashMap<String, String>;

/// How a form post starts: read the form, and know who posts it.
enum Posted {
    /// Not logged in, or already proven: the answer is a redirect.
    Done(Response<Body>),
    By(Box<Post>),
}

struct Post {
    req: Request<()>,
    form: Form,
    rd: String,
    user: User,
}

/// Reads a post's form, finds where to go next and who posts it, and
/// checks its CSRF token.
async fn posted(
    state: &State,
    app: &App,
    view: &ClientView,
    req: Request<Incoming>,
) -> Result<Posted, GateError> {
    let (req, form) = read_form(req, state.settings.server.body_read_timeout).await?;
    let rd = redirect::sanitize(form.get("rd").map_or("/", String::as_str)).to_string();
    let user = match visitor(state, app, view, &req).await? {
        Visitor::NotLoggedIn | Visitor::Proven => return Ok(Posted::Done(see_other(&rd))),
        Visitor::User(u) => u,
    };
    let expected = csrf::token(state, app, &user.session);
    let given = form.get("csrf").map_or("", String::as_str);
    csrf::check(req.headers(), view.https, &view.host, &expected, given)?;
    Ok(Posted::By(Box::new(Post {
        req,
        form,
        rd,
        user,
    })))
}

async fn check_code(
    state: &State,
    app: &App,
    view: &ClientView,
    req: Request<Incoming>,
) -> Result<Response<Body>, GateError> {
    let Post { form, rd, user, .. } = match posted(state, app, view, req).await? {
        Posted::Done(res) => return Ok(res),
        Posted::By(post) => *post,
    };
    let Some(number) = usable_number(state, app, view, &user) else {
        return Ok(no_phone(state, app));
    };
    let page = page_ctx(state, app, &rd, &user, &number);
    let t = state.text;
    let who = page.who(&user, &number, view);
    let emit = |e: OtpEvent<'_>| state.events.emit(&who, e);
    if let Some(locked) = state.abuse.account_locked(&user.pending).await {
        emit(OtpEvent::CheckLimited(locked));
        return Ok(page.limited(locked).await);
    }
    if let Err(limited) = state.abuse.allow_verify(&state.ip_key(view.ip)).await {
        emit(OtpEvent::CheckLimited(limited));
        return Ok(page.limited(limited).await);
    }
    let submitted = form.get("code").map_or("", String::as_str);
    let verdict = state.otp.verify(&user.pending, submitted).await;
    if matches!(verdict, Verdict::Wrong { .. } | Verdict::Locked)
        && state
            .abuse
            .record_failure(&user.pending, &app.cfg.name, &user.name)
            .await
    {
        emit(OtpEvent::AccountLocked);
    }
    // A dead code's sealed fallback copy goes with it (`fallback`).
    if matches!(verdict, Verdict::Correct | Verdict::Locked) {
        state.deliveries.code_died(&user.pending, None).await;
    }
    Ok(match verdict {
        Verdict::Correct => {
            state.abuse.record_success(&user.pending).await;
            // An account that entered its code is an office's user, not an
            // attacker's: it no longer counts against the address.
            state
                .abuse
                .code_entered(&state.ip_key(view.ip), &user.pending)
                .await;
            state
                .pumping
                .record_verified(&number, &page.number_id)
                .await;
            emit(OtpEvent::Verified);
            let lifetime = state.settings.server.second_factor_lifetime;
            // The app named this user for this session a moment ago.
            app.confirm(user.session, &user.name).await;
            let mut res = see_other(&rd);
            set_cookie(
                &mut res,
                &factor::issue(
                    &state.keys,
                    app.index,
                    &user.name,
                    &user.session,
                    (state.clock.now_ms() / 1000, lifetime),
                    view.https,
                ),
            );
            set_cookie(&mut res, &removal_on_prefix(view.https));
            res
        }
        Verdict::Wrong { attempts_left } => {
            emit(OtpEvent::Failed { attempts_left });
            page.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::error(t.wrong_code(attempts_left))),
                true,
            )
            .await
        }
        Verdict::Locked => {
            emit(OtpEvent::CodeLocked);
            page.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::error(t.locked)),
                true,
            )
            .await
        }
        Verdict::NoCode => {
            emit(OtpEvent::Expired);
            page.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::error(t.expired)),
                false,
            )
            .await
        }
        Verdict::Malformed => {
            page.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::error(t.malformed_code(state.otp.length()))),
                true,
            )
            .await
        }
    })
}

/// Reads a small urlencoded form; the request comes back without its body.
async fn read_form(
    req: Request<Incoming>,
    deadline: std::time::Duration,
) -> Result<(Request<()>, Form), GateError> {
    let (parts, body) = req.into_parts();
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(GateError::BadRequest(
            "this endpoint takes a form (application/x-www-form-urlencoded)",
        ));
    }
    let bytes =
        crate::http::body::read_limited(body, MAX_FORM, deadline, "the form could not be read")
            .await?;
    let form = form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((Request::from_parts(parts, ()), form))
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn see_other(location: &str) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

fn set_cookie(res: &mut Response<Body>, cookie: &cookie::Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Deletes the sealed pending code once it has served its purpose.
fn removal_on_prefix(secure: bool) -> cookie::Cookie<'static> {
    let mut c = factor::removal(crate::names::PENDING_COOKIE, secure);
    c.set_path(PREFIX);
    c
}

fn plain(text: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut res = Response::new(full(text));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}
