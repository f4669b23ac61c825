//! The configuration keys about sessions: the session cookie by name or by
//! prefix, `login_paths`, `recheck_interval` and `body_read_timeout`. Each
//! mistake names the file, the line and the key and says what to write.

fn config(server: &str, app: &str) -> String {
    format!(
        r#"[server]
{server}

[sms]
providers = ["sandbox"]

[[apps]]
name = "App"
upstream = "http://127.0.0.1:8080"
userinfo_path = "/me"
user_pointer = "/user"
phone = "+31612345678"
{app}
"#
    )
}

fn parse(text: &str) -> Result<otpgate::config::Settings, otpgate::config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    otpgate::config::parse(text, "otpgate.toml", dir.path())
}

/// Expects a refusal at the line holding `needle`, naming `key`, saying `hint`.
fn refused(text: &str, needle: &str, key: &str, hint: &str) {
    let err = parse(text).expect_err(needle);
    let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(err.file, "otpgate.toml");
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(err.key, key, "{err}");
    assert!(err.to_string().contains(hint), "{err}");
}

#[test]
fn a_session_cookie_ending_in_a_star_is_a_prefix_and_a_plain_name_is_exact() {
    use otpgate::config::SessionCookie;
    let s = parse(&config("", "session_cookie = \"wordpress_logged_in_*\"")).unwrap();
    assert_eq!(
        s.apps[0].session_cookie,
        SessionCookie::Prefix("wordpress_logged_in_".into())
    );
    let s = parse(&config("", "session_cookie = \"sessionid\"")).unwrap();
    assert_eq!(
        s.apps[0].session_cookie,
        SessionCookie::Exact("sessionid".into())
    );
}

#[test]
fn a_session_cookie_pattern_that_is_only_a_star_or_has_two_is_refused_at_its_line() {
    for pattern in ["*", "a*b*", "**"] {
        let text = config("", &format!("session_cookie = \"{pattern}\""));
        refused(
            &text,
            "session_cookie",
            "apps.session_cookie",
            "followed by one `*`",
        );
    }
}

#[test]
fn a_session_cookie_pattern_that_covers_otpgate_s_own_cookie_is_refused() {
    for pattern in ["otp*", "otpgate", "otpgate_*"] {
        let text = config("", &format!("session_cookie = \"{pattern}\""));
        refused(
            &text,
            "session_cookie",
            "apps.session_cookie",
            "otpgate's own cookie",
        );
    }
}

#[test]
fn login_paths_must_be_paths_on_the_app() {
    let text = config(
        "",
        "session_cookie = \"sid\"\nlogin_paths = [\"sso/callback\"]",
    );
    refused(
        &text,
        "login_paths",
        "apps.login_paths",
        "starting with \"/\"",
    );
    let text = config(
        "",
        "session_cookie = \"sid\"\nlogin_paths = [\"/.otpgate/verify\"]",
    );
    refused(&text, "login_paths", "apps.login_paths", "/.otpgate/");
    let s = parse(&config(
        "",
        "session_cookie = \"sid\"\nlogin_paths = [\"/sso\"]",
    ))
    .unwrap();
    assert_eq!(s.apps[0].login_paths, ["/sso"]);
}

#[test]
fn recheck_interval_defaults_to_five_minutes_and_is_bounded() {
    let s = parse(&config("", "session_cookie = \"sid\"")).unwrap();
    assert_eq!(s.apps[0].recheck_interval.as_secs(), 300);
    let s = parse(&config(
        "",
        "session_cookie = \"sid\"\nrecheck_interval = \"0s\"",
    ))
    .unwrap();
    assert!(s.apps[0].recheck_interval.is_zero(), "0 turns it off");
    let text = config("", "session_cookie = \"sid\"\nrecheck_interval = \"2d\"");
    refused(&text, "recheck_interval", "apps.recheck_interval", "");
    let text = config("", "session_cookie = \"sid\"\nrecheck_interval = \"often\"");
    refused(&text, "recheck_interval", "apps.recheck_interval", "");
}

#[test]
fn body_read_timeout_defaults_to_ten_seconds_and_is_bounded() {
    let s = parse(&config("", "session_cookie = \"sid\"")).unwrap();
    assert_eq!(s.server.body_read_timeout.as_secs(), 10);
    let text = config("body_read_timeout = \"1ms\"", "session_cookie = \"sid\"");
    refused(&text, "body_read_timeout", "server.body_read_timeout", "");
}
