"""Sandbox start latency: call to result of `python -c pass`, against plain `docker run --rm`.

Measured in the same run, alternating: the baseline is `docker run --rm --network none
IMAGE python3 -c pass` (the Docker CLI, start to exit, removal included); a cold
sandbox is `with DockerSandbox(): box.run(...)` from the call to the result, and
separately to the container's removal; a warm sandbox takes its container from a
WarmPool (its resident runner instead of a `docker exec`). gVisor (runsc) is measured
the same way against runc. Every sandbox run
also writes its audit entry to a SQLite ledger, as in production.

    .venv/bin/python benchmarks/bench_sandbox_start.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, WarmPool
from wflo_prefect.testing import temporary_ledger

COMMAND = ["python3", "-c", "pass"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def docker_run(image: str, runtime: str) -> float:
    """Seconds for the plain Docker CLI to run the command in a fresh container."""
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--runtime", runtime, image, *COMMAND],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def cold(config: SandboxConfig) -> tuple[float, float]:
    """Seconds to the result, and to the container's removal, of a cold sandbox."""
    started = time.perf_counter()
    with DockerSandbox(config) as box:
        result = box.run(COMMAND)
        to_result = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    return to_result, time.perf_counter() - started


def warm(pool: WarmPool) -> float:
    """Seconds to the result of a sandbox whose container the pool had ready."""
    deadline = time.monotonic() + 30
    while pool.idle < pool.size and time.monotonic() < deadline:
        time.sleep(0.01)  # let the pool refill: we measure the warm path, not a cold fallback
    started = time.perf_counter()
    with pool.sandbox() as box:
        result = box.run(COMMAND)
        elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    return elapsed


def row(name: str, values: list[float], base: list[float] | None = None) -> str:
    """One table row: p50 / p99 in ms, and the ratio of p50s to the baseline."""
    p50, p99 = statistics.median(values), percentile(values, 99)
    ratio = f"{p50 / statistics.median(base):.2f}x" if base else ""
    return f"| {name} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {ratio} |"


def measure(rounds: int, runtime: str) -> dict[str, list[float]]:
    """Alternate baseline and cold sandbox ``rounds`` times under ``runtime``."""
    config = SandboxConfig(runtime=runtime)
    figures: dict[str, list[float]] = {"docker": [], "result": [], "removed": []}
    steps: list[Callable[[], None]] = [
        lambda: figures["docker"].append(docker_run(config.image, runtime)),
        lambda: [
            figures[k].append(v) for k, v in zip(("result", "removed"), cold(config), strict=False)
        ],
    ]
    for round_ in range(rounds):
        for step in steps if round_ % 2 == 0 else reversed(steps):
            step()
    return figures


def main() -> None:
    """Run the measurements and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with temporary_ledger():
        cold(SandboxConfig())  # warm the image cache and the ledger's schema
        runc = measure(args.rounds, "runc")
        runsc = measure(max(5, args.rounds // 2), "runsc")
        with WarmPool(SandboxConfig(), size=2) as pool:
            warm_runc = [warm(pool) for _ in range(args.rounds)]

        with WarmPool(SandboxConfig(runtime="runsc"), size=2) as pool:
            warm_runsc = [warm(pool) for _ in range(max(5, args.rounds // 2))]
    print("| variant | p50 | p99 | ratio (p50) |")
    print("|---|---:|---:|---:|")
    print(row("runc: plain `docker run --rm` (baseline)", runc["docker"]))
    print(row("runc: cold sandbox, call to result", runc["result"], runc["docker"]))
    print(row("runc: cold sandbox, call to removal", runc["removed"], runc["docker"]))
    print(row("runc: warm pool, call to result", warm_runc, runc["docker"]))
    print(row("runsc: plain `docker run --rm` (baseline)", runsc["docker"], runc["docker"]))
    print(row("runsc: cold sandbox, call to result", runsc["result"], runc["result"]))
    print(row("runsc: warm pool, call to result", warm_runsc, warm_runc))
    print(
        f"\ncold/docker-run ratio (runc, p50): "
        f"{statistics.median(runc['result']) / statistics.median(runc['docker']):.2f}x; "
        f"gVisor/runc cold ratio (p50): "
        f"{statistics.median(runsc['result']) / statistics.median(runc['result']):.2f}x"
    )


if __name__ == "__main__":
    main()
