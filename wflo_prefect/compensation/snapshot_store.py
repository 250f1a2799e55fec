"""Where snapshot data lives: inline in the ledger, or in Prefect result storage when large.

Data whose JSON is larger than ``snapshot_inline_bytes`` is written to Prefect's
result storage (the default result storage block, or the local storage path)
as a JSON result record; the ledger keeps a reference to it. Reading resolves
the reference, so callers always get the data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wflo_prefect.errors import LedgerError

__all__ = ["REF_KEY", "delete_stored", "load_data", "store_data"]

#: The key of a ledger row's data that points to result storage.
REF_KEY = "$wflo_result_storage"


def _store(result_storage: Any = None) -> Any:
    from prefect.results import ResultStore
    from prefect.serializers import JSONSerializer

    if result_storage is None:
        return ResultStore(serializer=JSONSerializer())
    return ResultStore(serializer=JSONSerializer(), result_storage=result_storage)


def store_data(snapshot_key: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the ledger row keeps: ``data`` itself, or a reference when it is large."""
    from wflo_prefect.compensation.settings import get_recovery_settings

    size = len(json.dumps(data, separators=(",", ":")).encode())
    if size <= get_recovery_settings().snapshot_inline_bytes:
        return data
    store = _store()
    record = store.create_result_record(data, key=f"wflo-snapshot-{snapshot_key}")
    store.persist_result_record(record)
    block = record.metadata.storage_block_id
    return {
        REF_KEY: {
            "storage_key": record.metadata.storage_key,
            "storage_block_id": str(block) if block else None,
            "bytes": size,
        }
    }


def _ref(stored: dict[str, Any]) -> dict[str, Any] | None:
    ref = stored.get(REF_KEY) if len(stored) == 1 else None
    return ref if isinstance(ref, dict) else None


def load_data(stored: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's data, read back from result storage when the ledger holds a reference."""
    ref = _ref(stored)
    if ref is None:
        return stored
    from wflo_prefect._prefect_compat import load_block_from_ref

    store = _store()
    if ref.get("storage_block_id"):
        store = _store(load_block_from_ref(ref["storage_block_id"]))
    try:
        data: dict[str, Any] = store.read(ref["storage_key"]).result
    except Exception as exc:
        raise LedgerError(
            "The snapshot's data is not in result storage any more",
            value=ref["storage_key"],
            hint="Check the result storage settings of the process restoring it",
            docs="compensation.md",
        ) from exc
    return data


def delete_stored(stored: dict[str, Any]) -> bool:
    """Remove the result-storage copy of a pruned snapshot, where the storage is local files.

    Remote storages keep the record (give them their own expiry rule); returns
    whether a file was removed.
    """
    ref = _ref(stored)
    if ref is None or ref.get("storage_block_id"):
        return False
    path = Path(str(ref["storage_key"]))
    if path.is_absolute() and path.is_file():
        path.unlink()
        return True
    return False
