"""What operators rely on: /metrics, /healthz, /readyz, the alert rules, the dashboard, a real Prometheus."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devkit.kafka import ROOT, Topics, free_port, publish, wait_for
from devkit.service import RunningService
from devkit.simulator import SimClient
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "marketo-pipeline.json"
_METRIC = re.compile(r"\bmarketo_pipeline_[a-z0-9_]+")
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (
        f"{name} is missing: `make test` installs Debian's prometheus package (deploy/prometheus/ensure-prometheus.sh)"
    )
    return path


def _promtool(*args: str) -> str:
    done = subprocess.run([_tool("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_alert_rules_and_scrape_config_pass_promtool() -> None:
    assert f"SUCCESS: {len(alert_expressions())} rules found" in _promtool("check", "rules", "alerts.yml")
    rules = [r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    assert {r["labels"]["severity"] for r in rules} <= {"critical", "warning"}
    assert all(r["annotations"]["description"] for r in rules)
    assert any("absent(" in r["expr"] for r in rules)  # an alert when the service's series are gone
    assert "is valid prometheus config" in _promtool("check", "config", "prometheus.yml")


def test_every_alert_fires_on_trouble_and_stays_quiet_when_healthy() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions(job: str = ".*", instance: str = ".*") -> dict[str, str]:
    """Every panel's queries, with the dashboard's job and instance variables set as Grafana sets them."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{p['title']} [{t['refId']}]": t["expr"].replace("$job", job).replace("$instance", instance)
        for p in dashboard["panels"]
        for t in p["targets"]
    }


def test_the_dashboard_imports_into_any_grafana() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert "marketo_pipeline_build_info" in variables[name]["definition"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            for metric in _METRIC.finditer(target["expr"]):  # every series is narrowed to the job and instance
                selector = target["expr"][metric.end() :].split("}", 1)[0]
                assert 'job=~"$job"' in selector, target["expr"]
                assert 'instance=~"$instance"' in selector, target["expr"]


def test_the_dashboard_shows_what_operators_need() -> None:
    titles = " | ".join(p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]).lower()
    for topic in (
        "throughput",
        "results by status",
        "dead letters by reason",
        "latency",
        "in flight",
        "governor",
        "quota",
        "lag",
    ):
        assert topic in titles


def _exposed_names(metrics_text: str) -> set[str]:
    return {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# TYPE ")}


async def _get(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as response:
        return await response.json() if response.content_type == "application/json" else await response.text()


async def test_a_real_prometheus_scrapes_the_service_and_every_expression_runs(
    kafka_bootstrap: str, topics: Topics, sim: SimClient, tmp_path: Path
) -> None:
    bodies = [
        {"_key": f"email:p{n}@example.com", "event_id": f"evt-{n}", "lead": {"Email": f"p{n}@example.com"}}
        for n in range(50)
    ]
    bodies.append({"_key": "x", "event_id": "evt-bad", "lead": {"Email": 7}})  # one dead letter
    # some calls and some retries, so every panel has something to show
    await sim.configure(faults=[{"kind": "http_500", "rate": 0.4}])
    async with (
        RunningService(pipeline_settings(kafka_bootstrap, topics, sim, batch={"max_leads": 5})) as running,
        aiohttp.ClientSession() as session,
    ):
        metrics_text = await _get(session, f"{running.ops_url}/metrics")
        exposed = _exposed_names(metrics_text)
        named = {
            m
            for expr in [*alert_expressions().values(), *dashboard_expressions().values()]
            for m in _METRIC.findall(expr)
        }
        missing = {m for m in named if m not in exposed and m.removesuffix("_total") not in exposed and not any(
            m.endswith(s) and m.removesuffix(s) in exposed for s in _SERIES_SUFFIXES)}  # fmt: skip
        assert missing == set(), f"dashboard or alerts name metrics the service does not expose: {missing}"
        assert (await _get(session, f"{running.ops_url}/healthz"))["alive"] is True

        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(PROMETHEUS / "alerts.yml")],
                    "scrape_configs": [
                        {
                            "job_name": "marketo-pipeline",
                            "static_configs": [{"targets": [f"127.0.0.1:{running.service.ops_port}"]}],
                        }
                    ],
                }
            )
        )
        prometheus = await asyncio.create_subprocess_exec(
            _tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        api = f"http://127.0.0.1:{port}/api/v1"
        try:
            await publish(kafka_bootstrap, topics.input, events(bodies))

            async def scraped_results() -> float | None:
                try:
                    reply = await _get(session, f"{api}/query", query="sum(marketo_pipeline_results_total)")
                except aiohttp.ClientError:
                    return None
                if not isinstance(reply, dict) or reply.get("status") != "success":
                    return None  # not answering its API yet
                samples = reply["data"]["result"]
                value = float(samples[0]["value"][1]) if samples else 0.0
                return value if value >= valid else None

            valid = len(bodies) - 1  # one result per valid lead; the bad event is a dead letter
            assert await wait_for(scraped_results, timeout_s=60, what="Prometheus to scrape the results") == valid

            async def lag_reported() -> bool:
                text = await _get(session, f"{running.ops_url}/metrics")
                return all(f'marketo_pipeline_consumer_lag{{partition="{p}"}} 0.0' in text for p in range(3))

            await wait_for(lag_reported, what="consumer lag for every owned partition")
            targets = await _get(session, f"{api}/targets")
            assert [t["health"] for t in targets["data"]["activeTargets"]] == ["up"]
            instance = f"127.0.0.1:{running.service.ops_port}"
            # every panel's query returns data, with the variables set to this job and this instance
            for name, expr in dashboard_expressions("marketo-pipeline", instance).items():

                async def has_data(expr: str = expr) -> bool:  # rate() needs two scrapes in its range
                    reply = await _get(session, f"{api}/query", query=expr)
                    assert reply["status"] == "success", f"{expr}: {reply}"
                    return bool(reply["data"]["result"])

                await wait_for(has_data, timeout_s=30, what=f"data for the panel {name}: {expr}")
            # every alert is well-formed and names series Prometheus has
            for name, expr in alert_expressions().items():
                reply = await _get(session, f"{api}/query", query=expr)
                assert reply["status"] == "success", f"{name}: {reply}"
                for metric in set(_METRIC.findall(expr)) | ({"up"} if "up{" in expr else set()):
                    found = await _get(session, f"{api}/query", query=f"group({metric})")
                    assert found["data"]["result"], f"{name}: no series {metric}"
            rules = await _get(session, f"{api}/rules")
            loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
            assert loaded == set(alert_expressions())
        finally:
            prometheus.terminate()
            await prometheus.wait()


def test_every_alert_links_to_a_runbook_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    headings = {line.lstrip("#").strip().lower() for line in readme.splitlines() if line.startswith("#")}
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"no runbook heading for {rule['alert']}"
