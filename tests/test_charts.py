"""What the Helm charts the program installs really make, rendered at their pinned versions with the
values the program registers: names that match the Pod Identity association, pods on the nodes they
belong on and tolerating exactly what they must, objects valid for the cluster's version, and the
hardening the values ask for. What a chart's function rules out is listed per check, with the reason."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import kubernetes_validate
import pytest
import yaml
from eks_gpu.config import POOL_LABEL
from eks_gpu.offline import ProgramRun

from tests.charts import chart_dir, render
from tests.helpers import CLUSTER, NODE_GROUP, config, gpu_pool, program_scope, run, run_stack_file
from tests.workloads.scheduling import Node, tolerates, unfit

RELEASE = "kubernetes:helm.sh/v3:Release"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
AUTOSCALER = "-autoscaler-release"
PLUGIN = "-nvidia-release"
PLUGIN_CONTAINER = "nvidia-device-plugin-ctr"
MPS_CONTAINER = "mps-control-daemon-ctr"
SYSTEM = "system"
BOTTLEROCKET = ("BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA")
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
MIXED_POOLS = {
    "inference": gpu_pool("g5.xlarge", maxSize=3),
    "training": gpu_pool(
        "p5.48xlarge",
        maxSize=2,
        taints=[
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
            {"key": "workload", "value": "training", "effect": "NO_EXECUTE"},
            {"key": "dedicated", "effect": "PREFER_NO_SCHEDULE"},
        ],
    ),
    "rocket": gpu_pool(
        "g6.xlarge",
        amiType="BOTTLEROCKET_x86_64_NVIDIA",
        maxSize=4,
        taints=[
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
            {"key": "rocket", "value": "only", "effect": "NO_SCHEDULE"},
        ],
    ),
}
"""Two AL2023 pools (one with custom taints of every effect) and a Bottlerocket pool with its own taint."""


PRIORITIES = {"inference": 20, "training": 10, "rocket": 5}


@pytest.fixture(scope=program_scope)
def dev() -> ProgramRun:
    return run_stack_file("dev")


@pytest.fixture(scope=program_scope)
def mixed() -> ProgramRun:
    """:data:`MIXED_POOLS` with the priority expander: its values carry the node groups' names (outputs)."""
    return run(config(MIXED_POOLS, autoscaler={"expander": "priority", "priorities": PRIORITIES}))


@pytest.fixture(params=["dev", "mixed"])
def stack(request: pytest.FixtureRequest) -> ProgramRun:
    """The dev stack file, then the mixed-pool stack."""
    result: ProgramRun = request.getfixturevalue(request.param)
    return result


def manifests(result: ProgramRun, suffix: str) -> list[dict[str, Any]]:
    return render(result.one(RELEASE, suffix))


