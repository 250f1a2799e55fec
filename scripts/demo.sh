#!/usr/bin/env bash
# README command one: run the governed example flows on the embedded defaults
# (an ephemeral Prefect server and a SQLite ledger under .prefect-demo/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [[ -z "${PREFECT_HOME:-}" ]]; then
    # The demo's own home starts empty each time, so every run shows the same story.
    export PREFECT_HOME="$ROOT/.prefect-demo"
    rm -rf "$PREFECT_HOME"
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# The failures the demo provokes on purpose would print tracebacks; it reports them itself.
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-CRITICAL}"
exec "$ROOT/.venv/bin/python" -m flows.demo "$@"
