//! The Debian package's files (packaging/debian/): its configuration is
//! valid as installed and puts every file where the systemd unit lets the
//! service write; `.ci/run` builds, installs and checks the package itself
//! (`packaging/check-deb.sh`).

use std::path::{Path, PathBuf};

fn packaging(file: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/debian")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn the_packaged_configuration_is_valid_and_writes_only_where_the_unit_allows() {
    let (path, text) = packaging("config.toml");
    // The audit log's directory must exist; the package's postinst makes
    // /var/log/otpgate, this machine may not have it.
    let logs = tempfile::tempdir().unwrap();
    let here = text.replace("/var/log/otpgate", &logs.path().display().to_string());
    let s = otpgate::config::parse(
        &here,
        &path.display().to_string(),
        Path::new("/etc/otpgate"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, unit) = packaging("otpgate.service");
    let writable: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .expect("the unit names its writable paths")
        .split_whitespace()
        .chain(["/run/otpgate"])
        .collect();
    let inside = |p: &Path| writable.iter().any(|w| p.starts_with(w));
    assert!(inside(&s.server.secret_file), "{:?}", s.server.secret_file);
    let socket = s
        .admin
        .socket
        .as_deref()
        .expect("the admin API on a socket");
    assert!(inside(socket), "{socket:?}");
    let audit = s.audit.as_deref().expect("the audit log on");
    let audit = Path::new("/var/log/otpgate").join(audit.strip_prefix(logs.path()).unwrap());
    assert!(inside(&audit), "{audit:?}");
}

#[test]
fn the_unit_is_hardened_and_reloads_with_sighup() {
    let (_, unit) = packaging("otpgate.service");
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=otpgate",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
}
