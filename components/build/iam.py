"""IAM roles for AWS services: the node role (EC2) and the cluster role (EKS), never the same one.

Trust and inline policies are built with ``aws.iam.get_policy_document``, not hand-written JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

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
        trust = aws.iam.get_policy_document(
            statements=[
                {
                    "effect": "Allow",
                    "actions": list(args.trust_actions),
                    "principals": [{"type": "Service", "identifiers": [args.service]}],
                }
            ]
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
