"""The alert rules are valid Prometheus rules, and fire on the synthetic series of their unit
tests (grafana/alerts/aiw3.rules.test.yml) and only there, as promtool judges them; the
dashboards' queries are valid PromQL too.

promtool comes from Debian's ``prometheus`` package (``apt-get install -y prometheus``; .ci/run
installs it). Without it these tests skip, or fail under ``AIW3_TEST_REQUIRE_SERVICES=1``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.services import unavailable

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
ALERTS = GRAFANA / "alerts"
RULES = ALERTS / "aiw3.rules.yml"
UNIT_TESTS = ALERTS / "aiw3.rules.test.yml"
SEVERITIES = {"page", "ticket"}


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool(*args: str, cwd: Path = ALERTS) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool", FileNotFoundError("not on PATH: apt-get install -y prometheus"))
        raise AssertionError("unreachable")  # unavailable skips or fails
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_rule_says_how_long_how_bad_and_what_to_do() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names)), f"repeated alert names: {sorted(names)}"
    for rule in _rules():
        assert "for" in rule, f"{rule['alert']}: no for:"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_the_rules_are_valid() -> None:
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", UNIT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    """Each alert is shown to fire on some series (and is evaluated there, quiet or not)."""
    cases = [
        case
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    tested = {case["alertname"] for case in cases}
    fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts <= tested, f"never evaluated: {sorted(alerts - tested)}"
    assert alerts <= fired, f"never shown to fire: {sorted(alerts - fired)}"


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: with the lag threshold raised, IndexerLagging stays quiet on
    the series that must make it fire."""
    text = RULES.read_text()
    assert ") > 60\n" in text
    (tmp_path / RULES.name).write_text(text.replace(") > 60\n", ") > 600\n"))
    (tmp_path / UNIT_TESTS.name).write_text(UNIT_TESTS.read_text())
    result = _promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "IndexerLagging" in result.stdout + result.stderr


def test_the_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every panel's query, as a recording rule, with Grafana's variables
    replaced by what Grafana puts there."""
    rules = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        panels = list(json.loads(path.read_text())["panels"])
        for panel in [*panels, *(p for row in panels for p in row.get("panels", []))]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$job", ".*").replace("$__rate_interval", "1m")
                rules.append({"record": f"panel_{len(rules)}", "expr": expr})
    assert rules
    (tmp_path / "dashboards.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]})
    )
    result = _promtool("check", "rules", "dashboards.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
