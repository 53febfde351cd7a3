#!/usr/bin/env bash
# Launcher for an application that preflight guards.
#
#   launch.sh CMD ARGS…      e.g.  launch.sh python3 app.py --port 8000
#
# `preflight run` validates the working directory, heals what it safely can,
# validates again, and then replaces itself with CMD: the application keeps
# this process's PID, signals and exit code. With critical findings left it
# prints them and exits 1 without starting CMD. It replaces the usual
#   preflight validate || preflight heal && preflight validate && exec CMD
#
# APP_ROOT (default: this script's folder) holds preflight.toml.
# PREFLIGHT_RETRY waits that long for a volume still being mounted or a
# database still being restored (default 30s).
set -euo pipefail
cd "${APP_ROOT:-$(dirname "$0")}"
exec preflight run --retry-timeout "${PREFLIGHT_RETRY:-30s}" --sleep 2s -- "$@"
