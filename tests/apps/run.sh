#!/usr/bin/env bash
# otpgate in front of real third-party apps from PyPI (Django's admin,
# Datasette with datasette-auth-passwords), on free loopback ports. Installs
# the pinned packages into tests/apps/.venv when they are missing or the pins
# moved, builds otpgate (debug), runs scenarios.py, and ends with one line
# "N passed, N failed". Arguments name single tests, e.g. `DjangoAdmin`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"

SUITE=apps
# shellcheck source=../common/suite.sh
. "$here/../common/suite.sh"

stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "apps: installing the pinned packages into $venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    -r "$here/requirements.txt" || fail "pip install failed"
  echo "$want" >"$stamp"
fi

echo "apps: building otpgate"
(cd "$root" && cargo build --locked --quiet) || fail "cargo build failed"

OTPGATE="$root/target/debug/otpgate" APPS_WORK="$work" PYBIN="$venv/bin" \
  "$venv/bin/python" "$here/scenarios.py" "$@" &
runner=$!
wait "$runner"
status=$?
runner=""
exit $status
