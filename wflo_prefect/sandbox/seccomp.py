"""Checking that a custom seccomp profile only tightens the one shipped with wflo.

A profile may deny more than the shipped profile, never less. Checked, and refused
with a :class:`SandboxConfigError` naming the syscall or key, are:

- the default action: only an error or a kill (``SCMP_ACT_ERRNO``, ``SCMP_ACT_KILL*``,
  ``SCMP_ACT_TRAP``); ``LOG``, ``ALLOW``, ``NOTIFY`` and ``TRACE`` let calls through;
- every rule whose action lets a call through (anything but an error or a kill): each
  syscall it names (``names`` and the legacy ``name``) must be allowed by one shipped
  rule whose argument and architecture conditions the custom rule keeps. Two
  conditions on one argument are refused, because the engine ORs them;
- architectures beyond the shipped ones, filter ``flags`` and a notification
  ``listenerPath``; unknown keys are refused rather than guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from wflo_prefect.sandbox.errors import SandboxConfigError

__all__ = ["DENYING_ACTIONS", "check_tightens", "default_seccomp_profile"]

#: Actions that stop a call (it never reaches the kernel's implementation).
DENYING_ACTIONS = frozenset(
    {
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    }
)
_PASSING_ACTIONS = frozenset(
    {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE"}
)
_PROFILE_KEYS = {"comment", "defaultAction", "defaultErrnoRet", "architectures", "archMap"}
_RULE_KEYS = {"names", "name", "action", "args", "comment", "includes", "excludes", "errnoRet"}
_ARG_KEYS = {"index", "value", "valueTwo", "op"}
_FILTER_KEYS = {"arches", "caps", "minKernel"}


def default_seccomp_profile() -> str:
    """The seccomp profile shipped with the package, as JSON text."""
    return resources.files("wflo_prefect.sandbox").joinpath("profiles/seccomp.json").read_text()


def _refuse(message: str, value: Any, hint: str) -> SandboxConfigError:
    return SandboxConfigError(
        f"The seccomp profile would loosen the sandbox: {message}",
        value=value,
        hint=f"{hint}. A custom profile may only deny more than the shipped one "
        "(wflo_prefect/sandbox/profiles/seccomp.json)",
    )


def _arches(profile: Mapping[str, Any]) -> set[str]:
    names = set(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        names.add(entry.get("architecture"))
        names.update(entry.get("subArchitectures") or [])
    return names


def _filter(rule: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = rule.get(key) or {}
    if not isinstance(value, dict) or set(value) - _FILTER_KEYS:
        raise _refuse(f"`{key}` of a rule has unknown keys", value, f"Use only {_FILTER_KEYS}")
    return value


def _kernel(version: Any) -> tuple[int, ...]:
    return tuple(int(part) for part in str(version or "0").split(".") if part.isdigit())


def _implies(condition: Mapping[str, Any], required: Mapping[str, Any]) -> bool:
    # `condition` holds on every call where `required` holds (same argument index).
    if condition.get("index") != required.get("index"):
        return False
    if dict(condition) == dict(required):
        return True
    return (
        required.get("op") == "SCMP_CMP_NE"
        and condition.get("op") == "SCMP_CMP_EQ"
        and condition.get("value") != required.get("value")
    )


def _narrower(rule: Mapping[str, Any], shipped: Mapping[str, Any]) -> bool:
    """Whether ``rule`` lets through at most the calls ``shipped`` lets through."""
    if not all(
        any(_implies(mine, theirs) for mine in rule.get("args") or [])
        for theirs in shipped.get("args") or []
    ):
        return False
    mine_in, theirs_in = _filter(rule, "includes"), _filter(shipped, "includes")
    mine_ex, theirs_ex = _filter(rule, "excludes"), _filter(shipped, "excludes")
    if theirs_in.get("arches") and not (
        mine_in.get("arches") and set(mine_in["arches"]) <= set(theirs_in["arches"])
    ):
        return False
    if not set(theirs_in.get("caps") or []) <= set(mine_in.get("caps") or []):
        return False
    if _kernel(mine_in.get("minKernel")) < _kernel(theirs_in.get("minKernel")):
        return False
    return set(theirs_ex.get("arches") or []) <= set(mine_ex.get("arches") or []) and set(
        theirs_ex.get("caps") or []
    ) <= set(mine_ex.get("caps") or [])


def _rule_names(rule: Mapping[str, Any]) -> list[str]:
    names = list(rule.get("names") or [])
    if rule.get("name"):
        names.append(rule["name"])
    if not all(isinstance(name, str) for name in names):
        raise _refuse("a rule names a syscall that is not a string", names, "Name syscalls")
    return names


def _check_rule(rule: Any, allowing: Mapping[str, list[Mapping[str, Any]]]) -> None:
    if not isinstance(rule, dict):
        raise _refuse("a syscall rule is not an object", rule, "Write rules as objects")
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        raise _refuse(f"a rule has unknown keys {sorted(unknown)}", rule, "Remove them")
    names = _rule_names(rule)
    args = rule.get("args") or []
    if not isinstance(args, list) or not all(
        isinstance(arg, dict) and not set(arg) - _ARG_KEYS for arg in args
    ):
        raise _refuse("a rule's `args` are malformed", args, "Use index / value / valueTwo / op")
    if rule.get("action") in DENYING_ACTIONS:
        return
    if rule.get("action") not in _PASSING_ACTIONS:
        raise _refuse(
            f"a rule for {names} has an unknown action {rule.get('action')!r}",
            rule.get("action"),
            f"Use one of {sorted(DENYING_ACTIONS | _PASSING_ACTIONS)}",
        )
    indexes = [arg.get("index") for arg in args]
    if len(indexes) != len(set(indexes)):
        raise _refuse(
            f"a rule for {names} has two conditions on one argument (the engine ORs them)",
            args,
            "Give each argument at most one condition",
        )
    for name in names:
        if not any(_narrower(rule, shipped) for shipped in allowing.get(name, [])):
            raise _refuse(
                f"it lets syscall `{name}` through ({rule.get('action')}) where the "
                "shipped profile denies it",
                name,
                f"Remove `{name}` from the rule, or deny it with SCMP_ACT_ERRNO",
            )


def check_tightens(profile: Any, shipped: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`SandboxConfigError` unless ``profile`` only tightens ``shipped``."""
    base = shipped if shipped is not None else json.loads(default_seccomp_profile())
    if not isinstance(profile, dict):
        raise _refuse("it is not a JSON object", type(profile).__name__, "Write a Docker profile")
    unknown = set(profile) - _PROFILE_KEYS - {"syscalls"}
    if unknown:
        raise _refuse(
            f"it sets {sorted(unknown)} (filter flags, a notification listener or keys "
            "wflo does not know)",
            sorted(unknown),
            "Remove them",
        )
    if profile.get("defaultAction") not in DENYING_ACTIONS:
        raise _refuse(
            f"its defaultAction {profile.get('defaultAction')!r} lets unlisted syscalls through",
            profile.get("defaultAction"),
            "Set defaultAction to SCMP_ACT_ERRNO (or a SCMP_ACT_KILL action)",
        )
    errno = profile.get("defaultErrnoRet", 1)
    if not isinstance(errno, int) or isinstance(errno, bool) or errno <= 0:
        raise _refuse(
            "defaultErrnoRet must be a positive errno (0 makes denied calls look successful)",
            errno,
            "Use 1 (EPERM)",
        )
    extra_arches = _arches(profile) - _arches(base)
    if extra_arches:
        raise _refuse(
            f"it adds architectures {sorted(extra_arches)}", sorted(extra_arches), "Remove them"
        )
    allowing: dict[str, list[Mapping[str, Any]]] = {}
    for rule in base.get("syscalls") or []:
        if rule.get("action") not in DENYING_ACTIONS:
            for name in _rule_names(rule):
                allowing.setdefault(name, []).append(rule)
    rules = profile.get("syscalls") or []
    if not isinstance(rules, list):
        raise _refuse("`syscalls` is not a list", rules, "Write a list of rules")
    for rule in rules:
        _check_rule(rule, allowing)
