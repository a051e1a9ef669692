"""The namespace for GPU workloads: restricted Pod Security, a GPU quota, default limits, no traffic.

Every object is created through the stack's explicit Kubernetes provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PSA_LEVEL = "restricted"
"""Pod Security Admission level enforced, audited and warned on in the namespace."""
DEFAULT_REQUEST = {"cpu": "250m", "memory": "512Mi"}
"""What a container without requests asks for."""
DEFAULT_LIMIT = {"cpu": "2", "memory": "4Gi"}
"""What a container without limits may use."""
GPU_QUOTA = "requests.nvidia.com/gpu"


@dataclass(frozen=True)
class GpuNamespaceArgs:
    """The namespace's name, its GPU cap, and how to reach the cluster."""

    name: str
    gpu_quota: int
    kubernetes_version: str
    """Pins the Pod Security standard's version (``v1.35``)."""
    provider: k8s.Provider


def psa_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """Pod Security Admission labels: ``level`` enforced, audited and warned on, pinned to the
    standard of ``kubernetes_version`` (``v1.35``) so an upgrade does not change what is admitted."""
    return {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "audit", "warn")
        for suffix, value in (("", level), ("-version", f"v{kubernetes_version}"))
    }


class GpuNamespace(pulumi.ComponentResource):
    """Namespace, ResourceQuota on GPUs, LimitRange, default-deny NetworkPolicy."""

    namespace: k8s.core.v1.Namespace
    name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:workloads:GpuNamespace", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": args.name, "labels": psa_labels(PSA_LEVEL, args.kubernetes_version)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.name = self.namespace.metadata.apply(lambda m: m.name or args.name)
        inside = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.namespace])
        k8s.core.v1.ResourceQuota(
            f"{name}-gpu-quota",
            metadata={"name": "gpu-quota", "namespace": args.name},
            spec={"hard": {GPU_QUOTA: str(args.gpu_quota)}},
            opts=inside,
        )
        # Manifests are written as Kubernetes spells them (camelCase), as kubectl would take them.
        limits: Any = {"limits": [{"type": "Container", "defaultRequest": DEFAULT_REQUEST, "default": DEFAULT_LIMIT}]}
        k8s.core.v1.LimitRange(
            f"{name}-defaults",
            metadata={"name": "container-defaults", "namespace": args.name},
            spec=limits,
            opts=inside,
        )
        deny_all: Any = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={"name": "default-deny", "namespace": args.name},
            spec=deny_all,
            opts=inside,
        )
        self.register_outputs({"name": self.name})
