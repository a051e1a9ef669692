"""The namespace for GPU workloads: its Pod Security level, a GPU quota, default requests, and
network policies that let ordinary jobs work and nothing else in.

What a user's pod meets here (docs/operations.md, "Running your workloads"):

- Pod Security at the configured level (``restricted`` by default), pinned to the cluster's version.
- A LimitRange that gives a container without requests ``DEFAULT_REQUEST`` and sets **no default
  limits**: a LimitRange's ``default`` limit is applied to every container that sets none, and a
  request above it is then refused at admission ("must be less than or equal to memory limit";
  Kubernetes ``plugin/pkg/admission/limitranger/admission.go`` defaults, core validation refuses).
  A GPU job sizes itself from its pool's allocatable, which no single default fits.
- NetworkPolicies: everything denied, then allowed: DNS to the cluster's DNS, all traffic between the
  namespace's pods (torchrun/NCCL rendezvous, a notebook's kernels, a server and its clients), the
  Pod Identity agent, and egress to ``egress_cidrs`` (default anywhere: weights, datasets, pip).
  Ingress from other namespaces stays denied. The VPC CNI enforces them (``enable_network_policy``).

Every object is created through the stack's explicit Kubernetes provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

DEFAULT_REQUEST = {"cpu": "250m", "memory": "512Mi"}
"""What a container without requests asks for: enough for the scheduler to count it, no limit."""
GPU_QUOTA = "requests.nvidia.com/gpu"
DNS_PEERS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
"""The cluster's DNS: the CoreDNS add-on's pods (label ``k8s-app: kube-dns``) in ``kube-system``
(the namespace label the API server sets on every namespace)."""
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
POD_IDENTITY_AGENT = "169.254.170.23/32"
"""Where the EKS Pod Identity agent serves credentials to pods (EKS User Guide, "pod-id-agent-setup"),
on port 80: a job with a Pod Identity role (S3 datasets) reaches it even with ``egressCidrs: []``."""


@dataclass(frozen=True)
class GpuNamespaceArgs:
    """The namespace's name, its GPU cap, and how to reach the cluster."""

    name: str
    gpu_quota: int
    kubernetes_version: str
    """Pins the Pod Security standard's version (``v1.35``)."""
    pod_security: str
    """``restricted``, ``baseline`` or ``privileged``: enforced, audited and warned on."""
    egress_cidrs: Sequence[str]
    """Where pods may send beyond DNS, each other and the Pod Identity agent; empty: nowhere."""
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()
    """What turns the namespace's objects into AWS resources (the EBS CSI driver and its StorageClass):
    the namespace is created after and, which matters, deleted before them, so the driver still runs
    to delete its claims' volumes."""


def psa_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """Pod Security Admission labels: ``level`` enforced, audited and warned on, pinned to the
    standard of ``kubernetes_version`` (``v1.35``) so an upgrade does not change what is admitted."""
    return {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "audit", "warn")
        for suffix, value in (("", level), ("-version", f"v{kubernetes_version}"))
    }


def network_policies(egress_cidrs: Sequence[str]) -> dict[str, Any]:
    """Policy name -> spec. Kubernetes unions what policies allow: deny everything, then allow each need.

    A pod selected by a policy with ``Egress`` in its types may send only what some egress rule allows,
    likewise for ``Ingress`` (Kubernetes API, ``NetworkPolicySpec``).
    """
    everyone: dict[str, Any] = {}
    policies: dict[str, Any] = {
        "default-deny": {"podSelector": everyone, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": everyone,
            "policyTypes": ["Egress"],
            "egress": [{"to": [DNS_PEERS], "ports": DNS_PORTS}],
        },
        # Distributed jobs talk pod to pod on ports they choose at run time (NCCL's sockets).
        "allow-same-namespace": {
            "podSelector": everyone,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": everyone}]}],
            "egress": [{"to": [{"podSelector": everyone}]}],
        },
        "allow-pod-identity": {
            "podSelector": everyone,
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]}],
        },
    }
    if egress_cidrs:
        policies["allow-egress"] = {
            "podSelector": everyone,
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in egress_cidrs]}],
        }
    return policies


class GpuNamespace(pulumi.ComponentResource):
    """Namespace, ResourceQuota on GPUs, LimitRange of default requests, NetworkPolicies."""

    namespace: k8s.core.v1.Namespace
    name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:workloads:GpuNamespace", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": args.name, "labels": psa_labels(args.pod_security, args.kubernetes_version)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.name = self.namespace.metadata.apply(lambda m: m.name or args.name)
        # They name the namespace by its string: only depends_on puts them after it.
        inside = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.namespace])
        k8s.core.v1.ResourceQuota(
            f"{name}-gpu-quota",
            metadata={"name": "gpu-quota", "namespace": args.name},
            spec={"hard": {GPU_QUOTA: str(args.gpu_quota)}},
            opts=inside,
        )
        # Manifests are written as Kubernetes spells them (camelCase), as kubectl would take them.
        limits: Any = {"limits": [{"type": "Container", "defaultRequest": DEFAULT_REQUEST}]}
        k8s.core.v1.LimitRange(
            f"{name}-defaults",
            metadata={"name": "container-defaults", "namespace": args.name},
            spec=limits,
            opts=inside,
        )
        for policy, spec in network_policies(args.egress_cidrs).items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata={"name": policy, "namespace": args.name},
                spec=spec,
                opts=inside,
            )
        self.register_outputs({"name": self.name})
