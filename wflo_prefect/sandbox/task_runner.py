"""Runs a pickled task call inside the sandbox and writes its outcome as plain data.

Standard library plus a copied, pure-Python ``cloudpickle``: this file is copied
into the sandbox next to ``plain_data.py``. It reads ``call.pkl`` (the function,
its arguments and the host's Python version), calls the function and writes
``outcome.json``: ``{"status": "ok", "value": ...}`` or a failure with its
traceback. It never raises, so the host always learns what happened.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import pickle
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def _write(outcome: dict[str, Any]) -> None:
    with open(os.path.join(HERE, "outcome.json"), "w") as out:
        json.dump(outcome, out)


def main() -> None:
    """Load, call, encode; report every failure as a status."""
    sys.path.insert(0, os.path.join(HERE, "lib"))
    import plain_data  # type: ignore[import-not-found]

    try:
        with open(os.path.join(HERE, "call.pkl"), "rb") as source:
            call = pickle.load(source)  # noqa: S301 - written by the host that started us
    except Exception as exc:
        _write({"status": "load_error", "error": f"{type(exc).__name__}: {exc}"})
        return
    wanted = tuple(call["python"])
    if wanted != tuple(sys.version_info[:2]):
        _write(
            {
                "status": "python_mismatch",
                "error": f"host Python {wanted[0]}.{wanted[1]}, sandbox Python "
                f"{sys.version_info[0]}.{sys.version_info[1]}",
            }
        )
        return
    try:
        value = call["fn"](*call["args"], **call["kwargs"])
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
    except BaseException as exc:
        _write(
            {
                "status": "raised",
                "type": type(exc).__qualname__,
                "error": str(exc),
                "traceback": traceback.format_exc(),
            }
        )
        return
    try:
        encoded = plain_data.encode(value)
    except plain_data.UnsupportedValue as exc:
        _write({"status": "unsupported_result", "error": str(exc), "type": exc.type_name})
        return
    _write({"status": "ok", "value": json.loads(encoded)})


if __name__ == "__main__":
    main()
