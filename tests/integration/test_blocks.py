"""Every wflo block meets Prefect's block standards and registers with a real API."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks.register import register_types, wflo_block_types

BLOCKS = sorted(wflo_block_types(), key=lambda c: c.__name__)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.__name__ for b in BLOCKS], indirect=True)
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    """Prefect's own standard suite (descriptions, docs URL, code example, schema)."""

    @pytest.fixture
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        cls: type[Block] = request.param
        return cls

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """No logo is shipped: Prefect requires an http(s) URL, which machines without
        internet cannot load, so the UI shows Prefect's default icon instead."""
        assert block._logo_url is None


def test_register_script_registers_every_block_type() -> None:
    """blocks/register.py registers each wflo block type with the Prefect API."""
    from prefect.client.orchestration import get_client

    slugs = register_types()
    assert sorted(slugs) == sorted(b.get_block_type_slug() for b in BLOCKS)
    with get_client(sync_client=True) as client:
        for slug in slugs:
            assert client.read_block_type_by_slug(slug).slug == slug
