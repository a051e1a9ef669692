"""The Cluster Autoscaler: pending GPU pods bring GPU nodes up, idle ones go away.

A managed node group owns its Auto Scaling group; the autoscaler resizes that ASG. It finds the
ASGs by their tags and, for a group at zero nodes, learns from the ``node-template`` tags what a
node would bring (GPUs, labels, taints). EKS does not copy node-group tags to the ASG
(aws/containers-roadmap#608), so the program tags the ASGs itself
(:func:`eks_gpu.design.autoscaler.asg_tags`).
Its AWS permissions reach it through EKS Pod Identity, least privilege: reads on ``*``, writes
only on ASGs tagged for this cluster.

On an existing cluster (``existingCluster``) it is kept to the program's own node groups: it discovers,
and may resize, only ASGs that also carry :data:`~eks_gpu.design.autoscaler.SCOPE_TAG`, and its
Deployment, service account, Pod Identity association, lease and status ConfigMap are named
:data:`~eks_gpu.design.autoscaler.OWN_NAME`, beside any ``cluster-autoscaler`` the cluster runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from eks_gpu.build.helm import release
from eks_gpu.build.iam import ServiceRole, pod_identity_role
from eks_gpu.config import POOL_LABEL
from eks_gpu.design import SYSTEM_KEY, AutoscalerDesign
from eks_gpu.design.autoscaler import OWN_NAME, SCOPE_TAG, TAG_PREFIX, discovery_tags

CHART = "cluster-autoscaler"
REPOSITORY = "https://kubernetes.github.io/autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"

READ_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
)
"""What it reads, on every resource (terraform-aws-eks-blueprints-addons' least-privilege set)."""
WRITE_ACTIONS = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
)
"""What it changes, only on ASGs tagged ``k8s.io/cluster-autoscaler/<cluster>`` (and, on an existing
cluster, :data:`~eks_gpu.design.autoscaler.SCOPE_TAG`)."""


def policy_statements(cluster_name: str, scoped: bool = False) -> list[aws.iam.GetPolicyDocumentStatementArgs]:
    """Reads on ``*``; writes only on this cluster's ASGs, and with ``scoped`` (an existing cluster) only on
    those that carry :data:`~eks_gpu.design.autoscaler.SCOPE_TAG` as well (the conditions of a statement all
    apply)."""
    conditions = [
        aws.iam.GetPolicyDocumentStatementConditionArgs(
            test="StringEquals",
            variable=f"autoscaling:ResourceTag/{TAG_PREFIX}/{cluster_name}",
            values=["owned"],
        )
    ]
    if scoped:
        conditions.append(
            aws.iam.GetPolicyDocumentStatementConditionArgs(
                test="StringEquals", variable=f"autoscaling:ResourceTag/{SCOPE_TAG}", values=[cluster_name]
            )
        )
    return [
        aws.iam.GetPolicyDocumentStatementArgs(sid="Read", effect="Allow", actions=list(READ_ACTIONS), resources=["*"]),
        aws.iam.GetPolicyDocumentStatementArgs(
            sid="ResizeOwnAsgs",
            effect="Allow",
            actions=list(WRITE_ACTIONS),
            resources=["*"],
            conditions=conditions,
        ),
    ]


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """What the autoscaler is built from."""

    design: AutoscalerDesign
    """Chart, image, flags and priorities, decided."""
    cluster_name: str
    """The cluster's name, known at program time (the IAM condition and the ASG tags use it)."""
    cluster: pulumi.Input[str]
    """The cluster's name as an output of the cluster: what waits for the cluster to exist."""
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN: the role trusts only this cluster's autoscaler service account."""
    region: str
    """The stack's region: the autoscaler calls the AWS APIs there."""
    partition: str
    """The AWS partition of ARNs (``aws``)."""
    node_group_names: Mapping[str, pulumi.Input[str]]
    """Node group key -> its EKS name (the priority expander matches ASG names built from it)."""
    pod_identity_agent: pulumi.Resource | None
    """The EKS Pod Identity agent add-on (:mod:`eks_gpu.build.addons`, installed whenever the
    autoscaler is), which hands the role to the pod."""
    system_nodes: pulumi.Resource
    """The system node group: the autoscaler and the Pod Identity agent run there."""
    dns: pulumi.Resource
    """CoreDNS: the autoscaler resolves the AWS endpoints through cluster DNS."""
    tags: Mapping[str, str]
    """Tags of its AWS resources (``Name`` included)."""
    provider: k8s.Provider
    """The stack's Kubernetes provider."""
    scoped: bool = False
    """An existing cluster (``existingCluster``): discovery and writes kept to the ASGs tagged
    :data:`~eks_gpu.design.autoscaler.SCOPE_TAG`, and names of its own. Default False: the cluster is the stack's."""

    @property
    def fullname(self) -> str:
        """The Deployment's (and RBAC objects') name."""
        return OWN_NAME if self.scoped else FULLNAME

    @property
    def service_account(self) -> str:
        """Its service account in ``kube-system``, the one its Pod Identity association names."""
        return OWN_NAME if self.scoped else SERVICE_ACCOUNT


