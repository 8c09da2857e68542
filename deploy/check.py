"""Offline checks of the files in deploy/, with the installed Prefect's and Ray's own validators.

    python deploy/check.py        (from the repository root, in intnet's environment)

Nothing here contacts a server or a cloud: it catches a file that drifted from the code (a
TrainConfig field renamed, a Ray upgrade the images do not follow) before a cluster does.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent


def check_prefect_project(path: Path = DEPLOY / "prefect.yaml") -> list[str]:
    """Prefect's own model of prefect.yaml, strictly (it ignores unknown keys, so they are
    checked here), then each deployment's flow and parameters against the code."""
    from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel, RawScheduleConfig
    from prefect.flows import load_flow_from_entrypoint

    import flows  # noqa: F401  (the project's Prefect defaults, set before Prefect is imported)
    from pipeline.config import TrainConfig

    raw = yaml.safe_load(path.read_text())
    PrefectYamlModel.model_validate(raw)
    known = {field.alias or name for name, field in PrefectYamlModel.model_fields.items()}
    problems = [f"{path.name}: unknown top-level key {key!r}" for key in set(raw) - known]
    for deployment in raw["deployments"]:
        name = deployment["name"]
        problems += [f"{name}: unknown key {key!r}" for key in set(deployment) - set(DeploymentConfig.model_fields)]
        for schedule in deployment.get("schedules", []):
            RawScheduleConfig.model_validate(schedule)
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        if flow.name != deployment["flow_name"]:
            problems.append(f"{name}: entrypoint's flow is {flow.name!r}, not {deployment['flow_name']!r}")
        TrainConfig.model_validate(deployment["parameters"]["config"])
        flow.validate_parameters(deployment["parameters"])
    return problems


def check_ray_cluster(path: Path = DEPLOY / "ray-cluster.yaml") -> list[str]:
    """Ray's cluster-launcher preparation and JSON-schema validation, as `ray up` runs them."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load(path.read_text())
    validate_config(prepare_config(copy.deepcopy(raw)))
    return _ray_image_problems(path.name, raw["docker"]["image"])


# RayClusterSpec and its groups in KubeRay's ray.io/v1 API (ray-operator/apis/ray/v1).
_RAYCLUSTER_SPEC = {
    "headGroupSpec", "workerGroupSpecs", "rayVersion", "enableInTreeAutoscaling", "autoscalerOptions",
    "headServiceAnnotations", "suspend", "managedBy", "gcsFaultToleranceOptions", "upgradeStrategy",
    "authOptions",
}
_HEAD_GROUP = {"serviceType", "headService", "enableIngress", "rayStartParams", "template"}
_WORKER_GROUP = {
    "groupName", "replicas", "minReplicas", "maxReplicas", "numOfHosts", "rayStartParams", "template",
    "scaleStrategy", "idleTimeoutSeconds", "suspend",
}
_QUANTITY = re.compile(r"^(\d+(\.\d+)?)(m|Ki|Mi|Gi|Ti)?$")


def _cpus(quantity: str) -> float:
    number, _, unit = _QUANTITY.match(str(quantity)).groups()
    return float(number) / (1000 if unit == "m" else 1)


def check_kuberay(path: Path = DEPLOY / "kuberay-raycluster.yaml") -> list[str]:
    """The RayCluster's structure against KubeRay's v1 types, and its numbers against each other:
    Ray's CPUs per pod equal the pod's CPU limit, requests fit limits, replicas fit their range."""
    raw = yaml.safe_load(path.read_text())
    problems = []
    if (raw["apiVersion"], raw["kind"]) != ("ray.io/v1", "RayCluster"):
        problems.append(f"{path.name}: not a ray.io/v1 RayCluster")
    spec = raw["spec"]
    problems += [f"spec: unknown key {key!r}" for key in set(spec) - _RAYCLUSTER_SPEC]
    groups = [("head", spec["headGroupSpec"], _HEAD_GROUP, True)]
    groups += [(g["groupName"], g, _WORKER_GROUP, False) for g in spec.get("workerGroupSpecs", [])]
    for name, group, allowed, is_head in groups:
        problems += [f"{name}: unknown key {key!r}" for key in set(group) - allowed]
        params = group.get("rayStartParams", {})
        problems += [f"{name}: rayStartParams {k} must be a string" for k, v in params.items() if not isinstance(v, str)]
        for container in group["template"]["spec"]["containers"]:
            if not container.get("image") or not container.get("name"):
                problems.append(f"{name}: a container needs a name and an image")
            resources = container.get("resources", {})
            quantities = [(kind, k, v) for kind in ("requests", "limits") for k, v in resources.get(kind, {}).items()]
            bad = [f"{name}: {kind}.{k} {v!r} is not a quantity" for kind, k, v in quantities if not _QUANTITY.match(str(v))]
            if bad:
                problems += bad
                continue
            limit = resources.get("limits", {}).get("cpu")
            request = resources.get("requests", {}).get("cpu")
            if limit is not None and request is not None and _cpus(request) > _cpus(limit):
                problems.append(f"{name}: CPU request above its limit")
            # The head offers no CPUs on purpose; a solver pod must offer Ray what it is given.
            if not is_head and "num-cpus" in params and limit is not None and float(params["num-cpus"]) != _cpus(limit):
                problems.append(f"{name}: num-cpus {params['num-cpus']} differs from the CPU limit {limit}")
        if not is_head and not group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]:
            problems.append(f"{name}: replicas outside [minReplicas, maxReplicas]")
    return problems + _ray_version_problems(path.name, spec["rayVersion"])


def check_dockerfile(path: Path = DEPLOY / "Dockerfile") -> list[str]:
    base = re.search(r"^FROM\s+(\S+)", path.read_text(), re.MULTILINE).group(1)
    return _ray_image_problems(path.name, base)


def _ray_image_problems(where: str, image: str) -> list[str]:
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py311-cpu", image)
    if match is None:
        return [f"{where}: {image!r} is not a rayproject/ray Python 3.11 CPU image"]
    return _ray_version_problems(where, match.group(1))


def _ray_version_problems(where: str, ray_version: str) -> list[str]:
    # A driver joins a cluster only with the same Ray version.
    import ray

    if ray_version != ray.__version__:
        return [f"{where}: Ray {ray_version}, but intnet's environment has Ray {ray.__version__}"]
    return []


def main() -> int:
    problems = check_prefect_project() + check_ray_cluster() + check_kuberay() + check_dockerfile()
    for problem in problems:
        print(problem, file=sys.stderr)
    print("deploy/: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
