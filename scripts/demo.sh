#!/usr/bin/env bash
# README command one: run the governed example flows on the embedded defaults
# (an ephemeral Prefect server and a SQLite ledger under .prefect-demo/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/.prefect-demo}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-WARNING}"
exec "$ROOT/.venv/bin/python" -m flows.demo "$@"
