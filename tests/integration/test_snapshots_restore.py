"""Snapshots that restore: rollback_enabled, the seeds' calls as written, result storage,
retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from tests.support import inventory
from wflo_prefect import (
    InvalidArgumentError,
    StateSnapshot,
    create_snapshot,
    current_run,
    governed_flow,
    governed_task,
    list_snapshots,
    prune_snapshots,
    restore_snapshot,
    restore_to_time,
)
from wflo_prefect.compensation.snapshot_store import REF_KEY
from wflo_prefect.ledger import Ledger
from wflo_prefect.testing import audit_trail

ROWS = StateSnapshot(capture=inventory.capture, restore=inventory.restore)


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "inventory.json"
    monkeypatch.setenv(inventory.DB_ENV, str(path))
    inventory.save({"stock": [1, 2, 3]})
    return path


@governed_task(snapshot=ROWS, rollback_enabled=True)
def update_database(table: str, fail: bool) -> int:
    db = inventory.load()
    db[table] = [0]  # the step changes the table...
    inventory.save(db)
    if fail:
        raise RuntimeError("...then fails half-way")
    return len(db[table])


def test_rollback_enabled_restores_the_snapshot_on_failure(ledger: Ledger) -> None:
    """A failing step's changes are rolled back through the restore handler; a good step's stay."""

    @governed_flow
    def sync(fail: bool) -> int:
        return update_database("stock", fail)

    state = sync(True, return_state=True)
    assert state.is_failed()
    assert inventory.load()["stock"] == [1, 2, 3]
    restored = [e for e in audit_trail(state) if e.event == "snapshot.restored"]
    assert [e.payload["applied"] for e in restored] == [True]

    assert sync(False) == 1
    assert inventory.load()["stock"] == [0]  # success: nothing restored


def test_rollback_needs_a_restore_handler_and_matching_parameters() -> None:
    """rollback_enabled without a StateSnapshot to restore with is refused at decoration."""
    for snapshot in (True, False, StateSnapshot(capture=inventory.capture)):
        with pytest.raises(InvalidArgumentError, match="rollback_enabled"):

            @governed_task(snapshot=snapshot, rollback_enabled=True)
            def step(table: str) -> None: ...

    with pytest.raises(InvalidArgumentError, match="table"):

        @governed_task(snapshot=ROWS, rollback_enabled=True)
        def other(name: str) -> None: ...

    with pytest.raises(InvalidArgumentError, match="data"):
        StateSnapshot(capture=inventory.capture, restore=inventory.capture)


async def perform_risky_operation() -> None:
    db = inventory.load()
    db["stock"].append(99)
    inventory.save(db)
    raise ConnectionError("the risky operation failed")


def test_seeds_manual_snapshots_and_point_in_time_as_written(ledger: Ledger) -> None:
    """The product description's calls, awaited on current_run(), restore real state."""

    @governed_flow(snapshot=StateSnapshot(capture=inventory.capture, restore=inventory.restore))
    async def complex_operation(table: str = "stock") -> list[object]:
        context = current_run()
        snapshot = await context.create_snapshot("before-critical-op")
        try:
            await perform_risky_operation()
        except Exception:
            await context.restore_snapshot(snapshot.id)  # Restore to snapshot
            assert inventory.load()["stock"] == [1, 2, 3]
        moment = snapshot.created_at.isoformat().replace("+00:00", "Z")
        db = inventory.load()
        db["stock"] = [7]
        inventory.save(db)
        workflow = current_run()
        snapshots = await workflow.list_snapshots()  # List available snapshots
        await workflow.restore_to_snapshot(snapshots[0].id)  # Restore to specific snapshot
        assert inventory.load()["stock"] == [1, 2, 3]
        inventory.save({"stock": [8]})
        await workflow.restore_to_time(moment)  # Restore to specific timestamp
        return [s.name for s in snapshots]

    names = asyncio.run(complex_operation())
    assert names[0] == "before-critical-op"
    assert inventory.load()["stock"] == [1, 2, 3]

    @governed_flow
    def bad_time() -> None:
        restore_to_time("yesterday-ish")

    with pytest.raises(InvalidArgumentError, match="ISO 8601"):
        bad_time()


def test_large_snapshots_go_to_prefect_result_storage(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the inline limit, the data is a result record; the ledger keeps a reference."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_RECOVERY_SNAPSHOT_INLINE_BYTES", "1000")
    big = {"rows": list(range(2000))}

    @governed_flow
    def etl() -> str:
        return create_snapshot("batch", big).id

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}):
        snapshot_id = etl()
        [record] = ledger.compensations.snapshots(snapshot_id=snapshot_id)
        ref = record.data[REF_KEY]
        assert ref["bytes"] > 1000
        stored = Path(ref["storage_key"])
        assert stored.is_file()
        assert stored.is_relative_to(tmp_path / "results")
        assert restore_snapshot(snapshot_id=snapshot_id) == big
        assert prune_snapshots(older_than=timedelta(0)) == 1
        assert not stored.exists()  # retention removed the stored copy too
    small = {"rows": [1]}

    @governed_flow
    def etl_small() -> str:
        return create_snapshot("batch", small).id

    [record] = ledger.compensations.snapshots(snapshot_id=etl_small())
    assert record.data == small


def test_retention_keeps_the_newest_per_name(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """snapshot_keep prunes as snapshots are taken; prune_snapshots applies count and age."""
    monkeypatch.setenv("PREFECT_INTEGRATIONS_WFLO_RECOVERY_SNAPSHOT_KEEP", "2")

    @governed_flow
    def cursor_walk() -> list[int]:
        for position in range(4):
            create_snapshot("cursor", {"position": position})
        create_snapshot("other", {"x": 1})
        return [s.data["position"] for s in list_snapshots(name="cursor")]

    assert cursor_walk() == [3, 2]
    monkeypatch.delenv("PREFECT_INTEGRATIONS_WFLO_RECOVERY_SNAPSHOT_KEEP")
    assert prune_snapshots(keep=1) == 1  # one 'cursor' goes; 'other' has one
    assert prune_snapshots(older_than=timedelta(days=1)) == 0
    assert prune_snapshots(older_than=timedelta(0)) == 2
    with pytest.raises(InvalidArgumentError, match="keep"):
        prune_snapshots(keep=0)
