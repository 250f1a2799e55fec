"""Policy files (YAML or JSON) and the checks ``wflo policies lint`` runs on them.

A file is a list of rules, or a mapping with a ``policies:`` list. Each rule has
the fields of :class:`~wflo_prefect.policies.Policy`; an action is written either
in full (``{kind: notify, target: slack://ops}``) or short, its kind as the key::

    policies:
      - name: high_cost_approval
        condition: estimated_cost > 100
        actions:
          - require_approval: {approvers: [finance-team]}
          - notify: slack://finance-channel
      - name: everything_else
        condition: "*"
        stop: true
        actions: [audit_log: {severity: low}]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wflo_prefect.errors import InvalidArgumentError, WfloError
from wflo_prefect.policies.policy import Policy

__all__ = ["LintFinding", "lint_policies", "load_policies", "parse_policies", "try_policies"]

_SHORT_FIELD = {"notify": "target", "halt": "reason", "audit_log": "severity"}
_KINDS = ("audit_log", "notify", "halt", "require_approval")


def _action(raw: Any, where: str) -> Any:
    if isinstance(raw, str) and raw in _KINDS:
        return {"kind": raw}
    if isinstance(raw, dict) and "kind" not in raw and len(raw) == 1:
        [(kind, value)] = raw.items()
        if kind in _KINDS:
            if isinstance(value, dict):
                return {"kind": kind, **value}
            if value is None:
                return {"kind": kind}
            return {"kind": kind, _SHORT_FIELD.get(kind, "approvers"): value}
    if isinstance(raw, dict):
        return raw
    raise InvalidArgumentError(
        f"{where}: an action is a mapping such as {{notify: slack://ops}} or {{kind: halt}}",
        value=raw,
        hint=f"Use one of {', '.join(_KINDS)}",
        docs="policies.md",
    )


def parse_policies(data: Any, source: str = "policies") -> tuple[Policy, ...]:
    """Policies from parsed YAML/JSON ``data``; errors name the rule and the field."""
    rules = data.get("policies") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise InvalidArgumentError(
            f"{source}: expected a list of rules, or a mapping with a 'policies:' list",
            value=type(data).__name__,
            hint="Start the file with 'policies:' and one '- condition: ...' per rule",
            docs="policies.md",
        )
    policies = []
    for index, rule in enumerate(rules, start=1):
        where = f"{source}, rule {index}"
        if not isinstance(rule, dict):
            raise InvalidArgumentError(
                f"{where}: a rule is a mapping with condition: and actions:",
                value=rule,
                docs="policies.md",
            )
        fields = dict(rule)
        actions = fields.get("actions", [])
        fields["actions"] = [
            _action(a, where) for a in (actions if isinstance(actions, list) else [actions])
        ]
        try:
            policies.append(Policy(**fields))
        except WfloError as exc:
            raise InvalidArgumentError(
                f"{where} ({rule.get('name') or rule.get('condition')!r}): {exc.message}",
                hint=exc.hint,
                docs="policies.md",
            ) from exc
        except ValueError as exc:  # pydantic's ValidationError: a field is wrong
            problem = str(exc).split("\n", 2)[1:2]
            raise InvalidArgumentError(
                f"{where} ({rule.get('name') or rule.get('condition')!r}) is not a valid policy",
                value=rule,
                hint=(problem[0].strip() if problem else str(exc)),
                docs="policies.md",
            ) from exc
    return tuple(policies)


def load_policies(path: str | Path) -> tuple[Policy, ...]:
    """The policies of a YAML (or JSON) file, each checked as ``Policy`` checks them."""
    import yaml  # type: ignore[import-untyped]  # PyYAML, a Prefect dependency, ships no stubs

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgumentError(
            "Cannot read the policy file", value=str(file), hint=str(exc), docs="policies.md"
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(
            "The policy file is not valid YAML",
            value=str(file),
            hint=str(exc).replace("\n", " "),
            docs="policies.md",
        ) from exc
    return parse_policies(data, source=str(file))


@dataclass(frozen=True)
class LintFinding:
    """One problem ``lint_policies`` found in an otherwise valid list of policies."""

    rule: int  # 1-based
    name: str
    problem: str


def _always(policy: Policy) -> bool:
    return policy.condition.strip() in ("*", "true")


def lint_policies(policies: Sequence[Policy]) -> list[LintFinding]:
    """Rules that can never be evaluated (after a catch-all that stops), and duplicates."""
    findings: list[LintFinding] = []
    stopped: dict[str, int] = {}  # point -> rule number of the catch-all that stops there
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for number, policy in enumerate(policies, start=1):
        blockers = [stopped[p] for p in policy.on if p in stopped]
        if blockers and len(blockers) == len(policy.on):
            findings.append(
                LintFinding(
                    number,
                    policy.name,
                    f"unreachable: rule {min(blockers)} matches everything and stops",
                )
            )
        key = (policy.condition.strip(), policy.on)
        if key in seen:
            findings.append(
                LintFinding(number, policy.name, f"same condition and points as rule {seen[key]}")
            )
        seen.setdefault(key, number)
        if policy.stop and _always(policy):
            for point in policy.on:
                stopped.setdefault(point, number)
    return findings


def try_policies(
    policies: Sequence[Policy], point: str, values: dict[str, Any]
) -> list[tuple[Policy, bool | None]]:
    """What each policy decides at ``point`` for ``values``, without running anything.

    ``None`` marks a policy not evaluated (another point, or after a match that stops).
    Names left out of ``values`` take their neutral value (``''``, ``0``, ``[]``).
    """
    from wflo_prefect.policies.condition import cel_context
    from wflo_prefect.policies.types import DOUBLE
    from wflo_prefect.policies.variables import DEFAULTS, POINTS, TYPES, names_at

    if point not in POINTS:
        raise InvalidArgumentError(
            "Unknown evaluation point", value=point, hint=f"Use one of {', '.join(POINTS)}"
        )
    unknown = sorted(set(values) - names_at(point))
    if unknown:
        raise InvalidArgumentError(
            f"The context names {unknown} do not exist at the {point!r} point",
            value=unknown,
            hint=f"Use: {', '.join(sorted(names_at(point)))}",
            docs="policies.md",
        )
    context: dict[str, Any] = {**DEFAULTS, "point": point, **values}
    for name, value in values.items():
        if TYPES[name] == DOUBLE and isinstance(value, int | float) and not isinstance(value, bool):
            context[name] = float(value)
    every = set(names_at(point))
    cel_values = cel_context(context, every)
    results: list[tuple[Policy, bool | None]] = []
    stopped = False
    for policy in policies:
        if stopped or point not in policy.on:
            results.append((policy, None))
            continue
        hit = policy.compiled.evaluate(cel_values)
        results.append((policy, hit))
        stopped = hit and policy.stop
    return results
