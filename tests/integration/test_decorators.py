"""governed_flow / governed_task are real Prefect objects that audit every run."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
from typing import Any, Literal

import pydantic
import pytest
from prefect import Flow, Task
from prefect.cache_policies import INPUTS
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from wflo_prefect import InvalidArgumentError, governed_flow, governed_task
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail, capture_logs, capture_spans


@governed_task(operation="add")
def add(x: int, y: int = 1) -> int:
    """Add two numbers."""
    return x + y


@governed_flow(name="sum-flow")
def sum_flow(n: int = 3) -> int:
    return sum(add(i) for i in range(n))


def test_decorators_return_real_prefect_objects() -> None:
    """The decorators return Prefect Flow and Task objects."""
    assert isinstance(sum_flow, Flow)
    assert isinstance(add, Task)
    assert sum_flow.name == "sum-flow"


def test_signature_and_docstring_are_kept() -> None:
    """The wrapped function's signature, name and docstring are preserved."""
    assert inspect.signature(add.fn) == inspect.signature(add.fn.__wrapped__)
    assert list(inspect.signature(add.fn).parameters) == ["x", "y"]
    assert add.fn.__name__ == "add"
    assert add.fn.__doc__ == "Add two numbers."
    assert list(sum_flow.parameters.properties) == ["n"]


def test_flow_run_audit_trail(ledger: Ledger) -> None:
    """A governed run records start and end of the flow and each task, with one trace id."""
    state = sum_flow(n=2, return_state=True)
    assert state.is_completed()
    assert state.result() == 3
    events = audit_trail(state)
    assert [e.event for e in events] == [
        "flow_run.started",
        "task_run.started",
        "task_run.completed",
        "task_run.started",
        "task_run.completed",
        "flow_run.completed",
    ]
    flow_run_id = str(state.state_details.flow_run_id)
    assert {e.flow_run_id for e in events} == {flow_run_id}
    assert len({e.trace_id for e in events}) == 1
    assert events[0].trace_id is not None
    assert len(events[0].trace_id) == 32
    assert events[1].payload == {"operation": "add"}
    assert events[-1].outcome == "completed"
    assert events[-1].payload["state"] == "Completed"
    assert events[1].task_name == "add"
    assert all(e.flow_name == "sum-flow" for e in events)


def test_failure_is_recorded_with_the_prefect_state(ledger: Ledger) -> None:
    """A failing task and its flow are audited as failed, with Prefect's state name."""

    @governed_task
    def explode() -> None:
        raise ValueError("kaput")

    @governed_flow
    def failing() -> None:
        explode()

    state = failing(return_state=True)
    assert state.is_failed()
    events = audit_trail(state)
    assert [(e.event, e.outcome) for e in events] == [
        ("flow_run.started", None),
        ("task_run.started", None),
        ("task_run.failed", "failed"),
        ("flow_run.failed", "failed"),
    ]
    assert "kaput" in events[2].payload["message"]


