#!/usr/bin/env bash
# Create the project's virtualenv (.venv) from the lock file, installing uv first if needed.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run on its own.
#
# On a fresh Debian machine: uses `uv` when on PATH; otherwise installs it into
# .tools/ (a small venv) from the package index; installs python3-venv with apt
# when that is missing and we are root, and otherwise says what to install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_PYTHON_DOWNLOADS=never   # use the system's Python 3.11+, never download one

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

need_root_or_die() {
    [[ "$(id -u)" -eq 0 ]] || die "$1"
}

find_uv() {
    if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
    if [[ -x "$ROOT/.tools/bin/uv" ]]; then echo "$ROOT/.tools/bin/uv"; return; fi
    return 1
}

if ! UV="$(find_uv)"; then
    if ! command -v python3 >/dev/null 2>&1; then
        need_root_or_die "python3 is missing: run \`sudo apt-get install python3 python3-venv\`"
        say "installing python3 (apt)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    if ! python3 -m venv "$ROOT/.tools" >/dev/null 2>&1; then
        rm -rf "$ROOT/.tools"
        need_root_or_die "python3 cannot create virtualenvs: run \`sudo apt-get install python3-venv\`"
        say "installing python3-venv (apt)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$ROOT/.tools"
    fi
    say "installing uv into .tools/"
    "$ROOT/.tools/bin/python" -m pip install -q uv || die "could not install uv from the package index"
    UV="$ROOT/.tools/bin/uv"
fi

cd "$ROOT"
# Byte-compile at install time: with PYTHONDONTWRITEBYTECODE=1 (common in containers)
# Python never writes .pyc files itself, and importing Prefect's server from source takes
# about twice as long on every start. Compiling an up-to-date tree again takes < 1 s.
"$UV" sync --frozen --quiet --compile-bytecode ||
    die "uv sync failed (see above); is Python >= 3.11 installed?"
"$ROOT/.venv/bin/python" -m compileall -q -j 0 wflo_prefect flows blocks >/dev/null ||
    die "could not byte-compile the project's sources"
export UV
