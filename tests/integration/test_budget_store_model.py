"""The store's atomic SQL check and the pure model's fits() give one answer (SQLite and
PostgreSQL), on and around the limit, at the ledger's scale."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from wflo_prefect.ledger import Ledger
from wflo_prefect.ledger.budget_model import HoldRequest, fits

START = datetime(2026, 11, 1, tzinfo=UTC)
CASES = [
    ("0.30", "0.70", "1.00"),
    ("0.30", "0.7000000001", "1.00"),
    ("0.30", "0.6999999999", "1.00"),
    ("123.4567890123", "876.5432109877", "1000"),
    ("123.4567890123", "876.5432109878", "1000"),
    ("0", "0", "0"),
    ("0", "0.0000000001", "0"),
]


@pytest.mark.parametrize(("first", "second", "limit"), CASES)
def test_the_sql_check_is_fits(any_ledger: Ledger, first: str, second: str, limit: str) -> None:
    costs = any_ledger.costs
    key = f"model|{first}|{second}|{limit}"

    def hold(amount: str) -> HoldRequest:
        return HoldRequest(key, START, None, Decimal(limit), Decimal(amount))

    assert isinstance(costs.reserve([hold(first)]), list) is fits(
        Decimal(0), Decimal(0), Decimal(first), Decimal(limit)
    )
    expected = fits(Decimal(0), Decimal(first), Decimal(second), Decimal(limit))
    assert isinstance(costs.reserve([hold(second)]), list) is expected
