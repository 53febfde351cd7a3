#!/usr/bin/env bash
# Cost of the operations commands on the shipped example:
# - `preflight run -- true` against plain `true`: what launching through
#   preflight adds to every start of an application (steady state);
# - `preflight history` and `history --stats` on a full history (the
#   default bound of 200 runs);
# - `preflight init` on a copy of the example.
# Uses hyperfine (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get install -y hyperfine >/dev/null 2>&1 || sudo apt-get install -y hyperfine; }
cargo build --release --quiet
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/preflight"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r examples/pricing-app "$work/app"
rm -rf "$work/app/.preflight"
m="$work/app/preflight.toml"
"$bin" heal -q -m "$m" >/dev/null || true   # converge first: measure the steady state
# A full history: 200 runs of one action each.
mkdir -p "$work/app/.preflight"
for i in $(seq -w 1 200); do
  printf '{"run":"20260101T0000%s.000Z","time":"2026-01-01T00:00:00Z","id":"dir:data","action":"create directory","outcome":"done","detail":"created","created":[{"path":"data"}]}\n' "$i"
done > "$work/app/.preflight/history.jsonl"
cp -r "$work/app" "$work/init"
rm -f "$work/init/preflight.toml"
hyperfine --warmup 20 --runs 200 -N \
  "true" \
  "$bin run -q -m $m -- true" \
  "$bin history -m $m" \
  "$bin history --stats -m $m" \
  "$bin init --force -m $work/init/preflight.toml"
# Hashing cost: heal hashes every file it created or backed up when the run
# ends, and rollback hashes them again before touching anything. Measured
# as a rollback that must hash a 512 MiB file (and then refuses, as the
# recorded hash is not the file's).
big="$work/big"
mkdir -p "$big/.preflight"
printf 'version = 1\n' > "$big/preflight.toml"
head -c 536870912 /dev/urandom > "$big/data.bin"
printf '{"run":"R","time":"2026-01-01T00:00:00Z","id":"file:data.bin","action":"write","outcome":"done","created":[{"path":"data.bin","sha256":"0"}]}\n' > "$big/.preflight/history.jsonl"
hyperfine --warmup 1 --runs 5 -N -i "$bin rollback -m $big/preflight.toml"
