//! `otpgate check-config` on the keys that say how a who-am-I answer names
//! the user and where the phone comes from: each mistake exits 2 with the
//! file, the line, the key and what to write; every README recipe passes.

use std::path::{Path, PathBuf};
use std::process::Command;

const BASE: &str = r#"[sms]
providers = ["sandbox"]

[[apps]]
name = "App"
upstream = "http://127.0.0.1:8080"
session_cookie = "sessionid"
userinfo_path = "/me"
"#;

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check_config(path: &Path) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Checks `BASE` + `keys` and expects exit 2 at the line holding
/// `line_needle`, naming `key`, with every hint.
fn assert_rejected_at(keys: &str, line_needle: &str, key: &str, hints: &[&str]) {
    let text = format!("{BASE}{keys}\n");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "users.toml",
        "[users]\nalice = \"+31612345678\"\n",
    );
    let path = write(dir.path(), "otpgate.toml", &text);
    let out = check_config(&path);
    assert_eq!(out.code, Some(2), "exit code; stderr: {}", out.stderr);
    let line = text
        .lines()
        .position(|l| l.contains(line_needle))
        .unwrap_or_else(|| panic!("{line_needle:?} is in the text"))
        + 1;
    let located = format!("{}:{line}: {key}", path.display());
    assert!(
        out.stderr.contains(&located),
        "expected {located:?} in: {}",
        out.stderr
    );
    for hint in hints {
        assert!(
            out.stderr.contains(hint),
            "expected {hint:?} in: {}",
            out.stderr
        );
    }
    assert!(!out.stdout.contains("OK"), "{}", out.stdout);
}

#[test]
fn a_pattern_that_does_not_compile_is_reported_with_why() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = 'Welcome, <strong>([^<]+</strong>'\nphone = \"+31612345678\"",
        "user_pattern",
        "apps.user_pattern",
        &["is not a regular expression", "unclosed"],
    );
}

#[test]
fn a_pattern_without_exactly_one_capture_group_is_reported() {
    for pattern in [
        "'Welcome, <strong>[^<]+</strong>'",
        "'(Welcome), <strong>([^<]+)</strong>'",
    ] {
        assert_rejected_at(
            &format!(
                "userinfo_format = \"html\"\nuser_pattern = {pattern}\nphone = \"+31612345678\""
            ),
            "user_pattern",
            "apps.user_pattern",
            &["capture groups", "exactly one", "(?:...)"],
        );
    }
}

#[test]
fn a_phone_pattern_without_a_capture_group_is_reported() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = '<b>(\\w+)</b>'\nphone_pattern = '\\+\\d+'",
        "phone_pattern",
        "apps.phone_pattern",
        &["0 capture groups"],
    );
}

#[test]
fn a_user_pattern_with_json_answers_is_reported_with_the_format_it_needs() {
    assert_rejected_at(
        "user_pointer = \"/name\"\nuser_pattern = '<b>(\\w+)</b>'\nphone = \"+31612345678\"",
        "user_pattern",
        "apps.user_pattern",
        &["userinfo_format = \"html\"", "\"json\" (the default)"],
    );
}

#[test]
fn a_user_header_without_the_header_format_is_reported() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = '<b>(\\w+)</b>'\nuser_header = \"X-Remote-User\"\nphone = \"+31612345678\"",
        "user_header",
        "apps.user_header",
        &["userinfo_format = \"header\""],
    );
}

#[test]
fn a_json_pointer_with_html_answers_is_reported() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = '<b>(\\w+)</b>'\nanonymous_pointer = \"/anon\"\nphone = \"+31612345678\"",
        "anonymous_pointer",
        "apps.anonymous_pointer",
        &["userinfo_format = \"json\""],
    );
}

#[test]
fn an_unknown_format_is_reported_with_the_formats_there_are() {
    assert_rejected_at(
        "userinfo_format = \"xml\"\nuser_pointer = \"/name\"\nphone = \"+31612345678\"",
        "userinfo_format",
        "apps.userinfo_format",
        &["\"json\"", "\"html\"", "\"header\""],
    );
}

#[test]
fn a_format_without_its_user_key_is_reported_with_an_example() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nphone = \"+31612345678\"",
        "[[apps]]",
        "apps.user_pattern",
        &["missing", "user_pattern = "],
    );
    assert_rejected_at(
        "phone = \"+31612345678\"",
        "[[apps]]",
        "apps.user_pointer",
        &["missing"],
    );
}

#[test]
fn a_header_name_that_is_not_one_is_reported() {
    assert_rejected_at(
        "userinfo_format = \"header\"\nuser_header = \"X Remote User\"\nphone = \"+31612345678\"",
        "user_header",
        "apps.user_header",
        &["not a header field name"],
    );
}

#[test]
fn a_phone_that_is_not_e164_is_reported_with_an_example() {
    for phone in ["0612345678", "+31 6 12345678", "+999123"] {
        assert_rejected_at(
            &format!("user_pointer = \"/name\"\nphone = \"{phone}\""),
            "phone =",
            "apps.phone",
            &["+31612345678"],
        );
    }
}

#[test]
fn a_fixed_phone_with_another_phone_source_is_reported_as_ambiguous() {
    assert_rejected_at(
        "user_pointer = \"/name\"\nusers_file = \"users.toml\"\nphone = \"+31612345678\"",
        "phone =",
        "apps.phone",
        &["ambiguous with users_file", "keep one"],
    );
    assert_rejected_at(
        "user_pointer = \"/name\"\nphone_pointer = \"/phone\"\nphone = \"+31612345678\"",
        "phone =",
        "apps.phone",
        &["ambiguous with phone_pointer"],
    );
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = '<b>(\\w+)</b>'\nphone_pattern = 'tel:(\\+\\d+)'\nphone = \"+31612345678\"",
        "phone =",
        "apps.phone",
        &["ambiguous with phone_pattern"],
    );
}

#[test]
fn an_app_without_any_phone_source_is_told_the_three_there_are() {
    assert_rejected_at(
        "userinfo_format = \"html\"\nuser_pattern = '<b>(\\w+)</b>'",
        "[[apps]]",
        "apps.phone_pattern",
        &["no phone source", "users_file", "phone (one number"],
    );
}

#[test]
fn every_recipe_in_the_readme_passes_the_check() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("### Recipes, by kind of app").unwrap()..];
    let section = &section[..section.find("\n## ").unwrap()];
    let recipes: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(
        recipes.len() >= 5,
        "a recipe per kind of app: {}",
        recipes.len()
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "users.toml",
        "[users]\nalice = \"+31612345678\"\n",
    );
    for (i, recipe) in recipes.iter().enumerate() {
        assert!(
            recipe.contains("[[apps]]"),
            "recipe {i} is an [[apps]] table"
        );
        let text = format!("[sms]\nproviders = [\"sandbox\"]\n\n{recipe}");
        let out = check_config(&write(dir.path(), &format!("recipe{i}.toml"), &text));
        assert_eq!(out.code, Some(0), "recipe {i}:\n{recipe}\n{}", out.stderr);
    }
}
