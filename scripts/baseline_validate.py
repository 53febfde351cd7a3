#!/usr/bin/env python3
"""BASELINE FOR BENCHMARKS ONLY - not part of preflight.

What a hand-written Python start-up check of the shipped example
(examples/pricing-app) costs: the kind of validator an application grows
before it adopts preflight. It reads the same manifest and makes the same
read-only checks as `preflight validate` for that layout (.env and its
required keys, directories and modes, JSON files and their default keys,
the positions JSON Schema, JSONL lines, heartbeat, locks, pidfile, the
python3 command, prune candidates, and each SQLite database: quick_check,
tables, columns, indexes, views, triggers, data checks). It heals nothing
and covers only what the example uses. scripts/bench.sh times it next to
`preflight validate`.

Usage: baseline_validate.py MANIFEST [--no-commands]
Exit codes as preflight's: 0 all good, 1 critical, 2 warnings only.
"""

import fnmatch
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import tomllib

try:
    import jsonschema
except ImportError:  # the comparison then lacks the schema check; say so
    jsonschema = None


def duration(text):
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(text[:-1]) * units[text[-1]]


def read_env(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                raise ValueError(f"line {number}: not KEY=VALUE")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def sqlite_objects(conn):
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    objects = {}
    for kind, name, table, sql in rows:
        columns = None
        if kind == "table":
            columns = [tuple(r[1:]) for r in conn.execute(f'PRAGMA table_info("{name}")')]
        objects[(kind, name)] = (table, " ".join((sql or "").split()), columns)
    return objects


def main():
    manifest_path = sys.argv[1]
    no_commands = "--no-commands" in sys.argv[2:]
    root = os.path.dirname(os.path.abspath(manifest_path))
    with open(manifest_path, "rb") as f:
        manifest = tomllib.load(f)
    critical, warnings = [], []

    def at(rel):
        return os.path.join(root, rel)

    env = manifest.get("env")
    if env:
        path = at(env.get("file", ".env"))
        values = {}
        if not os.path.exists(path):
            critical.append(f"{path}: missing")
        else:
            try:
                values = read_env(path)
            except ValueError as e:
                critical.append(f"{path}: {e}")
        template = env.get("template")
        if template and os.path.exists(at(template)) and values:
            for key in read_env(at(template)):
                if key not in values:
                    warnings.append(f"env: {key} missing")
        for key in env.get("required", []):
            if not (os.environ.get(key) or values.get(key)):
                critical.append(f"env: {key} required")

    for d in manifest.get("dir", []):
        path = at(d["path"])
        if not os.path.isdir(path):
            critical.append(f"{d['path']}: missing directory")
        elif "mode" in d and os.stat(path).st_mode & 0o7777 != int(d["mode"], 8):
            warnings.append(f"{d['path']}: mode")

    for spec in manifest.get("file", []):
        path = at(spec["path"])
        if not os.path.isfile(path):
            critical.append(f"{spec['path']}: missing")
            continue
        if not os.access(path, os.W_OK):
            critical.append(f"{spec['path']}: not writable")
        fmt = spec.get("format", "json")
        if fmt == "text":
            if os.path.getsize(path) == 0 and spec.get("default"):
                critical.append(f"{spec['path']}: empty")
        elif fmt == "jsonl":
            bad = 0
            with open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        try:
                            json.loads(line)
                        except ValueError:
                            bad += 1
            if bad:
                warnings.append(f"{spec['path']}: {bad} bad lines")
        else:
            try:
                with open(path, "rb") as f:
                    doc = json.load(f)
            except ValueError as e:
                critical.append(f"{spec['path']}: {e}")
                continue
            default = spec.get("default")
            if isinstance(default, dict):
                if not isinstance(doc, dict) or any(k not in doc for k in default):
                    critical.append(f"{spec['path']}: missing keys")
            if "schema" in spec and jsonschema is not None:
                with open(at(spec["schema"]), encoding="utf-8") as f:
                    schema = json.load(f)
                if list(jsonschema.Draft202012Validator(schema).iter_errors(doc)):
                    critical.append(f"{spec['path']}: schema")

    now = time.time()
    for hb in manifest.get("heartbeat", []):
        path = at(hb["path"])
        if not os.path.exists(path) or now - os.path.getmtime(path) > duration(hb["max_age"]):
            warnings.append(f"{hb['path']}: stale heartbeat")

    for lock in manifest.get("lock", []):
        folder, pattern = os.path.split(at(lock["glob"]))
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if fnmatch.fnmatch(name, pattern):
                if now - os.path.getmtime(os.path.join(folder, name)) > duration(lock["stale_after"]):
                    critical.append(f"{name}: stale lock")

    for pid in manifest.get("pidfile", []):
        path = at(pid["path"])
        if os.path.exists(path):
            try:
                os.kill(int(open(path).read().strip()), 0)
                critical.append(f"{pid['path']}: process running")
            except (ValueError, ProcessLookupError):
                warnings.append(f"{pid['path']}: stale pidfile")
            except PermissionError:
                critical.append(f"{pid['path']}: process running")

    if not no_commands:
        for cmd in manifest.get("command", []):
            try:
                out = subprocess.run(cmd["run"].split(), capture_output=True, text=True, timeout=10)
                found = re.search(r"(\d+)\.(\d+)", out.stdout + out.stderr)
                wanted = re.search(r"(\d+)\.(\d+)", cmd.get("version", "0.0"))
                if out.returncode or not found or tuple(map(int, found.groups())) < tuple(map(int, wanted.groups())):
                    (warnings if cmd.get("severity") == "warning" else critical).append(f"{cmd['name']}: version")
            except (OSError, subprocess.TimeoutExpired):
                critical.append(f"{cmd['name']}: missing")

    for rule in manifest.get("prune", []):
        folder, pattern = os.path.split(at(rule["glob"]))
        names = [n for n in os.listdir(folder) if fnmatch.fnmatch(n, pattern)] if os.path.isdir(folder) else []
        old = [n for n in names if now - os.path.getmtime(os.path.join(folder, n)) > duration(rule["older_than"])]
        if len(old) > 0 and len(names) > rule.get("keep_last", 0):
            warnings.append(f"{rule['glob']}: {len(old)} files to prune")

    for db in manifest.get("database", []):
        path = at(db["path"])
        if not os.path.exists(path):
            critical.append(f"{db['path']}: missing database")
            continue
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                critical.append(f"{db['path']}: quick_check")
            desired = sqlite3.connect(":memory:")
            with open(at(db["schema"]), encoding="utf-8") as f:
                desired.executescript(f.read())
            live = sqlite_objects(conn)
            for key, (table, sql, columns) in sqlite_objects(desired).items():
                if key not in live:
                    (warnings if key[0] == "index" else critical).append(f"{db['path']}: {key[0]} {key[1]} missing")
                elif key[0] == "table" and live[key][2] != columns:
                    warnings.append(f"{db['path']}: table {key[1]} differs")
                elif key[0] != "table" and live[key][1] != sql:
                    warnings.append(f"{db['path']}: {key[0]} {key[1]} differs")
            for check in db.get("check", []):
                if conn.execute(check["sql"]).fetchone() is not None:
                    (warnings if check.get("severity") == "warning" else critical).append(check["name"])
        except sqlite3.Error as e:
            critical.append(f"{db['path']}: {e}")
        finally:
            conn.close()

    for message in critical + warnings:
        print(message)
    print(f"{len(critical)} critical, {len(warnings)} warnings")
    return 1 if critical else 2 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
