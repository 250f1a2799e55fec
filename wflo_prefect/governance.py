"""How capabilities plug into governed flows and tasks.

Each capability (budgets, approvals, policies, compensation, snapshots, the
sandbox) provides a :class:`Guard` registered under the keyword it answers to on
:func:`~wflo_prefect.governed_flow` / :func:`~wflo_prefect.governed_task`. When
the decorator is applied, the guard validates its value; when the run executes,
the guard's context manager wraps the user's function, in ascending ``order``.
A keyword whose capability is not part of this version is refused when the
decorator is applied, never silently ignored.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    nullcontext,
)
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from wflo_prefect.errors import InvalidArgumentError
from wflo_prefect.observability.correlation import Correlation

__all__ = [
    "GOVERNANCE_KEYWORDS",
    "NOTHING_TO_DO",
    "ExecutingGuard",
    "Governance",
    "GovernanceKeywords",
    "GovernedCall",
    "Guard",
    "governance",
    "register_guard",
    "registered_guards",
]

Kind = Literal["flow", "task"]


@dataclass(frozen=True, slots=True)
class GovernanceKeywords:
    """wflo's keywords on ``governed_flow`` / ``governed_task``, as given.

    Each capability's guard validates its own keyword's value (a ``Budget``, a
    sequence of ``Policy``, an ``ApprovalPolicy``...); :func:`governance` turns them
    into a :class:`Governance`.
    """

    budget: object = None
    policies: tuple[object, ...] = ()
    approval: object = None
    compensate: object = None
    sandbox: object = None
    snapshot: object = False

    def items(self) -> Iterator[tuple[str, object]]:
        """(keyword, value) for every keyword, in declaration order."""
        for item in fields(self):
            yield item.name, getattr(self, item.name)


#: Keywords the governed decorators take besides Prefect's own.
GOVERNANCE_KEYWORDS = tuple(f.name for f in fields(GovernanceKeywords))


@dataclass(frozen=True, slots=True)
class Governance:
    """The validated governance of one decorated function (built by :func:`governance`)."""

    kind: Kind
    #: The run's name (Prefect's ``name=``, else the function's).
    name: str
    #: What the code does (``operation=``), for policies and audit.
    operation: str | None
    keywords: GovernanceKeywords
    #: The guards that wrap each run, outermost first, with their validated values.
    guards: tuple[tuple[Guard, Any], ...]

    @property
    def compensated(self) -> bool:
        """Whether the function registers a compensation (``compensate=``)."""
        return self.keywords.compensate is not None


@dataclass(slots=True)
class GovernedCall:
    """One execution of a governed flow or task, as the guards see it."""

    kind: Kind
    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    operation: str | None
    correlation: Correlation
    extras: dict[str, Any] = field(default_factory=dict)

    def bound_arguments(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        bound = _signature(self.fn).bind(*self.args, **self.kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


@functools.lru_cache(maxsize=4096)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    # Reading a signature walks the function's code and annotations (~60 µs); a governed
    # function's does not change between its calls.
    return inspect.signature(fn)


#: What :meth:`Guard.around` returns for a call it has nothing to do around: the
#: wrapper does not enter it, and the async path does not hand it to a worker thread.
NOTHING_TO_DO: nullcontext[None] = nullcontext()


class Guard(ABC):
    """A capability's hook around governed runs."""

    #: The decorator keyword this guard answers to.
    keyword: ClassVar[str]
    #: Guards wrap the function in ascending order (outermost first).
    order: ClassVar[int] = 100
    #: Applied to every governed function, with ``validate(None)``'s value, even when
    #: the keyword is not given (e.g. process-wide policies).
    always: ClassVar[bool] = False

    @abstractmethod
    def validate(self, value: Any, *, kind: Kind, fn: Callable[..., Any]) -> Any:
        """Check and normalise the keyword's value when the decorator is applied.

        Raise :class:`~wflo_prefect.errors.InvalidArgumentError` naming the bad value.
        """

    @abstractmethod
    def around(self, call: GovernedCall, value: Any) -> AbstractContextManager[None]:
        """A context manager entered before the function runs and left after it."""

    def around_async(self, call: GovernedCall, value: Any) -> AbstractAsyncContextManager[None]:
        """The async variant; by default the sync context manager, entered and left in a
        worker thread so its blocking work (ledger writes, approval waits) never stops
        the event loop (see :mod:`wflo_prefect._offload`)."""
        scope = self.around(call, value)
        return NOTHING_TO_DO if scope is NOTHING_TO_DO else _as_async(scope)


