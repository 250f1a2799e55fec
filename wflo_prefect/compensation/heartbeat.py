"""Heartbeats of flow runs that have something to undo.

From its first registered compensation until Prefect shows the run in a final
state, a flow run's process marks itself alive every ``heartbeat_seconds``: it
touches its pending rows in the ledger (what ``wflo compensate sweep`` reads) and
emits a ``wflo.flow-run.heartbeat`` Prefect event about the run (what the zombie
automation watches). A killed process stops beating; recovery takes it from there.
"""

from __future__ import annotations

import threading

from wflo_prefect.observability.logging import get_logger

__all__ = ["HEARTBEAT_EVENT", "beat_once", "ensure_heartbeat"]

HEARTBEAT_EVENT = "wflo.flow-run.heartbeat"

_log = get_logger("compensation")
_lock = threading.Lock()
_beating: dict[str, threading.Thread] = {}


def beat_once(flow_run_id: str) -> bool:
    """One heartbeat; False once Prefect shows the run final (nothing left to watch).

    The event is posted synchronously (``POST /events``), not queued, so a run
    killed right after its first beat has still been seen beating.
    """
    import uuid

    from prefect.events import Event

    from wflo_prefect._prefect_client import prefect_client
    from wflo_prefect.ledger import get_ledger

    with prefect_client() as client:
        state = client.read_flow_run(uuid.UUID(flow_run_id)).state
        if state is not None and state.is_final():
            return False
        pending = get_ledger().compensations.touch_pending(flow_run_id)
        event = Event(
            event=HEARTBEAT_EVENT,
            resource={"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
            payload={"pending_compensations": pending},
        )
        response = client.request("POST", "/events", json=[event.model_dump(mode="json")])
        response.raise_for_status()
    return True


def _beat(flow_run_id: str, interval: float) -> None:
    from prefect.exceptions import ObjectNotFound

    stop = threading.Event()
    try:
        while True:
            stop.wait(interval)
            try:
                if not beat_once(flow_run_id):
                    return
            except ObjectNotFound:
                return
            except Exception as exc:  # a missed beat is not fatal; the next one may pass
                _log.warning("heartbeat.failed", flow_run_id=flow_run_id, error=str(exc))
    finally:
        with _lock:
            _beating.pop(flow_run_id, None)


def ensure_heartbeat(flow_run_id: str) -> None:
    """Beat once now, then start the run's heartbeat thread, unless it is already beating."""
    from wflo_prefect.compensation.settings import get_recovery_settings

    with _lock:
        if flow_run_id in _beating:
            return
        try:
            beat_once(flow_run_id)
        except Exception as exc:  # the thread keeps trying; registering must not fail
            _log.warning("heartbeat.failed", flow_run_id=flow_run_id, error=str(exc))
        interval = get_recovery_settings().heartbeat_seconds
        thread = threading.Thread(
            target=_beat,
            args=(flow_run_id, interval),
            name=f"wflo-heartbeat-{flow_run_id[:8]}",
            daemon=True,
        )
        _beating[flow_run_id] = thread
        thread.start()
