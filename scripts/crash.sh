#!/usr/bin/env bash
# The long crash-injection run, KILLS SIGKILLs (default 500) for each of:
#   - `preflight heal` killed at random moments on a seeded broken root,
#     its database in rollback-journal mode, then in WAL mode (half as many
#     kills): nothing is lost, validate reports the database as recoverable
#     (never unusable), a second heal converges (tests/crash.rs);
#   - preflight's own table rebuild killed in rollback-journal mode: the
#     next `preflight run` recovers the hot journal and starts the app;
#   - `preflight rollback` killed half-way (both journal modes), then run
#     again: files are always as before or as healed, and the second
#     rollback finishes (tests/recovery.rs, which also kills a real writer
#     mid-transaction in both modes);
#   - `preflight heal` killed at random moments, then `preflight rollback`:
#     every byte and mode is back as before the heal, from the undo
#     records written ahead of each act (tests/interrupted.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${KILLS:-500}
start=$(date +%s)
PREFLIGHT_CRASH_KILLS=$kills PREFLIGHT_ROLLBACK_KILLS=$kills \
  cargo test --release --test it -- --nocapture crash:: recovery:: interrupted::
echo "crash injection: $kills kills per case, all invariants held, $(( $(date +%s) - start )) s"