class ExecutingGuard(Guard):
    """A guard that runs the function itself, elsewhere (e.g. in a sandbox).

    At most one executing guard applies to a function; it is entered like any
    guard, then :meth:`execute` replaces the direct call of the function.
    """

    @abstractmethod
    def execute(self, call: GovernedCall, value: Any) -> Any:
        """Run ``call.fn(*call.args, **call.kwargs)`` and return its result."""

    async def execute_async(self, call: GovernedCall, value: Any) -> Any:
        """Run an async function's call; by default in a worker thread (the Docker SDK
        and other executors block)."""
        from wflo_prefect._offload import run_off_loop

        return await run_off_loop(self.execute, call, value)


@asynccontextmanager
async def _as_async(cm: AbstractContextManager[None]) -> AsyncIterator[None]:
    if isinstance(cm, nullcontext):
        yield
        return
    from wflo_prefect._offload import offloaded

    async with offloaded(cm):
        yield


_GUARDS: dict[str, Guard] = {}


def register_guard(guard: Guard) -> None:
    """Make ``guard`` answer to its keyword on the governed decorators."""
    if guard.keyword not in GOVERNANCE_KEYWORDS:
        raise InvalidArgumentError(
            "A guard must answer to one of the governance keywords",
            value=guard.keyword,
            hint=f"Use one of {', '.join(GOVERNANCE_KEYWORDS)}",
        )
    _GUARDS[guard.keyword] = guard


def registered_guards() -> dict[str, Guard]:
    """The registered guards by keyword."""
    return dict(_GUARDS)


def _check_operation(operation: object, fn: Callable[..., Any]) -> str | None:
    if operation is None:
        return None
    if not isinstance(operation, str) or not operation.strip():
        raise InvalidArgumentError(
            f"`operation=` on {fn.__qualname__} must be a non-empty string naming what the "
            "code does (e.g. 'delete', 'deploy')",
            value=operation,
        )
    return operation


def governance(
    fn: Callable[..., Any],
    kind: Kind,
    keywords: GovernanceKeywords,
    *,
    name: str | None = None,
    operation: object = None,
) -> Governance:
    """Validate a decorator's governance keywords for ``fn``: the one way to build a
    :class:`Governance`. Raises :class:`~wflo_prefect.errors.InvalidArgumentError`
    naming the first bad value."""
    op = _check_operation(operation, fn)
    guards = resolve_guards(keywords, kind=kind, fn=fn)
    return Governance(kind, name or fn.__name__, op, keywords, guards)


def resolve_guards(
    keywords: GovernanceKeywords, *, kind: Kind, fn: Callable[..., Any]
) -> tuple[tuple[Guard, Any], ...]:
    """Validate the governance keywords given to a decorator; return guards in order."""
    chosen: list[tuple[Guard, Any]] = []
    for keyword, value in keywords.items():
        guard = _GUARDS.get(keyword)
        if value is None or value is False or value == ():
            if guard is not None and guard.always:
                chosen.append((guard, guard.validate(None, kind=kind, fn=fn)))
            continue
        if guard is None:
            raise InvalidArgumentError(
                f"`{keyword}=` needs a wflo capability this version does not include",
                value=value,
                hint=f"Remove `{keyword}=` from @governed_{kind} on {fn.__qualname__}, or "
                "upgrade wflo-prefect",
                docs="index.md",
            )
        chosen.append((guard, guard.validate(value, kind=kind, fn=fn)))
    chosen.sort(key=lambda pair: pair[0].order)
    executing = [g.keyword for g, _ in chosen if isinstance(g, ExecutingGuard)]
    if len(executing) > 1:
        raise InvalidArgumentError(
            "Only one of these keywords can run the function elsewhere",
            value=executing,
            hint=f"Keep one of them on {fn.__qualname__}",
        )
    return tuple(chosen)
