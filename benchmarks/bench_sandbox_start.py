"""Sandbox latency: cold start against `docker run`, and the warm path against a plain exec.

Measured in the same run, alternating where it matters:

- **cold**: `with DockerSandbox(): box.run(python3 -c pass)`, call to result and call
  to removal, against the Docker CLI's `docker run --rm --network none IMAGE python3
  -c pass` (start to exit, removal included);
- **warm**: one call that takes a sandbox from a `WarmPool`, runs a command through
  the container's resident runner and releases the sandbox (`with pool.sandbox() as
  box: box.run(...)`), call to release returned; before each call the pool is full
  and the previous sandbox's removal finished (the warm path on a settled pool, not a
  cold fallback). Against a plain exec (docker-py `exec_create` + `exec_start` +
  `exec_inspect` of the same command in a running container) and against the
  command's own time (fork, exec and wait, as the resident runner times it in the
  container and reports it with the run's end marker);
- the same under gVisor (runsc).

Every sandbox run also writes its audit entry to a SQLite ledger, as in production.
The load average is printed at the start and the end: on a busy machine p99 mostly
measures the load.

    .venv/bin/python benchmarks/bench_sandbox_start.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, WarmPool
from wflo_prefect.sandbox.attached import AttachedRunner
from wflo_prefect.sandbox.engine import docker_client
from wflo_prefect.sandbox.execution import ExecOutcome
from wflo_prefect.sandbox.removal import wait_for_removals
from wflo_prefect.testing import temporary_ledger

PYTHON = ["python3", "-c", "pass"]
TRUE = ["true"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def docker_run(image: str, runtime: str) -> float:
    """Seconds for the plain Docker CLI to run the command in a fresh container."""
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--runtime", runtime, image, *PYTHON],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def cold(config: SandboxConfig) -> tuple[float, float]:
    """Seconds to the result, and to the container's removal, of a cold sandbox."""
    started = time.perf_counter()
    with DockerSandbox(config) as box:
        result = box.run(PYTHON)
        to_result = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    return to_result, time.perf_counter() - started


def settle(pool: WarmPool) -> None:
    """Wait until the pool is full and no removal is running: a warm call, not a cold one."""
    deadline = time.monotonic() + 30
    while pool.idle < pool.size and time.monotonic() < deadline:
        time.sleep(0.01)
    wait_for_removals(30)


class _OwnTimes:
    """Records the command's own time the resident runner reports with each run."""

    def __init__(self) -> None:
        self.last: float | None = None
        real = AttachedRunner.run

        def run(runner: AttachedRunner, *args: Any, **kwargs: Any) -> ExecOutcome:
            outcome = real(runner, *args, **kwargs)
            self.last = outcome.command_seconds
            return outcome

        AttachedRunner.run = run  # type: ignore[method-assign,assignment]


OWN = _OwnTimes()


def warm_call(pool: WarmPool, command: list[str]) -> tuple[float, float, float]:
    """Seconds of take + run + release, of the run alone, and of the command's own time."""
    settle(pool)
    started = time.perf_counter()
    with pool.sandbox() as box:
        ran = time.perf_counter()
        result = box.run(command)
        run_only = time.perf_counter() - ran
    released = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    assert OWN.last is not None
    return released, run_only, OWN.last


def plain_exec(client: Any, container_id: str, command: list[str]) -> float:
    """Seconds of a plain exec through the engine's API (create, start, inspect)."""
    started = time.perf_counter()
    exec_id = client.api.exec_create(container_id, command)["Id"]
    client.api.exec_start(exec_id)
    code = client.api.exec_inspect(exec_id)["ExitCode"]
    elapsed = time.perf_counter() - started
    assert code == 0
    return elapsed


def measure_cold(rounds: int, config: SandboxConfig) -> dict[str, list[float]]:
    """Alternate the `docker run` baseline and a cold sandbox ``rounds`` times."""
    figures: dict[str, list[float]] = {"docker": [], "result": [], "removed": []}

    def sandbox() -> None:
        to_result, to_removal = cold(config)
        figures["result"].append(to_result)
        figures["removed"].append(to_removal)

    steps: list[Callable[[], None]] = [
        lambda: figures["docker"].append(docker_run(config.image, config.runtime)),
        sandbox,
    ]
    for round_ in range(rounds):
        for step in steps if round_ % 2 == 0 else reversed(steps):
            step()
    return figures


