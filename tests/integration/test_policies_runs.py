"""Policies on governed runs, with the real Prefect API and a real notification block."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock

from wflo_prefect import (
    AuditLog,
    Halt,
    Notify,
    Policy,
    PolicyViolation,
    governed_flow,
    governed_task,
    record_llm_usage,
    set_global_policies,
)
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail

PROD_DELETE = Policy(
    name="no-prod-deletes",
    condition="operation == 'delete' AND params.table.startsWith('prod_')",
    actions=[
        AuditLog(severity="high"),
        Halt(reason="deleting production tables needs a change ticket"),
    ],
)


class _Inbox(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A local HTTP endpoint standing in for a chat webhook; returns its URL and messages."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    _Inbox.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Inbox.received
    server.shutdown()


@governed_task(operation="delete", policies=[PROD_DELETE])
def drop(table: str) -> str:
    return f"dropped {table}"


def test_halt_stops_the_task_before_it_runs(ledger: Ledger) -> None:
    """A matching Halt policy keeps the function from running; the run fails PolicyViolation."""

    @governed_flow
    def cleanup() -> str:
        return drop("prod_users")

    state = cleanup(return_state=True)
    assert state.is_failed()
    with pytest.raises(PolicyViolation, match="change ticket"):
        state.result()
    events = audit_trail(state)
    names = [e.event for e in events]
    assert "policy.matched" in names
    assert "policy.halted" in names
    assert "task_run.failed" in names
    assert state.name == "PolicyViolation"
    flow_run_id = str(state.state_details.flow_run_id)
    [decision] = ledger.policies.for_flow_run(flow_run_id)
    assert decision.matched
    assert decision.policy_name == "no-prod-deletes"
    assert decision.context["params"] == {"table": "prod_users"}


def test_non_matching_policy_lets_the_run_go_and_is_recorded(ledger: Ledger) -> None:
    """A policy that does not match is still recorded as evaluated."""

    @governed_flow
    def cleanup() -> str:
        return drop("dev_users")

    state = cleanup(return_state=True)
    assert state.result() == "dropped dev_users"
    [decision] = ledger.policies.for_flow_run(str(state.state_details.flow_run_id))
    assert not decision.matched


def test_notify_through_a_prefect_notification_block(
    ledger: Ledger, inbox: tuple[str, list[dict[str, object]]]
) -> None:
    """Notify sends through a saved Prefect notification block, loaded by slug."""
    url, received = inbox
    CustomWebhookNotificationBlock(
        name="policy-hook", url=url, json_data={"text": "{{body}}", "title": "{{subject}}"}
    ).save("policy-inbox", overwrite=True)
    loud = Policy(
        name="big-batch",
        condition="size(params.ids) > 2",
        actions=[Notify(target="custom-webhook/policy-inbox")],
    )

    @governed_task(policies=[loud])
    def process(ids: list[int]) -> int:
        return len(ids)

    @governed_flow
    def batch() -> int:
        return process([1, 2, 3])

    state = batch(return_state=True)
    assert state.result() == 3
    assert len(received) == 1
    assert "big-batch" in str(received[0]["text"])
    assert received[0]["title"] == "wflo policy: big-batch"
    notified = [e for e in audit_trail(state) if e.event == "policy.notified"]
    assert [e.outcome for e in notified] == ["sent"]


def test_first_match_routing_stops_at_the_first_hit(ledger: Ledger) -> None:
    """With stop=True, later policies are not evaluated once one matched."""
    rules = [
        Policy(name="high", condition="params.amount > 100", actions=[Halt()], stop=True),
        Policy(name="medium", condition="params.amount > 10", actions=[AuditLog()], stop=True),
        Policy(name="rest", condition="*", actions=[AuditLog(severity="low")]),
    ]

    @governed_task(policies=rules)
    def pay(amount: int) -> int:
        return amount

    @governed_flow
    def payments() -> int:
        return pay(50)

    state = payments(return_state=True)
    assert state.result() == 50
    decisions = ledger.policies.for_flow_run(str(state.state_details.flow_run_id))
    assert [(d.policy_name, d.matched) for d in decisions] == [("high", False), ("medium", True)]


def test_global_policies_apply_to_every_governed_run(ledger: Ledger) -> None:
    """set_global_policies governs runs that declare no policies themselves."""

    @governed_flow(operation="deploy")
    def release() -> str:
        return "shipped"

    set_global_policies(
        [Policy(name="freeze", condition="operation == 'deploy'", actions=[Halt()])]
    )
    try:
        state = release(return_state=True)
    finally:
        set_global_policies([])
    assert state.is_failed()
    assert state.name == "PolicyViolation"
    assert release() == "shipped"


@pytest.mark.parametrize("flow_kind", ["plain", "governed"])
def test_a_global_policy_halts_a_task_that_declares_none(ledger: Ledger, flow_kind: str) -> None:
    """A governed task with no policies of its own skips the policy scope, unless a
    policy active for it (here a global one) is evaluated when a run starts."""
    from prefect import flow

    @governed_task(operation="refund")
    def refund(order: str) -> str:
        return order

    def body() -> str:
        return refund("o-1")

    runner = governed_flow(body) if flow_kind == "governed" else flow(body)
    assert runner() == "o-1"  # nothing active: the task runs
    set_global_policies(
        [
            Policy(
                name="no-refunds",
                condition="kind == 'task' && operation == 'refund'",
                actions=[Halt()],
            )
        ]
    )
    try:
        state = runner(return_state=True)
    finally:
        set_global_policies([])
    assert state.is_failed()
    with pytest.raises(PolicyViolation):
        state.result()


def test_a_flows_policies_halt_its_tasks_that_declare_none(ledger: Ledger) -> None:
    """Policies given to a governed flow are active for its tasks, which declare none."""

    @governed_task(operation="delete")
    def drop(table: str) -> str:
        return table

    @governed_flow(policies=[PROD_DELETE])
    def cleanup(table: str) -> str:
        return drop(table=table)

    assert cleanup("staging_users") == "staging_users"
    state = cleanup("prod_users", return_state=True)
    assert state.is_failed()
    with pytest.raises(PolicyViolation):
        state.result()


def test_cost_so_far_is_visible_to_later_policies(ledger: Ledger) -> None:
    """`cost` is the money already spent in the flow run, read from the ledger."""
    frugal = Policy(name="frugal", condition="cost > 0.01", actions=[Halt(reason="spent enough")])

    @governed_task
    def think() -> None:
        record_llm_usage("openai", "gpt-4o", input_tokens=10_000, output_tokens=2_000)

    @governed_task(policies=[frugal])
    def think_more() -> str:
        return "more"

    @governed_flow
    def agent() -> str:
        think()
        return think_more()

    state = agent(return_state=True)
    assert state.is_failed()
    decision = ledger.policies.for_flow_run(str(state.state_details.flow_run_id))[0]
    assert Decimal(decision.context["cost"]) > Decimal("0.01")


def test_spend_policy_refuses_an_llm_call_before_it_is_sent(ledger: Ledger) -> None:
    """A policy on the spend point halts an instrumented call: the server sees no request."""
    import openai

    from tests.fakes.openai_server import FakeOpenAI
    from wflo_prefect import instrument

    pricey = Policy(
        name="no-big-models",
        condition="model == 'gpt-4o' && estimated_cost > 0.001",
        on="spend",
        actions=[Halt(reason="use gpt-4o-mini")],
    )
    with FakeOpenAI() as server:
        client = instrument(openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk", max_retries=0))

        @governed_flow(policies=[pricey])
        def agent(model: str) -> str:
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=500
            )
            return str(reply.choices[0].message.content)

        assert agent("gpt-4o-mini")
        assert len(server.requests) == 1
        state = agent("gpt-4o", return_state=True)
        assert state.name == "PolicyViolation"
        assert len(server.requests) == 1, "the refused call never reached the server"
    decisions = ledger.policies.for_flow_run(str(state.state_details.flow_run_id))
    spend = [d for d in decisions if d.context.get("point") == "spend"]
    assert [d.matched for d in spend] == [True]
    assert spend[0].context["model"] == "gpt-4o"


def test_sandbox_policy_is_checked_before_a_container_starts(
    ledger: Ledger, docker_client: object
) -> None:
    """A policy on the sandbox point refuses a sandbox before any container exists."""
    from wflo_prefect import DockerSandbox, SandboxConfig
    from wflo_prefect.policies import use_policies

    gvisor_only = Policy(
        name="gvisor-only",
        condition="sandbox.runtime != 'runsc'",
        on="sandbox",
        actions=[Halt(reason="untrusted code runs under gVisor here")],
    )
    before = {c.id for c in docker_client.containers.list(all=True)}  # type: ignore[attr-defined]
    with use_policies([gvisor_only]):
        with pytest.raises(PolicyViolation, match="gVisor"), DockerSandbox(SandboxConfig()):
            pass
        with DockerSandbox(SandboxConfig(runtime="runsc")) as box:
            assert box.run_python("print(6 * 7)").stdout.strip() == "42"
    after = {c.id for c in docker_client.containers.list(all=True)}  # type: ignore[attr-defined]
    assert after <= before


def test_require_approval_action_gates_the_task_until_approved(ledger: Ledger) -> None:
    """A matching RequireApproval policy pauses the run; an approval from the CLI lets it go on."""
    from typer.testing import CliRunner

    from tests.approval_support import paused_request, start_flow
    from wflo_prefect import RequireApproval
    from wflo_prefect.cli import app

    big_refunds = Policy(
        name="big-refunds",
        condition="operation == 'refund' && params.amount > 100",
        actions=[RequireApproval(timeout=120)],
    )

    @governed_task(operation="refund", policies=[big_refunds])
    def refund(amount: int) -> str:
        return f"refunded {amount}"

    @governed_flow
    def support(amount: int) -> str:
        return refund(amount)

    assert support(20) == "refunded 20"  # under the threshold: no gate
    future = start_flow(support, 500)
    request = paused_request()
    assert request.details["policy"] == "big-refunds"
    assert request.details["params"] == {"amount": 500}
    result = CliRunner().invoke(app, ["approvals", "approve", request.id[:8], "--as", "ops"])
    assert result.exit_code == 0, result.output
    state = future.result(timeout=60)
    assert state.result() == "refunded 500"


def test_arguments_are_bound_only_when_a_policy_reads_them(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The always-on policy check binds a call's arguments only when a policy is
    evaluated at its start: a task without one pays nothing for it."""
    from wflo_prefect.governance import GovernedCall

    bound: list[str] = []
    real = GovernedCall.bound_arguments

    def counting(self: GovernedCall) -> dict[str, object]:
        bound.append(self.name)
        return real(self)

    monkeypatch.setattr(GovernedCall, "bound_arguments", counting)

    @governed_task
    def plain_step(table: str) -> str:
        return table

    @governed_flow
    def tidy() -> str:
        return plain_step("staging_users") + drop("staging_users")

    assert tidy() == "staging_usersdropped staging_users"
    assert bound == ["drop"]  # the task with a policy, not the one without
