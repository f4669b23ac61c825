//! The code page as every answer that shows it renders it: the form, where
//! the latest message stands, the resend line, and the page for a limit
//! that holds. One rule keeps a refusal page from contradicting itself: the
//! resend line never offers a new code before the refusal ends.

use std::time::Duration;

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

use crate::config::Channel;
use crate::delivery::sms;
use crate::events::{OtpEvent, Who};
use crate::http::body::Body;
use crate::http::headers::ClientView;
use crate::otp::limits::{self, Window};
use crate::otp::{self, Status};
use crate::phone::Number;
use crate::sending::Outcome;
use crate::state::{App, State};
use crate::web::pages::{self, Alternative, MessagePage, Notice, VerifyPage};

use super::{User, endpoint_url, set_cookie, verify_url};

/// The page state shared by every answer that shows the code form.
pub(super) struct PageCtx<'a> {
    pub state: &'a State,
    pub app: &'a App,
    pub csrf: String,
    pub rd: &'a str,
    pub masked: String,
    pub number_id: [u8; 32],
    /// The pending code's key (app and user).
    pub key: [u8; 32],
    /// The channels that reach this number, in order of preference.
    pub channels: &'a [Channel],
}

impl PageCtx<'_> {
    /// The page with the reason a limit holds, how long it holds, and
    /// `Retry-After` (RFC 9110 §10.2.3). Its resend line counts down the
    /// same wait (issue 12: never "You can ask for a new code now" beside
    /// "Please try again in 46 seconds").
    pub async fn limited(&self, l: limits::Limited) -> Response<Body> {
        let t = self.state.text;
        let template = match l.window {
            Window::Cooldown => t.wait_cooldown,
            Window::Hour => t.wait_hour,
            Window::Day => t.wait_day,
            Window::NetworkMinute | Window::NetworkHour | Window::NetworkAccounts => t.wait_network,
            Window::Account => t.wait_account,
            Window::Pumping => t.wait_pumping,
        };
        let notice = Notice::error(t.wait(template, l.wait));
        let mut res = self
            .page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(notice),
                false,
                Some(l.wait),
            )
            .await;
        res.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from(crate::text::ceil_secs(l.wait)),
        );
        res
    }

    /// Who an event of this page is about.
    pub fn who<'s>(&'s self, user: &'s User, number: &'s Number, view: &'s ClientView) -> Who<'s> {
        Who::subject(
            &self.app.cfg.name,
            &user.name,
            number,
            &self.number_id,
            view,
        )
    }

    pub async fn render(
        &self,
        status: StatusCode,
        notice: Option<Notice>,
        invalid: bool,
    ) -> Response<Body> {
        self.page(status, notice, invalid, None).await
    }

    /// `held`: a limit refuses sends for that long, whatever the cooldown says.
    async fn page(
        &self,
        status: StatusCode,
        notice: Option<Notice>,
        invalid: bool,
        held: Option<Duration>,
    ) -> Response<Body> {
        let code_alive = self.state.otp.status(&self.key).await == Status::Alive;
        let cooldown = self.state.limiter.cooldown_left(&self.number_id).await;
        let wait = held.map_or(cooldown, |h| h.max(cooldown));
        let t = self.state.text;
        let view = self.state.deliveries.view(&self.key).await;
        let progress = view.as_ref().map(|v| v.progress());
        let page = VerifyPage {
            t: self.state.text,
            app: &self.app.cfg.name,
            notice,
            sent_to: Some(self.state.text.sent_to(&self.masked, false)),
            code_alive,
            invalid,
            csrf: &self.csrf,
            rd: self.rd,
            verify_action: verify_url(self.rd),
            resend_action: endpoint_url("resend", self.rd),
            length: self.state.otp.length(),
            wait: crate::text::ceil_secs(wait),
            resend_later: t.resend_later(wait),
            held: held.is_some(),
            delivery: view
                .as_ref()
                .zip(progress)
                .map(|(v, p)| t.delivery(v.channel, p))
                .unwrap_or_default(),
            progress: progress.map_or("none", |p| p.as_str()),
            show_alternatives: progress.is_some_and(|p| p.offers_alternatives()),
            alternatives: self
                .channels
                .iter()
                .map(|c| Alternative {
                    channel: c.as_str(),
                    label: t.send_by(*c),
                })
                .collect(),
        };
        pages::html(status, &page)
    }
}

pub(super) fn page_ctx<'a>(
    state: &'a State,
    app: &'a App,
    rd: &'a str,
    user: &User,
    number: &Number,
) -> PageCtx<'a> {
    PageCtx {
        state,
        app,
        csrf: crate::web::csrf::token(state, app, &user.session),
        rd,
        masked: number.masked(),
        number_id: state.number_id(number),
        key: user.pending,
        channels: sms::channels_for(&state.settings.sms, number),
    }
}

pub(super) async fn after_send(
    page: &PageCtx<'_>,
    outcome: Outcome,
    view: &ClientView,
) -> Response<Body> {
    let t = page.state.text;
    let uncertain = matches!(outcome, Outcome::Uncertain(_));
    match outcome {
        Outcome::Sent(code, _) | Outcome::Uncertain(code) => {
            let notice = uncertain.then(|| Notice::error(t.send_uncertain));
            let mut res = page.render(StatusCode::OK, notice, false).await;
            // The user's sealed copy, so a resend repeats this code.
            let ttl = page.state.settings.otp.ttl;
            set_cookie(
                &mut res,
                &otp::seal(&page.state.keys, &code, ttl, view.https),
            );
            res
        }
        Outcome::AlreadyAlive => page.render(StatusCode::OK, None, false).await,
        Outcome::CountryRefused => pages::html(
            StatusCode::FORBIDDEN,
            &MessagePage {
                t,
                app: Some(&page.app.cfg.name),
                title: t.title,
                message: t.country_refused,
                back: "/",
                back_label: t.back,
                reference: None,
            },
        ),
        Outcome::Limited(l) => page.limited(l).await,
        Outcome::Failed => {
            page.render(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Notice::error(t.send_failed)),
                false,
            )
            .await
        }
    }
}

/// The user's number if it is usable; says why not otherwise.
pub(super) fn usable_number(
    state: &State,
    app: &App,
    view: &ClientView,
    user: &User,
) -> Option<Number> {
    let why = match user.phone.as_deref().map(Number::parse) {
        Some(Ok(number)) => return Some(number),
        Some(Err(e)) => e.to_string(),
        None => "is missing".to_string(),
    };
    let who = Who::user(&app.cfg.name, &user.name, view);
    state.events.emit(&who, OtpEvent::NoPhone { why: &why });
    None
}

pub(super) fn no_phone(state: &State, app: &App) -> Response<Body> {
    let t = state.text;
    let page = MessagePage {
        t,
        app: Some(&app.cfg.name),
        title: t.title,
        message: t.no_phone,
        back: "/",
        back_label: t.back,
        reference: None,
    };
    pages::html(StatusCode::CONFLICT, &page)
}
