"""What sandboxed code writes cannot exhaust the host: file transfers and results are bounded."""

from __future__ import annotations

import resource
import time
from typing import Any

import pytest

from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, SandboxError
from wflo_prefect.sandbox.guard import run_in_sandbox

pytestmark = pytest.mark.docker

CONFIG = SandboxConfig(memory_limit="128m", timeout_seconds=60)
OUTCOME = "/tmp/wflo-call/outcome.json"


def rss_bytes() -> int:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def forge_outcome(head: str, body: str, repeat: int, tail: str) -> None:
    """In the sandbox: replace the runner's outcome with ``head + body * repeat + tail``."""
    import os

    with open(OUTCOME, "w") as out:
        out.write(head + body * repeat + tail)
    os._exit(0)


def test_sparse_file_is_refused_without_being_read(docker_client: Any) -> None:
    """get_files of a 2 GiB sparse file stops at output_limit_bytes with a SandboxError."""
    with DockerSandbox(CONFIG) as box:
        assert box.run("truncate -s 2G /tmp/sparse").exit_code == 0
        before, started = rss_bytes(), time.perf_counter()
        with pytest.raises(SandboxError, match="larger than the sandbox's output_limit_bytes"):
            box.get_files(["/tmp/sparse"])
        assert time.perf_counter() - started < 15
        assert rss_bytes() - before < 64 * 1024**2
        assert box.run("echo still usable").stdout == "still usable\n"


def test_files_within_the_limit_still_come_out(docker_client: Any) -> None:
    """A file just under output_limit_bytes is read whole."""
    config = SandboxConfig(output_limit_bytes=64 * 1024)
    with DockerSandbox(config) as box:
        box.run("head -c 60000 /dev/zero > /tmp/ok")
        assert box.get_files(["/tmp/ok"]) == {"/tmp/ok": bytes(60000)}


def test_wide_outcome_beyond_the_limit_is_refused_before_parsing(docker_client: Any) -> None:
    """A forged 2 MB result of empty lists (limit 1 MiB) raises SandboxError; host RSS stays low."""
    before = rss_bytes()
    with pytest.raises(SandboxError, match="output_limit_bytes"):
        run_in_sandbox(
            forge_outcome, ('{"status": "ok", "value": [[]', ",[]", 700_000, "]}"), {}, CONFIG
        )
    assert rss_bytes() - before < 64 * 1024**2


def test_deeply_nested_outcome_is_refused_with_a_sandbox_error(docker_client: Any) -> None:
    """A forged result nested 100,000 deep raises SandboxError, never RecursionError."""
    with pytest.raises(SandboxError, match="nests 100001 deep"):
        run_in_sandbox(
            forge_outcome,
            ('{"status": "ok", "value": ', "[", 100_000, "]" * 100_000 + "}"),
            {},
            CONFIG,
        )
