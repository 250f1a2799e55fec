"""Every private Prefect name wflo uses still fits, and only ``_prefect_compat`` uses one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wflo_prefect import _prefect_compat
from wflo_prefect._prefect_compat import INTERNALS, PrefectInternalsChanged

PACKAGE = Path(_prefect_compat.__file__).parent

#: The internals wflo relies on; adding one means wrapping it in _prefect_compat.
EXPECTED = {
    "prefect._internal.pydantic.v2_schema.create_v2_schema",
    "prefect.input.RunInput._description",
    "prefect StateDetails.run_input_keyset (set by hand)",
    "prefect.flow_runs.suspend_flow_run(_sync=True)",
    "prefect.Flow._entrypoint",
    "prefect.blocks.core.Block._block_document_name",
    "prefect.events.clients.PrefectEventSubscriber._backfill_since",
    "prefect.logging.handlers.APILogHandler",
    "prefect_docker.worker.DockerWorker._build_container_settings",
    "prefect_docker.worker.DockerWorker._get_client",
    "prefect_docker.worker.DockerWorker._pull_image",
}

#: Private Prefect names (and imports of Prefect's private modules) outside the wrapper.
PRIVATE_USE = re.compile(
    r"_sync=True|create_v2_schema|\._entrypoint\b|_block_document_name|run_input_keyset\s*="
    r"|_build_container_settings|\._get_client\(|\._pull_image\(|_backfill_since"
    r"|\._description\b|prefect\._internal|prefect\.logging\.handlers"
)


def test_the_list_of_internals_is_complete() -> None:
    """The registry names exactly the internals the docs and this test list."""
    assert set(INTERNALS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_internal_still_fits(name: str) -> None:
    """Each internal exists with the shape wflo uses (fails naming it after an upgrade)."""
    INTERNALS[name].check()


def test_no_other_module_uses_a_private_prefect_name() -> None:
    """Other modules go through the wrapper; a new private use must be added there."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_prefect_compat.py" and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_USE.search(line)
    ]
    assert offenders == []


def test_a_removed_internal_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Prefect upgrade that drops an internal gives an error naming it and what it is for."""
    from prefect_docker.worker import DockerWorker

    monkeypatch.delattr(DockerWorker, "_get_client")
    with pytest.raises(PrefectInternalsChanged) as caught:
        INTERNALS["prefect_docker.worker.DockerWorker._get_client"].check()
    text = str(caught.value)
    assert "prefect_docker.worker.DockerWorker._get_client" in text
    assert "the docker-sandbox worker's own Docker client" in text
    assert "prefect " in text  # the installed versions


def test_a_changed_signature_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook whose parameters changed is reported, not called with the wrong ones."""
    from prefect_docker.worker import DockerWorker

    def renamed(self: object, client: object, config: object) -> dict[str, object]:
        return {}

    monkeypatch.setattr(DockerWorker, "_build_container_settings", renamed)
    with pytest.raises(PrefectInternalsChanged, match="_build_container_settings"):
        INTERNALS["prefect_docker.worker.DockerWorker._build_container_settings"].check()


def test_a_call_through_a_missing_internal_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrappers themselves fail with the same clear error, not an AttributeError."""
    from prefect import flow

    @flow
    def probe() -> None:
        pass

    monkeypatch.delattr(type(probe), "_entrypoint", raising=False)
    probe.__dict__.pop("_entrypoint", None)
    with pytest.raises(PrefectInternalsChanged, match=r"prefect\.Flow\._entrypoint"):
        _prefect_compat.set_flow_entrypoint(probe, "x.py:probe")


def test_load_block_loads_saved_blocks_from_sync_code() -> None:
    """The public replacement of ``Block.load(_sync=True)`` returns the saved block."""
    from wflo_prefect.approvals.principals import Approvers, Principal

    Approvers(users=[Principal(name="ann")]).save("compat-probe", overwrite=True)
    loaded = _prefect_compat.load_block(Approvers, "compat-probe")
    assert isinstance(loaded, Approvers)
    assert [u.name for u in loaded.users] == ["ann"]
    assert _prefect_compat.block_document_name(loaded) == "compat-probe"


def test_the_hooked_docker_worker_registers_no_worker_type() -> None:
    """`--type docker` stays prefect-docker's worker; `docker-sandbox` is wflo's."""
    from prefect.workers.base import BaseWorker
    from prefect_docker.worker import DockerWorker

    from wflo_prefect.sandbox.worker.worker import DockerSandboxWorker

    assert BaseWorker.get_worker_class_from_type("docker") is DockerWorker
    assert BaseWorker.get_worker_class_from_type("docker-sandbox") is DockerSandboxWorker
    assert issubclass(DockerSandboxWorker, _prefect_compat.docker_worker_base())
