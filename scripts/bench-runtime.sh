#!/usr/bin/env bash
# Cost of the [[prune]] rule over 10,000 files: `validate` when none is old
# enough (the walk and stat of every file), `validate` when all are old
# (plus building a 10,000-line plan), and one `heal` removing them all.
# Uses hyperfine (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get install -y hyperfine >/dev/null 2>&1 || sudo apt-get install -y hyperfine; }
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/preflight"
files=${FILES:-10000}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/preflight.toml" <<'TOML'
version = 1
[[prune]]
glob = "logs/*.log"
older_than = "14d"
keep_last = 10
TOML
# Writes $files log files into $work/logs, aged by the `touch -d` date $1.
make_logs() {
  rm -rf "$work/logs" "$work/.preflight"
  mkdir -p "$work/logs"
  if [ "$files" -gt 0 ]; then (cd "$work/logs" && seq -f "%05g.log" 1 "$files" | xargs touch -d "$1"); fi
}
export -f make_logs
export work files

files=0 make_logs "1 day ago"
hyperfine --warmup 3 --runs 30 -N \
  --command-name "validate, no files (baseline)" "$bin validate -q -m $work/preflight.toml"
make_logs "1 day ago"
hyperfine --warmup 3 --runs 30 -N \
  --command-name "validate, $files fresh files" "$bin validate -q -m $work/preflight.toml"
make_logs "30 days ago"
hyperfine --warmup 3 --runs 30 -N --ignore-failure \
  --command-name "validate, $files old files" "$bin validate -q -m $work/preflight.toml" \
  --command-name "heal --dry-run, $files old files" "$bin heal --dry-run -q -m $work/preflight.toml"
hyperfine --runs 10 --shell bash --ignore-failure --prepare "make_logs '30 days ago'" \
  --command-name "heal, removing $files old files" "$bin heal -q -m $work/preflight.toml"
