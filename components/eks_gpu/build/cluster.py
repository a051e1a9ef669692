"""The EKS control plane: ``pulumi_eks.Cluster`` with its own role, a rotating KMS key and audit logs.

No default node group (the node groups are built by :mod:`eks_gpu.build.nodegroups`), API
authentication (access entries, no ``aws-auth`` ConfigMap), a private endpoint always and a public
one only for ``endpointPublicAccessCidrs``. kube-proxy and the VPC CNI are EKS managed add-ons from
the start; CoreDNS becomes one once the system node group can run it (:mod:`eks_gpu.build.stack`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from eks_gpu.build.iam import CLUSTER_POLICIES, ServiceRole, ServiceRoleArgs
from eks_gpu.build.tagging import tag_slug, tags_for
from eks_gpu.design import ApiAccess

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
"""Control-plane log types sent to CloudWatch: who called the API, what changed, who authenticated."""
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey")
"""What the cluster role needs on the secrets key (as terraform-aws-eks grants it)."""
API_PORT = 443
"""The Kubernetes API endpoint's port."""
ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
"""The EKS access policy ``clusterAdmins`` get: cluster-admin on every namespace."""


def log_group_name(cluster_name: str) -> str:
    """The log group EKS writes control-plane logs to (EKS User Guide, "control-plane-logs")."""
    return f"/aws/eks/{cluster_name}/cluster"


def private_access_sources(access: ApiAccess) -> list[tuple[str, dict[str, Any]]]:
    """Name suffix -> source of each private-access 443 rule: the CIDRs, then the security groups."""
    return [(f"cidr-{cidr.replace('/', '-')}", {"cidr_ipv4": cidr}) for cidr in access.private_cidrs] + [
        (f"sg-{sg}", {"referenced_security_group_id": sg}) for sg in access.private_security_group_ids
    ]


def no_creator_admin(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """A transform for pulumi-eks's ``aws:eks/cluster:Cluster`` child: the creator gets no admin access.

    pulumi-eks 4.4 always sends ``accessConfig.bootstrapClusterCreatorAdminPermissions: true``
    (nodejs/eks/cluster/cluster.ts) and ignores later changes to it, so only a transform at creation
    can turn it off. Props of a packaged component's child arrive with their wire (camelCase) names.
    """
    if args.type_ != "aws:eks/cluster:Cluster":
        return None
    props: dict[str, Any] = dict(args.props)
    access: dict[str, Any] = dict(props.get("accessConfig") or {})
    access["bootstrapClusterCreatorAdminPermissions"] = False
    return pulumi.ResourceTransformResult(props={**props, "accessConfig": access}, opts=args.opts)


def kubeconfig(cluster: pulumi.Output[aws.eks.Cluster], region: str, profile: str | None) -> pulumi.Output[str]:
    """The kubeconfig the stack's Kubernetes provider uses: ``aws eks get-token`` as pulumi-eks
    generates it (``generateKubeconfig``), with ``--profile`` when ``aws:profile`` is set.

    pulumi-eks's exported ``kubeconfig`` leaves the profile out (it is meant to be shared), so the
    provider would run ``get-token`` with whatever credentials the shell has, not the deployer's.
    """

    def build(parts: list[Any]) -> str:
        name, endpoint, ca = parts
        return kubeconfig_json(name, endpoint, ca, region, profile)

    return pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(build)


def kubeconfig_json(name: str, endpoint: str, ca: str, region: str, profile: str | None) -> str:
    """The kubeconfig of cluster ``name`` (its ``endpoint`` and base64 ``ca``): ``aws eks get-token``
    in ``region``, with ``--profile`` when ``profile`` is set (:func:`kubeconfig`)."""
    args = ["--region", region, "eks", "get-token", "--cluster-name", name, "--output", "json"]
    if profile:
        args += ["--profile", profile]
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": args,
            "env": [
                {"name": "KUBERNETES_EXEC_INFO", "value": '{"apiVersion": "client.authentication.k8s.io/v1beta1"}'}
            ],
        }
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubernetes", "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "current-context": "aws",
            "users": [{"name": "aws", "user": user}],
        }
    )


@dataclass(frozen=True)
class ClusterArgs:
    """What the control plane is built from."""

    cluster_name: str
    kubernetes_version: str
    partition: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    access: ApiAccess
    """Who reaches the API and who administers the cluster."""
    region: str
    log_retention_days: int
    tags: Mapping[str, str]
    addon_versions: Mapping[str, str]
    """EKS add-on name -> version, for ``vpc-cni`` and ``kube-proxy`` (:mod:`eks_gpu.design.pinning`)."""


