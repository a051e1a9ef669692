"""What the program puts in the cluster: provider, namespace, device plugin, the GPU smoke-test pod."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from eks_gpu.offline import ProgramRun

from tests import aws_data
from tests.helpers import (
    CLUSTER,
    config,
    every_feature,
    gpu_pool,
    integral,
    node_group,
    problems_of,
    program_scope,
    run,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
PLUGIN = "-nvidia-release"
JOB = "kubernetes:batch/v1:Job"
CUSTOM_TAINTS = [
    {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
    {"key": "workload", "value": "training", "effect": "NO_EXECUTE"},
    {"key": "dedicated", "effect": "PREFER_NO_SCHEDULE"},
]
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
TRAINING_GPUS = aws_data.gpus("p5.48xlarge")[0]
"""The GPUs of one training node (AWS's catalogue): the smoke test asks for all of them."""
PLUGIN_CHART_VERSION = "0.19.0"
"""The ``nvidia-device-plugin`` chart by default (docs/configuration.md; ../shared/charts holds its sources)."""


def with_pod(pools: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    return config(pools or {"inference": gpu_pool(desiredSize=1)}, gpuPod={"enabled": True, **pod})


@pytest.fixture(scope=program_scope)
def mixed() -> ProgramRun:
    """AL2023 and Bottlerocket pools, custom taints, the pod on the training pool."""
    pools = {
        "inference": gpu_pool("g5.xlarge", maxSize=3),
        "training": gpu_pool("p5.48xlarge", desiredSize=1, maxSize=2, taints=CUSTOM_TAINTS),
        "rocket": gpu_pool("g6.xlarge", amiType="BOTTLEROCKET_x86_64_NVIDIA", maxSize=4),
    }
    return run(with_pod(pools, nodeGroup="training", gpus=TRAINING_GPUS))


def expected_toleration(taint: dict[str, str]) -> dict[str, str]:
    return {
        "key": taint["key"],
        "operator": "Equal",
        "value": taint.get("value", ""),
        "effect": K8S_EFFECT[taint["effect"]],
    }


def kubernetes_objects(result: ProgramRun) -> list[Any]:
    return [r for r in result.resources if r.type.startswith("kubernetes:") and r.type != RELEASE]


def test_every_kubernetes_object_is_valid_for_the_cluster_version(mixed: ProgramRun) -> None:
    version = mixed.one(CLUSTER).inputs["version"]
    objects = kubernetes_objects(mixed)
    assert {r.type for r in objects} == {
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ResourceQuota",
        "kubernetes:core/v1:LimitRange",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        JOB,
    }
    for r in objects:
        kubernetes_validate.validate(integral(r.inputs), f"{version}.0", strict=True)


def test_validation_would_catch_a_bad_manifest(mixed: ProgramRun) -> None:
    job = integral(mixed.one(JOB).inputs)
    spec = job["spec"]["template"]["spec"]
    spec["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": 1}  # the seed's mistake: not a string
    spec["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.35.0", strict=True)


def test_one_explicit_provider_for_every_kubernetes_resource(mixed: ProgramRun) -> None:
    (provider,) = mixed.of_type("pulumi:providers:kubernetes")
    own = json.loads(provider.inputs["kubeconfig"])
    shared = json.loads(mixed.one(CLUSTER).outputs["kubeconfigJson"])
    assert own == shared  # without aws:profile, the same get-token call pulumi-eks exports
    for r in [*kubernetes_objects(mixed), mixed.one(RELEASE, PLUGIN)]:
        assert r.provider == f"{provider.urn}::{provider.id}", r.name


def test_device_plugin_tolerates_every_taint_and_runs_on_al2023_gpu_nodes_only(mixed: ProgramRun) -> None:
    release = mixed.one(RELEASE, PLUGIN).inputs
    assert release["chart"] == "nvidia-device-plugin"
    assert release["version"] == PLUGIN_CHART_VERSION
    assert release["repositoryOpts"] == {"repo": "https://nvidia.github.io/k8s-device-plugin"}
    assert release["namespace"] == "kube-system"
    values = release["values"]
    taints = [*[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}] * 2, *CUSTOM_TAINTS]
    expected = []
    for t in map(expected_toleration, taints):
        if t not in expected:
            expected.append(t)
    assert values["tolerations"] == expected
    assert all(
        expected_toleration(t) in values["tolerations"]
        for ng in ("inference", "training", "rocket")
        for t in node_group_taints(mixed, ng)
    )
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]},
                {"key": "eks-gpu/node-group", "operator": "In", "values": ["inference", "training"]},
            ]
        }
    ]
    assert values["priorityClassName"] == "system-node-critical"
    assert mixed.outputs["devicePluginChartVersion"] == PLUGIN_CHART_VERSION


def node_group_taints(result: ProgramRun, key: str) -> list[dict[str, str]]:
    return [{k: v for k, v in t.items() if v is not None} for t in node_group(result, key).get("taints", [])]


