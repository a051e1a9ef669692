"""The EFA device plugin, from AWS's ``eks-charts``: it advertises ``vpc.amazonaws.com/efa`` on EFA nodes.

Only on the EFA pools' nodes (selected by their ``eks-gpu/efa`` label), tolerating their taints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from eks_gpu.build.helm import release
from eks_gpu.build.scheduling import tolerations
from eks_gpu.config import EFA_LABEL, Taint
from eks_gpu.facts.registries import addon_registries

CHART = "aws-efa-k8s-device-plugin"
REPOSITORY = "https://aws.github.io/eks-charts"
"""AWS's ``eks-charts`` Helm repository."""
CHART_VERSION = "v0.5.30"
"""The chart's version as the repository spells it (with its ``v``)."""
NAMESPACE = "kube-system"
RESOURCES = {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
"""The chart's requests, and limits for a daemon that only registers devices with the kubelet."""
IMAGE_PATH = "eks/aws-efa-k8s-device-plugin"
"""The image's repository in EKS's add-on registries. The chart's default is the us-west-2 registry
(its ``values.yaml``): a node elsewhere would pull across regions, and one in another partition
(China, GovCloud) or without internet egress (ECR VPC endpoints) could not pull at all."""


def image_repository(region: str) -> str:
    """The plugin's image repository in ``region``'s EKS add-on registry (EKS User Guide, "add-ons-images")."""
    return f"{addon_registries().registry(region)}/{IMAGE_PATH}"


@dataclass(frozen=True)
class EfaDevicePluginArgs:
    """What the plugin tolerates."""

    taints: Sequence[Taint]
    """Every taint of every EFA pool."""
    region: str
    """The stack's region: the image comes from its EKS registry."""
    provider: k8s.Provider


def values(args: EfaDevicePluginArgs) -> dict[str, Any]:
    """The chart values: the image from the stack's region, the EFA pools' nodes only, their taints
    tolerated, requests and limits (the image's tag stays the chart's)."""
    return {
        "image": {"repository": image_repository(args.region)},
        "nodeSelector": {EFA_LABEL: "true"},
        "tolerations": tolerations(args.taints),
        "resources": RESOURCES,
    }


class EfaDevicePlugin(pulumi.ComponentResource):
    """The ``aws-efa-k8s-device-plugin`` Helm release."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: EfaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:efa_device_plugin:EfaDevicePlugin", name, None, opts)
        self.release = release(
            name,
            chart=CHART,
            version=CHART_VERSION,
            repository=REPOSITORY,
            namespace=NAMESPACE,
            values=values(args),
            provider=args.provider,
            parent=self,
        )
        self.register_outputs({"chartVersion": CHART_VERSION})
