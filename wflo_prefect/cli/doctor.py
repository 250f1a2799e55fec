"""``wflo doctor``: is everything wflo needs here, and if not, how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from wflo_prefect.cli._console import console
from wflo_prefect.errors import WfloError

if TYPE_CHECKING:
    from wflo_prefect.settings import WfloSettings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def check_prefect_api() -> Check:
    """The Prefect API answers (or the ephemeral server will be used)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return Check(
            "Prefect API",
            "ok",
            "no PREFECT_API_URL: each run starts a temporary local server (embedded mode)",
        )
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            error = client.api_healthcheck()
    except Exception as exc:
        error = exc
    if error is not None:
        return Check(
            "Prefect API",
            "fail",
            f"{url} did not answer ({error})",
            "start it with `prefect server start`, or fix PREFECT_API_URL",
        )
    return Check("Prefect API", "ok", f"{url} answers")


def check_ledger(settings: WfloSettings) -> Check:
    """The ledger database is reachable and at the newest schema."""
    from wflo_prefect.ledger.engine import create_ledger_engine, current_revision, head_revision

    url = settings.ledger_url_value()
    try:
        engine = create_ledger_engine(url)
        shown = engine.url.render_as_string(hide_password=True)
        revision = current_revision(engine)
    except WfloError as exc:
        return Check(
            "Ledger database", "fail", str(exc), "fix PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"
        )
    head = head_revision()
    if revision == head:
        return Check("Ledger database", "ok", f"{shown} at revision {revision}")
    if settings.ledger_auto_migrate:
        return Check(
            "Ledger database",
            "ok",
            f"{shown} at revision {revision or 'empty'}; migrates to {head} on first use",
        )
    return Check(
        "Ledger database",
        "fail",
        f"{shown} at revision {revision or 'empty'}, needs {head}",
        "run `wflo db upgrade`",
    )


def check_docker(settings: WfloSettings) -> list[Check]:
    """The Docker engine, its gVisor runtime and the sandbox image."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    where = settings.docker_host or "the DOCKER_HOST environment / local socket"
    try:
        client = (
            docker.DockerClient(base_url=settings.docker_host, timeout=5)
            if settings.docker_host
            else docker.from_env(timeout=5)
        )
        client.ping()
        info = client.info()
    except DockerException as exc:
        return [
            Check(
                "Docker engine",
                "fail",
                f"not reachable at {where} ({exc})",
                "install and start it: `apt-get install docker.io && dockerd &` "
                "(or run scripts/provision.sh as root), or set "
                "PREFECT_INTEGRATIONS_WFLO_DOCKER_HOST",
            ),
            Check("gVisor runtime", "warn", "not checked: no Docker engine"),
            Check("Sandbox image", "fail", "not checked: no Docker engine", "start Docker first"),
        ]
    checks = [Check("Docker engine", "ok", f"{info.get('ServerVersion', '?')} at {where}")]
    runtimes = info.get("Runtimes") or {}
    if "runsc" in runtimes:
        checks.append(Check("gVisor runtime", "ok", "runsc is registered with the engine"))
    else:
        checks.append(
            Check(
                "gVisor runtime",
                "warn",
                "runsc is not registered (optional: stronger isolation for the sandbox)",
                "`apt-get install runsc` and add it under `runtimes` in "
                "/etc/docker/daemon.json, then reload dockerd",
            )
        )
    try:
        client.images.get(settings.sandbox_image)
        checks.append(Check("Sandbox image", "ok", settings.sandbox_image))
    except ImageNotFound:
        checks.append(
            Check(
                "Sandbox image",
                "fail",
                f"{settings.sandbox_image} is not in the engine",
                "build it with `wflo sandbox build-image` (offline builds need root)",
            )
        )
    except DockerException as exc:
        checks.append(Check("Sandbox image", "fail", str(exc), "check the Docker engine"))
    return checks


_STYLE = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}


def doctor() -> None:
    """Check the Prefect API, the ledger, Docker, gVisor and the sandbox image."""
    from wflo_prefect.settings import get_settings

    settings = get_settings()
    checks = [check_prefect_api(), check_ledger(settings), *check_docker(settings)]
    table = Table(title="wflo doctor", title_justify="left")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(check.name, _STYLE[check.status], check.detail, check.fix)
    console.print(table)
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed:[/red] {', '.join(failed)}")
        raise typer.Exit(1)
    console.print("[green]All required checks passed.[/green]")
