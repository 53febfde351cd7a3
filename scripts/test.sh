#!/usr/bin/env bash
# The whole test suite: what the README's second command and CI run.
# The PostgreSQL tests start throw-away servers of their own, so the
# server binaries (Debian's `postgresql` package, whose initdb is not on
# PATH) and the openssl CLI are installed first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres-bin.sh
cargo test --all-targets "$@"
