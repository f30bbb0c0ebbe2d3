"""The Kubernetes manifests (deploy/k8s): rendered and checked against the Kubernetes schemas.

Rendering: deploy/k8s/render.py (the kustomize subset the folder uses), cross-checked with
`kubectl kustomize` where kubectl is installed. Validation: kubernetes-validate (PyPI; the
schemas ship with it, nothing is fetched), strict, for the oldest and newest versions we
claim. Then the properties issue 16 asks for, each checked on the rendered objects, and the
two probes run against the real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

from bos_server.operators import registry
from bos_sim.stack import BIN, ApiServer, free_port

from .conftest import DEPLOY, containers, readme_settings, renderer, source_text

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = DEPLOY / "k8s"
TREES = ["base", "overlays/csm", "overlays/standalone", "overlays/sentinel"]
KUBERNETES_VERSIONS = ["1.27.0", "1.33.0"]
WORKLOADS = ("Deployment", "StatefulSet")
Objects = Dict[Tuple[str, str], dict]


def render(tree: str) -> Objects:
    objects = renderer().build(K8S / tree)
    keyed = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(keyed) == len(objects), f"{tree}: duplicate objects"
    return keyed


@pytest.fixture(scope="module", params=TREES)
def tree(request: pytest.FixtureRequest) -> Tuple[str, Objects]:
    return request.param, render(request.param)


def test_every_object_validates_against_the_kubernetes_schemas(tree: Tuple[str, Objects]) -> None:
    name, objects = tree
    for (kind, obj_name), obj in objects.items():
        if obj["apiVersion"].startswith("networking.istio.io/"):  # a CRD: no schema ships for it
            assert obj["spec"]["http"] and obj["metadata"]["name"], obj
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {kind} {obj_name} is invalid for Kubernetes {version}: {exc.message}")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed (render.py is checked alone)")
@pytest.mark.parametrize("name", TREES)
def test_the_renderer_agrees_with_kubectl_kustomize(name: str) -> None:
    done = subprocess.run(["kubectl", "kustomize", str(K8S / name)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(done.stdout) if o}
    assert theirs == render(name)


def test_every_container_has_requests_limits_and_runs_unprivileged(tree: Tuple[str, Objects]) -> None:
    name, objects = tree
    for (kind, obj_name), obj in objects.items():
        if kind not in WORKLOADS:
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, (name, obj_name)
        for container in containers(obj):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), (name, obj_name)
            assert "memory" in resources["limits"], (name, obj_name)
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_api_is_the_reference_service_with_probes(tree: Tuple[str, Objects]) -> None:
    _name, objects = tree
    api = objects[("Deployment", "cray-bos")]
    [container] = containers(api)
    assert container["command"] == ["bos-server"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/healthz"
    assert container["livenessProbe"]["httpGet"]["path"]
    service = objects[("Service", "cray-bos")]
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    assert port["port"] == 80 and port["targetPort"] == "http"
    assert {"name": "http", "containerPort": 9000, "protocol": "TCP"} in container["ports"]


def test_the_gateway_prefix_reaches_the_api() -> None:
    csm = render("overlays/csm")[("VirtualService", "cray-bos")]
    [route] = csm["spec"]["http"]
    assert route["match"] == [{"uri": {"prefix": "/apis/bos/"}}]
    assert route["route"][0]["destination"]["host"] == "cray-bos"
    assert "rewrite" not in route  # the API serves /apis/bos itself (api.md §1.1)
    ingress = render("overlays/standalone")[("Ingress", "cray-bos")]
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/apis/bos" and path["backend"]["service"]["name"] == "cray-bos"


def test_the_api_can_scale_horizontally() -> None:
    hpa = render("overlays/csm")[("HorizontalPodAutoscaler", "cray-bos")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cray-bos"}
    assert hpa["spec"]["minReplicas"] >= 2


def _operator_groups(objects: Objects) -> Dict[str, List[str]]:
    groups = {}
    for (kind, name), obj in objects.items():
        if kind == "Deployment" and name.startswith("cray-bos-operator-"):
            [container] = containers(obj)
            command = container["command"]
            assert command[:2] == ["bos-operators", "--only"], command
            groups[name] = command[2].split(",")
            assert container["livenessProbe"]["exec"]["command"] == ["bos-operators", "--check-liveness"]
    return groups


def test_operators_run_in_only_groups_covering_all_ten_once(tree: Tuple[str, Objects]) -> None:
    _name, objects = tree
    names = [op for group in _operator_groups(objects).values() for op in group]
    assert sorted(names) == sorted(registry.OPERATORS)


def test_redis_persists_with_aof(tree: Tuple[str, Objects]) -> None:
    name, objects = tree
    config = objects[("ConfigMap", "cray-bos-db-config")]["data"]["redis.conf"].splitlines()
    assert "appendonly yes" in config and "maxmemory-policy noeviction" in config
    db = objects[("StatefulSet", "cray-bos-db")]
    assert db["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert ("Service", "cray-bos-db") in objects
    if name == "overlays/sentinel":
        assert db["spec"]["replicas"] == 3 and ("StatefulSet", "cray-bos-db-sentinel") in objects
        assert objects[("ConfigMap", "cray-bos-config")]["data"]["BOS_REDIS_URL"].startswith("redis+sentinel://")


def test_every_readme_setting_is_a_value(tree: Tuple[str, Objects]) -> None:
    name, objects = tree
    config = objects[("ConfigMap", "cray-bos-config")]["data"]
    code = source_text()
    for key in config:
        assert key in code, f"{key} in cray-bos-config is read by no server code (a typo?)"
    for (kind, _obj), obj in objects.items():
        for container in containers(obj) if kind in WORKLOADS else []:
            if not container["image"].split("/")[-1].startswith("bos"):
                continue
            from_secrets = {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            missing = readme_settings() - set(config) - from_secrets
            assert not missing, (f"{name}: README settings without a value in deploy/k8s/base/config.yaml "
                                 f"(or a secret env entry): {sorted(missing)}")
            assert {"configMapRef": {"name": "cray-bos-config"}} in container["envFrom"]


def test_the_sizing_table_states_the_rendered_requests() -> None:
    """deploy/k8s/README.md's sizing table is the rendered base (10,000) and large (100,000) requests."""
    text = (K8S / "README.md").read_text()
    for tree, column in (("base", 1), ("overlays/csm", 2)):
        for (kind, name), obj in render(tree).items():
            if kind not in WORKLOADS:
                continue
            [container] = containers(obj)
            res = container["resources"]
            cell = f"{res['requests']['cpu']} / {res['requests']['memory']} / {res['limits']['memory']}"
            rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |") and line.count(" / ") == 4]
            assert rows, f"no sizing row for {name}"
            assert rows[0].split("|")[column + 1].strip() == cell, (tree, name, rows[0])


