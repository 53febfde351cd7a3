#!/usr/bin/env bash
# Start-up cost of `preflight validate` on the shipped example, the figure
# that matters when preflight runs before every start of an application.
# Uses hyperfine (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get install -y hyperfine >/dev/null 2>&1 || sudo apt-get install -y hyperfine; }
cargo build --release --quiet
bin=target/release/preflight
example=examples/pricing-app/preflight.toml
"$bin" heal -q -m "$example" >/dev/null || true   # converge first: measure the steady state
# The example's `python3 --version` check costs one Python start; the
# second line shows preflight's own cost without it.
hyperfine --warmup 20 --runs 200 -N \
  "$bin validate -q -m $example" \
  "$bin validate -q --no-commands -m $example" \
  "$bin validate --format json -m $example" \
  "$bin heal -q -m $example" \
  "python3 -c pass"
