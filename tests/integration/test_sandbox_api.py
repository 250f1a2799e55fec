"""DockerSandbox against the real engine: running code, files, limits, clean-up, observability."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import metrics
from wflo_prefect.sandbox import (
    DockerSandbox,
    SandboxConfig,
    SandboxError,
    SandboxSerializationError,
    SandboxTimeout,
    WarmPool,
)
from wflo_prefect.sandbox.hardening import LABEL, LABEL_ID, LABEL_OWNER, owner_label
from wflo_prefect.sandbox.removal import wait_for_removals

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def test_run_python_gets_inputs_and_reports_usage(ledger: Ledger) -> None:
    """run_python sees `inputs`; the result has exit code, output, CPU time and peak memory."""
    with DockerSandbox() as box:
        result = box.run_python(
            "import sys\nprint(sum(inputs['xs']))\nprint('warn', file=sys.stderr)\n"
            "blob = bytearray(40 * 1024 * 1024)",
            inputs={"xs": [1, 2, 3]},
        )
    assert result.ok
    assert (result.exit_code, result.stdout, result.stderr) == (0, "6\n", "warn\n")
    assert result.peak_memory_bytes is not None
    assert result.peak_memory_bytes > 40 * 1024 * 1024
    assert result.cpu_time_seconds is not None
    assert result.cpu_time_seconds > 0
    assert result.duration_seconds > 0
    assert not result.timed_out
    assert not result.oom_killed


def test_run_reports_a_failing_exit_code(ledger: Ledger) -> None:
    """A command that fails returns its exit code and stderr, it does not raise."""
    with DockerSandbox() as box:
        result = box.run("echo bad >&2; exit 3")
    assert (result.exit_code, result.stderr, result.ok) == (3, "bad\n", False)


def test_files_go_in_and_come_out(ledger: Ledger) -> None:
    """put_files writes under the workdir and /tmp; get_files reads files and directories back."""
    with DockerSandbox() as box:
        written = box.put_files({"data/in.txt": "hello", "/tmp/x/bin.dat": b"\x00\x01"})
        box.run("tr a-z A-Z < data/in.txt > data/out.txt")
        files = box.get_files(["data", "/tmp/x/bin.dat"])
        with pytest.raises(SandboxError, match="could not be written"):
            box.put_files({"/etc/evil": "x"})
        with pytest.raises(SandboxError, match="could not be read"):
            box.get_files(["missing.txt"])
    assert written == ["/workspace/data/in.txt", "/tmp/x/bin.dat"]
    assert files == {
        "/workspace/data/in.txt": b"hello",
        "/workspace/data/out.txt": b"HELLO",
        "/tmp/x/bin.dat": b"\x00\x01",
    }


def test_inputs_that_are_not_json_are_refused(ledger: Ledger) -> None:
    """run_python refuses inputs it cannot send as JSON, naming them."""
    with DockerSandbox() as box, pytest.raises(SandboxSerializationError, match="JSON"):
        box.run_python("pass", inputs={"f": object()})


def test_timeout_kills_the_container_and_raises(ledger: Ledger, docker_client: Any) -> None:
    """A run past its timeout raises SandboxTimeout with the output so far; the container dies."""
    with DockerSandbox(SandboxConfig(timeout_seconds=30)) as box:
        with pytest.raises(SandboxTimeout, match="1 s timeout") as caught:
            box.run("echo started; sleep 60", timeout=1)
        state = docker_client.api.inspect_container(box.container_id)["State"]
        with pytest.raises(SandboxError, match="was killed"):
            box.run("true")
    assert caught.value.result is not None
    assert caught.value.result.timed_out
    assert caught.value.result.stdout == "started\n"
    assert state["Running"] is False


def test_output_is_capped(ledger: Ledger) -> None:
    """Output past output_limit_bytes is dropped and flagged; the run still completes."""
    with DockerSandbox(SandboxConfig(output_limit_bytes=4096)) as box:
        result = box.run("head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2")
    assert result.exit_code == 0
    assert result.stdout == "x" * 4096
    assert result.stdout_truncated
    assert not result.stderr_truncated
    assert result.stderr == "done\n"


def test_containers_are_labelled_and_always_removed(ledger: Ledger, docker_client: Any) -> None:
    """The container carries wflo's labels and is removed even when the block raises."""
    seen: dict[str, Any] = {}

    def fail_inside() -> None:
        with DockerSandbox() as box:
            seen["box"] = box
            seen["labels"] = docker_client.containers.get(box.container_id).labels
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    box, labels = seen["box"], seen["labels"]
    assert labels[LABEL] == "1"
    assert labels[LABEL_ID] == box.id
    assert labels[LABEL_OWNER] == owner_label()
    assert not docker_client.containers.list(all=True, filters={"label": f"{LABEL_ID}={box.id}"})


