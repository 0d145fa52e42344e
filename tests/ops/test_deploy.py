"""The Kubernetes manifests agree with the service they deploy.

Every environment name must be one the service really reads, the probes must hit the real health
routes, the autoscaler and disruption budget must point at the Deployment's pods, and every hook
and rule file of the repository must reach the pod, through ``kubectl kustomize deploy/`` and
kubelet's volume layout, at the path the service reads it from.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from ruamel.yaml import YAML

from service.cdshooks.services import load_services
from service.cli import build_parser
from service.config import PLACEHOLDER, PROJECT_ROOT, Settings
from service.engine import load_ruleset
from service.security.trust import load_trust_config
from tests.support.kubelet import configmap_volume, flat_data
from tests.support.processes import running, spinehip_env, start_spinehip

DEPLOY = PROJECT_ROOT / "deploy"
GENERATED = DEPLOY / "config-maps.yaml"  # the hooks and rules, written by `make deploy-config`
# Read by prometheus_client itself, not by our code (see service/metrics.py).
LIBRARY_ENV = {"PROMETHEUS_MULTIPROC_DIR"}


class RecordingEnv(dict[str, str]):
    """An environment that remembers every name asked for."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def names_the_service_reads() -> set[str]:
    """Settings.from_env's names plus the serve command's, found by watching what they ask for."""
    settings_env = RecordingEnv()
    Settings.from_env(settings_env)
    cli_env = RecordingEnv()
    with mock.patch.object(os, "environ", cli_env):
        build_parser()
    return settings_env.asked | cli_env.asked | LIBRARY_ENV


def load_manifests() -> dict[str, dict[str, Any]]:
    yaml = YAML(typ="safe")
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(set(DEPLOY.glob("*.yaml")) - {GENERATED}):
        for doc in yaml.load_all(path.read_text()):
            if doc and "kind" in doc and doc["kind"] != "Kustomization":
                docs[doc["kind"]] = doc
    return docs


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return load_manifests()


@pytest.fixture(scope="module")
def container(manifests) -> dict[str, Any]:
    [only] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


