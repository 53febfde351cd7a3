#!/usr/bin/env bash
# Benchmarks of the [[database]] check, on data generated at run time in a
# temporary folder (removed at the end; nothing is committed):
#   1. validate of a converged database with 1,000 tables x 20 columns,
#      and of the same database when every table's statement differs in
#      text only (the slow path: per-column details are read);
#   2. heal of one missing addable column on a ~1 GiB database: an in-place
#      ALTER TABLE ADD COLUMN, no copy. Also times the parts: validate alone
#      and PRAGMA quick_check, which reads the whole file.
# Needs: cargo, sqlite3, hyperfine (apt-get install sqlite3 hyperfine).
# Usage: scripts/bench-sqlite.sh [size-in-MiB]   (default 1024)
set -euo pipefail

size_mib=${1:-1024}
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in sqlite3 hyperfine; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/preflight"
work=$(mktemp -d "${TMPDIR:-/tmp}/preflight-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

manifest() { # root db schema
    printf 'version = 1\n[[database]]\npath = "%s"\nschema = "%s"\n' "$2" "$3" >"$1/preflight.toml"
}

echo "== 1. validate, 1,000 tables x 20 columns"
wide="$work/wide"
mkdir -p "$wide/schemas"
for t in $(seq 1 1000); do
    cols="id INTEGER PRIMARY KEY"
    for c in $(seq 1 19); do cols="$cols, c$c TEXT NOT NULL DEFAULT ''"; done
    echo "CREATE TABLE t$t ($cols);"
    echo "CREATE INDEX t${t}_c1 ON t$t (c1);"
done >"$wide/schemas/wide.sql"
manifest "$wide" wide.db schemas/wide.sql
"$bin" heal --root "$wide" -m "$wide/preflight.toml" -q >/dev/null
"$bin" validate --root "$wide" -m "$wide/preflight.toml" -q
hyperfine --warmup 3 --runs 20 -N "$bin validate --root $wide -m $wide/preflight.toml -q"
# Same tables, statements reformatted: every table goes through the column comparison.
sed 's/(id INTEGER/(  id INTEGER/' "$wide/schemas/wide.sql" >"$wide/schemas/wide2.sql"
manifest "$wide" wide.db schemas/wide2.sql
"$bin" validate --root "$wide" -m "$wide/preflight.toml" -q
hyperfine --warmup 3 --runs 20 -N "$bin validate --root $wide -m $wide/preflight.toml -q"

echo "== 2. heal of one missing addable column on a ${size_mib} MiB database"
big="$work/big"
mkdir -p "$big/schemas"
echo "CREATE TABLE ticks (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, ts INTEGER NOT NULL, payload BLOB);" >"$big/old.sql"
cp "$big/old.sql" "$big/schemas/big.sql"
echo "ALTER TABLE ticks ADD COLUMN note TEXT;" >>"$big/schemas/big.sql" # the desired schema has one more column
rows=$((size_mib * 1024 * 1024 / 130))
start=$(date +%s)
sqlite3 "$big/big.db" <"$big/old.sql"
sqlite3 "$big/big.db" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  INSERT INTO ticks (symbol, ts, payload) SELECT 'SYM' || (i % 500), i, randomblob(100) FROM n;" >/dev/null
echo "generated $(du -h "$big/big.db" | cut -f1) ($rows rows) in $(( $(date +%s) - start )) s"
manifest "$big" big.db schemas/big.sql
cp "$big/big.db" "$big/pristine.db"
echo "-- PRAGMA quick_check alone (warm cache):"
hyperfine --warmup 1 --runs 5 -N "sqlite3 $big/big.db 'PRAGMA quick_check'"
echo "-- validate (includes quick_check):"
hyperfine --warmup 1 --runs 5 -N -i "$bin validate --root $big -m $big/preflight.toml -q"
echo "-- heal (validate, lock, validate, ALTER TABLE ADD COLUMN, validate):"
hyperfine --runs 5 -N --prepare "cp $big/pristine.db $big/big.db" "$bin heal --root $big -m $big/preflight.toml -q"
echo "-- the ALTER TABLE ADD COLUMN alone, as heal runs it:"
hyperfine --runs 5 -N --prepare "cp $big/pristine.db $big/big.db" \
    "sqlite3 $big/big.db 'BEGIN IMMEDIATE; ALTER TABLE \"ticks\" ADD COLUMN note TEXT; COMMIT;'"
echo "file size after heal: $(du -h "$big/big.db" | cut -f1) (no copy)"
