#!/usr/bin/env bash
# JSON and JSONL integrity, measured side by side in one run, with ratios:
#  1. checking a JSONL file of short trading-event lines (~130 bytes,
#     default 256 MiB): preflight validate (mean and best of 10 runs) vs
#     `jq -c . >/dev/null` vs Python `json.loads` per line;
#  2. repairing it (3 bad lines) with heal, against `dd conv=fsync` (disk speed);
#  3. salvaging a truncated, NUL-padded JSON document of about 100 MB: the
#     whole `preflight heal` process, an absolute figure (no other tool
#     salvages without inventing values; NOTES has json_repair/jsonrepair).
# Wall time from hyperfine, peak RSS from /usr/bin/time. Sizes: JSONL_MIB
# and JSON_MB in the environment (defaults 256 and 100). The data is
# generated in a temporary folder, removed at the end. Installs jq,
# hyperfine and GNU time with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
JSONL_MIB=${JSONL_MIB:-256}
JSON_MB=${JSON_MB:-100}

need() { command -v "$1" >/dev/null || { apt-get install -y "$2" >/dev/null 2>&1 || sudo apt-get install -y "$2"; }; }
need jq jq
need hyperfine hyperfine
[ -x /usr/bin/time ] || need /usr/bin/time time

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/preflight"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app/logs"