def asg_name_pattern(node_group_name: str) -> str:
    """The priority expander's regex for the ASG of a node group: EKS names it
    ``eks-<node group name>-<node group uuid>``."""
    return f"^eks-{re.escape(node_group_name)}-"


FULLNAME = "cluster-autoscaler"
"""The Deployment's name (``kubectl -n kube-system logs deploy/cluster-autoscaler``), fixed by the
values rather than derived from the auto-named release."""
RESOURCES = {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"cpu": "100m", "memory": "300Mi"}}
"""The container's requests and limits: the example in the chart's own ``values.yaml`` (9.59.0), limits equal
to requests so the pod is Guaranteed QoS and is the last to be evicted from a crowded system node. Its memory
grows with the number of nodes and pending pods it simulates; raise both for clusters of hundreds of nodes."""
RUN_AS = 65534
"""``nobody``: the user and group the chart's ``values.yaml`` example runs it as. The image is a static Go binary
on ``distroless/static:nonroot`` (kubernetes/autoscaler ``cluster-autoscaler/Dockerfile``): nothing in it needs root."""
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The pod's security context (chart key ``securityContext``): a non-root user, the runtime's default seccomp
filter, and ``fsGroup`` so that user can read the Pod Identity token EKS projects into the pod."""
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "privileged": False,
}
"""The container's security context (chart key ``containerSecurityContext``): it only calls the Kubernetes and
AWS APIs and logs to stderr, so it needs no capability and writes nothing to its filesystem."""


def values(args: ClusterAutoscalerArgs) -> dict[str, Any]:
    """The chart values: discovery by the cluster's name, the image of the cluster's minor version,
    the service account the Pod Identity association names, the system nodes, the flags, requests and limits,
    a non-root, read-only, capability-less container."""
    design = args.design
    discovery: dict[str, Any] = {"clusterName": args.cluster}
    if args.scoped:
        # the chart joins these into --node-group-auto-discovery=asg:tag=... (its default: the first two)
        discovery["tags"] = list(discovery_tags(args.cluster_name, scoped=True))
    out: dict[str, Any] = {
        "fullnameOverride": args.fullname,
        "cloudProvider": "aws",
        "awsRegion": args.region,
        "autoDiscovery": discovery,
        "image": {"repository": IMAGE, "tag": design.image_tag},
        "rbac": {"serviceAccount": {"create": True, "name": args.service_account}},
        "nodeSelector": {POOL_LABEL: SYSTEM_KEY},
        "priorityClassName": "system-cluster-critical",
        "resources": RESOURCES,
        "securityContext": POD_SECURITY_CONTEXT,
        "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
        "extraArgs": dict(design.args),
    }
    if design.expander == "priority":
        # The priority expander matches ASG names, not node groups.
        by_priority: dict[int, list[pulumi.Output[str]]] = {}
        for key, priority in design.priorities.items():
            pattern = pulumi.Output.from_input(args.node_group_names[key]).apply(asg_name_pattern)
            by_priority.setdefault(priority, []).append(pattern)
        out["expanderPriorities"] = {str(p): patterns for p, patterns in sorted(by_priority.items())}
    return out


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler's role and Pod Identity association, and the Helm release."""

    role: ServiceRole
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:autoscaler:ClusterAutoscaler", name, None, opts)
        agent = args.pod_identity_agent
        policy = aws.iam.get_policy_document(statements=policy_statements(args.cluster_name, args.scoped))
        self.role, association = pod_identity_role(
            self,
            name,
            cluster=args.cluster,
            cluster_arn=args.cluster_arn,
            namespace=NAMESPACE,
            service_account=args.service_account,
            partition=args.partition,
            tags=args.tags,
            policy_name="cluster-autoscaler",
            policy=policy.json,
        )
        self.release = release(
            name,
            chart=CHART,
            version=args.design.chart_version,
            repository=REPOSITORY,
            namespace=NAMESPACE,
            values=values(args),
            provider=args.provider,
            parent=self,
            # Its pod needs credentials (agent, association), a node, and CoreDNS for AWS's API names;
            # Helm's atomic install fails if the Deployment is not ready in time.
            depends_on=[*filter(None, [agent]), association, args.system_nodes, args.dns],
        )
        self.register_outputs({"roleArn": self.role.role.arn})
