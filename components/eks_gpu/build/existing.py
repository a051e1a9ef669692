"""An existing EKS cluster as the stack's components see it: no resource, only what was read.

It stands where :class:`eks_gpu.build.cluster.Cluster` stands in a stack that builds its cluster,
with the same attributes, so node groups, add-ons, Pod Identity roles and the Kubernetes provider are
built the same way on either. Nothing here registers a resource: the cluster is never changed.
"""

from __future__ import annotations

import pulumi

from eks_gpu.build.cluster import kubeconfig_json
from eks_gpu.design.model import ExistingClusterDesign


class AdoptedCluster:
    """The cluster of ``eks-gpu:existingCluster``, read at program time (:mod:`eks_gpu.design.existing`)."""

    name: pulumi.Output[str]
    """The cluster's name."""
    arn: pulumi.Output[str]
    """The cluster's ARN: Pod Identity roles trust only this cluster."""
    security_group_id: pulumi.Output[str]
    """The security group EKS made for the cluster (an EFA pool's interfaces list it)."""
    kubeconfig_json: pulumi.Output[str]
    """A kubeconfig for users: ``aws eks get-token`` without the deployer's profile."""
    provider_kubeconfig: pulumi.Output[str]
    """The stack's Kubernetes provider's kubeconfig: ``aws eks get-token``, with ``aws:profile`` if set."""
    api_access: list[pulumi.Resource]
    """Nothing to wait for: who reaches the API is the cluster owner's business."""

    def __init__(self, cluster: ExistingClusterDesign, region: str, profile: str | None):
        self.name = pulumi.Output.from_input(cluster.name)
        self.arn = pulumi.Output.from_input(cluster.arn)
        self.security_group_id = pulumi.Output.from_input(cluster.security_group_id)
        shared = kubeconfig_json(cluster.name, cluster.endpoint, cluster.certificate_authority, region, None)
        self.kubeconfig_json = pulumi.Output.from_input(shared)
        own = kubeconfig_json(cluster.name, cluster.endpoint, cluster.certificate_authority, region, profile)
        self.provider_kubeconfig = pulumi.Output.from_input(own)
        self.api_access = []
