"""IAM roles for AWS services: the node role (EC2) and the cluster role (EKS), never the same one.

Trust and inline policies are built with ``aws.iam.get_policy_document``, not hand-written JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

POD_IDENTITY = "pods.eks.amazonaws.com"
"""The service principal of EKS Pod Identity."""
POD_IDENTITY_ACTIONS = ("sts:AssumeRole", "sts:TagSession")
"""EKS Pod Identity assumes the role and tags the session (EKS User Guide, "pod-id-role")."""
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
"""A node joins the cluster (worker), runs the VPC CNI (CNI) and pulls images from ECR (pull only)."""
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
"""What the EKS control plane needs to manage the cluster's AWS resources."""


@dataclass(frozen=True)
class ServiceRoleArgs:
    """A role that one AWS service assumes."""

    service: str
    """The service principal that may assume the role (``ec2.amazonaws.com``)."""
    managed_policies: Sequence[str]
    """Names of AWS managed policies to attach, with their path if any (``service-role/...``)."""
    partition: str
    """The AWS partition of the managed policies' ARNs (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    tags: Mapping[str, str]
    """Tags of the role, ``Name`` included."""
    inline_policies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Inline policy name -> JSON policy document."""
    trust_actions: Sequence[str] = ("sts:AssumeRole",)
    """What the service may do with the role (EKS Pod Identity also tags the session)."""
    trust_conditions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """``StringEquals`` conditions of the trust: condition key -> the value the request must carry
    (:func:`pod_identity_trust`); none by default."""


class ServiceRole(pulumi.ComponentResource):
    """An IAM role trusted by one service, with its policies attached.

    ``attachments`` lists every policy attachment: what uses the role depends on them, so they are
    created before it and deleted after it.
    """

    role: aws.iam.Role
    attachments: list[pulumi.Resource]

    def __init__(self, name: str, args: ServiceRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:iam:ServiceRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        conditions = pulumi.Output.all(*args.trust_conditions.values()).apply(
            lambda values: [
                aws.iam.GetPolicyDocumentStatementConditionArgs(test="StringEquals", variable=key, values=[value])
                for key, value in zip(args.trust_conditions, values, strict=True)
            ]
        )
        trust = aws.iam.get_policy_document_output(
            statements=conditions.apply(
                lambda found: [
                    aws.iam.GetPolicyDocumentStatementArgs(
                        effect="Allow",
                        actions=list(args.trust_actions),
                        principals=[
                            aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="Service", identifiers=[args.service])
                        ],
                        conditions=found or None,
                    )
                ]
            )
        )
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=trust.json, tags=dict(args.tags), opts=child)
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}",  # the name, without the policy's path
                role=self.role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in args.managed_policies
        ]
        self.attachments += [
            aws.iam.RolePolicy(f"{name}-{policy_name}", role=self.role.id, policy=document, opts=child)
            for policy_name, document in args.inline_policies.items()
        ]
        self.register_outputs({"arn": self.role.arn})


def pod_identity_trust(
    cluster_arn: pulumi.Input[str], namespace: str, service_account: str
) -> Mapping[str, pulumi.Input[str]]:
    """The trust conditions of a Pod Identity role: only this cluster's ``namespace/service_account``.

    EKS Pod Identity sends session tags with every ``AssumeRole`` (``eks-cluster-arn``,
    ``eks-cluster-name``, ``kubernetes-namespace``, ``kubernetes-service-account``, ...), and the trust
    policy may require them as ``aws:RequestTag/<key>`` (EKS User Guide, "pod-id-role", "Setting
    Conditions"; the tags: "pod-id-abac"). Without them any Pod Identity association in the account,
    on any cluster, could hand the role to any pod. The cluster by ARN, not name: a cluster of the
    same name in another region is another cluster. An association with ``disableSessionTags`` could
    not use the role (the program disables none).
    """
    return {
        "aws:RequestTag/eks-cluster-arn": cluster_arn,
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": service_account,
    }


def pod_identity_role(
    parent: pulumi.Resource,
    name: str,
    *,
    cluster: pulumi.Input[str],
    cluster_arn: pulumi.Input[str],
    namespace: str,
    service_account: str,
    partition: str,
    tags: Mapping[str, str],
    policy_name: str,
    policy: pulumi.Input[str],
) -> tuple[ServiceRole, aws.eks.PodIdentityAssociation]:
    """A role for one service account of this cluster, handed out by EKS Pod Identity: the role
    ``{name}-iam`` (trust: :func:`pod_identity_trust`; one inline policy) and its association
    ``{name}-identity``, both children of ``parent``. The association waits for the policy: it hands out
    the role's credentials, and before the policy lands the first calls would be denied."""
    role = ServiceRole(
        f"{name}-iam",
        ServiceRoleArgs(
            service=POD_IDENTITY,
            trust_actions=POD_IDENTITY_ACTIONS,
            trust_conditions=pod_identity_trust(cluster_arn, namespace, service_account),
            managed_policies=(),
            partition=partition,
            tags=tags,
            inline_policies={policy_name: policy},
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    association = aws.eks.PodIdentityAssociation(
        f"{name}-identity",
        cluster_name=cluster,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.role.arn,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=role.attachments),
    )
    return role, association
