"""The README's demo: governed example flows on the embedded defaults.

Runs on an ephemeral Prefect server and the SQLite ledger under ``PREFECT_HOME``
(``scripts/demo.sh`` points it at ``.prefect-demo/``), then prints what wflo
governed and how to inspect it. Each section checks that it showed what it
claims and the demo exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from flows.data_cleanup import count_rows, data_cleanup, seed_database
from wflo_prefect.cli.debug import render_audit
from wflo_prefect.testing import audit_trail

console = Console(highlight=False, width=max(120, Console().width))


class DemoFailed(SystemExit):
    """A section did not show what it should have."""


def expect(condition: bool, what: str) -> None:
    """Stop the demo when a section did not behave as shown."""
    if not condition:
        raise DemoFailed(f"demo: expected {what}")


def section(title: str) -> None:
    """Print a section heading."""
    console.rule(f"[bold]{title}")


def demo_audit(work: Path) -> str:
    """A governed data clean-up run, and its audit trail."""
    section("1. A governed flow: every run and task audited with its Prefect and trace ids")
    db = seed_database(work / "customers.db")
    state = data_cleanup(str(db), str(work / "archive"), return_state=True)
    console.print(f"data-cleanup finished [bold]{state.name}[/bold]: {state.result()}")
    events = audit_trail(state)
    console.print(
        render_audit(events, f"Audit trail of flow run {state.state_details.flow_run_id}")
    )
    expect(state.is_completed() and len(events) >= 6, "a completed run with a full audit trail")
    return str(state.state_details.flow_run_id)


def demo_policy(work: Path) -> str:
    """The no-prod-deletes policy halts the same agent on a production table."""
    section("2. A policy (CEL) halts a delete on a production table before it happens")
    db = seed_database(work / "prod.db", table="prod_customers")
    state = data_cleanup(str(db), str(work / "archive"), table="prod_customers", return_state=True)
    left = count_rows(str(db), "prod_customers")
    console.print(f"run ended [bold]{state.name}[/bold]: {state.message}")
    console.print(f"rows in prod_customers: {left} (none deleted)")
    expect(state.name == "PolicyViolation" and left == 12, "a PolicyViolation with no row deleted")
    return str(state.state_details.flow_run_id)


def demo_rollback(work: Path) -> str:
    """A later step fails, so the delete's compensation restores the rows."""
    section("3. Rollback: a later step fails, the durable undo log restores the deleted rows")
    db = seed_database(work / "rollback.db")
    state = data_cleanup(
        str(db),
        str(work / "archive"),
        owner_webhook="http://127.0.0.1:9/unreachable",
        return_state=True,
    )
    rows = count_rows(str(db), "customers")
    undo = [e for e in audit_trail(state) if e.event.startswith("compensation.")]
    console.print(f"run ended [bold]{state.name}[/bold] (the owner's webhook was unreachable)")
    for event in undo:
        console.print(f"  {event.event}: {event.payload.get('name')}")
    console.print(f"rows in customers: {rows} of 12 (the 4 deleted ones are back)")
    expect(state.is_failed() and rows == 12, "the deleted rows restored by the compensation")
    return str(state.state_details.flow_run_id)


def demo_budget(work: Path) -> str:
    """A per-run budget halts an async pydantic-ai research agent before it overspends."""
    section("4. Cost governance: a $0.03 budget halts the run before the overrunning call is sent")
    import asyncio

    from flows import research_agent as research

    server = research._offline_server()  # the local OpenAI stand-in, when no API key is set
    try:
        state = asyncio.run(research.research_agent(research.QUESTIONS, return_state=True))
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    sent = len(server.requests) if server is not None else None  # type: ignore[attr-defined]
    console.print(f"run ended [bold]{state.name}[/bold]: {state.message}")
    if sent is not None:
        console.print(f"requests the LLM server received: {sent}")
    from wflo_prefect.ledger import get_ledger

    spent = get_ledger().costs.entries(flow_run_id=str(state.state_details.flow_run_id))
    console.print(f"calls recorded: {len(spent)}, spent ${sum(e.cost_usd for e in spent):.4f}")
    expect(state.name == "BudgetExceeded", "a run ended by BudgetExceeded")
    expect(sent is None or sent == len(spent), "no request sent past the budget")
    return str(state.state_details.flow_run_id)


def demo_approval(work: Path) -> str:
    """A gated delete waits for a human; the answer comes from `wflo approvals approve`."""
    section("5. Approval gate: the run pauses until an operator approves from the CLI")
    import threading

    from flows import approval_gate

    operator = threading.Thread(target=approval_gate._approve_from_cli_soon, daemon=True)
    operator.start()
    state = approval_gate.cleanup_agent(return_state=True)
    operator.join(timeout=180)  # the CLI finishes its audit writes after the run resumed
    decided = [e for e in audit_trail(state) if e.event.startswith("approval.")]
    for event in decided:
        who = event.actor or event.payload.get("approver") or ""
        console.print(f"  {event.occurred_at:%H:%M:%S.%f} {event.event} {who}")
    console.print(f"run ended [bold]{state.name}[/bold]; deleted {state.result()} rows")
    expect(state.is_completed(), "the approved run to complete")
    expect(any(e.event == "approval.decided" for e in decided), "an audited decision")
    return str(state.state_details.flow_run_id)


def sandbox_missing() -> str | None:
    """What the sandbox section lacks on this machine (a Docker engine, the image), if anything."""
    from flows.code_agent import SANDBOX
    from wflo_prefect.errors import ServiceUnavailableError
    from wflo_prefect.sandbox.engine import docker_client, image_present

    try:
        client = docker_client()
    except ServiceUnavailableError as exc:
        return (
            f"{exc}\nInstall and start one: as root `scripts/provision.sh docker sandbox-image` "
            "(or `apt-get install docker.io` and start `dockerd`), then run the demo again."
        )
    if not image_present(client, SANDBOX.image):
        return (
            f"The sandbox image {SANDBOX.image!r} is not in the Docker engine.\n"
            "Build it with `wflo sandbox build-image` (as root; offline from Debian's packages)."
        )
    return None