def test_prefect_retries_still_work_and_each_attempt_is_audited(ledger: Ledger) -> None:
    """Prefect's retries keyword is honoured; every attempt is in the audit trail."""
    attempts: list[int] = []

    @governed_task(retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("transient")
        return "ok"

    @governed_flow
    def retrying() -> str:
        return flaky()

    state = retrying(return_state=True)
    assert state.result() == "ok"
    events = [e.event for e in audit_trail(state)]
    assert events.count("task_run.started") == 3
    assert events.count("task_run.completed") == 1
    assert "task_run.failed" not in events


def test_a_task_that_returns_a_failed_state_is_audited_failed(ledger: Ledger) -> None:
    """A governed task records its own completion when its function returns, except
    where the returned value is a state (or states) that fail the run."""
    from prefect.states import Completed, Failed

    @governed_task
    def refuse() -> Any:
        return Failed(message="refused")

    @governed_task
    def finish() -> Any:
        return Completed(message="done", name="Done")

    @governed_flow
    def outcomes() -> None:
        finish()
        refuse()

    state = outcomes(return_state=True)  # the failed state is refuse()'s value: no raise
    events = [(e.event, e.payload.get("state")) for e in audit_trail(state)]
    assert events[1:-1] == [
        ("task_run.started", None),
        ("task_run.completed", "Done"),
        ("task_run.started", None),
        ("task_run.failed", "Failed"),
    ]
    assert refuse.on_completion_hooks == []  # no Prefect hook call on every success


def test_a_task_function_called_directly_inside_a_task_is_not_its_end(ledger: Ledger) -> None:
    """``inner.fn()`` inside another task run shares that run's context: only the outer
    task's return completes it, once, after the inner call."""

    @governed_task
    def inner() -> str:
        return "inner"

    @governed_task
    def outer() -> str:
        return inner.fn()

    @governed_flow
    def nested() -> str:
        return outer()

    state = nested(return_state=True)
    assert state.result() == "inner"
    events = [e.event for e in audit_trail(state)]
    assert events.count("task_run.completed") == 1
    assert events[-2] == "task_run.completed"


class _Order(pydantic.BaseModel):
    id: int
    placed: datetime.date


def test_parameter_schemas_match_prefects_under_postponed_annotations() -> None:
    """This module postpones annotations (strings until evaluated); Prefect evaluates
    them for parameter schemas. A governed flow's and task's schemas are a plain one's."""
    from prefect import flow, task
    from prefect.utilities.callables import parameter_schema

    def ship(
        order: _Order, mode: Literal["air", "sea"] = "sea", when: datetime.date | None = None
    ) -> None:
        return None

    assert governed_flow(ship).parameters == flow(ship).parameters
    assert parameter_schema(governed_task(ship).fn) == parameter_schema(task(ship).fn)
    assert governed_flow(ship).parameters.properties["order"] != {"title": "order", "position": 0}


def test_a_task_calling_its_own_fn_completes_once(ledger: Ledger) -> None:
    """``walk.fn()`` inside walk's own run is not the run's end: one completion, with
    the outer call's duration; an inner return before an outer failure is no completion."""

    @governed_task
    def walk(n: int) -> int:
        return 0 if n == 0 else 1 + walk.fn(n - 1)

    @governed_task
    def stumble(n: int) -> None:
        if n:
            stumble.fn(0)
            raise ValueError("after the inner call returned")

    @governed_flow
    def nested() -> int:
        steps = walk(2)
        stumble(1)
        return steps

    state = nested(return_state=True)
    assert state.is_failed()
    events = audit_trail(state)
    walked = [e for e in events if e.task_name == "walk" and e.outcome]
    assert [(e.event, "duration_s" in e.payload) for e in walked] == [("task_run.completed", True)]
    stumbled = [e.event for e in events if e.task_name == "stumble" and e.outcome]
    assert stumbled == ["task_run.failed"]


def test_a_renamed_task_counts_its_completions_and_failures_under_one_name(
    ledger: Ledger,
) -> None:
    """``with_options(name=...)``: completions and failures are both counted (and
    logged) under the name the run has."""
    from wflo_prefect.observability import metrics

    @governed_task
    def check(ok: bool) -> bool:
        if not ok:
            raise ValueError("not ok")
        return ok

    renamed = check.with_options(name="check-v2")

    @governed_flow
    def both() -> None:
        renamed(True)
        renamed(False)

    def counted(outcome: str) -> float:
        return metrics.TASK_EXECUTIONS.labels("check-v2", outcome)._value.get()

    before = counted("completed"), counted("failed")
    assert both(return_state=True).is_failed()
    assert (counted("completed"), counted("failed")) == (before[0] + 1, before[1] + 1)


def test_submit_and_map_work(ledger: Ledger) -> None:
    """.submit() and .map() run governed tasks concurrently and audit each."""

    @governed_flow
    def fan_out() -> list[int]:
        futures = add.map([1, 2, 3])
        single = add.submit(10, 5)
        return [f.result() for f in futures] + [single.result()]

    state = fan_out(return_state=True)
    assert state.result() == [2, 3, 4, 15]
    events = [e.event for e in audit_trail(state)]
    assert events.count("task_run.completed") == 4


def test_caching_still_works(ledger: Ledger) -> None:
    """A cached governed task is not executed again for the same inputs."""
    calls: list[int] = []

    @governed_task(cache_policy=INPUTS, persist_result=True)
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 2

    @governed_flow
    def twice() -> tuple[int, int]:
        return expensive(21), expensive(21)

    assert twice() == (42, 42)
    assert calls == [21]


def test_async_flow_and_task(ledger: Ledger) -> None:
    """Async functions stay async and are governed like sync ones."""

    @governed_task
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @governed_flow
    async def async_flow() -> int:
        return await double(4)

    assert inspect.iscoroutinefunction(double.fn)
    state = asyncio.run(async_flow(return_state=True))
    assert state.result() == 8
    events = audit_trail(state)
    assert events[-1].event == "flow_run.completed"
    # A coroutine task's wrapper records its completion, with its duration, like a function's.
    assert [(e.event, "duration_s" in e.payload) for e in events[1:-1]] == [
        ("task_run.started", False),
        ("task_run.completed", True),
    ]


def test_user_state_hooks_still_run(ledger: Ledger) -> None:
    """Hooks the user passes are kept next to wflo's own."""
    seen: list[str] = []

    @governed_flow(on_completion=[lambda f, r, s: seen.append(s.name)])
    def hooked() -> int:
        return 1

    hooked()
    assert seen == ["Completed"]


def test_version_hashes_the_users_file() -> None:
    """The default flow version is the hash of the user's file, not of wflo's wrapper."""
    from prefect.utilities.hashing import file_hash

    assert sum_flow.version == file_hash(__file__)


@pytest.mark.parametrize("bad", ["", "   ", 42])
def test_bad_operation_is_refused_when_decorating(bad: Any) -> None:
    """operation= is validated when the decorator is applied, naming the value."""
    with pytest.raises(InvalidArgumentError, match=repr(bad).replace("(", r"\(")):

        @governed_task(operation=bad)
        def t() -> None: ...


def test_bad_prefect_keyword_is_refused_when_decorating() -> None:
    """Prefect's own validation still applies at decoration time."""
    with pytest.raises(TypeError):
        governed_task(not_a_prefect_option=1)(lambda: None)


async def _run_log_messages(flow_run_id: Any, *, at_least: int) -> list[Any]:
    """The run's logs from Prefect's API (waiting for the log worker to deliver them)."""
    async with get_client() as client:
        logs: list[Any] = []
        for _ in range(50):
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            if len(logs) >= at_least:
                break
            await asyncio.sleep(0.1)
        return logs


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Any:
    """wflo's log level at DEBUG for one test, INFO again afterwards."""
    from wflo_prefect.observability.logging import configure_logging

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_LOG_LEVEL", "DEBUG")
    configure_logging(force=True)
    yield
    monkeypatch.delenv("PREFECT_INTEGRATIONS_WFLO_LOG_LEVEL")
    configure_logging(force=True)


def test_a_governed_task_adds_no_lines_to_the_run_logs_at_info(ledger: Ledger) -> None:
    """At INFO a governed task's run logs are a plain task's: its start and end are DEBUG."""
    state = sum_flow(n=2, return_state=True)
    messages = [
        log.message
        for log in asyncio.run(_run_log_messages(state.state_details.flow_run_id, at_least=6))
    ]
    assert sum("Finished in state" in m for m in messages) == 3  # two tasks and the flow
    assert not [m for m in messages if "task_run." in m or "hook" in m.lower()], messages
    assert any('"flow_run.started"' in m for m in messages)


def test_logs_are_json_with_correlation_ids_and_reach_prefect(
    ledger: Ledger, debug_logs: None
) -> None:
    """wflo's log lines are JSON with run and trace ids, and are stored in the run's logs."""
    with capture_logs() as lines:
        state = sum_flow(n=1, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    started = [line for line in lines if line["message"] == "task_run.started"]
    assert started, lines
    for key in ("flow_run_id", "task_run_id", "trace_id", "span_id", "timestamp", "level"):
        assert started[0][key], key
    assert started[0]["flow_run_id"] == flow_run_id

    async def read_logs() -> list[str]:
        async with get_client() as client:
            for _ in range(50):
                logs = await client.read_logs(
                    log_filter=LogFilter(
                        flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
                    )
                )
                wflo = [log.message for log in logs if log.name.startswith("wflo_prefect")]
                if len(wflo) >= 3:
                    return wflo
                await asyncio.sleep(0.1)
        return []

    messages = asyncio.run(read_logs())
    parsed = [json.loads(m) for m in messages]
    assert {"flow_run.started", "task_run.started", "task_run.completed"} <= {
        p["message"] for p in parsed
    }


def test_spans_are_nested_and_failures_marked(ledger: Ledger) -> None:
    """Each governed run has a span; a task's span is a child of its flow's span."""

    @governed_task
    def bad() -> None:
        raise KeyError("x")

    @governed_flow
    def spanned() -> None:
        add(1)
        bad()

    with capture_spans() as exporter:
        spanned(return_state=True)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"wflo.flow spanned", "wflo.task add", "wflo.task bad"}
    flow_span = spans["wflo.flow spanned"]
    assert spans["wflo.task add"].parent is not None
    assert spans["wflo.task add"].parent.span_id == flow_span.context.span_id
    assert spans["wflo.task bad"].status.status_code.name == "ERROR"
    assert spans["wflo.task add"].status.status_code.name == "UNSET"
