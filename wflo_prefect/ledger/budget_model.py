"""The budgeting model: windows, holds and whether a hold fits. Pure: no I/O, no SQL.

Every answer to "does it fit" comes from here: :func:`fits` (one hold on a window),
:func:`leasable` (how much of a window a lease may take), :func:`lease_too_small`
(whether a window is too near its limit to keep a lease) and :func:`fits_without`
(whether a refused hold would fit once other holders gave their money back). The
store (:mod:`wflo_prefect.ledger.budget_store`) enforces :func:`fits` atomically
with the same inequality in SQL; ``tests/integration/test_budget_store_model.py``
checks both agree on and around the limit, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

__all__ = [
    "SCALE",
    "HoldRequest",
    "LeaseCharge",
    "LeaseSync",
    "Refusal",
    "WindowState",
    "fits",
    "fits_without",
    "leasable",
    "lease_too_small",
]

#: The ledger's money scale (10 decimal places).
SCALE = Decimal("0.0000000001")


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Hold ``amount_usd`` on the window of ``budget_key`` starting at ``window_start``."""

    budget_key: str
    window_start: datetime
    window_end: datetime | None
    limit_usd: Decimal
    amount_usd: Decimal
    enforce: bool = True


@dataclass(frozen=True, slots=True)
class WindowState:
    """Spend of one budget key in one window."""

    id: str
    budget_key: str
    window_start: datetime
    window_end: datetime | None
    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal
    alerts_fired: tuple[str, ...]

    @property
    def left_usd(self) -> Decimal:
        """What neither spend nor holds have taken (negative once overspent)."""
        return self.limit_usd - self.spent_usd - self.reserved_usd


@dataclass(frozen=True, slots=True)
class Refusal:
    """A hold that did not fit: the window's state when it was refused."""

    request: HoldRequest
    spent_usd: Decimal
    reserved_usd: Decimal
    #: The window's state (``None`` only if it vanished meanwhile).
    state: WindowState | None = None


@dataclass(frozen=True, slots=True)
class LeaseCharge:
    """One settled call's cost on a lease (``grow``: extra to reserve, when it cost more
    than the lease had left)."""

    lease_id: str
    window_id: str
    cost_usd: Decimal
    grow_usd: Decimal = Decimal(0)
    #: The call's cost entry names this lease (one lease per call: its first budget's);
    #: otherwise the cost is added to the lease row's ``pending_usd``.
    via_entry: bool = False


@dataclass(frozen=True, slots=True)
class LeaseSync:
    """What a lease open or sync did, and the window afterwards."""

    #: ``None`` when no lease was opened, or the lease was expired by another process.
    lease_id: str | None
    window_id: str
    #: Newly reserved on the window for the lease.
    granted_usd: Decimal
    #: Pending cost moved from the lease to the window's spend.
    charged_usd: Decimal
    #: What the lease keeps reserved on the window afterwards.
    held_usd: Decimal
    state: WindowState | None


def fits(spent: Decimal, reserved: Decimal, amount: Decimal, limit: Decimal) -> bool:
    """Whether holding ``amount`` keeps a window within its limit:
    ``spent + reserved + amount <= limit``."""
    return spent + reserved + amount <= limit


def leasable(
    limit: Decimal,
    spent: Decimal,
    reserved: Decimal,
    want: Decimal,
    share: int,
    *,
    freed: Decimal = Decimal(0),
) -> Decimal:
    """How much of ``want`` a lease may take: at most ``1/share`` of what is left
    (``freed``: what the same step gives back), never negative, rounded down to the
    ledger's scale so the window can never be over-reserved by rounding."""
    left = limit - spent - reserved + freed
    return max(min(want, left / share), Decimal(0)).quantize(SCALE, rounding=ROUND_DOWN)


def lease_too_small(
    state: WindowState, free_on_lease: Decimal, per_call: Decimal, share: int, min_calls: int
) -> bool:
    """Whether a window is so near its limit that a lease on it would cover fewer than
    ``min_calls`` calls of ``per_call`` (counting the lease's own free money as left)."""
    left = state.left_usd + free_on_lease
    return left / share < per_call * min_calls


def fits_without(refusal: Refusal, others_usd: Decimal) -> bool:
    """Whether a refused hold would fit if ``others_usd`` (other holders' leases) came back
    (``others_usd=0``: whether it fits the state the refusal carries)."""
    if refusal.state is None:
        return False
    request = refusal.request
    reserved = max(refusal.reserved_usd - others_usd, Decimal(0))
    return fits(refusal.spent_usd, reserved, request.amount_usd, request.limit_usd)
