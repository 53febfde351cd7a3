#!/usr/bin/env bash
# Start-up cost of `validate` on the shipped example, measured interleaved
# (scripts/interleave.c: the commands take turns, run by run, so the drift
# of a virtual machine's speed slows them alike):
#   - this checkout's release binary: validate without the command check,
#     and --version (process start-up and argument parsing alone);
#   - /usr/bin/true: what starting any process costs here now;
#   - with BASELINE_BIN=path, another preflight binary (an older build) on
#     the same example, so that a figure from another day or machine can be
#     scaled by the ratio.
# RUNS rounds (default 2000). Needs a C compiler (cc) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cc -O2 -o "$work/interleave" scripts/interleave.c
cargo build --release --quiet
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/preflight"
cp -r examples/pricing-app "$work/app"
rm -rf "$work/app/.preflight"
m="$work/app/preflight.toml"
"$bin" heal -q -m "$m" >/dev/null || true # the steady state: converged
commands=("$bin" validate -q --no-commands -m "$m")
if [ -n "${BASELINE_BIN:-}" ]; then
  commands+=(-- "$BASELINE_BIN" validate -q --no-commands -m "$m")
fi
commands+=(-- "$bin" --version -- /usr/bin/true)
echo "== validate of the shipped example, interleaved, $RUNS rounds (load $(cut -d' ' -f1-3 /proc/loadavg)) =="
"$work/interleave" "$RUNS" "${commands[@]}"
echo "-- SPEC: validate of the shipped example <= 3 ms on a quiet machine (first line's median)"
