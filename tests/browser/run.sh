#!/usr/bin/env bash
# otpgate's pages in a real browser: Debian's Chromium driven by
# playwright-core (never a downloaded browser) against `otpgate demo` on
# loopback. Installs what is missing (chromium with apt-get, the npm
# packages with `npm ci` from the committed lockfile), builds otpgate,
# starts two demos on free ports, runs the tests, stops the demos.
# Screenshots go to tests/browser/screenshots/. Exits non-zero when
# anything failed; the last line is always "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

passed=0
failed=0
finish() { # finish STATUS: prints the result line and exits
  echo "${passed} passed, ${failed} failed"
  exit "$1"
}
give_up() {
  echo "browser tests: $*" >&2
  failed=$((failed + 1))
  finish 1
}

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt-get)"
  { apt-get update && apt-get install -y chromium chromium-driver; } || give_up "cannot install chromium"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing node and npm (apt-get)"
  { apt-get update && apt-get install -y nodejs npm; } || give_up "cannot install node"
fi

# `npm ci` again whenever the lockfile is not the one node_modules was made
# from, or npm finds the installed tree incomplete.
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$here/node_modules/.otpgate-lock" 2>/dev/null)" != "$lock_sum" ] ||
  ! (cd "$here" && npm ls --all >/dev/null 2>&1); then
  echo "== npm ci"
  (cd "$here" && npm ci --no-audit --no-fund) || give_up "npm ci failed"
  echo "$lock_sum" >"$here/node_modules/.otpgate-lock"
fi

echo "== cargo build"
(cd "$root" && cargo build --locked) || give_up "cargo build failed"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/otpgate"
[ -x "$bin" ] || give_up "no binary at $bin"

work=$(mktemp -d)
demo_pids=()
stop_demos() {
  local pid
  for pid in "${demo_pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${demo_pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap stop_demos EXIT

# start_demo NAME [CONFIG]: starts `otpgate demo` in its own directory (its
# secret file goes there) on free ports with the admin API off, and sets
# demo_url to the gateway's URL once it listens.
start_demo() {
  local dir="$work/$1"
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    exec "$bin" ${2:+--config "$2"} demo \
      --listen 127.0.0.1:0 --app-listen 127.0.0.1:0 --admin-listen off
  ) >"$dir/out.log" 2>"$dir/err.log" &
  demo_pids+=("$!")
  demo_url=""
  local _
  for _ in $(seq 100); do
    demo_url=$(sed -n 's|^ *The same app behind otpgate: *\(http://[^ ]*\)/$|\1|p' "$dir/out.log")
    [ -n "$demo_url" ] && return 0
    sleep 0.1
  done
  cat "$dir/err.log" >&2
  give_up "the $1 demo did not start"
}

# The demo as shipped (its built-in config.toml: 60 s between sends).
start_demo shipped
export DEMO_URL="$demo_url"
# The flows log the same two users in many times within seconds: no
# cooldown, and limits no run reaches. Everything else as shipped.
sed -e '/^\[limits\]/,/^\[/{/^cooldown\|^per_/d}' \
  -e 's/^\[limits\]$/[limits]\ncooldown = "0s"\nper_hour = 1000\nper_day = 1000\nper_ip_sends_per_minute = 1000\nper_ip_sends_per_hour = 1000\nper_ip_verifies_per_minute = 1000/' \
  -e 's/^mode = "enforce"/mode = "off"/' \
  "$root/config.toml" >"$work/quick.toml"
start_demo quick "$work/quick.toml"
export QUICK_URL="$demo_url"
echo "== demos: shipped $DEMO_URL, quick $QUICK_URL"

export SCREENSHOTS="$here/screenshots"
rm -f "$SCREENSHOTS"/*.png
echo "== node --test"
started=$(date +%s)
(
  cd "$here" &&
    timeout 600 node --test --test-concurrency=1 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$work/tap.log" \
      countdown.test.js flows.test.js a11y.test.js
)
status=$?
echo "== browser tests took $(($(date +%s) - started)) s"
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/tap.log" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/tap.log" | tail -n 1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$work/tap.log" | tail -n 1)
passed=${passed:-0}
failed=$((${failed:-0} + ${cancelled:-0}))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # node itself failed (a file that would not load, the timeout).
  failed=1
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] || status=1
finish "$status"
