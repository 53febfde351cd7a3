#!/usr/bin/env bash
# Benchmarks of the [[database]] check:
#   1. validate of a converged database with 1,000 tables x 20 columns,
#      and of the same database when every table's statement differs in
#      text only (the slow path: per-column details are read); generated
#      in a temporary folder, removed at the end;
#   2. start-up cost on a large database that needs one ADD COLUMN
#      (default 6 M rows, about 0.9 GB), side by side with sqlite3's own
#      `PRAGMA quick_check` of the same file, with ratios: validate
#      (integrity = "auto": structural checks only at this size), validate
#      --deep (quick_check), heal (an in-place ALTER TABLE ADD COLUMN; the
#      file is checked not to be rewritten). The database is generated once
#      under target/bench-sqlite/ (never committed) and reused.
# Needs: cargo, sqlite3, hyperfine (installed with apt-get when missing).
# Usage: scripts/bench-sqlite.sh [rows]   (default 6000000)
set -euo pipefail

rows=${1:-6000000}
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in sqlite3 hyperfine; do
    command -v "$tool" >/dev/null || apt-get install -y "$tool" >/dev/null 2>&1 || sudo apt-get install -y "$tool"
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

echo "== 2. a large database that needs one ADD COLUMN (${rows} rows), against sqlite3"
big="$repo/target/bench-sqlite/big-$rows"
mkdir -p "$big/schemas"
echo "CREATE TABLE ticks (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, ts INTEGER NOT NULL, payload BLOB);" >"$big/old.sql"
# The desired schema has one more column.
echo "CREATE TABLE ticks (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, ts INTEGER NOT NULL, payload BLOB, note TEXT);" >"$big/schemas/big.sql"
if [ ! -s "$big/pristine.db" ]; then
    start=$(date +%s)
    rm -f "$big/pristine.db"
    sqlite3 "$big/pristine.db" <"$big/old.sql"
    sqlite3 "$big/pristine.db" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-200000;
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
      INSERT INTO ticks (symbol, ts, payload) SELECT 'SYM' || (i % 500), 1700000000 + i, randomblob(120) FROM n;" >/dev/null
    echo "generated in $(( $(date +%s) - start )) s"
fi
echo "database: $(du -h "$big/pristine.db" | cut -f1) ($rows rows), $big/pristine.db"
printf 'version = 1\n[[database]]\npath = "big.db"\nschema = "schemas/big.sql"\n' >"$big/preflight.toml"
# Written back to disk before each timed heal: its COMMIT fsyncs the file,
# which must not pay for flushing a fresh copy.
fresh="cp $big/pristine.db $big/big.db && rm -rf $big/.preflight && sync"
sh -c "$fresh"
csv="$big/times.csv"
hyperfine -N -i --warmup 1 --runs 5 --export-csv "$csv.1" \
    -n "sqlite3 PRAGMA quick_check" "sqlite3 $big/big.db 'PRAGMA quick_check'" \
    -n "preflight validate --deep" "$bin validate --deep -q -m $big/preflight.toml"
hyperfine -N -i --warmup 3 --runs 30 --export-csv "$csv.2" \
    -n "preflight validate" "$bin validate -q -m $big/preflight.toml"
hyperfine -N --runs 10 --prepare "sh -c '$fresh'" --export-csv "$csv.3" \
    -n "preflight heal" "$bin heal -q -m $big/preflight.toml" \
    -n "sqlite3 ALTER TABLE ADD COLUMN alone" \
    "sqlite3 $big/big.db 'BEGIN IMMEDIATE; ALTER TABLE ticks ADD COLUMN note TEXT; COMMIT;'"
sh -c "$fresh"
before=$(stat -c '%i %s' "$big/big.db")
"$bin" heal -q -m "$big/preflight.toml"
after=$(stat -c '%i %s' "$big/big.db")
"$bin" validate -q -m "$big/preflight.toml" && echo "converged after heal"
[ "$before" = "$after" ] || { echo "heal replaced the file: $before -> $after" >&2; exit 1; }
changed=$(cmp -l "$big/pristine.db" "$big/big.db" | wc -l || true)
echo "heal kept the file in place (inode and size unchanged) and changed $changed bytes of it: not rewritten"
echo "-- means (ms) and ratio to sqlite3's PRAGMA quick_check:"
tail -q -n +2 "$csv.1" "$csv.2" "$csv.3" | awk -F, '
    NR == 1 { base = $2 }
    { printf "%-40s %9.1f ms   x%.4f\n", $1, $2 * 1000, $2 / base }'
rm -f "$csv".*
