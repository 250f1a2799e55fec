"""``DockerSandbox``: one locked-down container, commands run in it, always removed.

The container starts with an idle init process (``sleep`` under Docker's init, so it
ends itself after ``max_lifetime_seconds``); each :meth:`DockerSandbox.run` is a
Docker exec in it, with its own deadline and output cap. Files go in and out as tar
streams through ``tar`` in the container, because the root file system is read-only
and Docker's archive API cannot write into tmpfs mounts.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import shlex
import tarfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wflo_prefect.observability.correlation import current_correlation
from wflo_prefect.observability.spans import record_sandbox_result, sandbox_span
from wflo_prefect.policies.engine import enforce_policies
from wflo_prefect.sandbox.attached import AttachedRunner
from wflo_prefect.sandbox.cleanup import reap_orphans_once
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.engine import docker_client
from wflo_prefect.sandbox.errors import (
    SandboxConfigError,
    SandboxError,
    SandboxSerializationError,
    SandboxTimeout,
)
from wflo_prefect.sandbox.execution import ExecOutcome, container_running, run_exec
from wflo_prefect.sandbox.launch import launch_container
from wflo_prefect.sandbox.observe import forget_sandbox, record_creation, record_run
from wflo_prefect.sandbox.removal import remove_container, remove_later
from wflo_prefect.sandbox.result import SandboxResult
from wflo_prefect.sandbox.stats import Usage, oom_kills, read_usage

if TYPE_CHECKING:
    from wflo_prefect.sandbox.pool_source import WarmSource

__all__ = ["DockerSandbox"]

_PYTHON_BOOTSTRAP = (
    "import json, os, sys\n"
    "_wflo = json.loads(sys.stdin.buffer.read())\n"
    "sys.stdin = open(os.devnull)\n"
    "exec(compile(_wflo['code'], '<sandbox>', 'exec'),"
    " {'__name__': '__main__', 'inputs': _wflo['inputs']})\n"
)

_TAR_RECORD = 10240  # tar pads its stream to records of this size

_open: weakref.WeakSet[DockerSandbox] = weakref.WeakSet()


@atexit.register
def _close_open_sandboxes() -> None:
    for sandbox in list(_open):
        sandbox.close()


def _too_large(paths: Sequence[str], limit: int) -> SandboxError:
    return SandboxError(
        f"The files are larger than the sandbox's output_limit_bytes ({limit} bytes)",
        value=list(paths),
        hint="Read fewer or smaller files, or raise SandboxConfig.output_limit_bytes",
    )


def _untar(stream: bytes, paths: Sequence[str], limit: int) -> dict[str, bytes]:
    """The regular files in a tar stream the sandbox wrote; it is untrusted, so bounded."""
    files: dict[str, bytes] = {}
    total = 0
    try:
        # "r:" (no compression): the stream's size then bounds what parsing it can cost.
        with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                total += member.size
                if total > limit:
                    raise _too_large(paths, limit)
                extracted = archive.extractfile(member)
                if extracted is not None:
                    files["/" + member.name] = extracted.read(limit)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise SandboxError(
            "The files read from the sandbox are not a well-formed tar stream",
            value=list(paths),
            hint=f"The sandboxed code may have tampered with them ({type(exc).__name__}: {exc})",
        ) from None
    return files


class DockerSandbox:
    """A locked-down container to run untrusted code in; use it as a context manager.

    >>> with DockerSandbox(SandboxConfig()) as box:       # doctest: +SKIP
    ...     box.run_python("print(inputs['n'] * 2)", inputs={"n": 21}).stdout
    '42\\n'
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, pool: WarmSource | None = None
    ) -> None:
        self.config = config or (pool.config if pool is not None else SandboxConfig())
        if pool is not None and pool.config != self.config:
            raise SandboxConfigError(
                "A warm pool only serves sandboxes with its own configuration",
                value=self.config,
                hint="Pass the pool's config, or open the sandbox without pool=",
            )
        self.id = uuid.uuid4().hex[:12]
        self._pool = pool
        self._client: Any = None
        self._container: Any = None
        self._teardown: list[Any] = []
        self._runner: AttachedRunner | None = None
        self._from_pool = False  # took a warm container: tell the pool when closed
        self._alive = False
        self._lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------
    @property
    def container_id(self) -> str:
        """Id of the container (after :meth:`start`)."""
        if self._container is None:
            raise SandboxError("The sandbox is not started", value=self.id, hint="Use `with`")
        return str(self._container.id)

    def start(self) -> DockerSandbox:
        """Create and start the container (or take a warm one from the pool)."""
        if self._container is not None:
            return self
        enforce_policies(
            "sandbox",
            kind="sandbox",
            name=self.config.image,
            extra={"sandbox": self.config.model_dump(mode="json")},
        )
        started = time.perf_counter()
        self._client = docker_client()
        reap_orphans_once(self._client)
        warm = self._pool.take() if self._pool is not None else None
        if warm is not None:
            self.id, self._container, self._teardown = (
                warm.sandbox_id,
                warm.container,
                warm.teardown,
            )
            self._runner = warm.runner
            self._from_pool = True
        else:
            # A pool's sandbox started cold still gets a runner, so it is released as fast.
            launched = launch_container(
                self._client, self.config, sandbox_id=self.id, resident=self._pool is not None
            )
            self._container, self._teardown = launched.container, launched.teardown
            self._runner = launched.runner
        self._alive = True
        _open.add(self)
        record_creation(
            self.id, self.config.runtime, time.perf_counter() - started, warm=warm is not None
        )
        return self

    def __enter__(self) -> DockerSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the container (and its egress network); safe to call twice.

        A sandbox of a :class:`WarmPool` returns at once: its container is ended and
        removed in the background (:mod:`~wflo_prefect.sandbox.removal`), and it is
        never handed out again. A sandbox without a pool returns once it is removed.
        """
        container, self._container = self._container, None
        teardown, self._teardown = self._teardown, []
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()  # a warm container's runner exits; the engine then removes it
        self._alive = False
        _open.discard(self)
        if container is None:
            return
        forget_sandbox(self.id)
        if self._pool is not None:
            remove_later(self._client, container.id, teardown)
            if self._from_pool:  # last: the pool's refill then runs after this call
                self._from_pool = False
                self._pool.sandbox_closed()
            return
        remove_container(self._client, container.id)
        for step in teardown:
            step()

    # -- running code -------------------------------------------------------------------
    def run(
        self,
        command: str | Sequence[str],
        *,
        stdin: bytes | str | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SandboxResult:
        """Run ``command`` (a shell string or an argv list) and return its result.

        Raises :class:`SandboxTimeout` (and kills the container) when it runs longer
        than ``timeout`` (default: the config's ``timeout_seconds``).
        """
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        shown = command if isinstance(command, str) else shlex.join(argv)
        return self._run(argv, data, timeout, env, shown)

    def run_python(
        self,
        code: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> SandboxResult:
        """Run Python source in the sandbox; ``inputs`` (JSON values) is a global there."""
        try:
            payload = json.dumps({"code": code, "inputs": dict(inputs or {})}).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SandboxSerializationError(
                "run_python's inputs must be JSON values",
                value={key: type(value).__name__ for key, value in dict(inputs or {}).items()},
                hint=f"Pass str, numbers, bools, None, lists and dicts only ({exc})",
            ) from None
        return self._run(
            ["python3", "-c", _PYTHON_BOOTSTRAP], payload, timeout, None, "python3 <code>"
        )

    def put_files(self, files: Mapping[str, bytes | str], *, mode: int = 0o644) -> list[str]:
        """Write files into the sandbox; relative paths are under the working directory.

        Returns the absolute paths written. Only the working directory and /tmp are
        writable, so other destinations fail like any write there would.
        """
        buffer = io.BytesIO()
        written = []
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path, content in files.items():
                target = self._absolute(path)
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(target.lstrip("/"))
                info.size, info.mode, info.mtime = len(data), mode, int(time.time())
                archive.addfile(info, io.BytesIO(data))
                written.append(target)
        outcome = self._exec(
            ["tar", "-x", "--no-same-owner", "--no-same-permissions", "-f", "-", "-C", "/"],
            buffer.getvalue(),
            self.config.timeout_seconds,
            self.config.output_limit_bytes,
        )
        if outcome.exit_code != 0:
            raise SandboxError(
                "Files could not be written into the sandbox",
                value=written,
                hint=f"Write under {self.config.workdir} or /tmp "
                f"({outcome.stderr.decode(errors='replace').strip()})",
            )
        return written

    def get_files(self, paths: Sequence[str]) -> dict[str, bytes]:
        """Read files (or whole directories) out of the sandbox, by absolute path.

        At most ``output_limit_bytes`` of file contents are read (sparse files count at
        their full size), and at most twice that of tar stream (its headers and padding);
        more raises :class:`SandboxError`.
        """
        limit = self.config.output_limit_bytes
        targets = [self._absolute(p).lstrip("/") for p in paths]
        outcome = self._exec(
            ["tar", "-c", "-f", "-", "-C", "/", "--", *targets],
            None,
            self.config.timeout_seconds,
            2 * limit + _TAR_RECORD,
            stop_when_full=True,
        )
        if outcome.stdout_dropped:
            raise _too_large(paths, limit)
        if outcome.exit_code != 0:
            raise SandboxError(
                "Files could not be read from the sandbox",
                value=list(paths),
                hint=outcome.stderr.decode(errors="replace").strip() or "Check the paths",
            )
        return _untar(outcome.stdout, paths, limit)

    # -- internals ----------------------------------------------------------------------
    def _absolute(self, path: str) -> str:
        if ".." in path.split("/") or not path.strip("/"):
            raise SandboxError(
                "A sandbox path must name a file without '..'",
                value=path,
                hint=f"Use a path under {self.config.workdir} or /tmp",
            )
        return path if path.startswith("/") else f"{self.config.workdir}/{path}"

    @contextlib.contextmanager
    def _engine_errors(self, action: str) -> Iterator[None]:
        """Turn the engine's failures (e.g. its container died under it) into SandboxErrors."""
        from docker.errors import DockerException
        from requests import RequestException

        try:
            yield
        except (DockerException, RequestException) as exc:
            if not container_running(self._client, self.container_id):
                self._alive = False
            raise SandboxError(
                f"The Docker engine could not {action} in the sandbox",
                value=self.id,
                hint="If its container was killed (timeout, out of memory, a fork bomb under "
                f"gVisor), open a new DockerSandbox ({type(exc).__name__}: {exc})",
            ) from exc

    def _require_alive(self) -> None:
        if self._container is None:
            raise SandboxError(
                "The sandbox is not started", value=self.id, hint="Use `with DockerSandbox(...)`"
            )
        if not self._alive:
            raise SandboxError(
                "The sandbox's container was killed (timeout or out of memory)",
                value=self.id,
                hint="Open a new DockerSandbox for further runs",
            )

    def _exec(
        self,
        argv: list[str],
        stdin: bytes | None,
        timeout: float,
        limit: int,
        *,
        stop_when_full: bool = False,
    ) -> ExecOutcome:
        self._require_alive()
        with self._engine_errors("transfer files"):
            outcome = run_exec(
                self._client,
                self.container_id,
                argv,
                stdin=stdin,
                timeout=timeout,
                limit=limit,
                stop_when_full=stop_when_full,
            )
        if outcome.timed_out or outcome.container_died:
            self._kill()
        return outcome

    def _kill(self) -> None:
        self._alive = False
        from docker.errors import APIError

        with contextlib.suppress(APIError):  # already dead
            self._container.kill()

    def _run(
        self,
        argv: list[str],
        stdin: bytes | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        shown: str,
    ) -> SandboxResult:
        with self._lock, sandbox_span(shown, self.config.image, self.config.runtime) as span:
            self._require_alive()
            limit = timeout if timeout is not None else self.config.timeout_seconds
            since = time.time()
            with self._engine_errors("run a command"):
                before = read_usage(self._client, self.container_id)
                outcome = self._start_command(argv, stdin, limit, env)
                after = read_usage(self._client, self.container_id)
            if outcome.timed_out or outcome.container_died:
                self._kill()
            oom = self._oom_killed(outcome, since, before, after)
            result = self._result(outcome, before, after, oom)
            record_sandbox_result(span, result)
            record_run(
                result, command=shown, correlation=current_correlation(), image=self.config.image
            )
        if result.timed_out:
            raise SandboxTimeout(
                f"The code ran longer than its {limit:g} s timeout; its container was killed",
                value=shown[:200],
                hint="Raise SandboxConfig.timeout_seconds, or make the code faster",
                result=result,
            )
        return result

    def _start_command(
        self,
        argv: list[str],
        stdin: bytes | None,
        timeout: float,
        env: Mapping[str, str] | None,
    ) -> ExecOutcome:
        if self._runner is not None:  # warm container: its resident runner, no exec
            return self._runner.run(
                argv,
                stdin=stdin,
                timeout=timeout,
                limit=self.config.output_limit_bytes,
                environment=dict(env) if env else None,
            )
        return run_exec(
            self._client,
            self.container_id,
            argv,
            stdin=stdin,
            timeout=timeout,
            limit=self.config.output_limit_bytes,
            environment=dict(env) if env else None,
        )

    def _oom_killed(self, outcome: ExecOutcome, since: float, before: Usage, after: Usage) -> bool:
        # The OOM killer sends SIGKILL: only then can the run have been OOM-killed.
        if outcome.exit_code != 137 and not outcome.container_died:
            return False
        try:
            if oom_kills(self._client, self.container_id, since, before, after) > 0:
                return True
            state = self._client.api.inspect_container(self.container_id)["State"]
            return bool(state.get("OOMKilled"))
        except Exception:
            return False

    def _result(
        self, outcome: ExecOutcome, before: Usage, after: Usage, oom: bool
    ) -> SandboxResult:
        cpu = None
        if before.cpu_ns is not None and after.cpu_ns is not None:
            cpu = max(0, after.cpu_ns - before.cpu_ns) / 1e9
        return SandboxResult(
            sandbox_id=self.id,
            exit_code=outcome.exit_code,
            stdout=outcome.stdout.decode(errors="replace"),
            stderr=outcome.stderr.decode(errors="replace"),
            duration_seconds=outcome.duration,
            timed_out=outcome.timed_out,
            oom_killed=oom,
            peak_memory_bytes=after.peak_memory_bytes or before.peak_memory_bytes,
            cpu_time_seconds=cpu,
            stdout_truncated=outcome.stdout_dropped > 0,
            stderr_truncated=outcome.stderr_dropped > 0,
            runtime=self.config.runtime,
        )
