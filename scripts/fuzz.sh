#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each (default 600)
# with cargo-fuzz on nightly, from the committed seed corpus.
#   scripts/fuzz.sh            # all targets, 10 minutes each
#   SECONDS_PER_TARGET=60 scripts/fuzz.sh manifest_toml
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
seconds=${SECONDS_PER_TARGET:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
failed=0
for target in "${targets[@]}"; do
  echo "== $target ($seconds s)"
  mkdir -p "fuzz/corpus/$target"
  # A private copy of the corpus: new inputs found do not dirty the repository.
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$work/"
  log="$work.log"
  status=0
  (cd fuzz && cargo +nightly fuzz run "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10) >"$log" 2>&1 || status=$?
  grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs|==[0-9]+== ERROR|panicked|SUMMARY" "$log" | tail -5 || true
  [ "$status" -eq 0 ] || { echo "$target: FAILED (exit $status), log kept in $log"; failed=1; }
  rm -rf "$work"
done
exit "$failed"
