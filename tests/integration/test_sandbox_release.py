"""Releasing warm sandboxes: off the caller's path, never reused, always removed in the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from wflo_prefect.ledger import Ledger
from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, WarmPool, removal
from wflo_prefect.sandbox.hardening import LABEL, LABEL_ID, LABEL_OWNER, owner_label

pytestmark = pytest.mark.docker

_GONE_WITHIN = 60.0  # a hang guard while polling the engine, not a latency claim


def _containers(docker_client: Any, *labels: str) -> list[dict[str, Any]]:
    """The engine's list of wflo containers with ``labels`` (no inspect: they may vanish)."""
    filters = {"label": [f"{LABEL}=1", *labels]}
    return list(docker_client.api.containers(all=True, filters=filters))


def _wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + _GONE_WITHIN
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _gone(docker_client: Any, *labels: str) -> bool:
    return _wait_until(lambda: not _containers(docker_client, *labels))


def _runner_host_pid(docker_client: Any, container_id: str) -> int:
    """Host pid of a warm container's resident runner (the python3 under `timeout`)."""
    top = docker_client.api.top(container_id, ps_args="-eo pid,args")
    for pid, args in top["Processes"]:
        if args.startswith("python3 -u -c"):
            return int(pid)
    raise AssertionError(f"no resident runner in {top['Processes']}")


def test_release_returns_without_waiting_for_removal(
    ledger: Ledger, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a pool's sandbox returns while its removal is still held back; it happens later."""
    gate = threading.Event()
    real_remove = removal.remove_container

    def held_back(client: Any, container_id: str) -> None:
        gate.wait()
        real_remove(client, container_id)

    monkeypatch.setattr(removal, "remove_container", held_back)
    with WarmPool(SandboxConfig(), size=1) as pool:
        box = pool.sandbox().start()
        assert box.run("true").exit_code == 0
        closer = threading.Thread(target=box.close)
        closer.start()
        closer.join(timeout=_GONE_WITHIN)
        returned_while_held = not closer.is_alive()
        pending = removal.removals_pending()
        gate.set()
    assert returned_while_held
    assert pending >= 1
    assert _gone(docker_client, f"{LABEL_ID}={box.id}")


def test_a_container_kept_alive_by_its_code_is_removed_by_force(
    ledger: Ledger, docker_client: Any
) -> None:
    """A used container whose runner no longer reads its input (stopped) is still removed."""
    with WarmPool(SandboxConfig(), size=1) as pool:
        with pool.sandbox() as box:
            box.run("sleep 300 >/dev/null 2>&1 &")  # a lingering process, too
            os.kill(_runner_host_pid(docker_client, box.container_id), signal.SIGSTOP)
        assert _gone(docker_client, f"{LABEL_ID}={box.id}")


def test_a_warm_gvisor_sandbox_ended_by_a_memory_bomb_is_reported_oom_killed(
    ledger: Ledger, docker_client: Any
) -> None:
    """gVisor ends the whole container on OOM and the engine removes it; the run still says so."""
    with (
        WarmPool(SandboxConfig(runtime="runsc", memory_limit="128m"), size=1) as pool,
        pool.sandbox() as box,
    ):
        bomb = box.run_python("x = []\nwhile True:\n    x.append(bytearray(10 * 1024 * 1024))")
    assert bomb.oom_killed
    assert bomb.exit_code == 137
    assert _gone(docker_client, f"{LABEL_ID}={box.id}")


def test_released_sandbox_is_never_handed_out_again(ledger: Ledger, docker_client: Any) -> None:
    """Every sandbox a pool hands out, held together or one after another, is a fresh container."""
    seen: list[str] = []
    leftovers: list[str] = []

    def use(box: DockerSandbox) -> None:
        seen.append(box.container_id)
        leftovers.append(box.run("ls -A /workspace /tmp").stdout.replace("/workspace:", ""))
        box.put_files({"left-behind.txt": "secret", "/tmp/left-behind.txt": "secret"})

    with WarmPool(SandboxConfig(), size=2) as pool:
        for _ in range(4):
            with pool.sandbox() as box:
                use(box)
        # More at once than the pool holds: the last starts cold, and is still fresh.
        with pool.sandbox() as a, pool.sandbox() as b, pool.sandbox() as c:
            for box in (a, b, c):
                use(box)
    assert len(set(seen)) == len(seen) == 7
    assert all("left-behind" not in listing for listing in leftovers)
    owner = f"{LABEL_OWNER}={owner_label()}"
    assert _gone(docker_client, owner, "org.wflo.sandbox.role=warm")
    assert _wait_until(lambda: not any(_containers(docker_client, owner)))


def test_pool_refills_while_a_taken_sandbox_is_held(ledger: Ledger) -> None:
    """A refill waits for a taken sandbox to close only for a grace period, not for ever."""
    with WarmPool(SandboxConfig(), size=1) as pool, pool.sandbox() as held:
        refilled = _wait_until(lambda: pool.idle == 1)
        assert held.run("true").exit_code == 0
    assert refilled


def test_closing_the_pool_removes_its_idle_and_used_containers(
    ledger: Ledger, docker_client: Any
) -> None:
    """After the pool closes, none of its containers, idle, released or still open, remains."""
    pool = WarmPool(SandboxConfig(), size=2).start()
    with pool.sandbox() as used:
        used.run("true")
    still_open = pool.sandbox().start()
    assert _wait_until(lambda: pool.idle == pool.size)
    listed = _containers(docker_client, f"{LABEL_OWNER}={owner_label()}")
    idle = {container["Labels"][LABEL_ID] for container in listed} - {used.id, still_open.id}
    pool.close()
    still_open.close()
    assert len(idle) >= 2
    for sandbox_id in {used.id, still_open.id, *idle}:
        assert _gone(docker_client, f"{LABEL_ID}={sandbox_id}")


_OWNER_SCRIPT = """
import os, signal, sys, time
from wflo_prefect.sandbox import SandboxConfig, WarmPool
from wflo_prefect.sandbox.hardening import owner_label

pool = WarmPool(SandboxConfig(), size=2).start()
with pool.sandbox() as released:
    released.run("true")
held = pool.sandbox().start()
held.run("sleep 300 >/dev/null 2>&1 &")
while pool.idle < pool.size:  # not killed halfway through creating a container
    time.sleep(0.05)
print(owner_label(), flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(0)  # pool and sandbox left open: atexit and the engine must clean up
"""


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_containers_are_removed_when_their_process_ends(
    ledger: Ledger, docker_client: Any, ending: str
) -> None:
    """When the owning process exits or is SIGKILLed with sandboxes open, no container remains."""
    child = subprocess.run(
        [sys.executable, "-c", _OWNER_SCRIPT, ending],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PREFECT_INTEGRATIONS_WFLO_LOG_TO_STDERR": "false"},
        check=False,
    )
    owner = child.stdout.strip()
    assert owner.count(":") == 2, child.stderr
    assert child.returncode == (-signal.SIGKILL if ending == "kill" else 0), child.stderr
    assert _gone(docker_client, f"{LABEL_OWNER}={owner}")
