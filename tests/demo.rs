//! `otpgate demo` on ports the system picks, as `tests/browser/run.sh`
//! starts it: the fixed ports of the shipped config.toml may be taken.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The demo process, stopped when the test ends however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The URL after `label` in the demo's banner.
fn url_after(line: &str, label: &str) -> Option<String> {
    let rest = line.trim().strip_prefix(label)?;
    Some(rest.trim().trim_end_matches('/').to_string())
}

#[tokio::test]
async fn the_demo_on_port_zero_prints_the_ports_it_bound_and_serves_the_app_behind_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--app-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().unwrap();
    let (mut app, mut gate) = (None, None);
    // Read to the banner's end and keep the pipe open: a demo writing to a
    // closed pipe would fail.
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        app = app.or_else(|| url_after(&line, "The legacy app (no second factor):"));
        gate = gate.or_else(|| url_after(&line, "The same app behind otpgate:"));
        if line.contains("Stop with Ctrl-C.") {
            break;
        }
    }
    let (app, gate) = (app.unwrap(), gate.unwrap());
    for url in [&app, &gate] {
        assert!(!url.ends_with(":0"), "a bound port, not 0: {url}");
    }
    assert_ne!(app, gate);

    // The demo runs in a child process: this one installs its own provider.
    otpgate::http::tls::install_default_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(format!("{gate}/login")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the app's login page through the gate");
    assert!(res.text().await.unwrap().contains("alice / wonderland"));
    let res = client
        .get(format!("{gate}/.otpgate/sandbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the sandbox phone");
    let res = client.get(format!("{app}/login")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the app itself");
    drop(lines);
}

#[test]
fn the_demo_refuses_an_admin_address_that_is_neither_an_address_nor_off() {
    let out = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args(["demo", "--admin-listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give IP:PORT or \"off\""), "{err}");
}
