# Sourced by the suites against real programs (tests/apps/run.sh,
# tests/proxies/run.sh) after setting SUITE: a temp folder in $work, removed
# at exit; $runner, the scenarios' process, told to stop (it stops the
# servers it started) when the suite ends or is interrupted; and fail, which
# prints the reason and the one result line the test command counts.
work=$(mktemp -d)
runner=""
cleanup() {
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null
    wait "$runner" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "$SUITE: $1" >&2; echo "0 passed, 1 failed"; exit 1; }
