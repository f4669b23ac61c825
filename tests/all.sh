#!/usr/bin/env bash
# Every test otpgate has, in one command (the README's): the hermetic
# `cargo test`, then the suites that drive real third-party programs (a
# real Chromium, real apps from PyPI, real nginx and Caddy). Each suite installs what it needs
# when it is missing and ends with one "N passed, N failed" line; the last
# line here adds them all up. Exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
passed=0
failed=0

count() { # count NAME FILE: adds the last "N passed, N failed" line of FILE
  local line
  line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$1: printed no result line" >&2
    status=1
    return
  fi
  local p f
  p=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  passed=$((passed + p))
  failed=$((failed + f))
}

echo "== cargo test"
cargo test --locked 2>&1 | tee "$work/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# cargo prints one result line per test binary: one line for all of them.
awk '/^test result:/ { p += $4; f += $6 } END { printf "cargo: %d passed, %d failed\n", p, f }' \
  "$work/cargo.log" | tee "$work/cargo.sum"
count cargo "$work/cargo.sum"

for suite in tests/browser/run.sh tests/apps/run.sh tests/proxies/run.sh; do
  [ -f "$suite" ] || continue
  echo "== $suite"
  bash "$suite" 2>&1 | tee "$work/suite.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count "$suite" "$work/suite.log"
done

[ "$failed" -eq 0 ] || status=1
echo "${passed} passed, ${failed} failed"
exit $status
