"""The NVIDIA device plugin, from NVIDIA's Helm chart: without it no node has ``nvidia.com/gpu``.

AL2023 NVIDIA AMIs carry the driver and container toolkit but not the plugin; Bottlerocket NVIDIA
AMIs have it built in, so it runs only on the AL2023 pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.build.scheduling import gpu_pools_affinity, tolerations
from components.config import Taint

CHART = "nvidia-device-plugin"
REPOSITORY = "https://nvidia.github.io/k8s-device-plugin"
"""NVIDIA's ``k8s-device-plugin`` Helm repository."""
NAMESPACE = "kube-system"
PRIORITY_CLASS = "system-node-critical"
"""The plugin is what makes a GPU node a GPU node: it is never the pod that gets evicted."""


@dataclass(frozen=True)
class DevicePluginArgs:
    """Where the plugin runs and what it tolerates."""

    chart_version: str
    pools: Sequence[str]
    """The pools it runs on (node affinity)."""
    taints: Sequence[Taint]
    """Every taint of every GPU pool: it tolerates them all."""
    provider: k8s.Provider


def values(args: DevicePluginArgs) -> dict[str, Any]:
    """The chart values: tolerations from the pools' taints, affinity to the pools' GPU nodes."""
    return {
        "tolerations": tolerations(args.taints),
        "affinity": gpu_pools_affinity(args.pools),
        "priorityClassName": PRIORITY_CLASS,
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


class DevicePlugin(pulumi.ComponentResource):
    """The ``nvidia-device-plugin`` Helm release."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: DevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:device_plugin:DevicePlugin", name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            chart=CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=NAMESPACE,
            values=values(args),
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"chartVersion": args.chart_version})
