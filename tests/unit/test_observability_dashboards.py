"""The shipped Grafana dashboard and Prometheus rules only use metrics wflo exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from wflo_prefect.observability.ledger_metrics import LEDGER_METRIC_NAMES
from wflo_prefect.observability.metrics import REGISTRY

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bwflo_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _exported() -> set[str]:
    names = set(LEDGER_METRIC_NAMES)
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCS / "grafana" / "wflo-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load((DOCS / "prometheus" / "wflo-alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_dashboard_uses_only_exported_metrics() -> None:
    """Every wflo_* name in a dashboard query is a metric the exporter serves."""
    used = {m for expr in _dashboard_exprs() for m in METRIC.findall(expr)}
    assert used, "the dashboard has no wflo queries"
    assert used - _exported() == set()


def test_alert_rules_use_only_exported_metrics() -> None:
    """Every wflo_* name in an alert or recording rule is a metric the exporter serves."""
    used = {m for expr in _rule_exprs() for m in METRIC.findall(expr)}
    assert used - _exported() == set()


def test_alert_rules_cover_the_on_call_cases() -> None:
    """Budget at 90 %, overdue approvals, sandbox OOMs and compensation failures alert."""
    exprs = "\n".join(_rule_exprs())
    assert "wflo_budget_utilization_ratio) >= 0.9" in exprs
    assert 'wflo_approval_pending{overdue="true"}' in exprs
    assert 'wflo_sandbox_runs_total{outcome="oom"}' in exprs
    assert 'wflo_compensations{status="failed"}' in exprs
