#!/usr/bin/env bash
# The long crash-injection run: SIGKILL `preflight heal` at random moments
# KILLS times (default 500) and check that nothing is lost after each.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${KILLS:-500}
start=$(date +%s)
PREFLIGHT_CRASH_KILLS=$kills cargo test --release --test it crash:: -- --nocapture
echo "crash injection: $kills kills, all invariants held, $(( $(date +%s) - start )) s"
