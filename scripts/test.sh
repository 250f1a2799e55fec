#!/usr/bin/env bash
# README command two: the whole test suite, with lint, strict types and the docs build.
# Provisions the services the tests need (Docker engine + gVisor, PostgreSQL, Chromium,
# the sandbox image) when missing and running as root; otherwise stops and says what
# to install. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
bash "$ROOT/scripts/provision.sh"

step() { printf '\n== %s\n' "$*"; }
step "ruff"
.venv/bin/ruff check wflo_prefect tests benchmarks flows blocks
.venv/bin/ruff format --check wflo_prefect tests benchmarks flows blocks
step "mypy --strict"
.venv/bin/mypy
export NO_MKDOCS_2_WARNING=1
step "mkdocs build --strict"
.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
step "pytest"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/pytest "$@"
