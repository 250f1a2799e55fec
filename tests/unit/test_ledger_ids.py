"""Row ids: random UUIDs, without a system call per id, never repeated across a fork."""

from __future__ import annotations

import os
import uuid

import pytest

from wflo_prefect.ledger import ids
from wflo_prefect.ledger.ids import POOL_IDS, new_id


def test_ids_are_distinct_random_uuids() -> None:
    made = [new_id() for _ in range(3 * POOL_IDS)]
    assert len(set(made)) == len(made)
    for text in made[:: POOL_IDS // 4]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_the_os_is_asked_for_randomness_once_per_pool_not_once_per_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A system call per id let other threads take the interpreter on every governed task."""
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(ids.os, "urandom", counting)
    ids._pool.forget()  # start from an empty pool
    for _ in range(2 * POOL_IDS):
        new_id()
    assert len(calls) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    new_id()  # the pool holds unused ids at the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "\n".join(new_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(8)}
    assert len(child) == 8
    assert not child & parent
