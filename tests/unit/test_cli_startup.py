"""`wflo ... --help` starts without importing what no help text needs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("prefect", "sqlalchemy", "docker", "alembic", "genai_prices", "opentelemetry.sdk")

SCRIPT = """
import sys
import typer.main
from typer.testing import CliRunner
from wflo_prefect.cli import app

paths = []
def walk(command, path):
    paths.append(path)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        walk(sub, [*path, name])
walk(typer.main.get_command(app), [])
runner = CliRunner()
for path in paths:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY_ROOTS or m in HEAVY)
print(len(paths), heavy)
"""


def test_every_help_page_renders_without_heavy_imports() -> None:
    """Each wflo command's --help works, and none imports Prefect, SQLAlchemy or Docker."""
    script = f"HEAVY = {HEAVY!r}\nHEAVY_ROOTS = {tuple(h for h in HEAVY if '.' not in h)!r}\n"
    out = subprocess.run(
        [sys.executable, "-c", script + SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    count, heavy = out.stdout.split(" ", 1)
    assert int(count) > 20
    assert heavy.strip() == "[]"
