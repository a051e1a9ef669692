"""The keys that make no sense beside ``eks-gpu:existingCluster``: each belongs to the cluster, which
the program reads and never changes (README, "GPU pools on an existing cluster")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eks_gpu.config.models import StackConfig
from eks_gpu.config.problems import Problem, key_path

CLUSTER_ADDONS = ("vpc-cni", "kube-proxy", "coredns")
"""The cluster's own EKS add-ons: an existing cluster runs them as its owner set them up."""

OWNED_BY_THE_CLUSTER: Mapping[str, str] = {
    "clusterName": "the cluster's name is eks-gpu:existingCluster.name",
    "kubernetesVersion": "the cluster's version is read from it, and the program never upgrades it",
    "vpc": "the VPC is the cluster's; name the nodes' subnets in eks-gpu:existingCluster.subnetIds",
    "endpointPublicAccessCidrs": "the API endpoint is the cluster's: the program does not change who reaches it",
    "endpointPrivateAccessCidrs": "the API endpoint is the cluster's: the program adds no security group rule to it",
    "endpointPrivateAccessSecurityGroupIds": "the API endpoint is the cluster's: the program adds no security "
    "group rule to it",
    "clusterAdmins": "the cluster's access entries are its owner's: the program creates none for people",
    "clusterCreatorAdmin": "it applies when a cluster is created, and this one exists",
}
"""Stack-file key -> why it is refused beside ``existingCluster`` when set to anything but its default."""


def _default(key: str) -> Any:
    """The key's default as the stack file would spell it (tuples as lists), or a marker without one."""
    for field in StackConfig.model_fields.values():
        if field.alias == key:
            value = field.get_default(call_default_factory=True)
            return list(value) if isinstance(value, tuple) else value
    return _REQUIRED


_REQUIRED = object()


def existing_cluster_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every key of ``data`` (a stack's ``eks-gpu`` keys) that ``existingCluster`` excludes, each named
    with why: the cluster's own settings, pins of its own add-ons, a second default StorageClass."""
    problems = []
    for key, why in OWNED_BY_THE_CLUSTER.items():
        if key in data and data[key] != _default(key):
            problems.append(Problem(key_path(key), f"cannot be set with eks-gpu:existingCluster: {why}"))
    metrics = data.get("gpuMetrics")
    cloudwatch = isinstance(metrics, Mapping) and metrics.get("exporter") == "cloudwatch"
    if "logRetentionDays" in data and data["logRetentionDays"] != _default("logRetentionDays") and not cloudwatch:
        problems.append(
            Problem(
                key_path("logRetentionDays"),
                "cannot be set with eks-gpu:existingCluster unless gpuMetrics.exporter is cloudwatch: the "
                "control-plane log group is the cluster's, so only the Container Insights log groups would use it",
            )
        )
    addons = data.get("addons")
    for name in CLUSTER_ADDONS:
        if isinstance(addons, Mapping) and name in addons:
            problems.append(
                Problem(
                    key_path("addons", name),
                    f"cannot be set with eks-gpu:existingCluster: {name} is one of the cluster's own add-ons, "
                    "which the program never installs, updates or removes",
                )
            )
    autoscaler = data.get("autoscaler")
    # under Karpenter no autoscaler is installed and its keys are refused (eks_gpu.config.karpenter)
    if data.get("provisioner") != "karpenter" and not (isinstance(autoscaler, Mapping) and "enabled" in autoscaler):
        problems.append(
            Problem(
                key_path("autoscaler", "enabled"),
                "must be set with eks-gpu:existingCluster, because the program cannot see whether the cluster "
                "runs a Cluster Autoscaler and EKS tags every managed node group's Auto Scaling group for one to "
                "discover: set it to false if the cluster runs one (it scales the new pools too: they carry the "
                "same discovery and node-template tags), or to true to install one that scales only this "
                "stack's node groups, named eks-gpu-cluster-autoscaler so it stands beside any other",
            )
        )
    storage = data.get("storage")
    if isinstance(storage, Mapping) and storage.get("defaultStorageClass") is True:
        problems.append(
            Problem(
                key_path("storage", "defaultStorageClass"),
                "cannot be true with eks-gpu:existingCluster: a new default StorageClass changes what every "
                "claim of the cluster without a class gets (and a cluster has one default already); the "
                "program makes none there",
            )
        )
    return problems
