//! `otpgate check-config`: the shipped file passes, and each kind of
//! mistake exits 2 with the file, the line, the key and what to do.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A valid configuration using the DIDfarm provider.
const GOOD: &str = r#"[server]
listen = "127.0.0.1:8000"
secret_file = "otpgate.key"

[otp]
length = 6
ttl = "5m"

[limits]
cooldown = "60s"

[sms]
provider = "didfarm"
from = "+31201234567"

[sms.didfarm]
base_url = "https://didfarm.com"
api_key = "test-key"
test_mode = true

[[apps]]
name = "CRM"
upstream = "http://127.0.0.1:8080"
session_cookie = "sessionid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
"#;

/// An environment variable no test machine sets.
const UNSET_VAR: &str = "OTPGATE_TEST_SURELY_UNSET_API_KEY";

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check_config(path: &Path) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove(UNSET_VAR)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `GOOD` with the line starting with `old` replaced by `new` (which may be
/// several lines, or empty to delete it).
fn edit(old: &str, new: &str) -> String {
    let mut found = false;
    let lines: Vec<&str> = GOOD
        .lines()
        .map(|l| {
            if l.starts_with(old) {
                found = true;
                new
            } else {
                l
            }
        })
        .collect();
    assert!(found, "GOOD has a line starting with {old:?}");
    lines.join("\n") + "\n"
}

/// The 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} is in the text"))
        + 1
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Checks `text` and expects exit 2 with "FILE:LINE: KEY" and every hint.
fn assert_rejected_at(text: &str, line_needle: &str, key: &str, hints: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "otpgate.toml", text);
    let out = check_config(&path);
    assert_eq!(out.code, Some(2), "exit code; stderr: {}", out.stderr);
    let line = line_of(text, line_needle);
    let located = format!("{}:{line}:", path.display());
    assert!(
        out.stderr.contains(&located),
        "expected {located:?} in: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(key),
        "expected the key {key:?} in: {}",
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
fn the_shipped_configuration_passes_the_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let out = check_config(&path);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("OK"), "{}", out.stdout);
}

#[test]
fn the_base_configuration_of_these_tests_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(&write(dir.path(), "otpgate.toml", GOOD));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("OK (1 app)"), "{}", out.stdout);
}

#[test]
fn a_misspelt_key_is_reported_with_its_line_and_the_keys_allowed() {
    let text = edit("listen =", "lisen = \"127.0.0.1:8000\"");
    assert_rejected_at(&text, "lisen", "lisen", &["listen"]);
}

#[test]
fn a_duration_that_cannot_be_read_is_reported_with_an_example() {
    let text = edit("ttl =", "ttl = \"5 parsecs\"");
    assert_rejected_at(&text, "parsecs", "otp.ttl", &["write a duration such as"]);
}

#[test]
fn a_code_length_below_six_is_reported_with_the_allowed_range() {
    let text = edit("length =", "length = 5");
    assert_rejected_at(&text, "length = 5", "otp.length", &["from 6 to 10"]);
}

#[test]
fn an_https_upstream_is_reported_as_needing_http() {
    let text = edit("upstream =", "upstream = \"https://127.0.0.1:8443\"");
    assert_rejected_at(
        &text,
        "upstream =",
        "apps.upstream",
        &["http://", "write e.g."],
    );
}

#[test]
fn an_upstream_without_a_scheme_is_reported_as_needing_http() {
    let text = edit("upstream =", "upstream = \"127.0.0.1:8080\"");
    assert_rejected_at(
        &text,
        "upstream =",
        "apps.upstream",
        &["http://", "write e.g."],
    );
}

#[test]
fn a_sender_that_is_neither_a_number_nor_a_sender_id_is_reported_with_examples() {
    let text = edit("from =", "from = \"+31 20 123 4567\"");
    assert_rejected_at(&text, "from =", "sms.from", &["E.164", "\"+31201234567\""]);
}

#[test]
fn an_api_key_variable_that_is_not_set_is_reported_with_what_to_do() {
    let text = edit("api_key =", &format!("api_key_env = \"{UNSET_VAR}\""));
    assert_rejected_at(
        &text,
        "api_key_env",
        "sms.didfarm.api_key_env",
        &[UNSET_VAR, "export it"],
    );
}

