"""Every query of every dashboard and alert rule names only metrics the code exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

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


def _rule_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted((GRAFANA / "alerts").glob("*.yml")):
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
