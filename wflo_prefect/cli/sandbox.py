"""``wflo sandbox``: build the image, remove leftover containers, run code in a sandbox."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from wflo_prefect.cli._console import console, err_console, exit_with_error
from wflo_prefect.errors import WfloError

app = typer.Typer(help="The Docker sandbox: image, clean-up, one-off runs.", no_args_is_help=True)


@app.command("build-image")
def build_image_command(
    tag: Annotated[
        str | None, typer.Option(help="Image tag; default: the sandbox_image setting.")
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="Registry base image; default: python:<this version>-slim.")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the registry: build from Debian's packages.")
    ] = False,
    registry: Annotated[
        bool, typer.Option("--registry", help="Only build from the registry; fail if unreachable.")
    ] = False,
    flows: Annotated[
        bool,
        typer.Option(
            "--flows",
            help="Build the work pool's flows image instead: the project's locked "
            "dependencies, wflo-prefect and flows/ on the offline sandbox image (or --base).",
        ),
    ] = False,
    project: Annotated[
        Path, typer.Option(help="With --flows: the project root (pyproject.toml, uv.lock).")
    ] = Path(),
    flows_dir: Annotated[
        Path | None, typer.Option(help="With --flows: the flows directory; default PROJECT/flows.")
    ] = None,
) -> None:
    """Build the sandbox image: registry slim Python if reachable, else offline (debootstrap).

    With --flows, build the image the docker-sandbox work pool runs flow runs in
    (default tag wflo-agent:latest, which the pool's job template points at).
    """
    from wflo_prefect.sandbox.engine import docker_client
    from wflo_prefect.sandbox.image import build_image
    from wflo_prefect.settings import get_settings

    if offline and registry:
        exit_with_error("--offline and --registry exclude each other", code=2)
    if flows:
        _build_flows(tag, base, project, flows_dir)
        return
    mode: Literal["auto", "registry", "offline"] = (
        "offline" if offline else "registry" if registry else "auto"
    )
    target = tag or get_settings().sandbox_image
    try:
        built = build_image(docker_client(), target, base=base, mode=mode)
    except WfloError as exc:
        exit_with_error(exc)
    console.print(f"built [bold]{built.tag}[/bold] ({built.method}, from {built.base})")


def _build_flows(tag: str | None, base: str | None, project: Path, flows_dir: Path | None) -> None:
    from wflo_prefect.sandbox.engine import docker_client
    from wflo_prefect.sandbox.flows_image import DEFAULT_FLOWS_IMAGE, build_flows_image

    try:
        built = build_flows_image(
            docker_client(),
            tag or DEFAULT_FLOWS_IMAGE,
            project=project,
            flows_dir=flows_dir,
            base=base,
        )
    except WfloError as exc:
        exit_with_error(exc)
    console.print(
        f"built [bold]{built.tag}[/bold] from {built.base}: python {built.python}, "
        f"prefect {built.prefect_version}, {built.packages} locked packages, flows/ at "
        "/opt/flows/flows, uid 1000"
    )


@app.command("gc")
def gc_command(
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every wflo sandbox container, live or not.")
    ] = False,
    older_than: Annotated[
        float | None, typer.Option(help="Also remove containers older than this many seconds.")
    ] = None,
) -> None:
    """Remove sandbox containers and networks whose owning process is gone."""
    from wflo_prefect.sandbox.cleanup import collect_garbage
    from wflo_prefect.sandbox.engine import docker_client

    try:
        collected = collect_garbage(docker_client(), everything=all_, older_than=older_than)
    except WfloError as exc:
        exit_with_error(exc)
    for name in collected.containers:
        console.print(f"removed container {name}")
    for name in collected.networks:
        console.print(f"removed network {name}")
    console.print(
        f"{len(collected.containers)} container(s), {len(collected.networks)} network(s) removed"
    )


@app.command("run", context_settings={"allow_interspersed_args": False})
def run_command(
    command: Annotated[list[str] | None, typer.Argument(help="Command and arguments.")] = None,
    python: Annotated[
        Path | None, typer.Option("--python", help="Run this Python file instead of a command.")
    ] = None,
    runtime: Annotated[str, typer.Option(help="runc, or runsc for gVisor.")] = "runc",
    memory: Annotated[str, typer.Option(help="Memory limit, e.g. 256m.")] = "512m",
    cpus: Annotated[float, typer.Option(help="CPU limit, e.g. 0.5.")] = 0.5,
    timeout: Annotated[float, typer.Option(help="Seconds before the run is killed.")] = 60,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="Turn the network on, reaching only this host[:port]."),
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Image; default: the sandbox_image setting.")
    ] = None,
) -> None:
    """Run a command (or a Python file) in a fresh sandbox; exit with its exit code."""
    from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, SandboxTimeout

    if bool(command) == bool(python):
        exit_with_error("Give a command or --python FILE (one of them)", code=2)
    options: dict[str, object] = {
        "runtime": runtime,
        "memory_limit": memory,
        "cpu_limit": cpus,
        "timeout_seconds": timeout,
    }
    if image:
        options["image"] = image
    if allow_host:
        options.update(network_enabled=True, allowed_hosts=tuple(allow_host))
    try:
        config = SandboxConfig(**options)
        with DockerSandbox(config) as box:
            if python is not None:
                result = box.run_python(python.read_text())
            else:
                result = box.run(list(command or []))
    except SandboxTimeout as exc:
        if exc.result is not None:
            sys.stdout.write(exc.result.stdout)
        exit_with_error(exc, code=124)
    except WfloError as exc:
        exit_with_error(exc)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    memory_mb = (result.peak_memory_bytes or 0) / 1e6
    truncated = result.stdout_truncated or result.stderr_truncated
    err_console.print(
        f"[dim]sandbox {result.sandbox_id}: exit {result.exit_code}, "
        f"{result.duration_seconds:.3f} s, cpu {result.cpu_time_seconds or 0:.3f} s, "
        f"peak {memory_mb:.1f} MB{', OOM-killed' if result.oom_killed else ''}"
        f"{', output truncated' if truncated else ''}[/dim]"
    )
    raise typer.Exit(result.exit_code if result.exit_code is not None else 1)
