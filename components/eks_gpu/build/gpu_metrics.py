"""GPU metrics from NVIDIA's ``dcgm-exporter`` chart, for teams that run their own Prometheus.

(The CloudWatch add-on, the other exporter, is in :mod:`eks_gpu.build.addons`.) One DCGM host
engine per GPU node: where the node monitoring agent runs its ``dcgm-server`` (the engine its health
verdicts, and so node auto-repair, come from), the exporter is a client of that engine; on every
other GPU node it embeds its own. So the chart is installed twice, one release per mode, each on
exactly its nodes by pool and instance type (the design decides which types are which, from the
agent chart's placement: :mod:`eks_gpu.facts.node_monitoring`):

- ``shared`` (``kube-system``): ``-r $(NODE_IP):5555``, the ``dcgm-server`` pod's host port on the
  node's own IP (downward API ``status.hostIP``). A DCGM client over TCP: no host network, no
  capability (the profiling module runs in the agent's engine).
- ``own`` (namespace ``dcgm-exporter``): DCGM embedded in the exporter, root with ``SYS_ADMIN`` only,
  which the profiling metrics (``DCGM_FI_PROF_*``) need.

The chart gives its metrics ConfigMap and Role fixed names, so two releases need two namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from eks_gpu.build.helm import release
from eks_gpu.build.scheduling import gpu_pools_affinity, tolerations
from eks_gpu.config import Taint
from eks_gpu.design import GpuMetricsDesign
from eks_gpu.facts.node_monitoring import HOST_ENGINE_PORT

CHART = "dcgm-exporter"
REPOSITORY = "https://nvidia.github.io/dcgm-exporter/helm-charts"
"""NVIDIA's ``dcgm-exporter`` Helm repository."""
SHARED, OWN = "shared", "own"
"""The two modes: read the node monitoring agent's host engine, or embed one."""
NAMESPACES = {SHARED: "kube-system", OWN: "dcgm-exporter"}
"""Each mode's namespace (the chart's fixed object names collide in one)."""
COUNTERS = ["-f", "/etc/dcgm-exporter/default-counters.csv"]
"""The chart's default counter set (utilisation, memory, temperature, power, XID errors, profiling)."""
NODE_IP = "NODE_IP"
NODE_IP_ENV = {"name": NODE_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
"""The node's IP, which the kubelet substitutes for ``$(NODE_IP)`` in the container's arguments."""
HOST_ENGINE = f"$({NODE_IP}):{HOST_ENGINE_PORT}"
"""The agent's ``dcgm-server`` on this node: its ``hostPort`` is reachable on the node's IP from a pod."""
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "512Mi"}}
"""The chart's own defaults, written out so the hardening test holds them."""
SECURITY_CONTEXT = {
    SHARED: {
        "runAsNonRoot": False,
        "runAsUser": 0,
        # Helm merges maps into the chart's defaults: an empty list, not an absent key, removes its SYS_ADMIN.
        "capabilities": {"add": [], "drop": ["ALL"]},
        "allowPrivilegeEscalation": False,
    },
    OWN: {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]},
        "allowPrivilegeEscalation": False,
    },
}
"""Root in both, for the kubelet's root-owned pod-resources socket (which pod has which GPU); only the
embedded engine gets ``SYS_ADMIN``, the chart's default, for DCGM's profiling metrics (SM and
tensor-core activity). Everything else dropped, no privilege escalation."""
POD_SECURITY_CONTEXT = {"seccompProfile": {"type": "RuntimeDefault"}}
PRIVILEGED_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged"}
"""The embedded exporter's host path and ``SYS_ADMIN`` are admitted by no lower Pod Security level."""


@dataclass(frozen=True)
class DcgmExporterArgs:
    """Where the exporters run and what they read."""

    design: GpuMetricsDesign
    taints: Mapping[str, Sequence[Taint]]
    """Pool -> its taints: each release tolerates those of the pools it runs on."""
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()
    """The node monitoring agent, whose host engine the shared exporter reads."""


def nodes(design: GpuMetricsDesign, mode: str) -> Mapping[str, tuple[str, ...]]:
    """Pool -> the instance types of its nodes that the ``mode`` exporter runs on."""
    return design.shared_engine if mode == SHARED else design.own_engine


def values(args: DcgmExporterArgs, mode: str) -> dict[str, Any]:
    """The chart values of the ``mode`` release: its nodes, its DCGM, a ServiceMonitor if asked for."""
    placement = nodes(args.design, mode)
    shared = mode == SHARED
    return {
        "arguments": [*COUNTERS, *(["-r", HOST_ENGINE] if shared else [])],
        "extraEnv": [NODE_IP_ENV] if shared else [],
        "hostNetwork": False,
        "tolerations": tolerations(t for pool in placement for t in args.taints[pool]),
        "affinity": gpu_pools_affinity(sorted(placement), sorted({t for types in placement.values() for t in types})),
        "resources": RESOURCES,
        "securityContext": SECURITY_CONTEXT[mode],
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "serviceMonitor": {"enabled": args.design.service_monitor},
    }


class DcgmExporter(pulumi.ComponentResource):
    """The ``dcgm-exporter`` Helm releases: ``shared`` and ``own``, each where it has nodes."""

    shared: k8s.helm.v3.Release | None
    own: k8s.helm.v3.Release | None
    namespace: k8s.core.v1.Namespace | None
    """The embedded exporter's namespace."""

    def __init__(self, name: str, args: DcgmExporterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:gpu_metrics:DcgmExporter", name, None, opts)
        design = args.design
        self.shared = self._release(name, args, SHARED, args.depends_on) if design.shared_engine else None
        self.namespace = self.own = None
        if design.own_engine:
            self.namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={"name": NAMESPACES[OWN], "labels": PRIVILEGED_NAMESPACE_LABELS},
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
            self.own = self._release(name, args, OWN, [self.namespace])
        self.register_outputs({"chartVersion": design.chart_version})

    def _release(
        self, name: str, args: DcgmExporterArgs, mode: str, depends_on: Sequence[pulumi.Resource]
    ) -> k8s.helm.v3.Release:
        return release(
            f"{name}-{mode}",
            chart=CHART,
            version=args.design.chart_version,
            repository=REPOSITORY,
            namespace=NAMESPACES[mode],
            values=values(args, mode),
            provider=args.provider,
            parent=self,
            depends_on=depends_on,
            # Until the split into two releases the one release (reading the agent's engine in kube-system)
            # was <name>-release: the same release, renamed, so Helm's fixed-name ConfigMap and Role are
            # not claimed twice (a new release beside the old one fails on "invalid ownership metadata").
            aliases=[pulumi.Alias(name=f"{name}-release")] if mode == SHARED else [],
        )
