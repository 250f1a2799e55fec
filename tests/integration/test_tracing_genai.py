"""Spans of a governed run: one `chat {model}` span per LLM call (gen_ai.* conventions),
policy decisions as events, compensations and sandbox runs as spans, approval outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.fakes.openai_server import FakeOpenAI
from tests.support import undo
from wflo_prefect import (
    Budget,
    BudgetExceeded,
    compensate,
    governed_flow,
    governed_task,
    instrument,
    record_llm_usage,
)
from wflo_prefect.ledger import Ledger
from wflo_prefect.policies import AuditLog, Policy
from wflo_prefect.testing import capture_spans

MSG = [{"role": "user", "content": "Summarise the quarterly report in one line."}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


def _client(base_url: str) -> openai.OpenAI:
    return instrument(openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0))


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_each_llm_call_is_a_chat_span_with_gen_ai_attributes_and_cost(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """`chat gpt-4o-mini` (CLIENT) under the task span: provider, models, tokens, finish
    reasons, response id, cost and the budget left; no deprecated gen_ai.system."""

    @governed_task
    def ask(base_url: str) -> str:
        reply = _client(base_url).chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            max_tokens=100,  # type: ignore[arg-type]
        )
        return reply.choices[0].message.content or ""

    @governed_flow(budget=Budget("1", scope="flow_run", name=f"run-{uuid.uuid4().hex[:6]}"))
    def traced(base_url: str) -> None:
        ask(base_url)
        ask(base_url)

    with capture_spans() as exporter:
        assert traced(server.url, return_state=True).is_completed()
    spans = list(exporter.get_finished_spans())
    chats = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 2
    entries = ledger.costs.entries()
    tasks = {s.context.span_id: s for s in spans if s.name == "wflo.task ask"}
    for chat, entry, spent in zip(
        chats,
        entries,
        (entries[0].cost_usd, entries[0].cost_usd + entries[1].cost_usd),
        strict=True,
    ):
        attributes = dict(chat.attributes or {})
        assert chat.kind == SpanKind.CLIENT
        assert chat.parent is not None
        assert chat.parent.span_id in tasks
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert "gen_ai.system" not in attributes
        assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attributes["gen_ai.request.max_tokens"] == 100
        assert attributes["gen_ai.response.model"] == entry.model
        assert attributes["gen_ai.usage.input_tokens"] == entry.input_tokens
        assert attributes["gen_ai.usage.output_tokens"] == entry.output_tokens == 12
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert str(attributes["gen_ai.response.id"]).startswith("chatcmpl-")
        assert Decimal(str(attributes["wflo.cost.usd"])) == entry.cost_usd
        assert Decimal(str(attributes["wflo.cost.estimate_usd"])) >= entry.cost_usd
        assert attributes["wflo.call.outcome"] == "settled"
        assert Decimal(str(attributes["wflo.budget.remaining_usd"])) == Decimal(1) - spent
        assert chat.status.status_code == StatusCode.UNSET


def test_a_recorded_call_with_cached_tokens_gets_a_span(ledger: Ledger) -> None:
    """record_llm_usage makes a span dated back by its latency, with cache-read tokens."""

    @governed_task
    def recorded() -> None:
        record_llm_usage(
            "anthropic", "claude-sonnet-4-5", 2000, 300, cached_input_tokens=1500, latency_ms=250
        )

    @governed_flow
    def run() -> None:
        recorded()

    with capture_spans() as exporter:
        run()
    chat = _one(list(exporter.get_finished_spans()), "chat claude-sonnet-4-5")
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1500
    assert attributes["gen_ai.usage.input_tokens"] == 2000
    assert chat.end_time is not None
    assert chat.start_time is not None
    assert chat.end_time - chat.start_time >= 250_000_000


def test_a_refused_call_is_an_error_on_its_span_with_the_policy_events(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """Over budget: the chat span says BudgetExceeded (outcome refused) and carries one
    `wflo.policy.evaluated` event per policy evaluated, matched or not."""
    watch = [
        Policy(name="big-model", condition="model == 'gpt-4o'", on="spend", actions=[AuditLog()]),
        Policy(name="any-spend", condition="estimated_cost > 0", on="spend", actions=[AuditLog()]),
    ]

    @governed_flow(
        budget=Budget("0.0000001", scope="flow_run", name=f"tiny-{uuid.uuid4().hex[:6]}"),
        policies=watch,
    )
    def spender(base_url: str) -> None:
        _client(base_url).chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            max_tokens=500,  # type: ignore[arg-type]
        )

    with capture_spans() as exporter:
        state = spender(server.url, return_state=True)
    assert state.name == "BudgetExceeded"
    with pytest.raises(BudgetExceeded):
        state.result()
    assert server.requests == []
    chat = _one(list(exporter.get_finished_spans()), "chat gpt-4o-mini")
    attributes = dict(chat.attributes or {})
    assert chat.status.status_code == StatusCode.ERROR
    assert attributes["error.type"] == "BudgetExceeded"
    assert attributes["wflo.call.outcome"] == "refused"
    decisions = [(e.attributes or {}) for e in chat.events if e.name == "wflo.policy.evaluated"]
    assert [(d["wflo.policy.name"], d["wflo.policy.matched"]) for d in decisions] == [
        ("big-model", False),
        ("any-spend", True),
    ]
    assert decisions[1]["wflo.policy.actions"] == ("audit_log",)
    assert decisions[0]["wflo.policy.point"] == "spend"


def test_compensations_are_spans_in_the_failed_runs_trace(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undo steps run from Prefect's end hook, after the flow span ended: each is a
    `wflo.compensation` span whose parent is the flow's span."""
    monkeypatch.setenv(undo.JOURNAL_ENV, str(tmp_path / "journal.jsonl"))

    @governed_task
    def charge(name: str) -> None:
        compensate(undo.undo, name)

    @governed_flow(name="saga-traced")
    def saga() -> None:
        charge("a")
        charge("b")
        raise RuntimeError("step 3 failed")

    with capture_spans() as exporter:
        assert saga(return_state=True).is_failed()
    spans = list(exporter.get_finished_spans())
    flow = _one(spans, "wflo.flow saga-traced")
    undos = [s for s in spans if s.name.startswith("wflo.compensation")]
    assert [s.attributes["wflo.compensation.outcome"] for s in undos] == ["done", "done"]
    for span in undos:
        assert span.context.trace_id == flow.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == flow.context.span_id
    assert [e["undo"] for e in undo.entries()] == ["b", "a"]


