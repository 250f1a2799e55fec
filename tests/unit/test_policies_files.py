"""Policy files: loaded from YAML, linted, tried on a context; the `wflo policies` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wflo_prefect import InvalidArgumentError
from wflo_prefect.cli import app
from wflo_prefect.policies import lint_policies, load_policies
from wflo_prefect.policies.files import try_policies

RULES = """\
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
  - name: deletes
    condition: operation == 'delete'
    actions: [halt]
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_yaml_rules_load_with_short_actions(rules: Path) -> None:
    """Short action forms (`notify: URL`, `halt`) load as the full actions."""
    first, _, third = load_policies(rules)
    assert [a.kind for a in first.actions] == ["require_approval", "notify"]
    assert first.actions[1].target == "slack://finance-channel"  # type: ignore[union-attr]
    assert third.actions[0].kind == "halt"


def test_lint_finds_rules_after_a_catch_all(rules: Path) -> None:
    """A rule after a `*` rule that stops can never be evaluated; lint says which."""
    [finding] = lint_policies(load_policies(rules))
    assert (finding.rule, finding.name) == (3, "deletes")
    assert "rule 2 matches everything" in finding.problem


def test_a_bad_rule_names_the_file_and_the_rule(tmp_path: Path) -> None:
    """A wrong condition in a file fails with the file, the rule number and the column."""
    path = tmp_path / "bad.yaml"
    path.write_text("- condition: ok == 1\n  actions: [halt]\n- condition: cost +\n")
    with pytest.raises(InvalidArgumentError, match=r"bad.yaml, rule 1 .*unknown name 'ok'"):
        load_policies(path)


def test_try_reports_matches_and_skips_after_a_stop(rules: Path) -> None:
    """Trying a context reports each rule's decision; none after a matching stop rule."""
    results = try_policies(load_policies(rules), "run", {"estimated_cost": 150})
    assert [hit for _, hit in results] == [True, True, None]
    with pytest.raises(InvalidArgumentError, match="costs"):
        try_policies(load_policies(rules), "run", {"costs": 1})


def test_cli_lint_and_test(rules: Path, tmp_path: Path) -> None:
    """`wflo policies lint` exits 1 on findings; `test` lists what would fire."""
    runner = CliRunner()
    linted = runner.invoke(app, ["policies", "lint", str(rules)])
    assert linted.exit_code == 1
    assert "unreachable" in linted.output
    clean = tmp_path / "clean.yaml"
    clean.write_text("- condition: cost > 1\n  actions: [audit_log]\n")
    assert runner.invoke(app, ["policies", "lint", str(clean)]).exit_code == 0
    tried = runner.invoke(
        app, ["policies", "test", str(rules), "--context", '{"estimated_cost": 150}']
    )
    assert tried.exit_code == 0, tried.output
    assert "would fire: require_approval (high_cost_approval), notify" in tried.output
    refused = runner.invoke(app, ["policies", "test", str(rules), "--context", "[1]"])
    assert refused.exit_code == 1
