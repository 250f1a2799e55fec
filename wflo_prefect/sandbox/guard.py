"""``sandbox=`` on governed tasks: the task's function itself runs in a DockerSandbox.

The function and its arguments go in with cloudpickle (Prefect's own dependency;
its pure-Python source is copied into the sandbox as read-only files, because the image has
only the standard library). The function's module is pickled by value, so the image
needs none of the caller's code. The result comes back as plain data (see
:mod:`wflo_prefect.sandbox.plain_data`), never as a pickle: unpickling what
untrusted code wrote would let it run code on the host.
"""

from __future__ import annotations

import array
import contextlib
import inspect
import itertools
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import cloudpickle  # type: ignore[import-untyped]

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.governance import ExecutingGuard, GovernedCall
from wflo_prefect.sandbox import plain_data
from wflo_prefect.sandbox.config import SandboxConfig
from wflo_prefect.sandbox.errors import SandboxError, SandboxSerializationError, SandboxTaskError
from wflo_prefect.sandbox.sandbox import DockerSandbox

__all__ = ["SandboxGuard", "run_in_sandbox"]

_CALL_DIR = "/tmp/wflo-call"  # noqa: S108 - a path inside the container
# Each plain-data level is at most 3 JSON levels ({"$dict": [[k, v]]}), plus the envelope.
_MAX_OUTCOME_DEPTH = 3 * plain_data.MAX_DEPTH + 4
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")
_by_value_lock = threading.Lock()


def _cloudpickle_sources() -> dict[str, bytes]:
    package = Path(cloudpickle.__file__).parent
    return {
        f"{_CALL_DIR}/lib/cloudpickle/{path.name}": path.read_bytes()
        for path in sorted(package.glob("*.py"))
    }


def _own_source(name: str) -> bytes:
    return resources.files("wflo_prefect.sandbox").joinpath(name).read_bytes()


@contextlib.contextmanager
def _module_by_value(fn: Callable[..., Any]) -> Iterator[None]:
    # The image does not have the caller's code: pickle the function's module by value.
    module = sys.modules.get(fn.__module__)
    top = fn.__module__.partition(".")[0]
    if module is None or fn.__module__ == "__main__" or top in sys.stdlib_module_names:
        yield
        return
    with _by_value_lock:
        already = fn.__module__ in cloudpickle.list_registry_pickle_by_value()
        if not already:
            cloudpickle.register_pickle_by_value(module)
        try:
            yield
        finally:
            if not already:
                cloudpickle.unregister_pickle_by_value(module)


def _pickle_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    call = {"fn": fn, "args": args, "kwargs": kwargs, "python": list(sys.version_info[:2])}
    try:
        with _module_by_value(fn):
            return bytes(cloudpickle.dumps(call))
    except Exception as exc:
        raise SandboxSerializationError(
            f"The arguments of sandboxed task {fn.__qualname__} cannot be pickled",
            value={"args": [type(a).__name__ for a in args], "kwargs": sorted(kwargs)},
            hint=f"Pass data (str, numbers, lists, dicts, bytes ...) instead ({exc})",
        ) from None


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in JSON text, found without parsing it."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(itertools.accumulate(array.array("b", brackets)), default=0)


def _parse_outcome(raw: bytes) -> dict[str, Any]:
    """The runner's outcome; untrusted, so its nesting is bounded before it is parsed."""
    depth = json_depth(raw)
    if depth > _MAX_OUTCOME_DEPTH:
        raise ValueError(f"the outcome nests {depth} deep (at most {_MAX_OUTCOME_DEPTH})")
    outcome = json.loads(raw)
    if not isinstance(outcome, dict):
        raise ValueError("the outcome is not a JSON object")
    return outcome