# --- data -------------------------------------------------------------------
python3 - "$work/app/logs/events.jsonl" "$JSONL_MIB" <<'PY'
import json, random, sys
random.seed(7)
path, size = sys.argv[1], int(sys.argv[2]) << 20
symbols = ["EURUSD", "GBPUSD", "USDJPY", "BTCUSD", "ETHUSD", "AAPL", "MSFT", "ES_F"]
lines = []
for i in range(5000):
    event = {"ts": f"2026-11-23T15:{i % 60:02d}:{i * 7 % 60:02d}.{i % 1000:03d}Z", "seq": 1000000 + i,
             "type": random.choice(["fill", "order", "cancel", "quote"]), "symbol": random.choice(symbols),
             "side": random.choice(["buy", "sell"]), "qty": random.randint(1, 100000),
             "price": round(random.uniform(0.5, 70000), 5)}
    if i % 16 == 0:  # now and then a note: UTF-8 and escapes on the path too
        event["note"] = "caf\u00e9 \"q\""
    lines.append(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
block = ("\n".join(lines) + "\n").encode()
with open(path, "wb") as f:
    written = 0
    while written < size:
        f.write(block)
        written += len(block)
PY

python3 - "$work/app/logs/positions.json" "$JSON_MB" <<'PY'
import json, random, sys
random.seed(11)
path, size = sys.argv[1], int(sys.argv[2]) * 1000 * 1000
with open(path, "wb") as f:
    f.write(b'{"closed_positions": [], "open_positions": [\n')
    written, i = 0, 0
    while written < size:
        p = {"id": i, "symbol": random.choice(["EURUSD", "AAPL", "BTCUSD"]), "side": "buy",
             "qty": random.randint(1, 10**6), "entry_price": round(random.uniform(0.5, 70000), 5),
             "opened": "2026-11-23T15:42:00Z", "tags": ["live"], "note": "t\u00e9st \\ \"x\""}
        chunk = ("  " + json.dumps(p) + ",\n").encode()
        f.write(chunk)
        written += len(chunk)
        i += 1
    # Cut in the middle of a record, then the NUL padding of a crash.
    f.write(b'  {"id": %d, "symbol": "EU' % i)
    f.write(b"\0" * 65536)
PY

# One manifest per file, so each measurement reads only its own file.
printf 'version = 1\n[[file]]\npath = "logs/events.jsonl"\nformat = "jsonl"\n' >"$work/app/events.toml"
printf 'version = 1\n[[file]]\npath = "logs/positions.json"\ndefault = { open_positions = [], closed_positions = [] }\n' \
  >"$work/app/positions.toml"

jsonl="$work/app/logs/events.jsonl"
json="$work/app/logs/positions.json"
jsonl_bytes=$(stat -c %s "$jsonl")
json_bytes=$(stat -c %s "$json")

# --- measuring --------------------------------------------------------------
declare -A SECONDS_OF RSS_OF
# measure NAME BYTES CMD...: runs CMD once, prints wall time, MB/s, peak RSS.
measure() {
  local name=$1 bytes=$2
  shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || true
  # GNU time puts "Command exited with non-zero status" first: the figures are last.
  read -r secs rss_kb < <(tail -1 "$work/time")
  SECONDS_OF[$name]=$secs
  RSS_OF[$name]=$rss_kb
  awk -v n="$name" -v s="$secs" -v b="$bytes" -v r="$rss_kb" \
    'BEGIN { printf "%-44s %8.3f s %9.0f MB/s %8.1f MiB RSS\n", n, s, b / 1e6 / (s + 1e-4), r / 1024 }'
}
# timed NAME BYTES RUNS HYPERFINE-ARGS...: mean and best of RUNS runs (after
# a warm-up run when RUNS > 1); SECONDS_OF[NAME] is the mean.
timed() {
  local name=$1 bytes=$2 runs=$3 warmup=1 mean best
  shift 3
  [ "$runs" -gt 1 ] || warmup=0
  hyperfine -N -i --style none --warmup "$warmup" --runs "$runs" --export-json "$work/hyperfine.json" "$@" >/dev/null
  read -r mean best < <(jq -r '.results[0] | "\(.mean) \(.min)"' "$work/hyperfine.json")
  SECONDS_OF[$name]=$mean
  awk -v n="$name" -v m="$mean" -v lo="$best" -v b="$bytes" -v r="$runs" \
    'BEGIN { printf "%-44s %8.3f s mean, %.3f s best of %d   %6.0f MB/s mean, %6.0f MB/s best\n", n, m, lo, r, b / 1e6 / m, b / 1e6 / lo }'
}
ratio() {
  awk -v n="$1" -v a="${SECONDS_OF[$2]}" -v b="${SECONDS_OF[$3]}" 'BEGIN { printf "  %-50s %6.1fx\n", n, a / (b + 1e-6) }'
}

cat "$jsonl" "$json" >/dev/null # warm the page cache for every contender alike
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "JSONL: $jsonl_bytes bytes, $(wc -l <"$jsonl") lines; JSON: $json_bytes bytes"
echo
echo "== JSONL check =="
timed "preflight validate" "$jsonl_bytes" 10 "$bin validate -q -m $work/app/events.toml"
measure "preflight validate (one run, for its RSS)" "$jsonl_bytes" "$bin" validate -q -m "$work/app/events.toml"
# hyperfine sends each command's output to /dev/null.
timed "jq -c . >/dev/null" "$jsonl_bytes" 1 "jq -c . $jsonl"
printf 'import json, sys\nfor line in open(sys.argv[1], "rb"):\n    if line.strip():\n        json.loads(line)\n' \
  >"$work/loads.py"
timed "python json.loads per line" "$jsonl_bytes" 1 "python3 $work/loads.py $jsonl"
ratio "jq time / preflight time (means)" "jq -c . >/dev/null" "preflight validate"
ratio "python time / preflight time (means)" "python json.loads per line" "preflight validate"
awk -v s="${SECONDS_OF[preflight validate]}" -v b="$jsonl_bytes" \
  'BEGIN { printf "  target: >= 1.5 GB/s (issue), >= 1 GB/s (spec); measured %.2f GB/s (mean)\n", b / 1e9 / s }'

echo
echo "== JSONL repair (3 bad lines, torn last line) =="
python3 - "$jsonl" <<'PY'
import os, sys
path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "r+b") as f:
    for at in (size // 3, 2 * size // 3):
        f.seek(at)
        f.write(b"\x00garbage\x00")
with open(path, "ab") as f:
    f.write(b'{"ts":"2026-11-2')
PY
jsonl_bytes=$(stat -c %s "$jsonl")
measure "dd conv=fsync (disk speed reference)" "$jsonl_bytes" \
  dd if="$jsonl" of="$work/copy.jsonl" bs=4M conv=fsync status=none
rm -f "$work/copy.jsonl"
measure "preflight validate (finds 3 bad lines)" "$jsonl_bytes" "$bin" validate -q -m "$work/app/events.toml"
measure "preflight heal" "$jsonl_bytes" "$bin" heal -q -m "$work/app/events.toml"
# heal = validate + repair + validate again: the repair pass alone is the rest.
SECONDS_OF[repair pass]=$(awk -v h="${SECONDS_OF[preflight heal]}" \
  -v v="${SECONDS_OF[preflight validate (finds 3 bad lines)]}" 'BEGIN { print h - 2 * v }')
awk -v s="${SECONDS_OF[repair pass]}" -v b="$jsonl_bytes" \
  'BEGIN { printf "%-44s %8.3f s %9.0f MB/s\n", "repair pass (heal - 2 x validate)", s, b / 1e6 / (s + 1e-4) }'
ratio "repair pass time / dd+fsync time" "repair pass" "dd conv=fsync (disk speed reference)"

echo
echo "== salvage of a truncated ${JSON_MB} MB JSON (absolute figures) =="
cp "$json" "$work/positions.pristine"
timed "preflight validate (finds the damage)" "$json_bytes" 5 "$bin validate -q -m $work/app/positions.toml"
timed "preflight heal (whole process)" "$json_bytes" 5 \
  --prepare "sh -c 'cp $work/positions.pristine $json && rm -rf $work/app/.preflight'" \
  "$bin heal -q -m $work/app/positions.toml"
cp "$work/positions.pristine" "$json"
rm -rf "$work/app/.preflight"
measure "preflight heal (one run, for its RSS)" "$json_bytes" "$bin" heal -q -m "$work/app/positions.toml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  salvaged:", len(d["open_positions"]), "positions kept")' "$json"
awk -v r="${RSS_OF[preflight heal (one run, for its RSS)]}" -v b="$json_bytes" \
  'BEGIN { printf "  heal peak RSS / file size: %.2f\n", r * 1024 / b }'
awk -v s="${SECONDS_OF[preflight heal (whole process)]}" \
  'BEGIN { printf "  target: whole heal <= 1 s for 100 MB; measured %.3f s (mean)\n", s }'
