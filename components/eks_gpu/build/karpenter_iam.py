"""Karpenter's AWS permissions and interruption queue as data: the controller's policy statements
(:func:`controller_statements`), the queue's policy (:func:`queue_statements`) and the five EventBridge rules
(:data:`INTERRUPTION_EVENTS`), from aws/karpenter-provider-aws ``website/content/en/v1.14/getting-started/
getting-started-with-karpenter/cloudformation.yaml`` (explained in ``v1.14/reference/cloudformation.md``);
tests/test_karpenter_build.py compares them action by action with the stored template. Built by
:mod:`eks_gpu.build.karpenter`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi_aws as aws

QUEUE_RETENTION_SECONDS = 300
"""An interruption message is useless after five minutes (the documented queue)."""
QUEUE_TARGET_ID = "KarpenterInterruptionQueueTarget"
INTERRUPTION_EVENTS = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}
"""Rule suffix -> (event ``source``, ``detail-type``): the five rules of the documented template."""


Statement = aws.iam.GetPolicyDocumentStatementArgs
Condition = aws.iam.GetPolicyDocumentStatementConditionArgs


@dataclass(frozen=True)
class Scope:
    """What the controller's statements are scoped to; all known once the cluster, role and queue exist."""

    cluster_name: str
    region: str
    partition: str
    account: str
    node_role_arn: str
    queue_arn: str

    @property
    def cluster_arn(self) -> str:
        return f"arn:{self.partition}:eks:{self.region}:{self.account}:cluster/{self.cluster_name}"

    def ec2(self, *kinds: str, account: str = "*") -> list[str]:
        """EC2 ARNs of ``kinds`` in the region (``image``, ``snapshot`` are account-less: ``account=""``)."""
        return [f"arn:{self.partition}:ec2:{self.region}:{account}:{kind}/*" for kind in kinds]

    @property
    def instance_profiles(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:instance-profile/*"


LAUNCHED = ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
"""What a launch creates and tags: the template's ``AllowScopedEC2InstanceActionsWithTags`` resources."""


def controller_statements(s: Scope) -> list[Statement]:
    """The controller's policy: the six documented policies' statements (ZonalShift left out: only with
    ``settings.enableZonalShift``, which the program does not set). Every write is conditioned on this
    cluster's tags; ``iam:PassRole`` names the node role only; SQS names the queue only."""
    c = s.cluster_name
    own_request = [
        Condition(test="StringEquals", variable=f"aws:RequestTag/kubernetes.io/cluster/{c}", values=["owned"]),
        Condition(test="StringEquals", variable="aws:RequestTag/eks:eks-cluster-name", values=[c]),
        Condition(test="StringLike", variable="aws:RequestTag/karpenter.sh/nodepool", values=["*"]),
    ]
    own_resource = [
        Condition(test="StringEquals", variable=f"aws:ResourceTag/kubernetes.io/cluster/{c}", values=["owned"]),
        Condition(test="StringLike", variable="aws:ResourceTag/karpenter.sh/nodepool", values=["*"]),
    ]
    profile_request = [
        Condition(test="StringEquals", variable=f"aws:RequestTag/kubernetes.io/cluster/{c}", values=["owned"]),
        Condition(test="StringEquals", variable="aws:RequestTag/eks:eks-cluster-name", values=[c]),
        Condition(test="StringEquals", variable="aws:RequestTag/topology.kubernetes.io/region", values=[s.region]),
        Condition(test="StringLike", variable="aws:RequestTag/karpenter.k8s.aws/ec2nodeclass", values=["*"]),
    ]
    profile_resource = [
        Condition(test="StringEquals", variable=f"aws:ResourceTag/kubernetes.io/cluster/{c}", values=["owned"]),
        Condition(test="StringEquals", variable="aws:ResourceTag/topology.kubernetes.io/region", values=[s.region]),
        Condition(test="StringLike", variable="aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass", values=["*"]),
    ]
    run = ["ec2:RunInstances", "ec2:CreateFleet"]
    return [
        # NodeLifecycle
        Statement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=run,
            resources=[
                *s.ec2("image", "snapshot", account=""),
                *s.ec2("security-group", "subnet", "capacity-reservation", "placement-group"),
            ],
        ),
        Statement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=run,
            resources=s.ec2("launch-template"),
            conditions=own_resource,
        ),
        Statement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=[*run, "ec2:CreateLaunchTemplate"],
            resources=s.ec2(*LAUNCHED),
            conditions=own_request,
        ),
        Statement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=s.ec2(*LAUNCHED),
            conditions=[
                *own_request,
                Condition(
                    test="StringEquals",
                    variable="ec2:CreateAction",
                    values=["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                ),
            ],
        ),
        Statement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=s.ec2("instance"),
            conditions=[
                *own_resource,
                Condition(test="StringEqualsIfExists", variable="aws:RequestTag/eks:eks-cluster-name", values=[c]),
                Condition(
                    test="ForAllValues:StringEquals",
                    variable="aws:TagKeys",
                    values=["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"],
                ),
            ],
        ),
        Statement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=s.ec2("instance", "launch-template"),
            conditions=own_resource,
        ),
        # IAMIntegration
        Statement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[s.node_role_arn],
            conditions=[
                Condition(
                    test="StringEquals",
                    variable="iam:PassedToService",
                    values=["ec2.amazonaws.com", "ec2.amazonaws.com.cn"],
                )
            ],
        ),
        Statement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=[s.instance_profiles],
            conditions=profile_request,
        ),
        Statement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=[s.instance_profiles],
            conditions=[*profile_resource, *profile_request],
        ),
        Statement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[s.instance_profiles],
            conditions=profile_resource,
        ),
        # EKSIntegration
        Statement(sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"], resources=[s.cluster_arn]),
        # Interruption
        Statement(
            sid="AllowInterruptionQueueActions",
            actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[s.queue_arn],
        ),
        # ResourceDiscovery: reads, on "*" in this region only
        Statement(
            sid="AllowRegionalReadActions",
            actions=[
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            resources=["*"],
            conditions=[Condition(test="StringEquals", variable="aws:RequestedRegion", values=[s.region])],
        ),
        Statement(
            sid="AllowSSMReadActions",
            actions=["ssm:GetParameter"],
            resources=[f"arn:{s.partition}:ssm:{s.region}::parameter/aws/service/*"],
        ),
        Statement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
        Statement(sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]),
        Statement(
            sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"], resources=[s.instance_profiles]
        ),
    ]


def queue_statements(queue_arn: str) -> list[Statement]:
    """EventBridge (and SQS) may send; nothing reaches the queue without TLS."""
    return [
        Statement(
            effect="Allow",
            actions=["sqs:SendMessage"],
            resources=[queue_arn],
            principals=[
                aws.iam.GetPolicyDocumentStatementPrincipalArgs(
                    type="Service", identifiers=["events.amazonaws.com", "sqs.amazonaws.com"]
                )
            ],
        ),
        Statement(
            sid="DenyHTTP",
            effect="Deny",
            actions=["sqs:*"],
            resources=[queue_arn],
            principals=[aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="*", identifiers=["*"])],
            conditions=[Condition(test="Bool", variable="aws:SecureTransport", values=["false"])],
        ),
    ]


def event_pattern(source: str, detail_type: str) -> str:
    """An EventBridge rule's pattern: one source, one detail type."""
    return json.dumps({"source": [source], "detail-type": [detail_type]})