# -- the probes, run against the real processes --

def test_readiness_probe_path_is_200_only_while_redis_answers(api_server: ApiServer, tmp_path: Path) -> None:
    [container] = containers(render("base")[("Deployment", "cray-bos")])
    path = container["readinessProbe"]["httpGet"]["path"]
    import requests
    assert requests.get(api_server.url + path, timeout=10).status_code == 200
    down = ApiServer(tmp_path / "api", f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert requests.get(down.url + path, timeout=10).status_code == 503
        assert requests.get(down.url + container["livenessProbe"]["httpGet"]["path"], timeout=10).status_code == 200
    finally:
        down.stop()


def test_operators_liveness_probe_command(tmp_path: Path) -> None:
    [container] = containers(render("base")[("Deployment", "cray-bos-operator-power")])
    command = container["livenessProbe"]["exec"]["command"]
    liveness = tmp_path / "liveness"
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", BOS_LIVENESS_FILE=str(liveness),
               LIVENESS_DELTA_MAX="20")
    assert subprocess.run(command, env=env, timeout=30).returncode == 1  # never written
    liveness.write_text(str(time.time()))
    assert subprocess.run(command, env=env, timeout=30).returncode == 0
    liveness.write_text(str(time.time() - 60))  # no progress for a minute
    assert subprocess.run(command, env=env, timeout=30).returncode == 1
