"""The loopback wake-up of a decision: only to a gate on this host, and only when it is on."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest

from wflo_prefect.approvals import settle


def _request(host: str) -> Any:
    return SimpleNamespace(wake="127.0.0.1:40404", host=host)


@pytest.fixture
def pokes(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    sent: list[str | None] = []
    monkeypatch.setattr(settle, "poke", sent.append)
    return sent


def test_a_gate_on_this_host_is_poked_by_default(pokes: list[str | None]) -> None:
    """The shortcut past Prefect's events is on by default for a gate on the same host."""
    settle._wake_here(_request(socket.gethostname()))
    assert pokes == ["127.0.0.1:40404"]


def test_a_gate_on_another_host_is_never_poked(pokes: list[str | None]) -> None:
    """Its 127.0.0.1 address is that host's loopback, not ours: nothing is sent."""
    settle._wake_here(_request(socket.gethostname() + "-elsewhere"))
    assert pokes == []


def test_turned_off_decisions_go_only_through_prefect(
    pokes: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PREFECT_INTEGRATIONS_WFLO_APPROVALS_LOOPBACK_WAKE=false (what `wflo stack up` sets)."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_APPROVALS_LOOPBACK_WAKE", "false")
    settle._wake_here(_request(socket.gethostname()))
    assert pokes == []