def measure_warm(rounds: int, config: SandboxConfig) -> dict[str, list[float]]:
    """Warm calls of `true` and `python3 -c pass`, alternating with plain execs."""
    client = docker_client()
    plain = client.containers.run(
        config.image,
        ["sleep", "600"],
        detach=True,
        remove=True,
        network_mode="none",
        runtime=config.runtime,
    )
    figures: dict[str, list[float]] = {
        f"{kind}_{name}": []
        for kind in ("exec", "call", "run", "own", "added")
        for name in ("true", "python")
    }
    try:
        with WarmPool(config, size=2) as pool:
            for _ in range(rounds):
                for name, command in (("true", TRUE), ("python", PYTHON)):
                    figures[f"exec_{name}"].append(plain_exec(client, plain.id, command))
                    call, run, own = warm_call(pool, command)
                    figures[f"call_{name}"].append(call)
                    figures[f"run_{name}"].append(run)
                    figures[f"own_{name}"].append(own)
                    figures[f"added_{name}"].append(run - own)
    finally:
        plain.remove(force=True)
    return figures


def ms(values: list[float], q: float | None = None) -> float:
    """p50 (or the q-th percentile) in milliseconds."""
    return 1000 * (statistics.median(values) if q is None else percentile(values, q))


def row(name: str, values: list[float], *bases: tuple[list[float], str]) -> str:
    """One table row: p50 / p99 in ms, and the ratio of p50s to each base."""
    ratios = "; ".join(f"{ms(values) / ms(base):.2f}x of {label}" for base, label in bases)
    return f"| {name} | {ms(values):.1f} ms | {ms(values, 99):.1f} ms | {ratios} |"


def report(runtime: str, cold_: dict[str, list[float]], warm: dict[str, list[float]]) -> None:
    """Print one runtime's rows and the warm path's added time."""
    docker = cold_["docker"]
    versus_docker = (docker, "docker run")
    print(row(f"{runtime}: plain `docker run --rm` (baseline)", docker))
    print(row(f"{runtime}: cold sandbox, call to result", cold_["result"], versus_docker))
    print(row(f"{runtime}: cold sandbox, call to removal", cold_["removed"], versus_docker))
    for name, shown in (("true", "`true`"), ("python", "`python3 -c pass`")):
        plain = warm[f"exec_{name}"]
        print(row(f"{runtime}: plain API exec of {shown} (baseline)", plain))
        print(
            row(
                f"{runtime}: warm take + run({shown}) + release",
                warm[f"call_{name}"],
                (plain, "plain exec"),
                (docker, "docker run"),
            )
        )
        print(row(f"{runtime}: warm run({shown}) alone, call to result", warm[f"run_{name}"]))
        print(row(f"{runtime}: of which {shown}'s own time", warm[f"own_{name}"]))
        print(row(f"{runtime}: of which added by the sandbox", warm[f"added_{name}"]))


def main() -> None:
    """Run the measurements and print markdown tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with temporary_ledger():
        cold(SandboxConfig())  # warm the image cache and the ledger's schema
        results = {}
        for runtime, rounds in (("runc", args.rounds), ("runsc", max(5, args.rounds // 2))):
            config = SandboxConfig(runtime=runtime)
            results[runtime] = (measure_cold(rounds, config), measure_warm(rounds, config))
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}\n")
    print("| variant | p50 | p99 | ratio (p50) |")
    print("|---|---:|---:|---:|")
    for runtime, (cold_, warm) in results.items():
        report(runtime, cold_, warm)
    print()
    for runtime, (cold_, warm) in results.items():
        print(
            f"{runtime}: a warm run adds {ms(warm['added_true']):.1f} ms to `true` and "
            f"{ms(warm['added_python']):.1f} ms to `python3 -c pass` (p50 of each run's call "
            "to result minus the command's own time, as the runner timed it); cold/docker-run "
            f"{ms(cold_['result']) / ms(cold_['docker']):.2f}x"
        )


if __name__ == "__main__":
    main()
