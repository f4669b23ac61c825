#!/usr/bin/env bash
# Builds every otpgate fuzz target and runs each for a bounded time.
#
#   bash fuzz/run.sh                  # every target, 60 s each
#   FUZZ_SECONDS=300 bash fuzz/run.sh # longer
#   bash fuzz/run.sh redirect cookies # only these targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler. On a
# stable toolchain the nightly-only flags cargo-fuzz passes are unlocked with
# RUSTC_BOOTSTRAP=1 (set here unless already set).
#
# Exits 0 when no target found anything, 1 when one did (the crashing input
# is under fuzz/artifacts/<target>/; the path is printed), 2 when the build
# failed. Reproduce a finding with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
set -uo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR/.." || exit 2

SECONDS_EACH="${FUZZ_SECONDS:-60}"
if ! [[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]]; then
    echo "FUZZ_SECONDS must be a positive whole number of seconds, not '$SECONDS_EACH'" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz'" >&2
    exit 2
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 2
fi

echo "== building ${#targets[@]} fuzz targets"
for t in "${targets[@]}"; do
    if ! cargo fuzz build "$t"; then
        echo "build of fuzz target '$t' failed" >&2
        exit 2
    fi
done

mkdir -p "$FUZZ_DIR/artifacts"
failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$FUZZ_DIR/corpus/$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    log="$FUZZ_DIR/artifacts/$t.log"
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus")
    [ -d "$FUZZ_DIR/seeds/$t" ] && dirs+=("$FUZZ_DIR/seeds/$t")
    opts=(
        "-max_total_time=$SECONDS_EACH"
        "-timeout=10"
        "-rss_limit_mb=2048"
        "-print_final_stats=1"
        "-artifact_prefix=$artifacts/"
    )
    [ -f "$FUZZ_DIR/dicts/$t.dict" ] && opts+=("-dict=$FUZZ_DIR/dicts/$t.dict")

    echo "== fuzzing '$t' for ${SECONDS_EACH}s (log: $log)"
    cargo fuzz run "$t" "${dirs[@]}" -- "${opts[@]}" >"$log" 2>&1
    status=$?

    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
    execs="${execs:-?}"
    if [ "$status" -eq 0 ]; then
        summary+=("$(printf '%-16s ok      %12s execs' "$t" "$execs")")
    else
        failed+=("$t")
        artefact="$(grep -o "Test unit written to .*" "$log" | sed 's/^Test unit written to //' | tail -n 1)"
        summary+=("$(printf '%-16s FAILED  %12s execs  %s' "$t" "$execs" "${artefact:-(no artefact; see $log)}")")
        echo "!! '$t' failed (exit $status):"
        grep -A 1 "panicked at" "$log" | head -n 4 | sed 's/^/   /'
        grep -E "ERROR: libFuzzer|SUMMARY:" "$log" | head -n 2 | sed 's/^/   /'
        if [ -n "$artefact" ]; then
            echo "   artefact: $artefact"
            echo "   input (hex, first 256 bytes): $(head -c 256 "$artefact" | od -An -v -tx1 | tr -d ' \n')"
            echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t $artefact"
        fi
    fi
done

echo
echo "== summary (${SECONDS_EACH}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "targets with findings: ${failed[*]}"
    exit 1
fi
echo "no findings"