#[test]
fn a_bad_number_in_the_users_file_is_reported_in_that_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let users = "# who gets codes where\n[users]\nalice = \"+31612345678\"\nbob = \"0612345678\"\n";
    let users_path = write(dir.path(), "users.toml", users);
    let text = edit("phone_pointer =", "users_file = \"users.toml\"");
    let path = write(dir.path(), "otpgate.toml", &text);
    let out = check_config(&path);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    let located = format!("{}:4:", users_path.display());
    assert!(
        out.stderr.contains(&located),
        "expected {located:?} in: {}",
        out.stderr
    );
    assert!(out.stderr.contains("users.bob"), "{}", out.stderr);
    assert!(
        out.stderr.contains("E.164") && out.stderr.contains("+31612345678"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_sms_table_is_reported_with_what_to_add() {
    let without_sms = GOOD.replace(
        "[sms]\nprovider = \"didfarm\"\nfrom = \"+31201234567\"\n\n[sms.didfarm]\nbase_url = \"https://didfarm.com\"\napi_key = \"test-key\"\ntest_mode = true\n",
        "",
    );
    assert!(!without_sms.contains("[sms"), "the edit removed the tables");
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "otpgate.toml", &without_sms);
    let out = check_config(&path);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    // A table that is not there has no line; the message names file and key.
    assert!(
        out.stderr.starts_with(&format!("{}: sms:", path.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("add an [sms] table"), "{}", out.stderr);
}

#[test]
fn a_file_without_apps_is_reported_with_what_to_add() {
    let without_apps = GOOD[..GOOD.find("[[apps]]").unwrap()].to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "otpgate.toml", &without_apps);
    let out = check_config(&path);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("{}: apps:", path.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("add an [[apps]] table"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_that_does_not_exist_is_reported_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.toml");
    let out = check_config(&path);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn parse_reports_the_file_line_and_key_of_a_bad_duration() {
    let text = edit("cooldown =", "cooldown = \"soon\"");
    let err = otpgate::config::parse(&text, "gw.toml", Path::new(".")).unwrap_err();
    assert_eq!(err.file, "gw.toml");
    assert_eq!(err.line, Some(line_of(&text, "cooldown =")));
    assert_eq!(err.key, "limits.cooldown");
    assert!(
        err.message.contains("write a duration such as"),
        "{}",
        err.message
    );
    assert!(err.to_string().starts_with(&format!(
        "gw.toml:{}: limits.cooldown: ",
        line_of(&text, "cooldown =")
    )));
}

#[test]
fn parse_reports_the_line_of_a_misspelt_key_and_of_an_out_of_range_length() {
    let text = edit("listen =", "lisen = \"127.0.0.1:8000\"");
    let err = otpgate::config::parse(&text, "gw.toml", Path::new(".")).unwrap_err();
    assert_eq!(err.line, Some(line_of(&text, "lisen")));
    assert!(err.to_string().contains("lisen"), "{err}");

    let text = edit("length =", "length = 11");
    let err = otpgate::config::parse(&text, "gw.toml", Path::new(".")).unwrap_err();
    assert_eq!(
        (err.line, err.key.as_str()),
        (Some(line_of(&text, "length = 11")), "otp.length")
    );
    assert!(err.message.contains("from 6 to 10"), "{}", err.message);
}

#[test]
fn parse_accepts_the_base_configuration_and_reads_its_values() {
    let s = otpgate::config::parse(GOOD, "gw.toml", Path::new("/etc/otpgate")).expect("valid");
    assert_eq!(s.otp.length, 6);
    assert_eq!(s.otp.ttl, std::time::Duration::from_secs(300));
    assert_eq!(s.sms.from, "+31201234567");
    assert_eq!(s.server.secret_file, Path::new("/etc/otpgate/otpgate.key"));
    assert_eq!(s.apps.len(), 1);
}

#[test]
fn an_audit_path_in_a_directory_that_does_not_exist_is_reported_with_what_to_do() {
    let text = format!("{GOOD}\n[audit]\npath = \"no-such-dir/audit.jsonl\"\n");
    assert_rejected_at(
        &text,
        "path = \"no-such-dir",
        "audit.path",
        &["no-such-dir", "does not exist", "create it"],
    );
}

#[test]
fn an_empty_audit_path_is_reported_with_how_to_keep_the_log_off() {
    let text = format!("{GOOD}\n[audit]\npath = \"\"\n");
    assert_rejected_at(
        &text,
        "path = \"\"",
        "audit.path",
        &["must name a file", "leave out the [audit] table"],
    );
}

#[test]
fn a_misspelt_audit_key_is_reported_with_its_line_and_the_key_allowed() {
    let text = format!("{GOOD}\n[audit]\nfile = \"audit.jsonl\"\n");
    assert_rejected_at(&text, "file = \"audit", "audit.file", &["expected `path`"]);
}

#[test]
fn parse_leaves_the_audit_log_off_by_default_and_takes_its_path_from_the_file_directory() {
    let s = otpgate::config::parse(GOOD, "gw.toml", Path::new("/etc/otpgate")).expect("valid");
    assert_eq!(s.audit, None);
    let text = format!("{GOOD}\n[audit]\npath = \"audit.jsonl\"\n");
    let s = otpgate::config::parse(&text, "gw.toml", Path::new("/etc")).expect("valid");
    assert_eq!(s.audit.as_deref(), Some(Path::new("/etc/audit.jsonl")));
}

#[test]
fn an_unknown_channel_is_reported_with_the_channels_there_are() {
    let text = edit(
        "from =",
        "from = \"+31201234567\"\nchannels = [\"whatsapp\", \"pigeon\"]",
    );
    assert_rejected_at(
        &text,
        "pigeon",
        "sms.channels",
        &["\"pigeon\"", "\"sms\" or \"whatsapp\""],
    );
}

#[test]
fn whatsapp_without_a_provider_that_sends_it_is_reported() {
    let text = edit(
        "provider =",
        "providers = [\"twilio\"]\nchannels = [\"whatsapp\"]",
    ) + "[sms.twilio]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"t\"\n";
    assert_rejected_at(
        &text,
        "channels =",
        "sms.channels",
        &["none of the providers sends WhatsApp"],
    );
}

#[test]
fn a_country_code_that_is_not_one_is_reported_with_examples() {
    let text = edit(
        "from =",
        "from = \"+31201234567\"\nallowed_countries = [\"NL\", \"Holland\"]",
    );
    assert_rejected_at(
        &text,
        "Holland",
        "sms.allowed_countries",
        &["\"Holland\"", "two-letter"],
    );
}

#[test]
fn a_sender_id_without_a_numeric_sender_is_reported_with_what_to_add() {
    let text = edit("from =", "from = \"YourBrand\"");
    assert_rejected_at(&text, "YourBrand", "sms.from", &["from_numeric"]);
}

#[test]
fn a_provider_listed_without_its_table_is_reported() {
    let text = edit("provider =", "providers = [\"didfarm\", \"twilio\"]");
    assert_rejected_at(&text, "providers =", "sms.providers", &["[sms.twilio]"]);
}

#[test]
fn a_public_url_with_a_path_is_reported() {
    let text = edit(
        "listen =",
        "listen = \"127.0.0.1:8000\"\npublic_url = \"https://gate.example.com/otp\"",
    );
    assert_rejected_at(
        &text,
        "public_url",
        "server.public_url",
        &["must not have a path"],
    );
}

#[test]
fn a_country_both_allowed_and_denied_is_reported() {
    let text = edit(
        "from =",
        "from = \"+31201234567\"\nallowed_countries = [\"NL\", \"DE\"]\ndenied_countries = [\"DE\"]",
    );
    assert_rejected_at(
        &text,
        "denied_countries",
        "sms.denied_countries",
        &["DE is also in allowed_countries"],
    );
}

/// The `[[apps]]` table of `GOOD`, to complete a README example.
fn apps_table() -> &'static str {
    &GOOD[GOOD.find("[[apps]]").unwrap()..]
}

#[test]
fn every_provider_example_in_the_readme_passes_the_check() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("## SMS providers and delivery").unwrap()..];
    let section = &section[..section.find("\n## ").unwrap()];
    let examples: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(examples.len(), 3, "three provider examples");
    let dir = tempfile::tempdir().unwrap();
    for (i, example) in examples.iter().enumerate() {
        let text = format!("{example}\n{}", apps_table());
        let path = write(dir.path(), &format!("example{i}.toml"), &text);
        let out = Command::new(env!("CARGO_BIN_EXE_otpgate"))
            .args(["check-config", "--config"])
            .arg(&path)
            .env("DIDFARM_API_KEY", "k")
            .env("TWILIO_AUTH_TOKEN", "t")
            .env("SMS_API_KEY", "s")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "example {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `GOOD` with more tables at the end.
fn with_tables(tables: &str) -> String {
    format!("{GOOD}\n{tables}")
}

#[test]
fn an_admin_address_off_loopback_is_refused_without_the_opt_in() {
    let text = with_tables("[admin]\nlisten = \"0.0.0.0:9090\"\n");
    assert_rejected_at(
        &text,
        "0.0.0.0:9090",
        "admin.listen",
        &["not a loopback address", "allow_non_loopback = true"],
    );
    let opted_in = with_tables("[admin]\nlisten = \"0.0.0.0:9090\"\nallow_non_loopback = true\n");
    let s = otpgate::config::parse(&opted_in, "gw.toml", Path::new(".")).expect("valid");
    assert_eq!(s.admin.listen, Some("0.0.0.0:9090".parse().unwrap()));
}

#[test]
fn an_admin_address_that_is_the_public_one_is_refused() {
    let text = with_tables("[admin]\nlisten = \"127.0.0.1:8000\" # the gateway's own\n");
    assert_rejected_at(
        &text,
        "the gateway's own",
        "admin.listen",
        &["server.listen", "a port of its own"],
    );
}

#[test]
fn the_admin_api_is_on_a_unix_socket_by_default_and_an_empty_address_turns_it_off() {
    let s = otpgate::config::parse(GOOD, "gw.toml", Path::new("/etc/otpgate")).expect("valid");
    assert_eq!(s.admin.listen, None, "no TCP port unless asked for");
    let port = s.server.listen.port();
    assert_eq!(
        s.admin.socket,
        Some(format!("/etc/otpgate/otpgate-admin-{port}.sock").into()),
        "next to the configuration, named after the public port"
    );
    let off = with_tables("[admin]\nlisten = \"\"\n");
    let s = otpgate::config::parse(&off, "gw.toml", Path::new(".")).expect("valid");
    assert_eq!(s.admin.listen, None);
    assert_eq!(s.admin.socket, None);
    let off = with_tables("[admin]\nsocket = \"\"\n");
    let s = otpgate::config::parse(&off, "gw.toml", Path::new(".")).expect("valid");
    assert_eq!(s.admin.socket, None);
}

#[test]
fn an_admin_socket_and_an_admin_address_together_are_refused() {
    let text = with_tables("[admin]\nsocket = \"a.sock\"\nlisten = \"127.0.0.1:9091\"\n");
    assert_rejected_at(&text, "a.sock", "admin.socket", &["not both"]);
}

#[test]
fn an_unknown_pumping_mode_is_reported_with_the_modes() {
    let text = with_tables("[pumping]\nmode = \"block\"\n");
    assert_rejected_at(
        &text,
        "\"block\"",
        "pumping.mode",
        &["\"enforce\"", "\"monitor\"", "\"off\""],
    );
}

#[test]
fn a_conversion_share_above_one_is_reported_as_not_a_share() {
    let text = with_tables("[pumping]\nmin_conversion = 20\n");
    assert_rejected_at(
        &text,
        "min_conversion",
        "pumping.min_conversion",
        &["from 0.0 to 1.0"],
    );
}

#[test]
fn a_country_cap_for_no_country_is_reported_with_an_example() {
    let text = with_tables("[pumping]\ncountry_caps = { NG = 10, XX = 5 }\n");
    assert_rejected_at(
        &text,
        "country_caps",
        "pumping.country_caps.XX",
        &["not a region code", "NG = 10"],
    );
}

#[test]
fn the_pumping_keys_of_the_issue_are_read_as_written() {
    let text = with_tables(
        "[pumping]\nmode = \"monitor\"\nwindow = \"1h\"\nmin_sends = 20\nmin_conversion = 0.2\nquarantine = \"1h\"\ncountry_caps = { ng = 10 }\ndefault_country_cap = 50\n",
    );
    let s = otpgate::config::parse(&text, "gw.toml", Path::new(".")).expect("valid");
    let p = &s.pumping;
    assert_eq!(p.mode, otpgate::config::PumpingMode::Monitor);
    assert_eq!(p.window, std::time::Duration::from_secs(3600));
    assert_eq!((p.min_sends, p.min_conversion), (20, 0.2));
    assert_eq!(p.country_cap("NG"), 10);
    assert_eq!(p.country_cap("NL"), 50);
}

#[test]
fn two_apps_with_one_name_are_reported() {
    let app = apps_table().replace("[[apps]]", "[[apps]]\nhost = \"b.example.com\"");
    let text = format!("{GOOD}\n{app}");
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(&write(dir.path(), "otpgate.toml", &text));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("apps.name") && out.stderr.contains("already called"),
        "{}",
        out.stderr
    );
}