def test_an_anthropic_call_reports_cache_reads_writes_and_its_stop_reason(ledger: Ledger) -> None:
    """The official anthropic client, instrumented, against the local Messages API."""
    import anthropic

    from tests.fakes.anthropic_server import FakeAnthropic

    with FakeAnthropic() as server:
        server.cache_read_tokens = 6
        server.cache_write_tokens = 3
        client = instrument(anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0))

        @governed_flow
        def cached_agent() -> None:
            client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "Summarise the report in a line, please."}],
            )

        with capture_spans() as exporter:
            cached_agent()
    chat = _one(list(exporter.get_finished_spans()), "chat claude-sonnet-4-5")
    attributes = dict(chat.attributes or {})
    [entry] = ledger.costs.entries()
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 6 == entry.cached_input_tokens
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 3
    assert attributes["gen_ai.usage.input_tokens"] == entry.input_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert str(attributes["gen_ai.response.id"]).startswith("msg_")


def test_streamed_calls_get_their_finish_reasons_when_the_stream_ends(
    ledger: Ledger, server: FakeOpenAI
) -> None:
    """OpenAI chat and Anthropic message streams: the reason arrives in the last chunks."""
    import anthropic

    from tests.fakes.anthropic_server import FakeAnthropic

    with FakeAnthropic() as ant_server:
        ant = instrument(anthropic.Anthropic(base_url=ant_server.url, api_key="k", max_retries=0))

        @governed_flow
        def streams(base_url: str) -> None:
            chunks = _client(base_url).chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                stream=True,
                max_tokens=30,  # type: ignore[arg-type]
            )
            assert list(chunks)
            with ant.messages.stream(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            ) as stream:
                assert list(stream.text_stream)

        with capture_spans() as exporter:
            streams(server.url)
    spans = list(exporter.get_finished_spans())
    openai_chat = _one(spans, "chat gpt-4o-mini")
    anthropic_chat = _one(spans, "chat claude-sonnet-4-5")
    assert (openai_chat.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    assert (anthropic_chat.attributes or {})["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (openai_chat.attributes or {})["wflo.call.outcome"] == "settled"