def test_container_is_hardened(ledger: Ledger, docker_client: Any) -> None:
    """The engine reports: no caps, no new privileges, seccomp, read-only, limits, no network."""
    config = SandboxConfig(memory_limit="256m", cpu_limit=0.25, pids_limit=50)
    with DockerSandbox(config) as box:
        host = docker_client.api.inspect_container(box.container_id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["Privileged"] is False
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert any(opt.startswith("seccomp=") for opt in host["SecurityOpt"])
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "none"
    assert (host["Memory"], host["MemorySwap"]) == (256 * 1024**2, 256 * 1024**2)
    assert (host["NanoCpus"], host["PidsLimit"]) == (250_000_000, 50)
    assert not host["Binds"]
    assert not host["Devices"]
    assert host["IpcMode"] == "private"


def test_gc_removes_containers_of_a_killed_process(docker_client: Any) -> None:
    """After the owning process is SIGKILLed, `wflo sandbox gc` removes its container."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from wflo_prefect.sandbox import DockerSandbox\n"
            "box = DockerSandbox().start()\n"
            "print(box.container_id, flush=True)\n"
            "import time; time.sleep(300)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_INTEGRATIONS_WFLO_LOG_TO_STDERR": "false"},
    )
    assert child.stdout is not None
    container_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert docker_client.containers.get(container_id).status == "running"
    gc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "wflo"), "sandbox", "gc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert gc.returncode == 0, gc.stderr
    assert "wflo-sandbox-" in gc.stdout
    assert not docker_client.containers.list(all=True, filters={"id": container_id})


def test_gc_keeps_containers_of_live_processes(ledger: Ledger, docker_client: Any) -> None:
    """gc without --all leaves a sandbox whose owner still runs."""
    from wflo_prefect.sandbox import collect_garbage

    with DockerSandbox() as box:
        collected = collect_garbage(docker_client)
        assert docker_client.containers.get(box.container_id).status == "running"
    assert f"wflo-sandbox-{box.id}" not in collected.containers


def test_warm_pool_serves_each_container_once(ledger: Ledger, docker_client: Any) -> None:
    """A warm sandbox starts from a ready container, used once, and the pool refills."""
    with WarmPool(SandboxConfig(), size=1) as pool:
        ready = pool.idle
        with pool.sandbox() as first:
            first.put_files({"left-behind.txt": "secret"})
            first_container = first.container_id
        with pool.sandbox() as second:
            leftover = second.run("ls").stdout
            second_container = second.container_id
        # Either warm or (if the refill was not ready yet) cold; never the same container.
    assert ready == 1
    assert first_container != second_container
    assert leftover == ""
    assert wait_for_removals()  # released in the background
    assert not docker_client.containers.list(all=True, filters={"id": first_container})
    assert not docker_client.containers.list(all=True, filters={"id": second_container})


def test_runs_leave_audit_entries_and_metrics(ledger: Ledger) -> None:
    """Each run is audited with its numbers; creation time and usage reach the metrics."""
    before = metrics.REGISTRY.get_sample_value(
        "wflo_sandbox_runs_total", {"runtime": "runc", "outcome": "error"}
    )
    with DockerSandbox() as box:
        box.run("exit 2")
        memory = metrics.REGISTRY.get_sample_value(
            "wflo_sandbox_memory_usage_bytes", {"sandbox_id": box.id}
        )
    after = metrics.REGISTRY.get_sample_value(
        "wflo_sandbox_runs_total", {"runtime": "runc", "outcome": "error"}
    )
    events = ledger.audit.recent(5, event_prefix="sandbox.")
    assert events[0].event == "sandbox.run"
    assert events[0].outcome == "error"
    assert events[0].payload["exit_code"] == 2
    assert events[0].payload["sandbox_id"] == box.id
    assert (after or 0) - (before or 0) == 1
    assert memory is not None
    assert memory > 0
    created = metrics.REGISTRY.get_sample_value(
        "wflo_sandbox_creation_duration_seconds_count", {"runtime": "runc", "warm": "false"}
    )
    assert created is not None
    assert created >= 1


def test_missing_image_says_how_to_build_it(ledger: Ledger) -> None:
    """A sandbox on an image the engine lacks fails with the build command in the message."""
    with (
        pytest.raises(Exception, match="wflo sandbox build-image"),
        DockerSandbox(SandboxConfig(image="wflo-no-such-image:nope")),
    ):
        pass


def test_gvisor_runtime_runs_code(ledger: Ledger) -> None:
    """runtime='runsc' runs the code under gVisor's kernel."""
    with DockerSandbox(SandboxConfig(runtime="runsc")) as box:
        result = box.run_python("import os; print(os.uname().release)")
    assert result.stdout.strip() == "4.4.0"
    assert result.runtime == "runsc"


def test_runs_inside_a_flow_emit_prefect_events(ledger: Ledger) -> None:
    """A run inside a task emits wflo.sandbox.run.<outcome>, related to its flow and task run."""
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker

    from wflo_prefect import governed_flow, governed_task

    @governed_task
    def use_sandbox() -> str:
        with DockerSandbox() as box:
            box.run("true")
            return box.id

    @governed_flow
    def flow_with_sandbox() -> str:
        return use_sandbox()

    state = flow_with_sandbox(return_state=True)
    sandbox_id = state.result()
    EventsWorker.drain_all()
    query = {
        "filter": {
            "event": {"prefix": ["wflo.sandbox."]},
            "any_resource": {"id": [f"wflo.sandbox.{sandbox_id}"]},
        },
        "limit": 5,
    }
    events: list[dict[str, Any]] = []
    with get_client(sync_client=True) as client:
        for _ in range(40):  # the server ingests events asynchronously
            events = client.request("POST", "/events/filter", json=query).json()["events"]
            if events:
                break
            time.sleep(0.25)
    assert [e["event"] for e in events] == ["wflo.sandbox.run.ok"]
    related = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in events[0]["related"]}
    assert related["flow-run"] == f"prefect.flow-run.{state.state_details.flow_run_id}"
    assert related["task-run"].startswith("prefect.task-run.")


