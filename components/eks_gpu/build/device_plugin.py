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

from eks_gpu.build.helm import release
from eks_gpu.build.scheduling import gpu_pools_affinity, tolerations
from eks_gpu.config import Taint

CHART = "nvidia-device-plugin"
REPOSITORY = "https://nvidia.github.io/k8s-device-plugin"
"""NVIDIA's ``k8s-device-plugin`` Helm repository."""
NAMESPACE = "kube-system"
PRIORITY_CLASS = "system-node-critical"
"""The plugin is what makes a GPU node a GPU node: it is never the pod that gets evicted."""
RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}}
"""Requests and limits of every container the chart runs (chart key ``resources``). The plugin idles between
kubelet calls and NVML health events: one user measured 1m CPU and 25Mi memory, and saw OOM kills under a
tighter limit (zalando-incubator/kubernetes-on-aws#7065). The CPU request is the default, and the CPU limit
the suggestion, of AWS's own device-plugin chart for EFA (aws-efa-k8s-device-plugin ``values.yaml``); the memory
request is about 2.5 times the measured use, the limit twice that. An OOM-killed plugin takes ``nvidia.com/gpu``
off its node until it restarts, so memory is the number not to trim."""
POD_SECURITY_CONTEXT = {"seccompProfile": {"type": "RuntimeDefault"}}
"""The pod's security context (chart key ``podSecurityContext``): the runtime's default seccomp filter, which
allows the socket and ioctl calls the plugin makes. It stays root: see :data:`SECURITY_CONTEXT`."""
SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "privileged": False,
}
"""The plugin container's security context (chart key ``securityContext``). Setting it replaces the chart's
own default (no privilege escalation, all capabilities dropped), so both are repeated here. The plugin writes
only to its host-path mounts (its socket under ``/var/lib/kubelet/device-plugins``, ``/var/run/cdi``, the MPS
folders), so its root filesystem is read-only. It runs as root, without capabilities: the kubelet's
device-plugin folder and socket belong to root."""
MPS = {"enableHostPID": False}
"""The chart always adds an MPS control daemon DaemonSet (privileged, its containers fixed by the templates).
It lands only on nodes labelled ``nvidia.com/mps.capable=true``, which only GPU feature discovery sets, and
only for MPS sharing: both are off here, so it runs nowhere. Without the host's PID namespace it could not
see host processes even if it did."""


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
    """The chart values: tolerations from the pools' taints, affinity to the pools' GPU nodes, requests and
    limits, a read-only, capability-less plugin container."""
    return {
        "tolerations": tolerations(args.taints),
        "affinity": gpu_pools_affinity(args.pools),
        "priorityClassName": PRIORITY_CLASS,
        "resources": RESOURCES,
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "securityContext": SECURITY_CONTEXT,
        "mps": MPS,
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


class DevicePlugin(pulumi.ComponentResource):
    """The ``nvidia-device-plugin`` Helm release."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: DevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:device_plugin:DevicePlugin", name, None, opts)
        self.release = release(
            name,
            chart=CHART,
            version=args.chart_version,
            repository=REPOSITORY,
            namespace=NAMESPACE,
            values=values(args),
            provider=args.provider,
            parent=self,
        )
        self.register_outputs({"chartVersion": args.chart_version})
