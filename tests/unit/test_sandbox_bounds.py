"""Untrusted bytes from a sandbox are parsed within bounds, and failures are SandboxErrors."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from wflo_prefect.sandbox import DockerSandbox, SandboxError, SandboxSerializationError
from wflo_prefect.sandbox.guard import json_depth
from wflo_prefect.sandbox.sandbox import _untar


def tar_of(name: str, data: bytes, *, claimed: int | None = None) -> bytes:
    """A tar stream with one file; ``claimed`` overrides the size its header states."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    if claimed is None:
        return raw
    header = tarfile.TarInfo(name)
    header.size = claimed
    return header.tobuf() + raw[512:]


def test_tar_member_claiming_more_than_the_limit_is_refused_before_it_is_read() -> None:
    """A header claiming 2 GiB (a sparse file, or a forged header) is refused unread."""
    with pytest.raises(SandboxError, match="output_limit_bytes"):
        _untar(tar_of("tmp/x", b"abc", claimed=2 * 1024**3), ["/tmp/x"], 1024 * 1024)


@pytest.mark.parametrize(
    "stream",
    [b"not a tar stream" * 64, gzip.compress(bytes(10 * 1024 * 1024)), tar_of("a", b"x")[:700]],
    ids=["garbage", "gzip bomb", "truncated"],
)
def test_malformed_tar_streams_raise_sandbox_errors(stream: bytes) -> None:
    """Garbage, compressed or truncated tar streams raise SandboxError, not tarfile's errors."""
    with pytest.raises(SandboxError, match="not a well-formed tar stream"):
        _untar(stream, ["/tmp/x"], 1024 * 1024)


def test_json_depth_is_measured_without_parsing() -> None:
    """Brackets inside strings do not count; nesting does."""
    assert json_depth(b'{"a": [1, "[[[[\\"]]"], "b": {}}') == 2
    assert json_depth(b"[" * 5000 + b"]" * 5000) == 5000


def test_deeply_nested_run_python_inputs_are_a_serialization_error() -> None:
    """Inputs nested too deep for JSON raise SandboxSerializationError, not RecursionError."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SandboxSerializationError, match="inputs must be JSON values"):
        DockerSandbox().run_python("pass", inputs={"x": deep})
