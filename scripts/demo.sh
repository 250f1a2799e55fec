#!/usr/bin/env bash
# README command one: run the governed example flows on the embedded defaults
# (an ephemeral Prefect server and a SQLite ledger under .prefect-demo/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [[ -z "${PREFECT_HOME:-}" ]]; then
    export PREFECT_HOME="$ROOT/.prefect-demo"
    # The ledger and the demo's files start empty each time, so every run shows the same
    # story. Prefect's own database is kept: creating it runs all of Prefect's migrations,
    # ~20 s on a slow machine.
    rm -rf "$PREFECT_HOME/wflo" "$PREFECT_HOME/work"
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# The ephemeral server's first start (migrations, imports) can pass Prefect's 20 s default.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}"
# Section 6 runs code in the Docker sandbox. As root, provision the engine and the sandbox
# image when missing (as the test command does); otherwise the demo says what is missing
# and shows the other sections. WFLO_DEMO_PROVISION=0 skips this step.
if [[ "$(id -u)" -eq 0 && "${WFLO_DEMO_PROVISION:-1}" != 0 ]]; then
    bash "$ROOT/scripts/provision.sh" docker sandbox-image ||
        printf 'demo: provisioning Docker failed (see above); the sandbox section will say what is missing\n' >&2
fi
# The failures the demo provokes on purpose would print tracebacks; it reports them itself.
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-CRITICAL}"
exec "$ROOT/.venv/bin/python" -m flows.demo "$@"
