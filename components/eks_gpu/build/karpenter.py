"""Karpenter (``eks-gpu:provisioner: karpenter``): GPU pools as NodePools instead of managed node groups.

What is built (docs/design-karpenter.md; aws/karpenter-provider-aws ``website/content/en/v1.14/getting-started/
getting-started-with-karpenter/cloudformation.yaml``, explained in ``v1.14/reference/cloudformation.md``):

- the controller's role, handed to ``kube-system/karpenter`` by EKS Pod Identity, with the documented
  statements (:func:`eks_gpu.build.karpenter_iam.controller_statements`) scoped to this cluster, its node role and
  its queue;
- a node role of Karpenter's own (EC2 trust; worker, CNI, ECR pull-only, SSM core) and its ``EC2_LINUX``
  access entry. Not the managed node groups' role: EKS made that role's entry itself, a second one would
  conflict;
- the interruption queue (SQS, 300 s, SQS-managed SSE), its policy and the five EventBridge rules feeding it;
- the ``karpenter-crd`` chart, then ``karpenter`` without its ``crds/`` (Helm installs those only once and
  never upgrades them: ``v1.14/upgrading/upgrade-guide.md``, "CRD Upgrades");
- per pool an ``EC2NodeClass`` and a ``NodePool`` named after the pool key; for an EFA pool (``efa: true``)
  also its cluster placement group and, on AL2023, a ``NodeOverlay`` (:func:`node_overlay_spec`).

EFA (docs/design-karpenter.md §4): a NodeClaim that requests ``vpc.amazonaws.com/efa`` gets a launch template
with every EFA interface of its type (aws/karpenter-provider-aws ``pkg/providers/amifamily/resolver.go``,
``efaCount``), which Karpenter counts as capacity (``pkg/providers/instancetype/types.go``, ``efas``:
``EfaInfo.MaximumEfaInterfaces``); the EC2NodeClass selects the pool's placement group
(``placementGroupSelector``); the NodePool is pinned to the pool's one zone by its zone requirement; EFA's
traffic between the pool's nodes is allowed by the one security group they get, EKS's cluster security group,
which EKS creates with inbound all traffic from itself and outbound all traffic (EKS User Guide,
"sec-group-reqs"); the EFA device plugin tolerates the pool's taints (``build/stack.py``).

Subnets and the security group are selected **by id**, not by ``karpenter.sh/discovery`` tags: the ids are
this stack's (its private subnets of the pool's AZs, EKS's cluster security group, the one managed node
groups get), so no tag on a shared subnet or on EKS's own group can make another cluster's Karpenter launch
into them, nothing extra is created, and a pool stays in its AZs exactly as its node group would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from eks_gpu.build.helm import release
from eks_gpu.build.iam import (
    NODE_POLICIES,
    ServiceRole,
    ServiceRoleArgs,
    pod_identity_role,
)
from eks_gpu.build.karpenter_iam import (
    INTERRUPTION_EVENTS,
    QUEUE_RETENTION_SECONDS,
    QUEUE_TARGET_ID,
    Scope,
    controller_statements,
    event_pattern,
    queue_statements,
)
from eks_gpu.build.nodegroups import FAST_IMAGE_PULL_NODE_CONFIG, efa_security_group
from eks_gpu.build.tagging import tags_for
from eks_gpu.config import POOL_LABEL, Architecture
from eks_gpu.design import SYSTEM_KEY, NodeGroupDesign
from eks_gpu.design.allocatable import HUGEPAGES_RESOURCE
from eks_gpu.design.autoscaler import efa_hugepages
from eks_gpu.design.model import KarpenterDesign
from eks_gpu.design.tags import CLUSTER_TAG, NODE_GROUP_TAG
from eks_gpu.facts.karpenter import DISCOVERY_TAG, INTERRUPTION_QUEUE_TAG

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
"""The controller's service account, the one its Pod Identity association names."""
FULLNAME = "karpenter"
"""The Deployment's name (``kubectl -n kube-system logs deploy/karpenter``), fixed by the values."""
REGISTRY = "oci://public.ecr.aws/karpenter"
"""Where both charts are published (OCI only; ``../shared/charts/README.md``)."""
CRD_CHART = f"{REGISTRY}/karpenter-crd"
CHART = f"{REGISTRY}/karpenter"
NODE_EXTRA_POLICIES = ("AmazonSSMManagedInstanceCore",)
"""Beyond :data:`~eks_gpu.build.iam.NODE_POLICIES`: Session Manager on the nodes (the documented node role)."""
CONTROLLER_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
"""The getting-started guide's requests = limits (``v1.14/.../scripts/step08-apply-helm-chart.sh``): Guaranteed QoS."""
IMDS = {
    "httpEndpoint": "enabled",
    "httpProtocolIPv6": "disabled",
    "httpPutResponseHopLimit": 1,
    "httpTokens": "required",
}
"""IMDSv2 only, tokens not reaching pods; set explicitly (Karpenter's code fallback is hop 2)."""
BOTTLEROCKET_OS_VOLUME_GIB = 4
"""Bottlerocket's OS volume (``/dev/xvda``): Karpenter's own default for the family (``v1.14/concepts/
nodeclasses.md``, "blockDeviceMappings"). The CRD requires a size or a snapshot on every volume listed, and
listing the data volume replaces the defaults, so the OS volume is listed with it."""
ARCH = {Architecture.X86_64: "amd64", Architecture.ARM64: "arm64"}
"""EC2's architecture -> ``kubernetes.io/arch``."""
DELETE_TIMEOUT = "60m"
"""How long ``pulumi destroy`` (or removing a pool) waits for a NodePool or EC2NodeClass to go. Karpenter's
finalizers hold them until every node of the pool is drained and terminated, and a pool has no
``terminationGracePeriod`` by default, so a pod a PodDisruptionBudget or ``karpenter.sh/do-not-disrupt``
protects holds its node, and Pulumi's default delete wait is too short for a GPU job to finish. docs/karpenter.md,
"Destroying", says to drain the pools first."""
NODE_OVERLAY_GATE = "nodeOverlay"
"""The feature gate of ``NodeOverlay`` objects (``settings.featureGates.nodeOverlay``, alpha and off in the
pinned chart's ``values.yaml``): turned on only in a stack with an overlay (:func:`node_overlay_spec`)."""
FEATURE_GATES = {"nodeRepair": True}
"""Karpenter's node auto-repair (``settings.featureGates.nodeRepair``, alpha and off by default in the pinned
chart's ``values.yaml``): a node whose kubelet is not Ready for 30 minutes, or whose node monitoring agent
reports ``AcceleratedHardwareReady=False`` for 10 minutes (and ``StorageReady``, ``NetworkingReady``,
``KernelReady`` for 30), is replaced (aws/karpenter-provider-aws ``pkg/cloudprovider/cloudprovider.go``
``RepairPolicies``), as a managed node group's auto repair does. The GPU conditions come from the EKS node
monitoring agent add-on, which the stack installs (``eks-gpu:nodeMonitoring.enabled``, default true)."""