def test_warm_sandbox_runs_behave_like_cold_ones(ledger: Ledger) -> None:
    """Through the resident runner: inputs, exit codes, output cap, OOM and timeout all hold."""
    config = SandboxConfig(memory_limit="128m", output_limit_bytes=2048)
    with WarmPool(config, size=1) as pool, pool.sandbox() as box:
        answer = box.run_python("print(inputs['a'] + inputs['b'])", inputs={"a": 2, "b": 3})
        failing = box.run("echo oops >&2; exit 7")
        flood = box.run("head -c 100000 /dev/zero | tr '\\0' y")
        bomb = box.run_python("x = []\nwhile True:\n    x.append(bytearray(10 * 1024 * 1024))")
        with pytest.raises(SandboxTimeout) as caught:
            box.run("echo late; sleep 30", timeout=1)
    assert (answer.stdout, answer.exit_code) == ("5\n", 0)
    assert (failing.exit_code, failing.stderr) == (7, "oops\n")
    assert flood.stdout == "y" * 2048
    assert flood.stdout_truncated
    assert bomb.oom_killed
    assert bomb.exit_code == 137
    assert caught.value.result is not None
    assert caught.value.result.stdout == "late\n"


def test_gc_drops_firewall_rules_of_removed_egress_networks(docker_client: Any) -> None:
    """An egress firewall rule left by a crash (its bridge gone) is deleted by gc."""
    from wflo_prefect.sandbox import collect_garbage

    rule = ["INPUT", "-i", "wflo0deadbeef1", "-j", "DROP"]
    subprocess.run(["iptables", "-w", "5", "-I", *rule], check=True)
    collect_garbage(docker_client)
    left = subprocess.run(["iptables", "-w", "5", "-S", "INPUT"], capture_output=True, text=True)
    assert "wflo0deadbeef1" not in left.stdout


def test_gc_skips_a_container_removed_while_it_lists_them(docker_client: Any) -> None:
    """A container removed between gc's listing and its inspection (a warm pool removes
    its sandboxes in the background) is skipped; the rest is still collected."""
    from wflo_prefect.sandbox import collect_garbage

    gone = f"{socket.gethostname()}:999999999:1"  # an owner process that no longer runs
    orphan = docker_client.containers.create(
        "wflo-sandbox:latest", "true", labels={LABEL: "1", LABEL_OWNER: gone}
    )
    listed = docker_client.api.containers

    def with_a_vanished_one(*args: Any, **kwargs: Any) -> Any:
        return [*listed(*args, **kwargs), {"Id": "0" * 64}]  # listed, then removed

    docker_client.api.containers = with_a_vanished_one
    try:
        collected = collect_garbage(docker_client)
    finally:
        del docker_client.api.containers
    assert orphan.name in collected.containers
