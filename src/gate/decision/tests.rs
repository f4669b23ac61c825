//! The decision table, without sockets: each row a request head and what
//! the app says of its session, and the decision it must come to.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

const CONFIG: &str = r#"
[sms]
providers = ["sandbox"]

[admin]
socket = ""

[[apps]]
name = "App"
upstream = "http://127.0.0.1:9"
session_cookie = "sid"
userinfo_path = "/me"
user_pointer = "/u"
phone = "+31612345678"
bypass = ["/static/"]
"#;

/// The app's answers, set by each row; counts the questions.
struct Table {
    answer: Mutex<Identity>,
    asked: AtomicUsize,
}

impl IdentitySource for Table {
    async fn identify(
        &self,
        _: &App,
        _: &Credentials,
        _: &ClientView,
        _: &[u8; 32],
    ) -> Result<Identity, GateError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(self.answer.lock().unwrap().clone())
    }
}

fn user(name: &str) -> Identity {
    Identity::User {
        name: name.into(),
        phone: None,
    }
}

struct Case {
    state: State,
    table: Table,
    peer: headers::Peer,
}

impl Case {
    fn new() -> Self {
        let settings = crate::config::parse(CONFIG, "t.toml", std::path::Path::new("."))
            .expect("the test configuration is valid");
        Self {
            state: State::new(settings, &[7; 64]).unwrap(),
            table: Table {
                answer: Mutex::new(Identity::Anonymous),
                asked: AtomicUsize::new(0),
            },
            peer: headers::Peer::new([127, 0, 0, 1].into()),
        }
    }

    fn answers(&self, identity: Identity) {
        *self.table.answer.lock().unwrap() = identity;
    }

    fn asked(&self) -> usize {
        self.table.asked.load(Ordering::SeqCst)
    }

    /// A `Cookie` field with session `sid` and, for `proof`, a valid
    /// factor cookie for that user and session.
    fn cookies(&self, sid: &str, proof: Option<&str>) -> String {
        let session = self
            .state
            .keys
            .session
            .of(&[&0u64.to_be_bytes(), sid.as_bytes()]);
        match proof {
            None => format!("sid={sid}"),
            Some(user) => {
                let c = crate::gate::factor::issue(
                    &self.state.keys,
                    0,
                    user,
                    &session,
                    (self.state.clock.now_ms() / 1000, Duration::from_secs(3600)),
                    false,
                );
                format!("sid={sid}; {}={}", c.name(), c.value())
            }
        }
    }

