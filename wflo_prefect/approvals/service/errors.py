"""How refused decisions map to HTTP answers."""

from __future__ import annotations

from fastapi import HTTPException

from wflo_prefect.approvals.errors import DecisionRefused

__all__ = ["http_error"]

_STATUS = {
    "bad_credentials": 401,
    "unknown_request": 404,
    "not_an_approver": 403,
    "self_approval": 403,
    "digest_mismatch": 409,
    "not_pending": 409,
    "duplicate": 409,
    "replay": 409,
    "expired": 410,
    "locked_out": 403,
}


def http_error(exc: DecisionRefused) -> HTTPException:
    """The HTTP error for a refused decision (the request and run are unchanged)."""
    return HTTPException(
        status_code=_STATUS.get(exc.reason, 400),
        detail={"reason": exc.reason, "message": str(exc)},
    )
