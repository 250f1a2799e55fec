"""wflo's calls to the Prefect API share one client per process (it costs ~30 ms of
CPU to build), from any number of threads at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient

from wflo_prefect import _prefect_client
from wflo_prefect.approvals.prefect_run import read_state


@flow
def _finished() -> int:
    return 1


def test_calls_from_many_threads_reuse_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _finished(return_state=True)
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    built: list[int] = []
    real_init = SyncPrefectClient.__init__

    def counting_init(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", counting_init)
    monkeypatch.setattr(_prefect_client, "_clients", {})
    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(lambda _: read_state(run_id), range(40)))
    assert all(s is not None and s.is_completed() for s in states)
    assert read_state(uuid.uuid4()) is None  # a run Prefect does not know, same client
    assert len(built) == 1
