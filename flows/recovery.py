"""Recovery without a human: the flow Prefect automations run for crashed runs.

Deploy it (``prefect.yaml``: ``wflo-recover-run``), then create the automations
that run it for every crashed or silent flow run::

    wflo compensate automations wflo-recover-run/wflo-recover-run

``sweep_compensations`` is the same for every run with outstanding compensations,
on a schedule, for deployments without automations (``wflo compensate sweep``).
"""

from __future__ import annotations

from wflo_prefect import governed_flow


@governed_flow(name="wflo-recover-run", log_prints=True)
def recover_run_flow(flow_run_id: str) -> dict[str, object]:
    """Run the outstanding compensations of ``flow_run_id`` (a crashed run), newest first."""
    from wflo_prefect.compensation.recovery import recover_run

    outcome = recover_run(flow_run_id)
    report = outcome.report
    summary: dict[str, object] = {
        "flow_run_id": outcome.flow_run_id,
        "state": outcome.state,
        "verdict": outcome.verdict,
        "done": report.done if report else [],
        "failed": report.failed if report else [],
    }
    print(f"recovery of {outcome.flow_run_id} ({outcome.state}): {summary}")
    if report is not None and report.failed:
        raise RuntimeError(f"compensations failed for good: {report.failed}")
    return summary


@governed_flow(name="wflo-compensation-sweep", log_prints=True)
def sweep_compensations(stale_after_seconds: float | None = None) -> list[dict[str, object]]:
    """Settle every run with outstanding compensations (dead ones are marked Crashed)."""
    from datetime import timedelta

    from wflo_prefect.compensation.recovery import sweep

    stale = timedelta(seconds=stale_after_seconds) if stale_after_seconds else None
    outcomes = sweep(stale_after=stale)
    summary: list[dict[str, object]] = [
        {"flow_run_id": o.flow_run_id, "state": o.state, "verdict": o.verdict} for o in outcomes
    ]
    print(f"swept {len(outcomes)} run(s): {summary}")
    return summary
