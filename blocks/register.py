"""Register wflo's block types, then save the block documents the examples use.

    python -m blocks.register            # against PREFECT_API_URL (or ephemeral)

Block types are registered from the installed ``wflo_prefect`` package (like
``prefect block register -m wflo_prefect``). Documents are the ones listed in
:data:`DOCUMENTS`: each a name and a block built from code, saved with
``overwrite=True`` so re-running the script is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prefect.blocks.core import Block

import wflo_prefect
import wflo_prefect._collection  # defines every wflo block type

#: (document name, factory) pairs saved by :func:`save_documents`.
DOCUMENTS: list[tuple[str, Callable[[], Block]]] = []


def wflo_block_types() -> Iterator[type[Block]]:
    """Every concrete Block class defined in the wflo_prefect package."""
    seen: set[type[Block]] = set()
    stack = list(Block.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith(wflo_prefect.__name__) and not cls.__name__.startswith("_"):
            yield cls


def register_types() -> list[str]:
    """Register every wflo block type and schema with the Prefect API."""
    names = []
    for cls in sorted(wflo_block_types(), key=lambda c: c.__name__):
        cls.register_type_and_schema()
        names.append(cls.get_block_type_slug())
    return names


def save_documents() -> list[str]:
    """Save the example deployments' block documents."""
    saved = []
    for name, factory in DOCUMENTS:
        factory().save(name, overwrite=True)
        saved.append(name)
    return saved


if __name__ == "__main__":
    print("registered block types:", ", ".join(register_types()) or "(none)")
    print("saved block documents:", ", ".join(save_documents()) or "(none)")
