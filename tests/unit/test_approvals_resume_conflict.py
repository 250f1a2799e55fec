"""A resume Prefect answers 409 (another resumer stored the pause's answer first) is no error."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError

from wflo_prefect.approvals.prefect_run import _resume_once


class _Client:
    """Answers every resume with one HTTP status, as Prefect's API would."""

    def __init__(self, status: int) -> None:
        self.status = status

    def resume_flow_run(self, run_id: Any, run_input: dict[str, Any]) -> Any:
        url = f"http://prefect.test/api/flow_runs/{run_id}/resume"
        request = httpx.Request("POST", url)
        response = httpx.Response(self.status, request=request, json={"detail": "conflict"})
        raise PrefectHTTPStatusError.from_httpx_error(
            httpx.HTTPStatusError("refused", request=request, response=response)
        )


def test_a_409_means_another_resumer_won() -> None:
    assert _resume_once(_Client(409), uuid4(), {"decision": "approve"}) is None


@pytest.mark.parametrize("status", [400, 404, 500])
def test_other_refusals_still_raise(status: int) -> None:
    with pytest.raises(PrefectHTTPStatusError):
        _resume_once(_Client(status), uuid4(), {"decision": "approve"})
