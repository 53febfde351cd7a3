#!/usr/bin/env bash
# Benchmarks, each comparing preflight side by side with a reference in one
# run and printing the ratios.
#
#   scripts/bench.sh [example]  start-up cost of `validate` on the shipped
#                               example, next to a hand-written Python
#                               validator making the same checks
#                               (scripts/baseline_validate.py, a baseline),
#                               then interleaved with --version and
#                               /usr/bin/true (bench-startup.sh; set
#                               BASELINE_BIN to add an older binary)
#   scripts/bench.sh json       JSONL check vs jq and Python, JSONL repair,
#                               salvage of a truncated JSON (bench-json.sh)
#   scripts/bench.sh sqlite     bench-sqlite.sh (SQLITE_ROWS, default 6000000: 0.9 GB)
#   scripts/bench.sh runtime    bench-runtime.sh
#   scripts/bench.sh ops        bench-ops.sh
#   scripts/bench.sh all        all of the above, then bench-postgres.sh if present
#
# Installs what it needs with apt-get (hyperfine, jq, sqlite3, GNU time,
# python3-jsonschema; pip when apt-get has no jsonschema). Generated data
# lives in temporary folders, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  { apt-get install -y "$2" || { apt-get update && apt-get install -y "$2"; } || sudo apt-get install -y "$2"; } >/dev/null 2>&1
  command -v "$1" >/dev/null || { echo "cannot install $2; install it and run again" >&2; exit 1; }
}
need_tools() {
  need hyperfine hyperfine
  need jq jq
  need sqlite3 sqlite3
  [ -x /usr/bin/time ] || need /usr/bin/time time
  python3 -c 'import jsonschema' 2>/dev/null ||
    { apt-get install -y python3-jsonschema >/dev/null 2>&1 || pip install --quiet jsonschema >/dev/null 2>&1 || true; }
}

# ratios JSON: from a hyperfine --export-json file, each command's mean and
# its ratio to the first command's mean.
ratios() {
  jq -r '.results as $r | $r[] |
    "\(.mean * 1000 | . * 100 | round / 100) ms  \(.mean / $r[0].mean | . * 10 | round / 10)x  \(.command)"' "$1" |
    awk '{ printf "  %10s %s %8s  ", $1, $2, $3; $1 = $2 = $3 = ""; sub(/^ +/, ""); print }'
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench_example() {
  echo "== validate of the shipped example: preflight vs a Python validator (baseline) =="
  cargo build --release --quiet
  local bin m
  bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/preflight"
  cp -r examples/pricing-app "$work/app"
  rm -rf "$work/app/.preflight"
  m="$work/app/preflight.toml"
  "$bin" heal -q -m "$m" >/dev/null || true # converge first: measure the steady state
  "$bin" validate -q -m "$m"
  python3 scripts/baseline_validate.py "$m" >/dev/null
  python3 -c 'import jsonschema' 2>/dev/null || echo "(jsonschema missing: the baseline skips its schema check)"
  # The example's `python3 --version` check costs one Python start in both;
  # --no-commands shows each tool's own cost without it.
  hyperfine --warmup 20 --runs 200 -N --export-json "$work/fast.json" \
    "$bin validate -q -m $m" \
    "$bin validate -q --no-commands -m $m" \
    "$bin validate --format json -m $m" \
    "$bin heal -q -m $m"
  hyperfine --warmup 3 --runs 30 -N --export-json "$work/python.json" \
    "python3 scripts/baseline_validate.py $m" \
    "python3 scripts/baseline_validate.py $m --no-commands" \
    "python3 -c pass"
  jq -s '{results: (.[0].results + .[1].results)}' "$work/fast.json" "$work/python.json" >"$work/all.json"
  echo "-- means, and ratios to the first (preflight validate, with the python3 command check):"
  ratios "$work/all.json"
  jq -r '.results as $r |
    "-- Python baseline / preflight: \($r[4].mean / $r[0].mean | . * 10 | round / 10)x with the command check, \($r[5].mean / $r[1].mean | . * 10 | round / 10)x without",
    "-- issue: validate of the example <= 3 ms median; preflight without commands: median \($r[1].median * 1000 | . * 100 | round / 100) ms, mean \($r[1].mean * 1000 | . * 100 | round / 100) ms"' "$work/all.json"
  echo
  scripts/bench-startup.sh
}

target=${1:-example}
case "$target" in
  example) need_tools; bench_example ;;
  json) need_tools; scripts/bench-json.sh ;;
  sqlite) need_tools; scripts/bench-sqlite.sh "${SQLITE_ROWS:-6000000}" ;;
  runtime) need_tools; scripts/bench-runtime.sh ;;
  ops) need_tools; scripts/bench-ops.sh ;;
  all)
    need_tools
    echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    bench_example
    echo
    scripts/bench-json.sh
    echo
    scripts/bench-sqlite.sh "${SQLITE_ROWS:-6000000}"
    echo
    scripts/bench-runtime.sh
    echo
    scripts/bench-ops.sh
    echo
    # --- hook: PostgreSQL -------------------------------------------------
    # scripts/bench-postgres.sh is maintained separately; it runs here when
    # it is present and executable.
    if [ -x scripts/bench-postgres.sh ]; then
      scripts/bench-postgres.sh
    else
      echo "== PostgreSQL: scripts/bench-postgres.sh not present, skipped"
    fi
    ;;
  *)
    echo "usage: scripts/bench.sh [example|json|sqlite|runtime|ops|all]" >&2
    exit 1
    ;;
esac
