"""The EKS control plane: ``pulumi_eks.Cluster`` with its own role, a rotating KMS key and audit logs.

No default node group (the node groups are built by :mod:`components.build.nodegroups`), API
authentication (access entries, no ``aws-auth`` ConfigMap), a private endpoint always and a public
one only for ``endpointPublicAccessCidrs``. kube-proxy and the VPC CNI are EKS managed add-ons from
the start; CoreDNS becomes one once the system node group can run it (:mod:`components.build.stack`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components.build.iam import CLUSTER_POLICIES, ServiceRole, ServiceRoleArgs
from components.build.tagging import tags_for

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
"""Control-plane log types sent to CloudWatch: who called the API, what changed, who authenticated."""
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey")
"""What the cluster role needs on the secrets key (as terraform-aws-eks grants it)."""


@dataclass(frozen=True)
class ClusterArgs:
    """What the control plane is built from."""

    cluster_name: str
    kubernetes_version: str
    partition: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    endpoint_public_access_cidrs: Sequence[str]
    """Empty: the API endpoint is private only."""
    protect: bool
    """Refuse to delete the cluster and its key (``pulumi destroy`` fails until it is unset)."""
    tags: Mapping[str, str]


class Cluster(pulumi.ComponentResource):
    """The EKS cluster, its IAM role and its secrets-encryption key."""

    eks: eks.Cluster
    name: pulumi.Output[str]
    """The EKS cluster's name, known once the cluster exists (node groups wait on it)."""
    kubeconfig_json: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags_for(args.tags, f"{args.cluster_name}-secrets"),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        kms_policy = aws.iam.get_policy_document_output(
            statements=key.arn.apply(
                lambda arn: [
                    aws.iam.GetPolicyDocumentStatementArgs(effect="Allow", actions=list(KMS_ACTIONS), resources=[arn])
                ]
            )
        )
        role = ServiceRole(
            f"{name}-service",
            ServiceRoleArgs(
                service="eks.amazonaws.com",
                managed_policies=CLUSTER_POLICIES,
                partition=args.partition,
                tags=tags_for(args.tags, f"{args.cluster_name}-cluster"),
                inline_policies={"secrets-kms": kms_policy.json},
            ),
            opts=child,
        )
        public = bool(args.endpoint_public_access_cidrs)
        self.eks = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=list(args.private_subnet_ids),
            public_subnet_ids=list(args.public_subnet_ids) or None,
            service_role=role.role,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode.API,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(args.endpoint_public_access_cidrs) if public else None,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            encryption_config_key_arn=key.arn,
            kube_proxy_addon_options={"enabled": True},
            # The VPC CNI enforces NetworkPolicy only when asked: the GPU namespace denies by default.
            vpc_cni_options={"enable_network_policy": True},
            coredns_addon_options={"enabled": False},
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=role.attachments, protect=args.protect),
        )
        self.name = self.eks.eks_cluster.name
        self.kubeconfig_json = self.eks.kubeconfig_json
        self.register_outputs({"name": self.name})