def chart_values(
    design: KarpenterDesign, cluster_name: str, queue_name: pulumi.Input[str], region: str, overlays: bool = False
) -> dict[str, Any]:
    """The ``karpenter`` chart's values: the cluster and queue, node repair (:data:`FEATURE_GATES`) and, with
    ``overlays`` (a pool has a NodeOverlay; default False), :data:`NODE_OVERLAY_GATE`, the Pod
    Identity service account (no IRSA annotation), replicas on the system nodes, Guaranteed requests, and the
    stack's region as ``AWS_REGION`` (the chart's ``controller.env``; the SDK would otherwise take it from the
    Pod Identity webhook or IMDS, as ``build/autoscaler.py`` avoids too). The chart's affinity (never on its
    own nodes), tolerations, zone spread and priority class stay its defaults."""
    return {
        "fullnameOverride": FULLNAME,
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": queue_name,
            "featureGates": {**FEATURE_GATES, **({NODE_OVERLAY_GATE: True} if overlays else {})},
        },
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": design.replicas,
        "nodeSelector": {"kubernetes.io/os": "linux", POOL_LABEL: SYSTEM_KEY},
        "controller": {"resources": CONTROLLER_RESOURCES, "env": [{"name": "AWS_REGION", "value": region}]},
    }


def block_device_mappings(pool: NodeGroupDesign) -> list[dict[str, Any]]:
    """Encrypted gp3, as the managed node groups' launch templates (:func:`eks_gpu.build.nodegroups.block_devices`):
    AL2023 one root volume of the pool's size and performance; Bottlerocket its OS volume at Karpenter's default
    size (:data:`BOTTLEROCKET_OS_VOLUME_GIB`) and gp3's baseline, and the data volume (images, ephemeral storage:
    ``rootVolume``) of the pool's."""

    def ebs(size: int, images: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"volumeType": "gp3", "volumeSize": f"{size}Gi", "encrypted": True}
        out["deleteOnTermination"] = True
        if images and pool.volume is not None:
            out |= {"iops": pool.volume.iops, "throughput": pool.volume.throughput_mib_ps}
        return out

    if pool.ami_type.bottlerocket:
        return [
            {"deviceName": "/dev/xvda", "ebs": ebs(BOTTLEROCKET_OS_VOLUME_GIB, False)},
            {"deviceName": "/dev/xvdb", "rootVolume": True, "ebs": ebs(pool.disk_size_gib, True)},
        ]
    return [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs(pool.disk_size_gib, True)}]