    async fn decide(&self, req: Request<()>) -> Result<Decided<'_>, GateError> {
        let id = http::HeaderValue::from_static("t-1");
        decide(
            &self.state,
            &self.table,
            (&self.peer, false, 0, &id),
            None,
            &req,
        )
        .await
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<()> {
    let mut b = Request::get(path)
        .header("host", "gate.test")
        .header("accept", "text/html");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(()).unwrap()
}

/// A short name for a decision, to compare rows by.
fn kind(d: &Decision<'_>) -> String {
    match d {
        Decision::Health(p) => format!("health {p:?}"),
        Decision::Webhook => "webhook".into(),
        Decision::Own(_) => "own".into(),
        Decision::Pass { proven, .. } => format!("pass proven={proven}"),
        Decision::SecondFactor {
            navigation,
            verify_url,
            stale_proof,
            ..
        } => format!("second factor navigation={navigation} {verify_url} stale={stale_proof}"),
    }
}

#[tokio::test]
async fn the_decision_table_without_a_proof() {
    let rows: [(&str, Option<&str>, Identity, &str, usize); 8] = [
        ("/.otpgate/verify", Some("sid=S"), user("alice"), "own", 0),
        (
            "/.otpgate/webhook/didfarm/t",
            None,
            user("alice"),
            "webhook",
            0,
        ),
        (
            "/static/app.css",
            Some("sid=S"),
            user("alice"),
            "pass proven=false",
            0,
        ),
        ("/reports", None, user("alice"), "pass proven=false", 0),
        (
            "/reports",
            Some("sid=S"),
            Identity::Anonymous,
            "pass proven=false",
            1,
        ),
        (
            "/reports",
            Some("sid=S"),
            user("alice"),
            "second factor navigation=true /.otpgate/verify?rd=%2Freports stale=false",
            1,
        ),
        // An ambiguous path under a bypass prefix is gated like any other.
        (
            "/static/../reports",
            Some("sid=S"),
            user("alice"),
            "second factor navigation=true /.otpgate/verify?rd=%2Fstatic%2F..%2Freports stale=false",
            1,
        ),
        (
            "/static/%252e%252e/x",
            Some("sid=S"),
            Identity::Anonymous,
            "pass proven=false",
            1,
        ),
    ];
    for (path, cookie, answer, expected, asked) in rows {
        let case = Case::new();
        case.answers(answer);
        let d = case.decide(get(path, cookie)).await.unwrap();
        assert_eq!(kind(&d.decision), expected, "{path} {cookie:?}");
        assert_eq!(
            case.asked(),
            asked,
            "{path} {cookie:?}: questions to the app"
        );
    }
}

#[tokio::test]
async fn an_api_request_without_a_factor_gets_the_401_kind_not_a_redirect() {
    let case = Case::new();
    case.answers(user("alice"));
    let req = Request::post("/api/save")
        .header("host", "gate.test")
        .header("cookie", "sid=S")
        .body(())
        .unwrap();
    let d = case.decide(req).await.unwrap();
    assert_eq!(
        kind(&d.decision),
        "second factor navigation=false /.otpgate/verify?rd=%2Fapi%2Fsave stale=false"
    );
}

#[tokio::test]
async fn a_proof_is_confirmed_once_and_then_passes_without_asking_the_app() {
    let case = Case::new();
    case.answers(user("alice"));
    let cookie = case.cookies("S", Some("alice"));
    for _ in 0..3 {
        let d = case.decide(get("/reports", Some(&cookie))).await.unwrap();
        assert_eq!(kind(&d.decision), "pass proven=true");
    }
    assert_eq!(case.asked(), 1, "asked once, then confirmed");
}

#[tokio::test]
async fn a_proof_due_for_recheck_that_names_another_user_is_stale() {
    let case = Case::new();
    case.answers(user("alice"));
    let cookie = case.cookies("S", Some("alice"));
    let d = case.decide(get("/reports", Some(&cookie))).await.unwrap();
    assert_eq!(kind(&d.decision), "pass proven=true");
    // A login on the session (fixation) and the app names bob now.
    let session = case.state.keys.session.of(&[&0u64.to_be_bytes(), b"S"]);
    case.state.apps[0].may_have_logged_in(&session).await;
    case.answers(user("bob"));
    let d = case.decide(get("/reports", Some(&cookie))).await.unwrap();
    assert_eq!(
        kind(&d.decision),
        "second factor navigation=true /.otpgate/verify?rd=%2Freports stale=true"
    );
    assert_eq!(case.asked(), 2);
}

#[tokio::test]
async fn a_proof_for_another_session_proves_nothing() {
    let case = Case::new();
    case.answers(user("alice"));
    let other = case.cookies("OTHER", Some("alice"));
    let carried = other.replace("sid=OTHER", "sid=S");
    let d = case.decide(get("/reports", Some(&carried))).await.unwrap();
    assert!(
        kind(&d.decision).starts_with("second factor"),
        "{}",
        kind(&d.decision)
    );
}

#[tokio::test]
async fn health_checks_are_decided_before_the_host_is_looked_at() {
    let case = Case::new();
    let rows = [
        ("/.otpgate/healthz", None, "health Live"),
        ("/.otpgate/health", Some("10.0.0.5"), "health Live"),
        ("/.otpgate/readyz", Some("10.0.0.5"), "health Ready"),
    ];
    for (path, host, expected) in rows {
        let mut req = Request::get(path);
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let d = case.decide(req.body(()).unwrap()).await.unwrap();
        assert_eq!(kind(&d.decision), expected, "{path} {host:?}");
    }
    let other = Request::get("/.otpgate/readyz/x").body(()).unwrap();
    assert!(matches!(
        case.decide(other).await,
        Err(GateError::MissingHost)
    ));
}

#[tokio::test]
async fn malformed_requests_are_refused_before_any_decision() {
    let case = Case::new();
    let connect = Request::connect("gate.test:443")
        .header("host", "gate.test")
        .body(())
        .unwrap();
    assert!(matches!(
        case.decide(connect).await,
        Err(GateError::MethodNotAllowed)
    ));
    let no_host = Request::get("/").body(()).unwrap();
    assert!(matches!(
        case.decide(no_host).await,
        Err(GateError::MissingHost)
    ));
    let two_hosts = Request::get("/")
        .header("host", "a.test")
        .header("host", "b.test")
        .body(())
        .unwrap();
    assert!(matches!(
        case.decide(two_hosts).await,
        Err(GateError::BadRequest(_))
    ));
}