def test_device_plugin_version_is_config() -> None:
    result = run(config(devicePlugin={"chartVersion": "0.18.2"}))
    assert result.one(RELEASE, PLUGIN).inputs["version"] == "0.18.2"
    assert result.outputs["devicePluginChartVersion"] == "0.18.2"


def test_no_device_plugin_when_every_pool_is_bottlerocket() -> None:
    pools = {
        "a": gpu_pool("g6.xlarge", amiType="BOTTLEROCKET_x86_64_NVIDIA", desiredSize=1),
        "b": gpu_pool("g5g.xlarge", amiType="BOTTLEROCKET_ARM_64_NVIDIA"),
    }
    result = run(with_pod(pools, nodeGroup="a"))
    assert [r.name for r in result.of_type(RELEASE) if r.name.endswith(PLUGIN)] == []
    assert result.outputs.get("devicePluginChartVersion") is None  # Pulumi drops null exports
    job = result.one(JOB)
    assert result.one("aws:eks/nodeGroup:NodeGroup", "-a-ng").urn in job.dependencies


def test_namespace_is_restricted_and_capped() -> None:
    result = run(config({"a": gpu_pool("g5.xlarge", maxSize=3), "b": gpu_pool("g5.12xlarge", maxSize=2)}))
    ns = result.one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert ns["name"] == "gpu-workloads"
    for mode in ("enforce", "audit", "warn"):
        assert ns["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert ns["labels"][f"pod-security.kubernetes.io/{mode}-version"] == "v1.35"
    quota = result.one("kubernetes:core/v1:ResourceQuota").inputs
    expected = 3 * aws_data.gpus("g5.xlarge")[0] + 2 * aws_data.gpus("g5.12xlarge")[0]
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": str(expected)}
    assert quota["metadata"]["namespace"] == "gpu-workloads"
    # requests for containers without any, and no default limit: a job that requests more than a
    # default limit (and sets none) would be refused at admission (tests/test_workloads.py runs them)
    (limits,) = result.one("kubernetes:core/v1:LimitRange").inputs["spec"]["limits"]
    assert limits == {"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "512Mi"}}
    assert network_policies(result) == {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
        "allow-same-namespace": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [{"to": [{"podSelector": {}}]}],
        },
        "allow-pod-identity": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}
            ],
        },
        "allow-egress": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        },
    }
    assert result.one(CLUSTER).inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
    assert result.outputs["gpuNamespace"] == "gpu-workloads"


def network_policies(result: ProgramRun) -> dict[str, Any]:
    """The namespace's NetworkPolicies: name -> spec."""
    found = result.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    return {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in found}


def test_egress_narrows_to_the_configured_cidrs_or_to_nothing() -> None:
    narrowed = network_policies(run(config(gpuNamespace={"egressCidrs": ["10.20.0.0/16", "52.216.0.0/15"]})))
    assert narrowed["allow-egress"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "52.216.0.0/15"}}]}
    ]
    closed = network_policies(run(config(gpuNamespace={"egressCidrs": []})))
    # DNS, the namespace's own pods and the Pod Identity agent stay reachable
    assert sorted(closed) == ["allow-dns", "allow-pod-identity", "allow-same-namespace", "default-deny"]


@pytest.mark.parametrize("level", ["baseline", "privileged"])
def test_the_pod_security_level_is_config(level: str) -> None:
    labels = run(config(gpuNamespace={"podSecurity": level})).one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert {k: v for k, v in labels["labels"].items() if not k.endswith("-version")} == {
        f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")
    }


def test_namespace_name_and_quota_from_config() -> None:
    result = run(config(gpuNamespace={"name": "ml", "gpuQuota": 0}))
    assert result.one("kubernetes:core/v1:Namespace").inputs["metadata"]["name"] == "ml"
    assert result.one("kubernetes:core/v1:ResourceQuota").inputs["spec"]["hard"] == {"requests.nvidia.com/gpu": "0"}


def test_pod_tolerates_its_pools_taints_and_selects_its_pool(mixed: ProgramRun) -> None:
    spec = pod_spec(mixed)
    assert spec["tolerations"] == [expected_toleration(t) for t in CUSTOM_TAINTS]
    assert spec["tolerations"] == [expected_toleration(t) for t in node_group_taints(mixed, "training")]
    assert spec["nodeSelector"] == {"eks-gpu/node-group": "training"}
    assert node_group(mixed, "training")["labels"]["eks-gpu/node-group"] == "training"
    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(TRAINING_GPUS)
    assert container["resources"]["requests"]["nvidia.com/gpu"] == str(TRAINING_GPUS)


def pod_spec(result: ProgramRun) -> dict[str, Any]:
    """The smoke test's pod spec (inside its Job)."""
    return result.one(JOB).inputs["spec"]["template"]["spec"]


def test_pod_is_hardened(mixed: ProgramRun) -> None:
    job = mixed.one(JOB).inputs
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    spec = pod["spec"]
    (c,) = spec["containers"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] >= 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["imagePullPolicy"] == "IfNotPresent"
    # docs/configuration.md's default gpuPod.image: CUDA 13.0 on the AMIs' R580 driver, a tag NVIDIA keeps
    assert c["image"] == "nvidia/cuda:13.0.2-base-ubuntu24.04" and c["command"] == ["nvidia-smi"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert "livenessProbe" not in c and "probes" in pod["metadata"]["annotations"]["eks-gpu/probes"]
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "volumes"):
        assert forbidden not in spec


