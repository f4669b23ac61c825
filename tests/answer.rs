//! Reading who-am-I answers (`answer::read`), as tables: each row an
//! answer an app gives and what otpgate must conclude from it. A user is
//! never made up from an answer that names nobody.

use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{Full, StreamBody};
use otpgate::config::{self, AppSettings};
use otpgate::gate::answer::{self, MAX_ANSWER, PhoneFrom, Why};
use otpgate::gate::identity::Identity;

/// The `[[apps]]` table of a configuration with `keys` for its answer.
fn app(keys: &str) -> AppSettings {
    app_in(Path::new("."), keys)
}

fn app_in(dir: &Path, keys: &str) -> AppSettings {
    let text = format!(
        "[sms]\nproviders = [\"sandbox\"]\n\n[[apps]]\nname = \"App\"\nupstream = \"http://127.0.0.1:9\"\nsession_cookie = \"s\"\nuserinfo_path = \"/me\"\n{keys}\n"
    );
    let mut settings = config::parse(&text, "test.toml", dir).expect("the test config is valid");
    settings.apps.remove(0)
}

async fn read(app: &AppSettings, status: u16, headers: HeaderMap, body: &str) -> answer::Reading {
    let status = StatusCode::from_u16(status).unwrap();
    answer::read(
        app,
        status,
        &headers,
        Full::new(Bytes::from(body.to_string())),
    )
    .await
    .expect("a usable answer")
}

fn user(name: &str, phone: Option<&str>) -> Identity {
    Identity::User {
        name: name.into(),
        phone: phone.map(Into::into),
    }
}

const JSON: &str = "user_pointer = \"/actor/id\"\nphone_pointer = \"/actor/phone\"";

#[tokio::test]
async fn a_json_answer_that_names_nobody_is_anonymous_and_never_a_made_up_user() {
    let app = app(JSON);
    for body in [
        r#"{"actor": null}"#,
        r#"{"actor": {"id": null}}"#,
        r#"{"actor": {"id": ""}}"#,
        r#"{"actor": {"id": "   "}}"#,
        r#"{"actor": {"id": false}}"#,
        r#"{"actor": {}}"#,
        r#"{}"#,
        r#"[]"#,
    ] {
        let r = read(&app, 200, HeaderMap::new(), body).await;
        assert_eq!(r.identity, Identity::Anonymous, "{body}");
        assert!(matches!(r.why, Why::NoUser(_)), "{body}: {:?}", r.why);
    }
}

