"""GPU metrics from NVIDIA's ``dcgm-exporter`` chart, for teams that run their own Prometheus.

(The default, the ``amazon-cloudwatch-observability`` add-on, is in :mod:`components.build.addons`.)
The exporter runs on every GPU node of every pool and tolerates their taints. DCGM runs once per
node: with the node monitoring agent installed, the exporter reads that agent's ``nv-hostengine``
(``-r localhost:5555``, on the host network, where the agent's ``dcgm-server`` listens: its chart
README, "DCGM host engine") instead of embedding a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.build.helm import release
from components.build.scheduling import gpu_pools_affinity, tolerations
from components.config import Taint
from components.design import GpuMetricsDesign

CHART = "dcgm-exporter"
REPOSITORY = "https://nvidia.github.io/dcgm-exporter/helm-charts"
"""NVIDIA's ``dcgm-exporter`` Helm repository."""
NAMESPACE = "kube-system"
COUNTERS = ["-f", "/etc/dcgm-exporter/default-counters.csv"]
"""The chart's default counter set (utilisation, memory, temperature, power, XID errors, profiling)."""
HOST_ENGINE = "localhost:5555"
"""Where the node monitoring agent's ``dcgm-server`` serves DCGM on each GPU node."""
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "512Mi"}}
"""The chart's own defaults, written out so the hardening test holds them."""
SECURITY_CONTEXT = {
    "runAsNonRoot": False,
    "runAsUser": 0,
    "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]},
    "allowPrivilegeEscalation": False,
}
"""The chart's default: root with ``SYS_ADMIN`` only, which DCGM's profiling metrics (``DCGM_FI_PROF_*``,
SM and tensor-core activity) need; everything else dropped, no privilege escalation."""
POD_SECURITY_CONTEXT = {"seccompProfile": {"type": "RuntimeDefault"}}


@dataclass(frozen=True)
class DcgmExporterArgs:
    """Where the exporter runs and what it reads."""

    design: GpuMetricsDesign
    pools: Sequence[str]
    """Every GPU pool: each has NVIDIA GPUs to read."""
    taints: Sequence[Taint]
    """Every taint of those pools: it tolerates them all."""
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()
    """The node monitoring agent, whose host engine the exporter reads."""


def values(args: DcgmExporterArgs) -> dict[str, Any]:
    """The chart values: on every GPU node, one DCGM per node, a ServiceMonitor if asked for."""
    shared = args.design.shared_host_engine
    return {
        "arguments": [*COUNTERS, *(["-r", HOST_ENGINE] if shared else [])],
        "hostNetwork": shared,
        "tolerations": tolerations(args.taints),
        "affinity": gpu_pools_affinity(args.pools),
        "resources": RESOURCES,
        "securityContext": SECURITY_CONTEXT,
        "podSecurityContext": POD_SECURITY_CONTEXT,
        "serviceMonitor": {"enabled": args.design.service_monitor},
    }


class DcgmExporter(pulumi.ComponentResource):
    """The ``dcgm-exporter`` Helm release."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: DcgmExporterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:gpu_metrics:DcgmExporter", name, None, opts)
        self.release = release(
            name,
            chart=CHART,
            version=args.design.chart_version,
            repository=REPOSITORY,
            namespace=NAMESPACE,
            values=values(args),
            provider=args.provider,
            parent=self,
            depends_on=args.depends_on,
        )
        self.register_outputs({"chartVersion": args.design.chart_version})
