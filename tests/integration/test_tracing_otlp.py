"""wflo's spans leave the process over OTLP, configured by settings or the OTEL_* variables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.otlp import OtlpReceiver, otlp_receiver
from wflo_prefect import governed_flow, governed_task
from wflo_prefect.errors import ConfigurationError
from wflo_prefect.ledger import Ledger
from wflo_prefect.observability import tracing
from wflo_prefect.testing import capture_spans, finished_span_names

OPENAI_KEY = "sk-proj-Abc123def456GHI789jkl012MNO345pqr"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP receiver on loopback; wflo chooses its provider afresh around the test."""
    with otlp_receiver() as server:
        tracing.reset_tracing()
        yield server
        monkeypatch.undo()
        tracing.reset_tracing()


def _governed_pair(name: str) -> Callable[..., Any]:
    @governed_task(name=f"{name}-step")
    def step() -> int:
        return 1

    @governed_flow(name=name)
    def run(fail: bool = False) -> int:
        step()
        if fail:
            raise RuntimeError(f"provider refused {OPENAI_KEY}")
        return 1

    return run


def test_spans_are_exported_to_an_otlp_http_receiver_as_one_tree(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """With TRACING_EXPORTER=otlp_http, the flow and task spans arrive, the task under the flow."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_HEADERS", "x-team=agents")
    _governed_pair("otlp-tree")()
    assert tracing.flush_tracing()
    by_name = {s.name: s for s in receiver.spans}
    flow, task = by_name["wflo.flow otlp-tree"], by_name["wflo.task otlp-tree-step"]
    assert task.trace_id == flow.trace_id
    assert task.parent_span_id == flow.span_id
    assert receiver.headers[0]["x-team"] == "agents"


def test_standard_otel_variables_configure_the_export_and_secrets_are_scrubbed(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_ENDPOINT exports; no key leaves."""
    port = receiver.server_address[1]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    _governed_pair("otlp-env")(True, return_state=True)
    assert tracing.flush_tracing()
    flow = next(s for s in receiver.spans if s.name == "wflo.flow otlp-env")
    assert flow.status.code == flow.status.STATUS_CODE_ERROR
    exported = receiver.spans[0].SerializeToString() + flow.SerializeToString()
    assert OPENAI_KEY.encode() not in exported
    assert b"[REDACTED]" in flow.SerializeToString()


def test_sample_rate_zero_exports_nothing(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """TRACING_SAMPLE_RATE=0 records no new trace."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE", "0")
    _governed_pair("unsampled")()
    assert tracing.flush_tracing()
    assert receiver.spans == []


def test_an_injected_provider_wins_over_the_configured_exporter(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """With a provider injected, spans go to it and not to the configured OTLP endpoint."""
    port = receiver.server_address[1]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv(
        "PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces"
    )
    with capture_spans() as spans:
        _governed_pair("injected")()
    assert "wflo.flow injected" in finished_span_names(spans)
    assert tracing.flush_tracing()
    assert receiver.spans == []


def test_grpc_exporter_is_built_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRACING_EXPORTER=otlp_grpc builds the gRPC OTLP exporter for the endpoint."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_grpc")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", "http://127.0.0.1:4317")
    provider = tracing.tracer_provider_from_settings()
    try:
        processors = provider._active_span_processor._span_processors
        inner = processors[0].span_exporter._inner  # type: ignore[attr-defined]
        assert isinstance(inner, OTLPSpanExporter)
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_TRACES_EXPORTER", "jaeger"), ("OTEL_TRACES_SAMPLER_ARG", "2")],
)
def test_unusable_otel_values_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """An exporter wflo does not ship, or a rate outside 0..1, is refused naming the value."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=repr(value)):
        tracing.tracer_provider_from_settings()


@pytest.mark.docker
def test_a_governed_runs_whole_tree_arrives_at_the_otlp_receiver(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """flow -> task -> `chat gpt-4o-mini`; flow -> task -> `wflo.sandbox ...`; flow -> task
    -> `wflo.approval ...` rejected: an outcome attribute, not an ERROR status."""
    import openai
    from approval_support import paused_request, start_flow

    from tests.fakes.openai_server import FakeOpenAI
    from wflo_prefect import ApprovalPolicy, Approvers, DockerSandbox, instrument
    from wflo_prefect.approvals import Principal, Vote, decide

    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", receiver.endpoint)
    approvers = Approvers(users=[Principal(name="bob", email="bob@example.com")])

    with FakeOpenAI() as server:

        @governed_task(name="tree-ask")
        def ask() -> str:
            client = instrument(
                openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)
            )
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50
            )
            return reply.choices[0].message.content or ""

        @governed_task(name="tree-sandbox")
        def compute() -> str:
            with DockerSandbox() as box:
                return box.run_python("print(6 * 7)").stdout

        @governed_task(
            name="tree-delete", approval=ApprovalPolicy(approvers=["bob"], principals=approvers)
        )
        def delete_rows(table: str) -> int:
            return 1

        @governed_flow(name="otlp-governed")
        def governed() -> None:
            ask()
            compute()
            delete_rows("users")

        future = start_flow(governed)
        request = paused_request(timeout=120)
        decide(request.id, Vote("bob", approved=False, digest=request.digest, channel="cli"))
        state = future.result(timeout=120)
    assert state.is_failed()
    assert tracing.flush_tracing()
    flow = receiver.wait_for("wflo.flow otlp-governed")
    tasks = {
        name: receiver.wait_for(f"wflo.task {name}")
        for name in ("tree-ask", "tree-sandbox", "tree-delete")
    }
    chat = receiver.wait_for("chat gpt-4o-mini")
    [sandbox] = [s for s in receiver.spans if s.name.startswith("wflo.sandbox")]
    [approval] = [s for s in receiver.spans if s.name.startswith("wflo.approval")]
    for task in tasks.values():
        assert (task.trace_id, task.parent_span_id) == (flow.trace_id, flow.span_id)
    for span, task_name in (
        (chat, "tree-ask"),
        (sandbox, "tree-sandbox"),
        (approval, "tree-delete"),
    ):
        assert span.trace_id == flow.trace_id
        assert span.parent_span_id == tasks[task_name].span_id, span.name
    chat_attributes = {a.key: a.value for a in chat.attributes}
    assert chat.kind == chat.SPAN_KIND_CLIENT
    assert chat_attributes["gen_ai.provider.name"].string_value == "openai"
    assert chat_attributes["gen_ai.usage.output_tokens"].int_value == 12
    sandbox_attributes = {a.key: a.value for a in sandbox.attributes}
    assert sandbox_attributes["process.exit.code"].int_value == 0
    approval_attributes = {a.key: a.value for a in approval.attributes}
    assert approval_attributes["wflo.approval.status"].string_value == "rejected"
    assert approval.status.code != approval.status.STATUS_CODE_ERROR
    assert tasks["tree-delete"].status.code != approval.status.STATUS_CODE_ERROR


def test_compensations_of_an_unsampled_run_are_not_exported(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, ledger: Ledger, tmp_path: Any
) -> None:
    """The undo spans follow the run's sampling decision: no orphan spans at rate 0."""
    from tests.support import undo
    from wflo_prefect import compensate

    monkeypatch.setenv(undo.JOURNAL_ENV, str(tmp_path / "journal.jsonl"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER", "otlp_http")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_TRACING_SAMPLE_RATE", "0")

    @governed_flow(name="unsampled-saga")
    def saga() -> None:
        compensate(undo.undo, "a")
        raise RuntimeError("failed after a side effect")

    assert saga(return_state=True).is_failed()
    assert [e["undo"] for e in undo.entries()] == ["a"]
    assert tracing.flush_tracing()
    assert receiver.spans == []