#[tokio::test]
async fn a_json_answer_with_a_name_is_that_user_with_the_answers_phone() {
    let app = app(JSON);
    let r = read(
        &app,
        200,
        HeaderMap::new(),
        r#"{"actor": {"id": "alice", "phone": "+31612345678"}}"#,
    )
    .await;
    assert_eq!(r.identity, user("alice", Some("+31612345678")));
    assert_eq!(r.why, Why::User(PhoneFrom::Answer));
    let r = read(&app, 200, HeaderMap::new(), r#"{"actor": {"id": 42}}"#).await;
    assert_eq!(r.identity, user("42", None), "a numeric id is a name");
}

#[tokio::test]
async fn an_anonymous_marker_that_is_set_makes_the_answer_anonymous_whatever_its_name() {
    let app = app(
        "user_pointer = \"/user/name\"\nanonymous_pointer = \"/user/anon\"\nphone = \"+31612345678\"",
    );
    let anonymous = [
        r#"{"user": {"id": 0, "anon": true, "name": "203.0.113.9"}}"#,
        r#"{"user": {"anon": 1, "name": "guest"}}"#,
        r#"{"user": {"anon": "yes", "name": "guest"}}"#,
    ];
    for body in anonymous {
        let r = read(&app, 200, HeaderMap::new(), body).await;
        assert_eq!(r.identity, Identity::Anonymous, "{body}");
        assert!(matches!(r.why, Why::Marker(_)), "{body}");
    }
    for body in [
        r#"{"user": {"anon": false, "name": "alice"}}"#,
        r#"{"user": {"anon": 0, "name": "alice"}}"#,
        r#"{"user": {"anon": null, "name": "alice"}}"#,
        r#"{"user": {"anon": "", "name": "alice"}}"#,
        r#"{"user": {"name": "alice"}}"#,
    ] {
        let r = read(&app, 200, HeaderMap::new(), body).await;
        assert_eq!(r.identity, user("alice", Some("+31612345678")), "{body}");
        assert_eq!(r.why, Why::User(PhoneFrom::Fixed), "{body}");
    }
}

#[tokio::test]
async fn refusals_and_redirects_mean_nobody_and_other_statuses_are_errors() {
    let app = app(JSON);
    for status in [301, 302, 303, 307, 401, 403] {
        let r = read(&app, status, HeaderMap::new(), "").await;
        assert_eq!(r.identity, Identity::Anonymous, "{status}");
    }
    for status in [404, 500, 503] {
        let res = answer::read(
            &app,
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            Full::new(Bytes::new()),
        )
        .await;
        assert!(res.is_err(), "{status} is not an answer about the user");
    }
}

#[tokio::test]
async fn a_json_pointer_at_an_object_is_an_error_not_a_user() {
    let app = app("user_pointer = \"/actor\"\nphone = \"+31612345678\"");
    let res = answer::read(
        &app,
        StatusCode::OK,
        &HeaderMap::new(),
        Full::new(Bytes::from(r#"{"actor": {"id": "alice"}}"#)),
    )
    .await;
    let err = res.expect_err("an object is no name").to_string();
    assert!(err.contains("an object"), "{err}");
}

const HTML: &str = "userinfo_format = \"html\"\nuser_pattern = 'Welcome,\\s*<strong>([^<]+)</strong>'\nphone_pattern = 'data-phone=\"([^\"]+)\"'";

#[tokio::test]
async fn a_page_names_the_user_through_the_pattern_with_entities_decoded() {
    let app = app(HTML);
    let page = "<div id=\"user-tools\">\n  Welcome,\n  <strong>O&#x27;Brien &amp; Co</strong>.\n <span data-phone=\"+31612345678\"></span>";
    let r = read(&app, 200, HeaderMap::new(), page).await;
    assert_eq!(r.identity, user("O'Brien & Co", Some("+31612345678")));
}

#[tokio::test]
async fn a_page_without_a_match_is_anonymous() {
    let app = app(HTML);
    for page in ["<h1>Log in</h1>", "Welcome, <strong> </strong>", ""] {
        let r = read(&app, 200, HeaderMap::new(), page).await;
        assert_eq!(r.identity, Identity::Anonymous, "{page:?}");
        assert!(
            matches!(&r.why, Why::NoUser(w) if w.contains("matched nothing")),
            "{:?}",
            r.why
        );
    }
}

#[tokio::test]
async fn a_page_is_read_only_up_to_the_cap_and_a_user_beyond_it_is_not_seen() {
    let app = app(HTML);
    // The body arrives in many frames; reading stops at the cap.
    let frames: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> =
        (0..(MAX_ANSWER / 1024 + 8))
            .map(|_| Ok(hyper::body::Frame::data(Bytes::from(vec![b' '; 1024]))))
            .chain(std::iter::once(Ok(hyper::body::Frame::data(
                Bytes::from_static(b"Welcome, <strong>late</strong>"),
            ))))
            .collect();
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let r = answer::read(&app, StatusCode::OK, &HeaderMap::new(), body)
        .await
        .unwrap();
    assert_eq!(r.identity, Identity::Anonymous);
    assert!(
        matches!(&r.why, Why::NoUser(w) if w.contains("first 256 KiB")),
        "{:?}",
        r.why
    );
}

#[tokio::test]
async fn a_json_answer_beyond_the_cap_is_an_error() {
    let app = app(JSON);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_ANSWER));
    let res = answer::read(
        &app,
        StatusCode::OK,
        &HeaderMap::new(),
        Full::new(Bytes::from(big)),
    )
    .await;
    assert!(res.unwrap_err().to_string().contains("256 KiB"));
}

#[tokio::test]
async fn a_header_answer_names_the_user_in_its_field_and_nobody_without_it() {
    let app = app(
        "userinfo_format = \"header\"\nuser_header = \"X-Remote-User\"\nphone_header = \"X-Remote-Phone\"",
    );
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", HeaderValue::from_static(" alice "));
    h.insert("x-remote-phone", HeaderValue::from_static("+31612345678"));
    let r = read(&app, 204, h, "").await;
    assert_eq!(r.identity, user("alice", Some("+31612345678")));
    let r = read(&app, 200, HeaderMap::new(), "anything").await;
    assert_eq!(r.identity, Identity::Anonymous);
}

#[tokio::test]
async fn the_phone_comes_from_the_answer_then_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        "[users]\nalice = \"+4915112345678\"\n",
    )
    .unwrap();
    let app = app_in(
        dir.path(),
        "user_pointer = \"/name\"\nphone_pointer = \"/phone\"\nusers_file = \"users.toml\"",
    );
    let r = read(
        &app,
        200,
        HeaderMap::new(),
        r#"{"name": "alice", "phone": "+31612345678"}"#,
    )
    .await;
    assert_eq!(r.why, Why::User(PhoneFrom::Answer));
    let r = read(&app, 200, HeaderMap::new(), r#"{"name": "alice"}"#).await;
    assert_eq!(r.identity, user("alice", Some("+4915112345678")));
    assert_eq!(r.why, Why::User(PhoneFrom::UsersFile));
    let r = read(&app, 200, HeaderMap::new(), r#"{"name": "bob"}"#).await;
    assert_eq!(r.identity, user("bob", None));
    assert!(matches!(&r.why, Why::User(PhoneFrom::Nowhere(w)) if w.contains("not in users_file")));
}