def test_pod_waits_for_the_plugin_and_its_pool(mixed: ProgramRun) -> None:
    job = mixed.one(JOB)
    assert mixed.one(RELEASE, PLUGIN).urn in job.dependencies
    assert mixed.one("aws:eks/nodeGroup:NodeGroup", "-training-ng").urn in job.dependencies
    assert job.custom_timeouts == {"create": "20m"}
    assert mixed.outputs["gpuSmokeTestJob"] == job.outputs["metadata"]["name"]


def test_a_failed_smoke_test_is_replaced_by_the_next_update_not_left_to_wedge_it(mixed: ProgramRun) -> None:
    job = mixed.one(JOB)
    # pulumi-kubernetes' await logic: an unready (failed, timed-out) Job with this annotation is
    # replaced on the next update instead of failing it; the pod template does not carry it.
    assert job.inputs["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    assert "pulumi.com/replaceUnready" not in job.inputs["spec"]["template"]["metadata"]["annotations"]
    assert "pulumi.com/skipAwait" not in job.inputs["metadata"]["annotations"]  # a first up still reports it
    # the URN `pulumi up --replace` takes to rerun it on purpose
    assert mixed.outputs["gpuSmokeTestUrn"] == job.urn


def test_pool_scheduling_outputs_are_what_a_workload_copies(mixed: ProgramRun) -> None:
    out = mixed.outputs["gpuNodeGroups"]["training"]
    assert out["nodeSelector"] == pod_spec(mixed)["nodeSelector"]
    assert out["tolerations"] == pod_spec(mixed)["tolerations"]


def test_no_pod_unless_enabled() -> None:
    result = run(config())
    assert result.of_type(JOB) == [] and result.outputs.get("gpuSmokeTestJob") is None


def test_pod_validation() -> None:
    two = {"a": gpu_pool(desiredSize=1), "b": gpu_pool(desiredSize=1)}
    assert "is required with several pools" in problems_of(with_pod(two))["eks-gpu:gpuPod.nodeGroup"]
    assert (
        "'c' is not a pool; the pools are: a, b"
        in problems_of(with_pod(two, nodeGroup="c"))["eks-gpu:gpuPod.nodeGroup"]
    )
    per_node = aws_data.gpus("g5.xlarge")[0]
    found = problems_of(with_pod(gpus=per_node + 1))
    assert f"do not fit on one node of pool inference ({per_node} per node)" in found["eks-gpu:gpuPod.gpus"]
    found = problems_of(with_pod({"inference": gpu_pool(desiredSize=0)}) | {"eks-gpu:autoscaler": {"enabled": False}})
    assert "pulumi up would wait for it until its timeout" in found["eks-gpu:gpuNodeGroups.inference.desiredSize"]
    found = problems_of(with_pod() | {"eks-gpu:gpuNamespace": {"gpuQuota": 0}})
    assert "below the pod's 1 GPUs" in found["eks-gpu:gpuNamespace.gpuQuota"]
    assert "is not pinned" in problems_of(with_pod(image="nvidia/cuda:latest"))["eks-gpu:gpuPod.image"]


def test_the_provider_authenticates_with_the_deployers_profile() -> None:
    result = run(config() | {"aws:profile": "ml-admin"})
    (provider,) = result.of_type("pulumi:providers:kubernetes")
    args = json.loads(provider.inputs["kubeconfig"])["users"][0]["user"]["exec"]["args"]
    cluster = result.one(CLUSTER)
    assert args[args.index("--cluster-name") + 1] == cluster.inputs["name"]
    assert args[args.index("--profile") + 1] == "ml-admin"
    assert cluster.inputs["providerCredentialOpts"] == {"profileName": "ml-admin"}
    # the kubeconfig the stack exports stays profile-free: it is handed to other people
    shared = json.loads(result.outputs["kubeconfig"])["users"][0]["user"]["exec"]["args"]
    assert "--profile" not in shared
    assert (
        "--profile"
        not in json.loads(run(config()).of_type("pulumi:providers:kubernetes")[0].inputs["kubeconfig"])["users"][0][
            "user"
        ]["exec"]["args"]
    )


def test_every_in_cluster_feature_uses_the_one_provider() -> None:
    """With every chart and object the program can install, none falls back to ~/.kube/config."""
    result = run(every_feature())
    (provider,) = result.of_type("pulumi:providers:kubernetes")
    releases = result.of_type(RELEASE)
    assert sorted(r.inputs["chart"] for r in releases) == [
        "aws-efa-k8s-device-plugin",
        "cluster-autoscaler",
        "dcgm-exporter",
        "nvidia-device-plugin",
    ]
    for r in [*kubernetes_objects(result), *releases]:
        assert r.provider == f"{provider.urn}::{provider.id}", r.name
