#!/usr/bin/env bash
# Builds otpgate's Debian package, installs it with dpkg, checks what it
# installed (the service user, file modes, the configuration as the service
# reads it, the systemd unit, the logrotate file) and purges it again.
# `.ci/run` runs it; it needs root (dpkg) and changes this machine while it
# runs. The package holds the binary `cargo build` made (debug here, for
# speed; `cargo deb --profile dist` makes the shipped one).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
CARGO_DEB_VERSION=3.8.0
fail() { echo "check-deb: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i); run it as root or in CI"
missing=()
for tool in adduser:adduser systemd-analyze:systemd logrotate:logrotate runuser:util-linux; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    echo "== cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi
if dpkg -s otpgate >/dev/null 2>&1; then
    fail "otpgate is already installed here; this check would replace it"
fi

echo "== cargo deb"
cargo build --locked --quiet --bin otpgate
deb=target/otpgate-check.deb
cargo deb --no-build --profile dev --no-strip --output "$deb" >/dev/null
trap 'dpkg --purge otpgate >/dev/null 2>&1 || true' EXIT

echo "== dpkg -i"
dpkg -i "$deb"
passed=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then
        passed=$((passed + 1)); echo "ok: $1"
    else
        fail "$1"
    fi
}
check "the binary runs" /usr/bin/otpgate --version
check "a system user otpgate" id -u otpgate
check "the configuration is root:otpgate 0640" \
    test "$(stat -c '%U:%G %a' /etc/otpgate/config.toml)" = "root:otpgate 640"
check "the secret's directory is otpgate's, 0700" \
    test "$(stat -c '%U %a' /var/lib/otpgate)" = "otpgate 700"
check "the configuration is valid as the service user reads it" \
    runuser -u otpgate -- /usr/bin/otpgate check-config --config /etc/otpgate/config.toml
unit=$(dpkg -L otpgate | grep -E '/systemd/system/otpgate\.service$')
check "the unit passes systemd-analyze verify" systemd-analyze verify "$unit"
check "the logrotate file parses" logrotate --debug /etc/logrotate.d/otpgate
check "the configuration is a conffile" grep -qx /etc/otpgate/config.toml /var/lib/dpkg/info/otpgate.conffiles

echo "== dpkg --purge"
dpkg --purge otpgate
trap - EXIT
check "purge removes the binary and the secret's directory" \
    test ! -e /usr/bin/otpgate -a ! -e /var/lib/otpgate
echo "deb: $passed passed, 0 failed"
