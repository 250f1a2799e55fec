"""Policy decisions: what ``evaluate_policies`` costs per decision, against plain Python.

A decision is one call of ``evaluate_policies("run", policies, ...)``: build the
context of the call, convert it to CEL values once, evaluate every rule. It is
measured for 1, 20 and 200 rules, in the same run as a plain-Python baseline:
the same rules written as Python lambdas over the same arguments (what a
hand-written ``if`` chain costs, without CEL, context or audit trail).

Two rule sets: rules over the call itself (``operation``, ``params``), and rules
that also read Prefect's run context (``tags``, ``user``), which costs one read
of the run's attribution per decision. Outside a flow run, so no ledger access.

    .venv/bin/python benchmarks/bench_policy_decisions.py [--decisions 20000]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from wflo_prefect import AuditLog, Policy
from wflo_prefect.policies import evaluate_policies

PARAMS = {"amount": 5, "table": "prod_users"}


def _call_rules(n: int) -> tuple[list[Policy], list[Callable[[dict[str, Any]], bool]]]:
    policies = [
        Policy(
            condition=f"operation == 'pay' && params.amount > {i} && params.table != 't{i}'",
            actions=[AuditLog()],
        )
        for i in range(n)
    ]
    plain: list[Callable[[dict[str, Any]], bool]] = [
        (lambda c, i=i: c["operation"] == "pay" and c["amount"] > i and c["table"] != f"t{i}")
        for i in range(n)
    ]
    return policies, plain


def _context_rules(n: int) -> tuple[list[Policy], list[Callable[[dict[str, Any]], bool]]]:
    policies = [
        Policy(
            condition=f"params.amount > {i} && ('nightly' in tags || user == 'u{i}')",
            actions=[AuditLog()],
        )
        for i in range(n)
    ]
    plain: list[Callable[[dict[str, Any]], bool]] = [
        (lambda c, i=i: c["amount"] > i and ("nightly" in c["tags"] or c["user"] == f"u{i}"))
        for i in range(n)
    ]
    return policies, plain


def _time(fn: Callable[[], object], decisions: int) -> list[float]:
    for _ in range(min(500, decisions)):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(decisions):
            start = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        gc.enable()
    return sorted(samples)


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=20000)
    args = parser.parse_args()
    print(
        f"{'rules':<28}{'engine p50':>12}{'p99':>10}{'dec/s':>10}"
        f"{'python p50':>12}{'p99':>8}{'dec/s':>11}{'p50 ratio':>11}"
    )
    for label, build in (("call names", _call_rules), ("run-context names", _context_rules)):
        for n in (1, 20, 200):
            policies, plain = build(n)
            decisions = max(500, args.decisions // max(1, n // 20))

            def engine(policies: list[Policy] = policies) -> object:
                return evaluate_policies(
                    "run", policies, operation="pay", kind="task", name="pay", params=PARAMS
                )

            def python(plain: list[Callable[[dict[str, Any]], bool]] = plain) -> object:
                context = {"operation": "pay", **PARAMS, "tags": ["nightly"], "user": "u1"}
                return [rule(context) for rule in plain]

            outcome = evaluate_policies(
                "run", policies, operation="pay", kind="task", name="pay", params=PARAMS
            )
            assert len(outcome.evaluated) == n, outcome  # every rule decided
            ours = _time(engine, decisions)
            base = _time(python, decisions)
            e50, e99, b50, b99 = (
                _pct(ours, 0.5),
                _pct(ours, 0.99),
                _pct(base, 0.5),
                _pct(base, 0.99),
            )
            print(
                f"{label + f', {n} rules':<28}{e50:>10.1f}µs{e99:>8.1f}µs{1e6 / e50:>10,.0f}"
                f"{b50:>10.2f}µs{b99:>6.1f}µs{1e6 / b50:>11,.0f}{e50 / b50:>10.0f}x"
            )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
