#!/usr/bin/env bash
# otpgate in forward-auth mode behind the real nginx (auth_request) and Caddy
# (forward_auth), started with the README's snippets on free loopback ports,
# each as the current user with its configuration, pid and logs in a temp
# folder. Installs Debian's nginx and caddy when they are missing, builds
# otpgate (debug), runs scenarios.py (standard library only), and ends with
# one line "N passed, N failed". Arguments name single tests, e.g. `Caddy`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

SUITE=proxies
# shellcheck source=../common/suite.sh
. "$here/../common/suite.sh"

if ! command -v nginx >/dev/null || ! command -v caddy >/dev/null; then
  echo "proxies: installing Debian's nginx and caddy"
  # The packages' own services are not wanted: only the binaries.
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq nginx caddy; } >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log" >&2; fail "apt-get install nginx caddy failed"; }
fi
nginx -V 2>&1 | grep -q -- --with-http_auth_request_module \
  || fail "this nginx has no auth_request module"

echo "proxies: building otpgate"
(cd "$root" && cargo build --locked --quiet) || fail "cargo build failed"

OTPGATE="$root/target/debug/otpgate" PROXIES_WORK="$work" \
  python3 "$here/scenarios.py" "$@" &
runner=$!
wait "$runner"
status=$?
runner=""
if [ "$status" -ne 0 ]; then
  for log in "$work"/*.log "$work"/nginx/error.log; do
    [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; } >&2
  done
fi
exit $status
