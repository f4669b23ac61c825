//! The admin API on its default Unix socket: next to the configuration,
//! mode 0600, found by `otpgate admin` from the same configuration, a stale
//! socket replaced, a live one or a file in the way refused, removed at
//! shutdown. No TCP port is taken, so nothing collides on 9090.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The base configuration with `[admin]` replaced by `admin` (TOML lines).
fn with_admin(text: &str, admin: &str) -> String {
    text.replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\n{admin}"),
    )
}

fn settings(dir: &Path, admin: &str) -> otpgate::config::Settings {
    let text = with_admin(
        &config_text("http://127.0.0.1:9", "http://127.0.0.1:9", dir, ""),
        admin,
    );
    otpgate::config::parse(&text, "gw.toml", dir).expect("valid")
}

fn socket_of(s: &otpgate::config::Settings) -> PathBuf {
    s.admin.socket.clone().expect("on a socket")
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_the_admin_api_is_a_private_socket_that_otpgate_admin_finds_and_that_goes_at_shutdown()
 {
    let mut env = Env::with_config(|t| t.replace("[admin]\nlisten = \"127.0.0.1:0\"\n", "")).await;
    assert_eq!(env.admin, None, "no TCP listener");
    let path = socket_of(&env.state.settings);
    assert!(
        path.starts_with(env.dir.path()),
        "next to the configuration"
    );
    let meta = std::fs::metadata(&path).expect("the socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The CLI reads the same configuration and talks over the socket.
    let config = env.dir.path().join("gw.toml");
    std::fs::write(
        &config,
        env.config
            .replace("[admin]\nlisten = \"127.0.0.1:0\"\n", ""),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_otpgate"))
            .args(["admin", "--config"])
            .arg(&config)
            .arg("locks")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "No account is locked.");

    env.shutdown.take().unwrap().send(()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while path.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!path.exists(), "the socket is removed at shutdown");
}

#[tokio::test]
async fn a_socket_left_by_a_crashed_run_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), "socket = \"admin.sock\"");
    let path = socket_of(&s);
    // Bound and dropped without removal: what a crash leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let gw = otpgate::Gateway::bind(s)
        .await
        .expect("a stale socket is replaced");
    assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
    drop(gw);
}

#[tokio::test]
async fn a_socket_another_process_answers_on_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), "socket = \"admin.sock\"");
    let path = socket_of(&s);
    let _live = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let err = otpgate::Gateway::bind(s).await.err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("is in use"), "{message}");
    assert!(message.contains("admin.sock"), "{message}");
    assert!(path.exists(), "the other one's socket is left alone");
}

#[tokio::test]
async fn a_file_in_the_way_of_the_socket_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), "socket = \"admin.sock\"");
    let path = socket_of(&s);
    std::fs::write(&path, "precious").unwrap();
    let err = otpgate::Gateway::bind(s).await.err().expect("refused");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn two_gateways_with_one_configuration_folder_and_their_own_ports_get_a_socket_each() {
    let dir = tempfile::tempdir().unwrap();
    let text = |port: u16| {
        config_text("http://127.0.0.1:9", "http://127.0.0.1:9", dir.path(), "")
            .replace("[admin]\nlisten = \"127.0.0.1:0\"\n", "")
            .replace(
                "listen = \"127.0.0.1:0\"\n",
                &format!("listen = \"127.0.0.1:{port}\"\n"),
            )
    };
    // Two free ports, found by binding port 0.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let a = otpgate::config::parse(&text(ports[0]), "a.toml", dir.path()).unwrap();
    let b = otpgate::config::parse(&text(ports[1]), "b.toml", dir.path()).unwrap();
    assert_ne!(socket_of(&a), socket_of(&b));
    let ga = otpgate::Gateway::bind(a).await.expect("the first starts");
    let gb = otpgate::Gateway::bind(b)
        .await
        .expect("the second starts beside it");
    drop((ga, gb));
}
