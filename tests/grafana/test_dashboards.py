"""Every query of every dashboard and alert rule names only metrics the code exports, and
every dashboard is laid out so that each panel can be read: unique ids, no two panels on the
same cells, a unit on each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiw3.metrics import Metrics

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"

# PromQL words that are not metric names.
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "histogram_quantile", "clamp_min", "clamp_max", "abs", "absent", "absent_over_time",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "label_replace", "label_join", "vector", "scalar", "time", "timestamp", "changes", "resets",
    "deriv", "predict_linear", "sort", "sort_desc", "round", "ceil", "floor", "le", "inf", "nan",
    "label_values",
}  # fmt: skip
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "gauge": ("",)}


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric of the service."""
    registry = Metrics().registry
    names: dict[str, set[str]] = {}
    # prometheus_client keeps no public map from a family to its label names.
    for collector in registry._collector_to_names:
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def _metric_names(expr: str) -> set[str]:
    stripped = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # range selectors
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    stripped = re.sub(r'"[^"]*"', "", stripped)
    stripped = re.sub(r"\$\w+", "", stripped)  # Grafana variables
    stripped = re.sub(r"\b\d+(ms|s|m|h|d|w|y)\b", "", stripped)  # durations: offset 30m
    stripped = re.sub(r"\b\d+(\.\d+)?(e[-+]?\d+)?\b", "", stripped)  # numbers, 1e-9
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {w for w in words if w.lower() not in _PROMQL_WORDS}


def _label_uses(expr: str) -> set[str]:
    used = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    return used - {"job", "instance"}  # added by Prometheus at scrape time


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = list(dashboard["panels"])
        while panels:
            panel = panels.pop()
            panels.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, str) and query.startswith("label_values("):
                yield f"{path.name}: ${variable['name']}", query.split("(", 1)[1].split(",")[0]


def _rule_files() -> list[Path]:
    """The rule files (``*.test.yml`` beside them are promtool's unit tests of them)."""
    paths = (GRAFANA / "alerts").glob("*.yml")
    return sorted(p for p in paths if not p.name.endswith(".test.yml"))


def _rule_exprs() -> Iterator[tuple[str, str]]:
    for path in _rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name}: {rule['alert']}", rule["expr"]


QUERIES = [*_dashboard_exprs(), *_rule_exprs()]


def test_there_is_something_to_check() -> None:
    assert len(list(_dashboard_exprs())) >= 5
    assert len(list(_rule_exprs())) >= 3


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_query_names_exported_metrics(where: str, expr: str) -> None:
    exported = _exported()
    names = _metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} not exported; exported: {sorted(exported)}"
    labels = set().union(*(exported[name] for name in names))
    assert _label_uses(expr) <= labels, f"{where}: unknown labels {_label_uses(expr) - labels}"


def test_the_checker_catches_a_wrong_name() -> None:
    assert _metric_names('sum(rate(nft_claims_totl{status="ok"}[5m]))') == {"nft_claims_totl"}
    assert "nft_claims_totl" not in _exported()
    assert _metric_names("max(nft_mint_operations offset 30m) - 1e-9") == {"nft_mint_operations"}
    assert _label_uses('sum by (le, method) (rate(x{status!~"ok"}[5m]))') == {
        "le",
        "method",
        "status",
    }


def test_provisioning_points_at_the_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/aiw3.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for path in (GRAFANA / "dashboards").glob("*.json"):
        text = path.read_text()
        assert f'"uid": "{uid}"' in text, f"{path.name} does not use the provisioned datasource"


def test_all_jobs_means_every_job() -> None:
    """A variable's "All" must match every job, not only the jobs its query lists: the job
    list comes from the RPC metrics, and the outbox relay (which counts confirmed upgrades)
    calls no RPC, so a list of the found values would leave it out of every panel."""
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            if variable.get("includeAll"):
                assert variable.get("allValue") == ".*", f"{path.name}: ${variable['name']}"


def _dashboards() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        yield path.name, json.loads(path.read_text())


def _all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = list(dashboard["panels"])
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


def _cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    pos = panel["gridPos"]
    xs = range(pos["x"], pos["x"] + pos["w"])
    return {(x, y) for x in xs for y in range(pos["y"], pos["y"] + pos["h"])}


def test_panel_ids_are_unique() -> None:
    for name, dashboard in _dashboards():
        ids = [panel["id"] for panel in _all_panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{name}: repeated ids {sorted(ids)}"


def test_panels_do_not_overlap() -> None:
    """Grafana pushes an overlapping panel down, so the saved layout would not be the shown
    one; and every panel fits the 24-column grid."""
    for name, dashboard in _dashboards():
        taken: dict[tuple[int, int], str] = {}
        for panel in dashboard["panels"]:  # a collapsed row's panels are placed when opened
            pos = panel["gridPos"]
            assert pos["w"] > 0, panel["title"]
            assert pos["h"] > 0, panel["title"]
            assert 0 <= pos["x"] <= pos["x"] + pos["w"] <= 24, panel["title"]
            for cell in _cells(panel):
                assert cell not in taken, f"{name}: {panel['title']!r} overlaps {taken[cell]!r}"
                taken[cell] = panel["title"]


def test_every_panel_has_a_unit() -> None:
    for name, dashboard in _dashboards():
        for panel in _all_panels(dashboard):
            if panel["type"] == "row":
                continue
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            assert unit, f"{name}: {panel['title']!r} has no unit"


def test_the_layout_checks_catch_a_fault() -> None:
    a = {"gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}}
    b = {"gridPos": {"x": 11, "y": 7, "w": 2, "h": 2}}
    c = {"gridPos": {"x": 12, "y": 0, "w": 12, "h": 8}}
    assert _cells(a) & _cells(b)
    assert not _cells(a) & _cells(c)
