"""How long `wflo ... --help` takes, against `prefect --help`, measured in one run.

An approver typing `wflo approvals approve` should not wait for imports the command never
uses. Every `wflo` command and sub-command is started with `--help` as a new process,
interleaved with `prefect --help` (the baseline: the CLI of the tool wflo extends), and
the median wall time of each is compared. Aim: every `wflo` command at most 0.5x.

    .venv/bin/python benchmarks/bench_cli_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
AIM = 0.5


def commands() -> list[list[str]]:
    """Every wflo command path, from the CLI's own click tree (groups and leaves)."""
    import typer.main

    from wflo_prefect.cli import app

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        subcommands: dict[str, object] = getattr(command, "commands", {})  # a click group's
        for name, sub in sorted(subcommands.items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def wall(argv: list[str]) -> float:
    """Seconds one process takes from start to exit."""
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    paths = commands()
    baseline_argv = [str(BIN / "prefect"), "--help"]
    wall(baseline_argv)  # warm the page cache once for both
    wall([str(BIN / "wflo"), "--help"])
    baseline: list[float] = []
    samples: dict[str, list[float]] = {" ".join(p): [] for p in paths}
    for _ in range(args.rounds):
        baseline.append(wall(baseline_argv))
        for path in paths:
            samples[" ".join(path)].append(wall([str(BIN / "wflo"), *path, "--help"]))

    base = statistics.median(baseline)
    print(f"baseline `prefect --help`: median {base * 1000:.0f} ms over {args.rounds} rounds")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"{'command':<34} {'median':>9} {'ratio':>7}")
    worst = 0.0
    for name, times in samples.items():
        median = statistics.median(times)
        ratio = median / base
        worst = max(worst, ratio)
        label = f"wflo {name} --help".replace("  ", " ")
        print(f"{label:<34} {median * 1000:7.0f} ms {ratio:6.2f}x")
    verdict = "met" if worst <= AIM else "missed"
    print(f"slowest wflo command: {worst:.2f}x of `prefect --help` (aim <= {AIM}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
