#!/usr/bin/env bash
# The long symlink-swap race: a helper process swaps a declared folder with
# a symlink to a folder outside the root (RENAME_EXCHANGE, in a loop) while
# heal writes 3,000 files, and during prune. ROUNDS rounds of each (default
# 50), each swapping for RACE_MS milliseconds (default 1500); any change
# outside the root fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-50}
start=$(date +%s)
PREFLIGHT_RACE_ROUNDS=$rounds PREFLIGHT_RACE_MS=${RACE_MS:-1500} \
    cargo test --release --test it race:: -- --nocapture --test-threads=1
echo "symlink-swap race: $rounds rounds of heal and of prune, nothing changed outside the root, $(( $(date +%s) - start )) s"