@pytest.fixture(scope="module")
def pod_env(manifests, container) -> dict[str, str]:
    """The environment the pod gets: the settings ConfigMap, then explicit env from the Secret."""
    secret = manifests["Secret"]["stringData"]
    env = dict(manifests["ConfigMap"]["data"])
    for ref in container["envFrom"]:
        assert ref["configMapRef"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    for var in container["env"]:
        key = var["valueFrom"]["secretKeyRef"]
        assert key["name"] == manifests["Secret"]["metadata"]["name"]
        env[var["name"]] = secret[key["key"]]
    return env


def mounts(manifests, container) -> Iterator[tuple[str, dict[str, Any]]]:
    """(mount path, volume) for every volume the container mounts."""
    volumes = {v["name"]: v for v in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        yield mount["mountPath"], volumes[mount["name"]]


def test_every_environment_name_is_one_the_service_reads(pod_env) -> None:
    unknown = set(pod_env) - names_the_service_reads()
    assert not unknown, f"deploy/ sets names the service never reads: {sorted(unknown)}"


def test_shipped_secret_placeholders_are_refused_naming_each_variable(pod_env) -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env(pod_env)
    assert "SPINEHIP_AUDIT_SECRET" in str(refused.value)
    assert "DATABASE_URL" in str(refused.value)


def with_real_secrets(pod_env: dict[str, str]) -> dict[str, str]:
    """The pod environment as an operator fills it: every placeholder replaced by a real secret."""
    return {name: value.replace(PLACEHOLDER, secrets.token_hex(16)) for name, value in pod_env.items()}


def test_pod_environment_is_a_valid_production_configuration(pod_env) -> None:
    settings = Settings.from_env(with_real_secrets(pod_env))
    assert settings.production
    assert settings.database_url.startswith("postgresql")
    assert settings.audit_secret


def test_every_directory_the_service_writes_is_a_writable_volume(manifests, container, pod_env) -> None:
    """The root filesystem is read-only: the audit journal and the metrics files need volumes of
    their own, or a database outage would answer 503 instead of cards."""
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    settings = Settings.from_env(with_real_secrets(pod_env))
    writable = {path for path, volume in mounts(manifests, container) if "emptyDir" in volume}
    for needed in (str(settings.journal_dir), pod_env["PROMETHEUS_MULTIPROC_DIR"]):
        assert any(needed == w or needed.startswith(w + "/") for w in writable), needed


def test_database_url_and_audit_secret_come_from_the_secret(container) -> None:
    from_secret = {v["name"] for v in container["env"] if "secretKeyRef" in v["valueFrom"]}
    assert {"DATABASE_URL", "SPINEHIP_AUDIT_SECRET"} <= from_secret


def test_trusted_clients_file_is_mounted_from_the_secret_and_loads(
    manifests, container, pod_env, tmp_path: Path
) -> None:
    target = Path(pod_env["SPINEHIP_TRUSTED_CLIENTS"])
    [volume] = [v for path, v in mounts(manifests, container) if Path(path) == target.parent]
    [item] = [i for i in volume["secret"]["items"] if i["path"] == target.name]
    content = manifests["Secret"]["stringData"][item["key"]]
    (tmp_path / target.name).write_text(content)
    assert load_trust_config(tmp_path / target.name, production=True).clients


def test_probes_use_the_health_routes_on_the_served_port(container, pod_env) -> None:
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [port] = container["ports"]
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert port["containerPort"] == int(pod_env["SPINEHIP_PORT"])


def test_autoscaler_and_disruption_budget_cover_the_deployment(manifests) -> None:
    deployment = manifests["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == (
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["minReplicas"] >= 2
    assert manifests["PodDisruptionBudget"]["spec"]["minAvailable"] < hpa["minReplicas"]
    for selector in (
        manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        manifests["Service"]["spec"]["selector"],
    ):
        assert selector.items() <= pod_labels.items()
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "cpu" in resources["requests"], "CPU autoscaling needs a CPU request"


def kustomize_build() -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/`` with default settings, as ``kubectl apply -k`` runs it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing (apt-get install kubernetes-client)")
        pytest.skip("kubectl not installed (apt-get install kubernetes-client)")
    built = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    return [doc for doc in YAML(typ="safe").load_all(built.stdout) if doc]


@pytest.fixture(scope="module")
def kustomized() -> dict[str, dict[str, Any]]:
    """The kustomize output by ``kind/name``."""
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in kustomize_build()}


def mounted_config_map(kustomized, manifests, container, pod_env, env_name: str) -> dict[str, Any]:
    """The ConfigMap mounted where ``env_name`` tells the service to read."""
    [volume] = [v for path, v in mounts(manifests, container) if path == pod_env[env_name]]
    return kustomized[f"ConfigMap/{volume['configMap']['name']}"]


@pytest.mark.parametrize(
    ("directory", "env_name"), [("hooks", "SPINEHIP_HOOKS_DIR"), ("rules", "SPINEHIP_RULES_DIR")]
)
def test_every_repository_config_file_reaches_the_pod_verbatim(
    kustomized, manifests, container, pod_env, directory: str, env_name: str
) -> None:
    config_map = mounted_config_map(kustomized, manifests, container, pod_env, env_name)
    assert config_map["data"] == flat_data(PROJECT_ROOT / directory), (
        "deploy/config-maps.yaml is out of date: run `make deploy-config`"
    )


def test_kustomize_output_boots_in_kubelets_layout_with_the_repository_version(
    kustomized, manifests, container, pod_env, tmp_path: Path
) -> None:
    dirs = {}
    for env_name in ("SPINEHIP_HOOKS_DIR", "SPINEHIP_RULES_DIR"):
        data = mounted_config_map(kustomized, manifests, container, pod_env, env_name)["data"]
        dirs[env_name] = str(configmap_volume(tmp_path / env_name.lower(), data))
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
                       **dirs)
    with running(start_spinehip(env, tmp_path), ready_path="/readyz") as served:
        ready = requests.get(f"{served.base_url}/readyz", timeout=10).json()
        discovered = requests.get(f"{served.base_url}/cds-services", timeout=10).json()
    assert ready["rules"]["version"] == load_ruleset(PROJECT_ROOT / "rules").full_version
    assert sorted(s["id"] for s in discovered["services"]) == sorted(
        s.id for s in load_services(PROJECT_ROOT / "hooks"))