def _outcome(fn: Callable[..., Any], outcome: dict[str, Any], stderr: str) -> Any:
    status = outcome.get("status")
    name = fn.__qualname__
    if status == "ok":
        try:
            return plain_data.decode_value(outcome.get("value"))
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # Only tampered output gets here: the runner encodes with the same codec.
            raise SandboxError(
                f"The result of sandboxed task {name} could not be decoded",
                value=type(exc).__name__,
                hint=str(exc)[:200],
            ) from None
    if status == "raised":
        raise SandboxTaskError(
            f"Sandboxed task {name} raised {outcome.get('type')}: {outcome.get('error')}",
            value=outcome.get("type"),
            hint=f"Remote traceback:\n{outcome.get('traceback', '')}",
        )
    if status == "unsupported_result":
        raise SandboxSerializationError(
            f"The result of sandboxed task {name} is not plain data",
            value=outcome.get("type"),
            hint=f"{outcome.get('error')}. Return str, numbers, bools, None, bytes, lists, "
            "tuples, sets, dicts, Decimal, datetime or UUID: results are never unpickled on "
            "the host, because that would let sandboxed code run on it",
        )
    if status == "load_error":
        raise SandboxSerializationError(
            f"Sandboxed task {name} could not be loaded inside the sandbox",
            value=outcome.get("error"),
            hint="The function or its arguments refer to a module the sandbox image lacks; "
            "keep sandboxed tasks to the standard library, or build an image that has it",
        )
    if status == "python_mismatch":
        raise SandboxSerializationError(
            "The sandbox image's Python cannot load functions pickled by this Python",
            value=outcome.get("error"),
            hint="Run a sandbox image whose Python has the same major.minor version",
        )
    raise SandboxError("The sandboxed task ended without a result", value=status, hint=stderr)


def run_in_sandbox(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: SandboxConfig,
) -> Any:
    """Call ``fn(*args, **kwargs)`` in a fresh sandbox and return its result."""
    payload = _pickle_call(fn, args, kwargs)
    files = {
        **_cloudpickle_sources(),
        f"{_CALL_DIR}/lib/plain_data.py": _own_source("plain_data.py"),
        f"{_CALL_DIR}/runner.py": _own_source("task_runner.py"),
        f"{_CALL_DIR}/call.pkl": payload,
    }
    with DockerSandbox(config) as box:
        # Read-only files. The outcome is untrusted whatever the task does to them: the
        # host only ever parses it as JSON.
        box.put_files(files, mode=0o444)
        result = box.run(["python3", f"{_CALL_DIR}/runner.py"])
        try:
            raw = box.get_files([f"{_CALL_DIR}/outcome.json"])[f"{_CALL_DIR}/outcome.json"]
            outcome = _parse_outcome(raw)
        except (SandboxError, ValueError, KeyError, RecursionError) as exc:
            reason = "ran out of memory" if result.oom_killed else f"exited {result.exit_code}"
            raise SandboxError(
                f"Sandboxed task {fn.__qualname__} {reason} without a result the host "
                f"can read ({exc})",
                value=result.summary(),
                hint=f"Results are plain data of at most output_limit_bytes "
                f"({config.output_limit_bytes}) as JSON, nested at most "
                f"{plain_data.MAX_DEPTH} deep; stderr: {result.stderr[-2000:]}",
                result=result,
            ) from None
    return _outcome(fn, outcome, result.stderr[-2000:])


class SandboxGuard(ExecutingGuard):
    """Runs a governed task's function in a sandbox (``sandbox=SandboxConfig(...)``)."""

    keyword = "sandbox"
    # Innermost: budgets, policies and approvals are checked on the host first.
    order = 1000

    def validate(self, value: Any, *, kind: Literal["flow", "task"], fn: Callable[..., Any]) -> Any:
        """Accept a SandboxConfig (or True for the defaults) on a plain or async task."""
        if value is True:
            value = SandboxConfig()
        if not isinstance(value, SandboxConfig):
            raise InvalidArgumentError(
                f"`sandbox=` on {fn.__qualname__} takes a SandboxConfig",
                value=value,
                hint="Write sandbox=SandboxConfig(memory_limit='256m', ...)",
                docs="sandbox.md",
            )
        if kind == "flow":
            raise InvalidArgumentError(
                f"`sandbox=` runs a task's function in a container; {fn.__qualname__} is a flow",
                value=value,
                hint="Put sandbox= on the tasks that run untrusted code, or deploy the flow "
                "to a `docker-sandbox` work pool to run all of it in a hardened container",
                docs="sandbox.md",
            )
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise InvalidArgumentError(
                f"`sandbox=` cannot run generator task {fn.__qualname__}",
                value=fn,
                hint="Return a list instead of yielding",
                docs="sandbox.md",
            )
        return value

    def around(self, call: GovernedCall, value: Any) -> contextlib.AbstractContextManager[None]:
        """Nothing to do around the call; :meth:`execute` does the work."""
        return contextlib.nullcontext()

    def execute(self, call: GovernedCall, value: Any) -> Any:
        """Run the task's function in a fresh sandbox; return its result."""
        return run_in_sandbox(call.fn, call.args, call.kwargs, value)