def user_data(pool: NodeGroupDesign) -> str | None:
    """An AL2023 pool's ``spec.userData``: a nodeadm ``NodeConfig`` turning on ``FastImagePull``, the same
    section managed node groups put in their user data (:func:`eks_gpu.build.nodegroups.user_data`); None for
    Bottlerocket or with ``fastImagePull: false``. Plain YAML, not MIME: Karpenter makes the MIME archive,
    this NodeConfig first and its own after it, whose cluster, kubelet, taints and labels win
    (aws/karpenter-provider-aws ``website/content/en/v1.14/concepts/nodeclasses.md``, "spec.userData",
    "AL2023": "a NodeConfig YAML / JSON string" is accepted and merged); feature gates are not among them."""
    if not pool.fast_image_pull or pool.ami_type.bottlerocket:
        return None
    return FAST_IMAGE_PULL_NODE_CONFIG


def node_class_spec(
    pool: NodeGroupDesign,
    *,
    cluster_name: str,
    role_name: pulumi.Input[str],
    subnet_ids: Sequence[pulumi.Input[str]],
    security_group_ids: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
    placement_group: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """The pool's ``EC2NodeClass`` spec (``pool.karpenter`` must be set). ``tags`` are the stack's
    (``eks-gpu:tags``, ``Environment``): kept on the instances for cost allocation, though Karpenter hashes the
    node class's spec, so a tags-only edit drifts (replaces) every node of the pool (docs/karpenter.md).
    ``placement_group``: the name of an EFA pool's cluster placement group, every node launched into it
    (``placementGroupSelector``); default None, no group."""
    kp = pool.karpenter
    assert kp is not None
    spec: dict[str, Any] = {
        "amiSelectorTerms": [{"alias": kp.ami_alias}],
        "role": role_name,
        "subnetSelectorTerms": [{"id": sid} for sid in subnet_ids],
        "securityGroupSelectorTerms": [{"id": sg} for sg in security_group_ids],
        "metadataOptions": dict(IMDS),
        "blockDeviceMappings": block_device_mappings(pool),
        # What the launch templates of managed node groups tag (Name is Karpenter's: the node's name).
        "tags": {**tags, CLUSTER_TAG: cluster_name, NODE_GROUP_TAG: pool.key},
    }
    data = user_data(pool)
    if data is not None:
        spec["userData"] = data
    if kp.capacity_reservation_ids:
        spec["capacityReservationSelectorTerms"] = [{"id": cr} for cr in kp.capacity_reservation_ids]
    if placement_group is not None:
        spec["placementGroupSelector"] = {"name": placement_group}
    return spec


def node_overlay_spec(pool: NodeGroupDesign) -> dict[str, Any] | None:
    """A ``NodeOverlay`` spec giving the pool's instance types the ``hugepages-2Mi`` their nodes will have, or
    None: pools without EFA, and Bottlerocket (:func:`eks_gpu.design.autoscaler.efa_hugepages`, the value the
    Cluster Autoscaler's template node gets for a managed EFA pool). Karpenter's instance types have no huge
    pages (``types.go`` ``computeCapacity``) and its scheduler places a pod only where every resource it
    requests fits (kubernetes-sigs/karpenter ``pkg/utils/resources/resources.go`` ``Fits``), so without it an
    EFA job asking for huge pages would stay Pending (aws/karpenter-provider-aws#3315). An overlay adds
    extended capacity to Karpenter's simulation only (``v1.14/concepts/nodeoverlays.md``), matched here by the
    ``karpenter.sh/nodepool`` requirement; the kubelet still reports what the EFA driver allocated."""
    hugepages = efa_hugepages(pool)
    if hugepages is None:
        return None
    return {
        "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [pool.key]}],
        "capacity": {HUGEPAGES_RESOURCE: hugepages},
    }


def node_pool_spec(pool: NodeGroupDesign, node_class: str) -> dict[str, Any]:
    """The pool's ``NodePool`` spec: its labels and taints (Kubernetes spelling), its instance types, capacity
    types, architecture and AZs, its limits and how its nodes may be disrupted."""
    kp = pool.karpenter
    assert kp is not None
    requirements = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(kp.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": [ARCH[pool.ami_type.architecture]]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": list(pool.availability_zones)},
    ]
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
        "requirements": requirements,
        "expireAfter": kp.expire_after,
    }
    if pool.taints:
        template_spec["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect.kubernetes} for t in pool.taints]
    if kp.termination_grace_period is not None:
        template_spec["terminationGracePeriod"] = kp.termination_grace_period
    return {
        "template": {"metadata": {"labels": dict(pool.labels)}, "spec": template_spec},
        "limits": {"nodes": str(kp.node_limit), "nvidia.com/gpu": str(kp.gpu_limit), "cpu": str(kp.cpu_limit)},
        "disruption": {
            "consolidationPolicy": kp.consolidation_policy,
            "consolidateAfter": kp.consolidate_after,
            "budgets": [{"nodes": kp.disruption_budget_nodes}],
        },
    }


@dataclass(frozen=True)
class KarpenterArgs:
    """What Karpenter is built from."""

    design: KarpenterDesign
    pools: Mapping[str, NodeGroupDesign]
    """The GPU pools it provisions (each with ``karpenter`` set), by key."""
    cluster_name: str
    """The cluster's name, known at program time (IAM conditions, chart settings, tags)."""
    cluster: pulumi.Input[str]
    """The cluster's name as an output of the cluster: what waits for it."""
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN: Pod Identity trust, ``eks:DescribeCluster``, and the account of the ARNs."""
    cluster_security_group_id: pulumi.Input[str]
    """EKS's cluster security group: the nodes' group, as on managed node groups."""
    vpc_id: pulumi.Input[str]
    """The VPC: where an EFA pool's own security group is made."""
    tag_security_group: bool
    """Put the discovery tag on that group: only on the stack's own cluster."""
    subnet_ids: Mapping[str, Sequence[pulumi.Input[str]]]
    """Pool key -> the private subnets of its AZs."""
    region: str
    partition: str
    stack_tags: Mapping[str, str]
    """The stack's tags (without ``Name``)."""
    pod_identity_agent: pulumi.Resource | None
    """The Pod Identity agent add-on that hands the controller its role."""
    system_nodes: pulumi.Resource
    """The system node group: the controller runs there."""
    dns: pulumi.Resource
    """CoreDNS: the controller resolves the AWS endpoints through it."""
    node_depends_on: Sequence[pulumi.Resource]
    """What nodes need to join (the pools' NAT routes): the NodePools wait for it, and go before it."""
    provider: k8s.Provider


class Karpenter(pulumi.ComponentResource):
    """Karpenter's AWS side, its charts, and an EC2NodeClass and a NodePool per GPU pool."""

    role: ServiceRole
    node_role: ServiceRole
    queue: aws.sqs.Queue
    discovery_tag: aws.ec2.Tag | None
    """``karpenter.sh/discovery: <cluster>`` on EKS's cluster security group (the subnets get it from the network);
    None on an existing cluster."""
    crd_release: k8s.helm.v3.Release
    release: k8s.helm.v3.Release
    node_classes: dict[str, k8s.apiextensions.CustomResource]
    node_pools: dict[str, k8s.apiextensions.CustomResource]
    node_overlays: dict[str, k8s.apiextensions.CustomResource]
    """Pool key -> its NodeOverlay (AL2023 EFA pools)."""
    efa_security_groups: dict[str, aws.ec2.SecurityGroup]
    """Pool key -> its EFA security group (EFA pools)."""
    placement_groups: dict[str, aws.ec2.PlacementGroup]
    """Pool key -> its cluster placement group (EFA pools without reservations)."""
    node_pool_names: dict[str, pulumi.Output[str]]
    """Pool key -> its NodePool's name (the stack output ``nodeGroupName``)."""

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:karpenter:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        c = args.cluster_name

        def tags(suffix: str) -> dict[str, str]:
            return tags_for(args.stack_tags, f"{c}-{suffix}")

        self.node_role = ServiceRole(
            f"{name}-node",
            ServiceRoleArgs(
                service="ec2.amazonaws.com",
                managed_policies=(*NODE_POLICIES, *NODE_EXTRA_POLICIES),
                partition=args.partition,
                tags=tags("karpenter-node"),
            ),
            opts=child,
        )
        access_entry = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=args.cluster,
            principal_arn=self.node_role.role.arn,
            type="EC2_LINUX",
            tags=tags("karpenter-node"),
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=args.design.interruption_queue,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=tags(INTERRUPTION_QUEUE_TAG),
            opts=child,
        )
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.id,  # the queue's id is its URL
            policy=aws.iam.get_policy_document_output(
                policy_id="EC2InterruptionPolicy", statements=self.queue.arn.apply(queue_statements)
            ).json,
            opts=child,
        )
        # EKS made the group and tags it itself, so a Tag resource (not the group's tags) adds the discovery tag;
        # never on a cluster the stack does not own (CreateTags would overwrite its owner's, a destroy delete it)
        self.discovery_tag = None
        if args.tag_security_group:
            self.discovery_tag = aws.ec2.Tag(
                f"{name}-security-group-discovery",
                resource_id=args.cluster_security_group_id,
                key=DISCOVERY_TAG,
                value=c,
                opts=child,
            )
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        targets: list[pulumi.Resource] = []
        for suffix, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{suffix}",
                description=f"Karpenter interruption handling for {c}: {detail_type}",
                event_pattern=event_pattern(source, detail_type),
                tags=tags(f"karpenter-{suffix}"),
                opts=child,
            )
            self.rules[suffix] = rule
            targets.append(
                aws.cloudwatch.EventTarget(
                    f"{name}-{suffix}-target",
                    rule=rule.name,
                    arn=self.queue.arn,
                    target_id=QUEUE_TARGET_ID,
                    # the queue takes events only once its policy lets EventBridge send
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy]),
                )
            )
        scope = pulumi.Output.all(args.cluster_arn, self.node_role.role.arn, self.queue.arn).apply(
            lambda found: controller_statements(
                Scope(
                    cluster_name=c,
                    region=args.region,
                    partition=args.partition,
                    account=str(found[0]).split(":")[4],
                    node_role_arn=found[1],
                    queue_arn=found[2],
                )
            )
        )
        policy = aws.iam.get_policy_document_output(statements=scope)
        self.role, association = pod_identity_role(
            self,
            name,
            cluster=args.cluster,
            cluster_arn=args.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            partition=args.partition,
            tags=tags("karpenter"),
            policy_name="karpenter",
            policy=policy.json,
        )
        self.crd_release = release(
            f"{name}-crd",
            chart=CRD_CHART,
            version=args.design.chart_version,
            repository=None,
            namespace=NAMESPACE,
            values={},
            provider=args.provider,
            parent=self,
        )
        self.release = release(
            name,
            chart=CHART,
            version=args.design.chart_version,
            repository=None,
            namespace=NAMESPACE,
            values=chart_values(
                args.design,
                c,
                self.queue.name,
                args.region,
                overlays=any(node_overlay_spec(p) is not None for p in args.pools.values()),
            ),
            provider=args.provider,
            parent=self,
            skip_crds=True,
            # Its pods need the CRDs, credentials (agent, association), a system node, CoreDNS for AWS's
            # API names, and the queue's events (Helm's install fails if the Deployment is not ready).
            depends_on=[
                self.crd_release,
                *filter(None, [args.pod_identity_agent]),
                association,
                args.system_nodes,
                args.dns,
                *targets,
            ],
        )
        self.node_classes, self.node_pools, self.node_pool_names = {}, {}, {}
        self.node_overlays, self.placement_groups, self.efa_security_groups = {}, {}, {}
        # Nodes join by the access entry with the role's policies, through the NAT routes; the controller
        # terminates them when a NodePool goes, so the objects go before the release, role and routes.
        needs = [self.crd_release, self.release, access_entry, *self.node_role.attachments, *args.node_depends_on]
        for key, pool in args.pools.items():
            placement = None
            if pool.efa is not None and pool.efa.placement_group:
                # the managed EFA pools' kind of group (build/nodegroups.py); Karpenter may launch into it:
                # RunInstances on placement-group resources, DescribePlacementGroups (controller_statements)
                placement = aws.ec2.PlacementGroup(
                    f"{name}-{key}-placement", strategy="cluster", tags=tags(f"{key}-efa"), opts=child
                )
                self.placement_groups[key] = placement
            groups: list[pulumi.Input[str]] = [args.cluster_security_group_id]
            if pool.efa is not None:
                # as for managed EFA pools: not relying on the cluster group's rules (an existing cluster's owner
                # may have narrowed them); Karpenter puts every selected group on every interface
                self.efa_security_groups[key] = efa_security_group(
                    f"{name}-{key}", args.vpc_id, f"Karpenter pool {key}", tags(key), self
                )
                groups.append(self.efa_security_groups[key].id)
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-{key}-nodeclass",
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata={"name": key},
                spec=node_class_spec(
                    pool,
                    cluster_name=c,
                    role_name=self.node_role.role.name,
                    subnet_ids=args.subnet_ids[key],
                    security_group_ids=groups,
                    tags=args.stack_tags,
                    placement_group=placement.name if placement is not None else None,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    depends_on=needs,
                    custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT),
                ),
            )
            overlay_spec = node_overlay_spec(pool)
            overlay = None
            if overlay_spec is not None:
                overlay = k8s.apiextensions.CustomResource(
                    f"{name}-{key}-overlay",
                    api_version="karpenter.sh/v1alpha1",
                    kind="NodeOverlay",
                    metadata={"name": key},
                    spec=overlay_spec,
                    opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=needs),
                )
                self.node_overlays[key] = overlay
            node_pool = k8s.apiextensions.CustomResource(
                f"{name}-{key}-nodepool",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": key},
                spec=node_pool_spec(pool, key),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    # the overlay first: a pod pending before it would find no type with huge pages
                    depends_on=[*needs, node_class, *filter(None, [overlay])],
                    custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT),
                ),
            )
            self.node_classes[key], self.node_pools[key] = node_class, node_pool
            self.node_pool_names[key] = pulumi.Output.from_input(key)  # metadata.name, known before the object exists
        self.register_outputs({"roleArn": self.role.role.arn, "nodeRoleArn": self.node_role.role.arn})
