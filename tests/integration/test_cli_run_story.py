"""One run's story from the terminal: `wflo debug` (LLM calls, every policy evaluation),
`wflo trace` (the span tree from the ledger span sink), `wflo logs --follow` (streaming)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from approval_support import start_flow, wait_for
from prefect import get_run_logger
from typer.testing import CliRunner

from tests.fakes.openai_server import FakeOpenAI
from wflo_prefect import Budget, governed_flow, governed_task, instrument
from wflo_prefect.cli import app
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import tracing
from wflo_prefect.policies import AuditLog, Policy

runner = CliRunner()
WIDE = {"COLUMNS": "260"}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def _story_run(base_url: str, budget_name: str) -> str:
    """A governed run with two LLM calls under a 1 USD budget and two spend policies."""
    watch = [
        Policy(name="big-model", condition="model == 'gpt-4o'", on="spend", actions=[AuditLog()]),
        Policy(name="any-spend", condition="estimated_cost > 0", on="spend", actions=[AuditLog()]),
    ]

    @governed_task(name="story-ask")
    def ask() -> str:
        client = instrument(
            openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)
        )
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50
        )
        return reply.choices[0].message.content or ""

    @governed_flow(
        name="story", budget=Budget("1", scope="flow_run", name=budget_name), policies=watch
    )
    def story() -> None:
        ask()
        ask()

    state = story(return_state=True)
    assert state.is_completed()
    return str(state.state_details.flow_run_id)


def test_debug_shows_each_llm_call_and_every_policy_evaluation(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """Model, tokens, cost and budget left per call; matched and unmatched evaluations."""
    budget = f"story-{uuid.uuid4().hex[:6]}"
    run_id = _story_run(server.url, budget)
    first, second = ledger.costs.entries(flow_run_id=run_id)
    result = runner.invoke(app, ["debug", run_id], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "LLM calls (2)" in out
    assert "openai/gpt-4o-mini" in out
    assert f"{first.input_tokens}/{first.output_tokens} (0)" in out
    assert f"{first.cost_usd.normalize():f}" in out
    left_first = (Decimal(1) - first.cost_usd).normalize()
    left_second = (Decimal(1) - first.cost_usd - second.cost_usd).normalize()
    assert f"{budget}: {left_first:f} of 1" in out
    assert f"{budget}: {left_second:f} of 1" in out
    assert "Policy evaluations (4)" in out
    rows = [line for line in out.splitlines() if "big-model" in line or "any-spend" in line]
    assert sum(" no " in row for row in rows if "big-model" in row) == 2
    assert sum(" yes " in row for row in rows if "any-spend" in row) == 2


def test_trace_prints_the_span_tree_kept_by_the_ledger_sink(
    ledger: Ledger, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With TRACING_LEDGER on, `wflo trace` nests chat spans under their task under the
    flow, with cost and budget left, and policy evaluations as events."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER", "true")
    tracing.reset_tracing()
    try:
        run_id = _story_run(server.url, f"tree-{uuid.uuid4().hex[:6]}")
        assert tracing.flush_tracing()
    finally:
        monkeypatch.undo()
        tracing.reset_tracing()
    result = runner.invoke(app, ["trace", run_id], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    flow_line = next(i for i, line in enumerate(lines) if "wflo.flow story" in line)
    task_line = next(i for i, line in enumerate(lines) if "wflo.task story-ask" in line)
    chat_line = next(i for i, line in enumerate(lines) if "chat gpt-4o-mini" in line)

    def indent(i: int) -> int:
        return len(lines[i]) - len(lines[i].lstrip(" │├└─"))

    assert flow_line < task_line < chat_line
    assert indent(flow_line) < indent(task_line) < indent(chat_line)
    assert "budget left $=" in lines[chat_line]
    assert "policy big-model at spend: not matched" in result.output
    assert "policy any-spend at spend: matched -> audit_log" in result.output
    target = tmp_path / "trace.json"
    exported = runner.invoke(app, ["trace", run_id, "--export", str(target)])
    assert exported.exit_code == 0, exported.output
    spans = json.loads(target.read_text())["spans"]
    by_id = {s["span_id"]: s for s in spans}
    chats = [s for s in spans if s["name"] == "chat gpt-4o-mini"]
    assert len(chats) == 2
    for chat in chats:
        task = by_id[chat["parent_span_id"]]
        assert task["name"] == "wflo.task story-ask"
        assert by_id[task["parent_span_id"]]["name"] == "wflo.flow story"


def test_trace_without_stored_spans_names_the_trace_and_the_setting(ledger: Ledger) -> None:
    """Spans not kept in the ledger: the trace id to look up, and how to keep them."""

    @governed_flow(name="unkept")
    def unkept() -> int:
        return 1

    run_id = str(unkept(return_state=True).state_details.flow_run_id)
    result = runner.invoke(app, ["trace", run_id], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER=true" in result.output


release = threading.Event()


@governed_flow(name="chatty")
def chatty() -> str:
    logger = get_run_logger()
    logger.info("first line before the wait")
    assert release.wait(120), "the test never released the run"
    logger.info("second line after the wait")
    return "done"


def test_logs_follow_streams_lines_while_the_run_is_running_and_stops_at_its_end(
    ledger: Ledger,
) -> None:
    """`wflo logs RUN --follow` (the installed script, another process) prints a line
    written while the run waits, then the line after, then exits 0 when the run ends."""
    from prefect.settings import PREFECT_API_URL

    release.clear()
    future = start_flow(chatty)
    run_id = wait_for(_running_flow_run_id, timeout=120, what="the chatty run")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "300"}
    wflo = Path(sys.executable).parent / "wflo"
    follower = subprocess.Popen(
        [str(wflo), "logs", run_id, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert follower.stdout is not None
        seen: list[str] = []
        for line in follower.stdout:
            seen.append(line)
            if "first line before the wait" in line:
                break
        assert any("first line before the wait" in s for s in seen), seen
        assert future.running(), "the first line must stream while the run still runs"
        release.set()
        assert future.result(timeout=120).is_completed()
        rest, err = follower.communicate(timeout=120)
    finally:
        release.set()
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert "second line after the wait" in rest
    assert rest.count("second line after the wait") == 1


def _running_flow_run_id() -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["chatty"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            ),
        )
    return str(runs[0].id) if runs else None
