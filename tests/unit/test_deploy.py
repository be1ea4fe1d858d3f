"""The deployment files, checked statically (no Docker engine or cluster here): consistent with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return load_settings(ROOT / "config" / "pipeline.toml")


def _pipeline_env(env: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in env.items() if k.startswith("PIPELINE_")}


def _assert_known_keys(env: dict[str, str]) -> None:
    fields = Settings.model_fields
    for name in env:
        match = re.fullmatch(r"PIPELINE_([A-Z]+)__([A-Z0-9_]+)", name)
        assert match, f"{name} is not PIPELINE_<SECTION>__<KEY>"
        section, key = match.group(1).lower(), match.group(2).lower()
        assert section in fields, f"{name}: no settings section {section}"
        model = fields[section].annotation
        assert model is not None
        assert key in model.model_fields, f"{name}: no key {section}.{key}"


def test_the_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in image for image in stages)
    # no floating tag: a Python patch release and a Debian release, and the same base for both stages
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image) for image in stages)
    assert len(set(stages)) == 1
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*healthz", text, re.MULTILINE | re.DOTALL)
    assert re.search(r'^ENTRYPOINT \["marketo-pipeline"\]', text, re.MULTILINE)
    for source in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY {path}: no such file"


def test_the_compose_stack_is_complete_and_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "simulator", "pipeline", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    env: dict[str, str] = {}
    for service in services.values():
        env |= _pipeline_env(service.get("environment") or {})
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"compose mounts {source}, which does not exist"
    _assert_known_keys(env)
    pipeline = _pipeline_env(services["pipeline"]["environment"])
    settings = _settings_from(pipeline, monkeypatch)
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.marketo.endpoint.startswith("http://simulator:8089/")
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    target = prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0]
    assert target == f"pipeline:{settings.http.port}"


def _env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize reads a generator's `envs` file."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _manifests() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.setdefault(document["kind"], []).append(document)
    return found


def test_the_kubernetes_manifests_fit_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = _manifests()
    [deployment] = manifests["Deployment"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    # the settings' ConfigMap is generated with a hash in its name: a change of settings rolls the pods
    [generator] = kustomization["configMapGenerator"]
    assert generator["name"] == "marketo-pipeline"
    assert not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash")
    config_map = {"metadata": {"name": generator["name"]}, "data": _env_file(K8S / generator["envs"][0])}
    [secret] = manifests["Secret"]
    env = _pipeline_env(config_map["data"]) | _pipeline_env(secret["stringData"])
    _assert_known_keys(env)
    settings = _settings_from(env, monkeypatch)
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": config_map["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]
    [port] = container["ports"]
    assert port["containerPort"] == settings.http.port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # the Kafka clients up, not partitions nor Marketo: a rolling update's new pod may get no partition
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/kafka"
    assert spec["terminationGracePeriodSeconds"] > settings.service.drain_deadline_s
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["memory"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        [manifest] = manifests[kind]
        selector = manifest["spec"]["selector"]
        assert labels.items() >= selector.get("matchLabels", selector).items()
    assert "HorizontalPodAutoscaler" not in manifests  # Marketo, not the CPU, is the ceiling
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [pdb] = manifests["PodDisruptionBudget"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()


def test_the_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "marketo-pipeline.json").read_text())
    assert dashboard["uid"] == "marketo-pipeline"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["targets"] and all(t["expr"] for t in panel["targets"]) for panel in dashboard["panels"])


def test_the_image_installs_every_dependency_from_a_lock_file_with_hashes() -> None:
    import tomllib  # noqa: PLC0415

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", lock, re.MULTILINE
    )
    pinned = {name.lower(): version for name, version, _ in entries}
    for requirement in project["dependencies"]:
        name, version = requirement.split("==")
        assert pinned.get(name.lower()) == version, f"{name}: the lock file pins {pinned.get(name.lower())}"
    assert len(entries) == len(re.findall(r"^\S+==", lock, re.MULTILINE))  # every pinned package has its hashes
    assert "/" not in "".join(line for line in lock.splitlines() if line.startswith("--"))  # no machine paths
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "org.opencontainers.image.title" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def test_compose_restarts_the_service_and_lets_it_drain() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    pipeline = compose["services"]["pipeline"]
    assert pipeline["restart"] in {"unless-stopped", "always", "on-failure"}
    grace = int(pipeline["stop_grace_period"].removesuffix("s"))
    assert grace > Settings().service.drain_deadline_s
    for name, major in (("prometheus", 3), ("grafana", 12)):
        tag = compose["services"][name]["image"].split(":")[1]
        assert int(tag.lstrip("v").split(".")[0]) >= major
        assert tag.count(".") == 2  # a release, pinned, never a floating tag
