"""The launch configs in cluster/deploy/, checked with what works offline.

The launcher YAML goes through Ray's own ``prepare_config`` and JSON schema (what
``ray up`` does before it calls a cloud); its ``ray start`` flags are checked against
Ray's CLI. The KubeRay manifest is checked for the keys and kinds the operator reads.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "cluster" / "deploy"


@pytest.fixture(scope="module")
def launcher() -> dict:
    return yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return yaml.safe_load((DEPLOY / "kuberay-rayjob.yaml").read_text())


def test_launcher_config_passes_rays_schema(launcher):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(launcher)))
    for key in ("cluster_name", "max_workers", "available_node_types", "head_node_type"):
        assert key in launcher, key
    types = launcher["available_node_types"]
    assert launcher["head_node_type"] in types
    assert types[launcher["head_node_type"]]["resources"]["CPU"] == 0
    gpu = [t for name, t in types.items() if t["resources"].get("GPU")]
    assert gpu and all(t["min_workers"] <= t["max_workers"] for t in gpu)


def test_launcher_schema_catches_a_typo(launcher):
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(launcher)
    broken["available_node_types"]["worker.gpu"]["min_wrokers"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_wrokers"):
        validate_config(prepare_config(broken))


def test_launcher_start_commands_use_real_ray_start_flags(launcher):
    from ray.scripts.scripts import start

    known = {option for param in start.params for option in param.opts}
    commands = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    used = {flag for command in commands for flag in re.findall(r"(--[a-z-]+)", command)}
    assert used and used <= known, used - known
    head = " ".join(launcher["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "RAY_AUTH_MODE=token" in head
    assert all("RAY_AUTH_MODE=token" in c for c in commands if "ray start" in c)


def test_rayjob_manifest_has_what_the_operator_reads(rayjob):
    from ray.scripts.scripts import start

    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    spec = rayjob["spec"]
    assert "runner run jobs/daily.yaml" in spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    workers = cluster["workerGroupSpecs"]
    assert head["template"]["spec"]["containers"] and workers
    known = {option.lstrip("-") for param in start.params for option in param.opts}
    for group in [head, *workers]:
        assert set(group["rayStartParams"]) <= known, set(group["rayStartParams"]) - known
        for container in group["template"]["spec"]["containers"]:
            env = {item["name"]: item for item in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "auth_token"
    for group in workers:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] >= 1
    submitter = spec["submitterPodTemplate"]["spec"]["containers"][0]
    assert {item["name"] for item in submitter["env"]} >= {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}