def demo_sandbox(work: Path) -> str | None:
    """Generated code runs in the locked-down sandbox; a hostile snippet is contained."""
    section("6. Sandbox: generated code runs without network, on a read-only root, as non-root")
    missing = sandbox_missing()
    if missing is not None:
        console.print(f"[yellow]skipped:[/yellow] {missing}")
        return None
    from flows.code_agent import code_agent

    state = code_agent(return_state=True)
    outcome = state.result()
    hostile = outcome["hostile"]
    # The flow logs its prints to the run (log_prints=True); the demo shows them here.
    console.print(f"answer: {outcome['answer']}")
    console.print(f"hostile code: {hostile}")
    expect(
        str(hostile.get("network", "")).startswith("blocked")
        and str(hostile.get("etc", "")).startswith("blocked"),
        "the hostile snippet blocked from the network and /etc",
    )
    return str(state.state_details.flow_run_id)


def demo_watchdog(work: Path) -> str:
    """A run stuck inside one step is cancelled by a time-based policy while the step runs."""
    section("7. A time-based policy halts a stuck step while it runs (watchdog)")
    import time

    from wflo_prefect import Condition, HaltExecution, Policy, governed_flow

    os.environ.setdefault("PREFECT_INTEGRATIONS_WFLO_POLICIES_WATCHDOG_SECONDS", "0.5")
    timeout_policy = Policy(
        name="execution_timeout",
        condition=Condition("execution_time > 2"),  # the product's 600 s, shortened for the demo
        actions=[HaltExecution(reason="no answer from the vendor API for 2 s")],
    )

    @governed_flow(name="stuck-agent", policies=[timeout_policy])
    def stuck_agent() -> None:
        time.sleep(3600)  # waiting on a vendor API that never answers

    state = stuck_agent(return_state=True)
    console.print(f"run ended [bold]{state.name}[/bold]: {state.message}")
    expect(state.is_cancelled() and "execution_timeout" in (state.message or ""), "a Cancelled run")
    return str(state.state_details.flow_run_id)


def _api_url() -> str:
    """The Prefect API this demo talks to (the ephemeral one unless PREFECT_API_URL is set)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return str(url)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=180)
    return server.api_url


def demo_recovery(work: Path) -> str:
    """A saga's worker is SIGKILLed; the sweeper marks it Crashed and refunds, unattended."""
    section("8. Recovery: a worker is killed mid-saga; its undo log runs with no command typed")
    import subprocess
    import threading
    from datetime import timedelta

    from wflo_prefect.compensation.recovery import sweep
    from wflo_prefect.ledger import get_ledger

    saga_dir = work / "saga"
    saga_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": _api_url(),
        "PREFECT_INTEGRATIONS_WFLO_RECOVERY_HEARTBEAT_SECONDS": "0.5",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "flows.crash_saga", str(saga_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    run_id = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    console.print(f"payment-saga {run_id}: worker exit code {proc.returncode} (SIGKILL)")
    expect(bool(run_id) and proc.returncode < 0, "a saga killed by a signal")
    # What the scheduled sweep deployment (or the automations) does on its own; no command.
    done = threading.Event()

    def sweeper() -> None:
        while not done.is_set():
            if any(
                o.flow_run_id == run_id and o.report
                for o in sweep(stale_after=timedelta(seconds=2))
            ):
                done.set()
            done.wait(0.5)

    console.print(
        "a sweeper (`wflo compensate sweep --every 1`) is running, as it would be deployed"
    )
    thread = threading.Thread(target=sweeper, daemon=True)
    thread.start()
    done.wait(120)
    refunds = saga_dir / "refunds.jsonl"
    lines = refunds.read_text().splitlines() if refunds.exists() else []
    for line in lines:
        console.print(f"  refunded {line}")
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
    console.print(
        f"the run is now [bold]{state.name if state else '?'}[/bold]: "
        f"{state.message if state else ''}"
    )
    statuses = {c.status for c in get_ledger().compensations.for_flow_run(run_id)}
    expect(
        len(lines) == 2 and '"card-bob"' in lines[0] and statuses == {"done"},
        "both charges refunded once, newest first",
    )
    return run_id


SECTIONS: list[Callable[[Path], str | None]] = [
    demo_audit,
    demo_policy,
    demo_rollback,
    demo_budget,
    demo_approval,
    demo_sandbox,
    demo_watchdog,
    demo_recovery,
]


def main(argv: list[str] | None = None) -> int:
    """Run the demo's sections (all by default); exit 0 when each did what it shows.

    A section whose service is missing on this machine (the sandbox without Docker) says
    what to install and is skipped; the others still run.
    """
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__)
    parser.add_argument(
        "--only",
        type=int,
        action="append",
        choices=range(1, len(SECTIONS) + 1),
        metavar="N",
        help="run only section N (repeatable)",
    )
    chosen = parser.parse_args(argv).only or range(1, len(SECTIONS) + 1)
    home = Path(os.environ.get("PREFECT_HOME", ".prefect-demo")).resolve()
    work = home / "work"
    runs = [SECTIONS[number - 1](work) for number in chosen]
    section("Inspect it yourself")
    for run_id in runs:
        if run_id is not None:
            console.print(f"  PREFECT_HOME={home} .venv/bin/wflo debug {run_id}")
    console.print(f"  ledger: {home / 'wflo' / 'ledger.db'} (SQLite, WAL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
