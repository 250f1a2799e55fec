"""Every ``python`` code block in docs/ runs, page by page, as a reader would run it.

Blocks of one page run in order in one namespace (like a notebook). A block whose
first line is ``# not run: <reason>`` is shown to readers but not executed here
(e.g. it needs a Slack workspace); the reason is mandatory.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wflo_prefect.testing import temporary_ledger

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if _BLOCK.search(p.read_text()))


def _blocks(page: Path) -> list[str]:
    blocks = []
    for code in _BLOCK.findall(page.read_text()):
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        if first.startswith("# not run"):
            assert re.match(r"# not run: \S", first), f"{page.name}: '# not run' needs a reason"
            continue
        blocks.append(code)
    return blocks


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's python examples run without error, in order, on a fresh ledger."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    with temporary_ledger():
        for index, code in enumerate(_blocks(page)):
            compiled = compile(code, f"{page.name}[block {index}]", "exec")
            exec(compiled, namespace)  # noqa: S102 - our own documentation, not user text