def only(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def daemon_set(objects: list[dict[str, Any]], container: str) -> dict[str, Any]:
    """The one DaemonSet's pod spec that runs ``container`` (names are truncated to 63 characters, so the
    MPS control daemon's loses its suffix under an auto-named release)."""
    found = [
        pod_spec(o)
        for o in objects
        if o["kind"] == "DaemonSet" and container in [c["name"] for c in pod_spec(o)["containers"]]
    ]
    assert len(found) == 1, f"expected one DaemonSet running {container}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def node_groups(result: ProgramRun) -> dict[str, dict[str, Any]]:
    """Pool key (``system`` included) -> its node group's inputs."""
    return {ng.inputs["labels"][POOL_LABEL]: ng.inputs for ng in result.of_type(NODE_GROUP)}


def node_taints(group: dict[str, Any]) -> list[dict[str, str]]:
    """The taints the nodes of a node group carry, in Kubernetes spelling."""
    return [
        {"key": t["key"], "value": t.get("value") or "", "effect": K8S_EFFECT[t["effect"]]}
        for t in group.get("taints") or []
    ]


def runs_on(spec: dict[str, Any], group: dict[str, Any]) -> bool:
    """Whether a pod with ``spec`` may land on an empty node of ``group``: node selector, required node
    affinity and taints, as the scheduler filters them (tests/workloads/scheduling.py)."""
    return not unfit(spec, {}, Node(group["labels"], node_taints(group), {"pods": Decimal(1)}))


def gpu_groups(result: ProgramRun) -> dict[str, dict[str, Any]]:
    return {k: g for k, g in node_groups(result).items() if k != SYSTEM}


def configured_pools(result: ProgramRun) -> dict[str, dict[str, Any]]:
    """The GPU pools of the stack's config (what the run was given, not what the program made of it)."""
    pools: dict[str, dict[str, Any]] = json.loads(result.config["eks-gpu:gpuNodeGroups"])
    return pools


def al2023_pools(result: ProgramRun) -> list[str]:
    """The configured pools on an AL2023 NVIDIA AMI: every pool that names no Bottlerocket AMI (AL2023 is the
    docs/configuration.md's default ``amiType``)."""
    return sorted(k for k, p in configured_pools(result).items() if p.get("amiType") not in BOTTLEROCKET)


def renders_and_validates(result: ProgramRun, charts: list[str]) -> None:
    """Every Helm release of ``result`` (exactly ``charts``) renders, each object valid for the cluster's version."""
    version = f"{result.one(CLUSTER).inputs['version']}.0"
    shipped = kubernetes_validate.utils.all_versions()
    if version not in shipped:
        pytest.fail(f"kubernetes-validate ships no schema for {version} (it has {sorted(set(shipped))})")
    releases = result.of_type(RELEASE)
    assert sorted(r.inputs["chart"] for r in releases) == charts
    for release in releases:
        objects = render(release)
        assert objects, f"{release.inputs['chart']} rendered nothing"
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_every_helm_release_renders_and_validates_for_the_cluster_version(stack: ProgramRun) -> None:
    # NVIDIA's exporter is the default GPU metrics; the dev stack turns GPU metrics off
    metrics = json.loads(stack.config.get("eks-gpu:gpuMetrics", "{}")).get("exporter", "dcgm-exporter")
    exporter = ["dcgm-exporter"] if metrics == "dcgm-exporter" else []
    renders_and_validates(stack, ["cluster-autoscaler", *exporter, "nvidia-device-plugin"])


def test_autoscaler_service_account_is_the_one_pod_identity_names(stack: ProgramRun) -> None:
    association = stack.one(ASSOCIATION).inputs
    objects = manifests(stack, AUTOSCALER)
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert account["metadata"]["name"] == association["serviceAccount"]
    assert account["metadata"]["namespace"] == association["namespace"]
    deployment = only(objects, "Deployment")
    assert deployment["metadata"]["namespace"] == association["namespace"]
    assert pod_spec(deployment)["serviceAccountName"] == association["serviceAccount"]
    assert association["clusterName"] == stack.one(CLUSTER).inputs["name"]


def test_autoscaler_runs_on_the_system_nodes_and_tolerates_no_gpu_taint(stack: ProgramRun) -> None:
    spec = pod_spec(only(manifests(stack, AUTOSCALER), "Deployment"))
    assert spec["nodeSelector"] == {POOL_LABEL: SYSTEM}
    assert "affinity" not in spec
    groups = node_groups(stack)
    assert runs_on(spec, groups[SYSTEM])
    assert sorted(gpu_groups(stack)) == sorted(configured_pools(stack))
    assert all(node_taints(g) for g in gpu_groups(stack).values())  # every GPU pool is tainted
    for key, group in gpu_groups(stack).items():
        assert not runs_on(spec, group), key
        for taint in node_taints(group):
            assert not any(tolerates(t, taint) for t in spec.get("tolerations") or []), (key, taint)


def test_device_plugin_tolerates_exactly_the_taints_of_the_pools_it_runs_on(stack: ProgramRun) -> None:
    objects = manifests(stack, PLUGIN)
    spec = daemon_set(objects, PLUGIN_CONTAINER)
    taints: list[dict[str, str]] = []
    al2023 = {k: g for k, g in gpu_groups(stack).items() if g["amiType"].startswith("AL2023_")}
    assert sorted(al2023) == al2023_pools(stack)  # in the mixed stack fewer than all: it has a Bottlerocket pool
    for group in al2023.values():
        taints.extend(t for t in node_taints(group) if t not in taints)
    expected = [{**t, "operator": "Equal"} for t in taints]
    assert sorted(spec["tolerations"], key=canonical) == sorted(expected, key=canonical)
    for key, group in al2023.items():
        assert all(any(tolerates(tol, t) for tol in spec["tolerations"]) for t in node_taints(group)), key


def canonical(d: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(d.items())


def test_device_plugin_runs_on_the_al2023_gpu_nodes_only(stack: ProgramRun) -> None:
    objects = manifests(stack, PLUGIN)
    spec = daemon_set(objects, PLUGIN_CONTAINER)
    assert sorted(node_groups(stack)) == sorted([*configured_pools(stack), SYSTEM])
    on = [key for key, group in node_groups(stack).items() if runs_on(spec, group)]
    assert sorted(on) == al2023_pools(stack)


def test_device_plugin_chart_makes_nothing_else_that_runs(stack: ProgramRun) -> None:
    """GPU feature discovery and NFD stay off; the MPS control daemon the chart always adds runs nowhere."""
    objects = manifests(stack, PLUGIN)
    assert sorted(o["kind"] for o in objects) == ["DaemonSet", "DaemonSet"]
    mps = daemon_set(objects, MPS_CONTAINER)
    assert mps["nodeSelector"] == {"nvidia.com/mps.capable": "true"}
    for key, group in node_groups(stack).items():
        assert not runs_on(mps, group), key


# Hardening. Each finding names a container (or "pod") and a check; a workload must show exactly the
# findings listed for it, so a new weakness fails the test and so does a fixed one left on the list.

CHECKS = (
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "capabilities drop ALL",
    "allowPrivilegeEscalation false",
    "seccompProfile RuntimeDefault",
    "not privileged",
)


def findings(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """The checks a pod spec fails, as (container or ``pod``, check)."""
    pod_ctx = spec.get("securityContext") or {}
    out: set[tuple[str, str]] = set()
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        ctx = c.get("securityContext") or {}
        resources = c.get("resources") or {}
        privileged = ctx.get("privileged") is True
        seccomp = ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}
        passed = {
            "requests.cpu": "cpu" in resources.get("requests", {}),
            "requests.memory": "memory" in resources.get("requests", {}),
            "limits.cpu": "cpu" in resources.get("limits", {}),
            "limits.memory": "memory" in resources.get("limits", {}),
            "runAsNonRoot": ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True,
            "readOnlyRootFilesystem": ctx.get("readOnlyRootFilesystem") is True,
            "capabilities drop ALL": "ALL" in ctx.get("capabilities", {}).get("drop", []),
            # A privileged container may always escalate, and containerd gives it no seccomp filter.
            "allowPrivilegeEscalation false": ctx.get("allowPrivilegeEscalation") is False and not privileged,
            "seccompProfile RuntimeDefault": seccomp.get("type") == "RuntimeDefault" and not privileged,
            "not privileged": not privileged,
        }
        assert set(passed) == set(CHECKS)
        out |= {(c["name"], check) for check, ok in passed.items() if not ok}
    out |= {("pod", key) for key in ("hostPID", "hostIPC", "hostNetwork") if spec.get(key)}
    out |= {("pod", f"hostPath {v['hostPath']['path']}") for v in spec.get("volumes", []) if "hostPath" in v}
    return out


PLUGIN_NEEDS = {
    ("nvidia-device-plugin-ctr", "runAsNonRoot"): (
        "it creates its socket in the kubelet's root-owned /var/lib/kubelet/device-plugins and dials "
        "kubelet.sock there; it runs as root with no capability instead"
    ),
    ("pod", "hostPath /var/lib/kubelet/device-plugins"): "the kubelet's device-plugin registration folder",
    ("pod", "hostPath /var/run/cdi"): "where the plugin writes the CDI specs of the GPUs it hands out",
    ("pod", "hostPath /run/nvidia/mps"): "MPS sharing folder; templated unconditionally, no value removes it",
    ("pod", "hostPath /run/nvidia/mps/shm"): (
        "the MPS daemon's /dev/shm, mounted for its health checks; templated unconditionally, no value removes it"
    ),
}
"""What the device plugin cannot have, and why."""
MPS_FIXED = (
    "the chart hard-codes `privileged: true` for this container and no value reaches it; the MPS control "
    "daemon runs on no node here (nodeSelector nvidia.com/mps.capable=true, which nothing sets)"
)
MPS_NEEDS = {
    **{
        (container, check): MPS_FIXED
        for container in ("mps-control-daemon-mounts", "mps-control-daemon-ctr")
        for check in (
            "runAsNonRoot",
            "readOnlyRootFilesystem",
            "capabilities drop ALL",
            "allowPrivilegeEscalation false",
            "seccompProfile RuntimeDefault",
            "not privileged",
        )
    },
    ("pod", "hostPath /run/nvidia/mps"): "the MPS pipe and log folders it would share with GPU pods",
    ("pod", "hostPath /run/nvidia/mps/shm"): "the /dev/shm it would share with GPU pods",
}
"""What the MPS control daemon (always rendered by the device-plugin chart) cannot have, and why."""


def test_autoscaler_is_hardened(stack: ProgramRun) -> None:
    spec = pod_spec(only(manifests(stack, AUTOSCALER), "Deployment"))
    assert findings(spec) == set()
    (container,) = spec["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # the non-root user of the chart's own values.yaml example (9.59.0: "runAsUser: 65534")
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (65534, 65534)


def test_device_plugin_is_hardened_as_far_as_its_function_allows(stack: ProgramRun) -> None:
    objects = manifests(stack, PLUGIN)
    plugin = daemon_set(objects, PLUGIN_CONTAINER)
    assert findings(plugin) == set(PLUGIN_NEEDS)
    mps = daemon_set(objects, MPS_CONTAINER)
    assert findings(mps) == set(MPS_NEEDS)
    assert all(PLUGIN_NEEDS.values()) and all(MPS_NEEDS.values())


def test_release_values_are_plain_data(stack: ProgramRun) -> None:
    """What is rendered is what the program registers: no unresolved output reached the values."""
    for release in stack.of_type(RELEASE):
        assert "04da6b54-80e4-46f7-96ec-b56ff0331ba9" not in str(release.inputs["values"]), release.name


def test_priority_expander_config_names_the_node_groups_asgs(mixed: ProgramRun) -> None:
    objects = manifests(mixed, AUTOSCALER)
    configmap = only(objects, "ConfigMap", "-priority-expander")
    (container,) = pod_spec(only(objects, "Deployment"))["containers"]
    assert container["command"].count("--expander=priority") == 1
    names = {k: mixed.one(NODE_GROUP, f"-{k}-ng").outputs["nodeGroupName"] for k in PRIORITIES}
    assert yaml.safe_load(configmap["data"]["priorities"]) == {
        p: [f"^eks-{re.escape(names[k])}-"] for k, p in PRIORITIES.items()
    }


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_chart_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"chart nvidia-device-plugin 0\.0\.1 not found"):
        chart_dir("nvidia-device-plugin", "0.0.1")


def test_the_efa_chart_folder_spells_its_version_with_a_v() -> None:
    assert chart_dir("aws-efa-k8s-device-plugin", "0.5.30").name == "aws-efa-k8s-device-plugin-v0.5.30"


# --- GPU metrics: NVIDIA's dcgm-exporter ---------------------------------------------------

DCGM = "-dcgm-exporter-shared-release"
"""The release that reads the node monitoring agent's host engine (every pool here is amd64 and on its list)."""
DCGM_NEEDS = {
    ("exporter", "runAsNonRoot"): "root for the kubelet's root-owned pod-resources socket (which pod has which GPU)",
    ("exporter", "readOnlyRootFilesystem"): (
        "the exporter writes its runtime files; the chart enables a read-only root only with tmpfs volumes "
        "it does not template"
    ),
    ("pod", "hostPath /var/lib/kubelet/pod-resources"): "the kubelet's pod-resources API: which pod has which GPU",
}
"""What the dcgm-exporter DaemonSet cannot have, and why."""


@pytest.fixture(scope=program_scope)
def dcgm() -> ProgramRun:
    """:data:`MIXED_POOLS` with NVIDIA's exporter instead of CloudWatch, beside the node monitoring agent."""
    return run(config(MIXED_POOLS, gpuMetrics={"exporter": "dcgm-exporter"}))


def test_dcgm_exporter_renders_and_validates(dcgm: ProgramRun) -> None:
    renders_and_validates(dcgm, ["cluster-autoscaler", "dcgm-exporter", "nvidia-device-plugin"])


def test_dcgm_exporter_runs_on_every_gpu_node_and_reads_the_agents_host_engine(dcgm: ProgramRun) -> None:
    spec = daemon_set(manifests(dcgm, DCGM), "exporter")
    # the exporter picks nodes by instance type too (which types run the agent's engine): label them
    on = [
        key
        for key, group in node_groups(dcgm).items()
        for itype in group["instanceTypes"]
        if runs_on(spec, {**group, "labels": {**group["labels"], "node.kubernetes.io/instance-type": itype}})
    ]
    assert sorted(on) == sorted(MIXED_POOLS)
    taints: list[dict[str, str]] = []
    for group in gpu_groups(dcgm).values():
        taints.extend(t for t in node_taints(group) if t not in taints)
    assert sorted(spec["tolerations"], key=canonical) == sorted(
        ({**t, "operator": "Equal"} for t in taints), key=canonical
    )
    (container,) = spec["containers"]
    # the agent's host port on the node's IP, from the pod's own network
    assert container["args"][-2:] == ["-r", "$(NODE_IP):5555"] and "hostNetwork" not in spec
    # one DCGM per node: the CloudWatch add-on (and its own DCGM exporter) is not installed beside it
    assert "amazon-cloudwatch-observability" not in [a.inputs["addonName"] for a in dcgm.of_type("aws:eks/addon:Addon")]


def test_without_the_node_monitoring_agent_dcgm_exporter_embeds_its_own_host_engine() -> None:
    alone = run(config(MIXED_POOLS, gpuMetrics={"exporter": "dcgm-exporter"}, nodeMonitoring={"enabled": False}))
    spec = daemon_set(manifests(alone, "-dcgm-exporter-own-release"), "exporter")
    assert "-r" not in spec["containers"][0]["args"] and not spec.get("hostNetwork")
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"], "drop": ["ALL"]}


def test_dcgm_exporter_is_hardened_as_far_as_its_function_allows(dcgm: ProgramRun) -> None:
    spec = daemon_set(manifests(dcgm, DCGM), "exporter")
    assert findings(spec) == set(DCGM_NEEDS)
    # a DCGM client: DCGM's profiling module (which needs SYS_ADMIN) runs in the agent's engine
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"add": [], "drop": ["ALL"]}
    assert all(DCGM_NEEDS.values())