class Cluster(pulumi.ComponentResource):
    """The EKS cluster, its IAM role and its secrets-encryption key."""

    eks: eks.Cluster
    name: pulumi.Output[str]
    """The EKS cluster's name, known once the cluster exists (node groups wait on it)."""
    arn: pulumi.Output[str]
    """The cluster's ARN: Pod Identity roles trust only this cluster."""
    kubeconfig_json: pulumi.Output[str]
    """pulumi-eks's kubeconfig, without the deployer's profile: the one to hand to users."""
    provider_kubeconfig: pulumi.Output[str]
    """The kubeconfig of the stack's Kubernetes provider: with ``aws:profile``, if set."""
    security_group_id: pulumi.Output[str]
    """The security group EKS creates for the cluster (control plane and managed nodes)."""
    api_security_group: aws.ec2.SecurityGroup | None
    """The control plane's own security group (``vpc_config.security_group_ids``), holding the
    private-access 443 rules; None without private access."""
    api_access: list[pulumi.Resource]
    """What must exist before anything talks to the API: the ingress rules and admin entries."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags_for(args.tags, f"{args.cluster_name}-secrets"),
            opts=pulumi.ResourceOptions(parent=self),
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
        access = args.access
        public = bool(access.public_cidrs)
        self.api_security_group = self._api_security_group(name, args)
        # EKS creates this group itself if it is missing, with no retention: logs would pile up forever.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name(args.cluster_name),
            retention_in_days=args.log_retention_days,
            tags=tags_for(args.tags, f"{args.cluster_name}-logs"),
            opts=child,
        )
        self.eks = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=list(args.private_subnet_ids),
            public_subnet_ids=list(args.public_subnet_ids) or None,
            service_role=role.role,
            skip_default_node_group=True,
            # Its cluster and node security groups: no node of ours uses them (managed node groups get
            # EKS's cluster security group); the API is opened below on the control plane's own group.
            skip_default_security_groups=True,
            cluster_security_group=self.api_security_group,
            authentication_mode=eks.AuthenticationMode.API,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(access.public_cidrs) if public else None,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            encryption_config_key_arn=key.arn,
            # Explicit versions: without one pulumi-eks sends the most recent build of both on every run
            # (nodejs/eks/addons/cni-addon.ts, cluster.ts: getAddonVersionOutput({mostRecent: true})).
            kube_proxy_addon_options={"enabled": True, "version": args.addon_versions["kube-proxy"]},
            # The VPC CNI enforces NetworkPolicy only when asked: the GPU namespace denies by default.
            vpc_cni_options={"enable_network_policy": True, "addon_version": args.addon_versions["vpc-cni"]},
            coredns_addon_options={"enabled": False},
            provider_credential_opts={"profile_name": access.profile} if access.profile else None,
            tags=dict(args.tags),
            cluster_tags={"Name": args.cluster_name},
            opts=pulumi.ResourceOptions(
                parent=self,
                # The role's policies first (EKS checks them at creation); the log group first:
                # otherwise EKS creates it, unmanaged and kept forever.
                depends_on=[*role.attachments, logs],
                transforms=None if access.creator_admin else [no_creator_admin],
            ),
        )
        cluster = self.eks.eks_cluster
        self.name = cluster.name
        self.arn = cluster.arn
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.kubeconfig_json = self.eks.kubeconfig_json
        self.provider_kubeconfig = kubeconfig(cluster, args.region, access.profile)
        self.api_access = self._api_access(name, args)
        self.register_outputs({"name": self.name})

    def _api_security_group(self, name: str, args: ClusterArgs) -> aws.ec2.SecurityGroup | None:
        """The control plane's own security group, for the private-access rules; None without any.

        EKS's cluster security group is on the control plane's network interfaces *and* on every
        managed node whose launch template names no security group (EKS User Guide, "sec-group-reqs";
        ours name none, nodegroups.py), pods' addresses included (the VPC CNI puts them on the node's
        interfaces): a 443 rule there would open every node's and pod's 443 to the deployer's CIDRs. A
        group in ``vpc_config.security_group_ids`` is on the control plane's interfaces only. Adding or
        removing it is an in-place ``UpdateClusterConfig`` (terraform-provider-aws
        ``internal/service/eks/cluster.go``: ``security_group_ids`` is not ForceNew, and is updated
        with ``updateVPCConfig``; offline/data/replacement_rules.json). No egress rule: replies to
        allowed traffic pass (security groups are stateful), and EKS's group keeps the control
        plane's own way out.
        """
        if not private_access_sources(args.access):
            return None
        return aws.ec2.SecurityGroup(
            f"{name}-api",
            vpc_id=args.vpc_id,
            description=f"Kubernetes API of EKS cluster {args.cluster_name}: private access (control plane only)",
            tags=tags_for(args.tags, f"{args.cluster_name}-api"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _api_rule(
        self, name: str, suffix: str, source: dict[str, Any], group: aws.ec2.SecurityGroup, args: ClusterArgs
    ) -> aws.vpc.SecurityGroupIngressRule:
        """TCP 443 from one private-access ``source`` into the control plane's own ``group``."""
        return aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-{suffix}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=API_PORT,
            to_port=API_PORT,
            description="Kubernetes API from a deployer (eks-gpu:endpointPrivateAccess*)",
            tags=tags_for(args.tags, f"{args.cluster_name}-api-{suffix}"),
            **source,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _api_access(self, name: str, args: ClusterArgs) -> list[pulumi.Resource]:
        """TCP 443 into the control plane's own security group for the private-access parties; admin entries."""
        access, partition, tags, cluster_name = args.access, args.partition, args.tags, args.cluster_name
        child = pulumi.ResourceOptions(parent=self)
        created: list[pulumi.Resource] = []
        if self.api_security_group is not None:
            group = self.api_security_group
            created += [self._api_rule(name, *rule, group, args) for rule in private_access_sources(access)]
        for arn in access.admins:
            # Named by the ARN, not its place in the list: reordering clusterAdmins replaces nothing.
            slug = tag_slug(arn.split(":", 5)[-1])
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{slug}",
                cluster_name=self.name,
                principal_arn=arn,
                type="STANDARD",
                tags=tags_for(tags, f"{cluster_name}-admin"),
                opts=child,
            )
            created.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-{slug}",
                    cluster_name=self.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/{ADMIN_POLICY}",
                    access_scope={"type": "cluster"},
                    opts=child,
                )
            )
        return created
