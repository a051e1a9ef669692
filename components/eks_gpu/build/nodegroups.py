"""Managed node groups: a launch template (IMDSv2, encrypted gp3) and an ``aws.eks.NodeGroup``.

A plain ``aws.eks.NodeGroup`` rather than ``pulumi_eks.ManagedNodeGroup``: it has ``update_config``
and ``node_repair_config`` (pulumi-eks#1147) and its ``resources`` output names the Auto Scaling group.
The desired size is ignored after creation because an autoscaler owns it: otherwise every
``pulumi up`` would scale the group back and kill running GPU jobs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from eks_gpu.build.tagging import tag_slug
from eks_gpu.config import CapacityType
from eks_gpu.design import EfaDesign, NodeGroupDesign
from eks_gpu.design.tags import AsgTag

IGNORE_DESIRED_SIZE = "scalingConfig.desiredSize"
"""The autoscaler's field (pulumi-eks ``ignoreScalingChanges``, terraform-aws-eks ``ignore_changes``)."""
MAX_UNAVAILABLE = 1
"""Rolling updates replace one node at a time: a GPU job loses at most one node."""
IMDS_HOP_LIMIT = 1
"""IMDSv2 tokens do not reach pods (terraform-aws-eks's default)."""
TAGGED_AT_LAUNCH = ("instance", "volume", "network-interface")
"""What the launch template tags (with :func:`eks_gpu.design.tags.launch_tags`), so GPU spend is
attributable per cluster and pool."""


def efa_security_group(
    name: str, vpc_id: pulumi.Input[str], what: str, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.ec2.SecurityGroup:
    """An EFA pool's security group, open to itself both ways: EFA needs all traffic to and from the group
    itself (EC2 User Guide, "Prepare an EFA-enabled security group"), which a cluster security group its
    owner may have changed need not allow. ``what`` names the pool in its description (``node group
    train``); ``tags`` with their ``Name``."""
    child = pulumi.ResourceOptions(parent=parent)
    group = aws.ec2.SecurityGroup(
        f"{name}-efa",
        vpc_id=vpc_id,
        description=f"EFA traffic between the nodes of {what}",
        tags={**tags, "Name": f"{tags.get('Name', name)}-efa"},
        opts=child,
    )
    for rule, suffix, way in (
        (aws.vpc.SecurityGroupIngressRule, "in", "from"),
        (aws.vpc.SecurityGroupEgressRule, "out", "to"),
    ):
        rule(
            f"{name}-efa-{suffix}",
            security_group_id=group.id,
            referenced_security_group_id=group.id,
            ip_protocol="-1",
            description=f"EFA: all traffic {way} the pool's own nodes",
            tags=dict(tags),
            opts=child,
        )
    return group


@dataclass(frozen=True)
class NodeGroupArgs:
    """What one node group is built from."""

    design: NodeGroupDesign
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    node_role_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    tags: Mapping[str, str]
    """Tags of the node group and of its launch template itself (``Name`` included): in place, no new version."""
    launch_tags: Mapping[str, str]
    """What the launch template tags on what it launches: part of its version, so fixed for the
    group's lifetime (a change rolls every node)."""
    depends_on: Sequence[pulumi.Resource]
    """Role policy attachments and the subnets' NAT routes: nodes need both to join."""
    vpc_id: pulumi.Input[str] = ""
    """The VPC, for an EFA pool's security group."""
    cluster_security_group_id: pulumi.Input[str] = ""
    """EKS's cluster security group: an EFA pool's interfaces name their groups, so it is listed too."""
    asg_tags: Mapping[str, AsgTag] = field(default_factory=dict)
    """Tags for the node group's Auto Scaling group (EKS does not copy the node group's there): the
    stack's, propagated to the instances it launches, and the autoscaler's."""


def block_devices(design: NodeGroupDesign) -> list[aws.ec2.LaunchTemplateBlockDeviceMappingArgs]:
    """Encrypted gp3 volumes: AL2023 has one root volume; Bottlerocket an OS and a data volume.

    On Bottlerocket images and containers live on the data volume (``/dev/xvdb``), so it gets
    ``diskSizeGiB`` and the pool's provisioned IOPS and throughput (what an image pull writes to);
    its OS volume keeps the AMI's size and gp3's baseline, and is encrypted too.
    """

    def volume(device: str, size: int | None, images: bool) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
        perf = design.volume if images else None
        return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name=device,
            ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_type="gp3",
                volume_size=size,
                iops=perf.iops if perf else None,
                throughput=perf.throughput_mib_ps if perf else None,
                encrypted="true",
                delete_on_termination="true",
            ),
        )

    if design.ami_type.bottlerocket:
        return [volume("/dev/xvda", None, False), volume("/dev/xvdb", design.disk_size_gib, True)]
    return [volume("/dev/xvda", design.disk_size_gib, True)]


def reservation_target(target: str) -> aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs:
    """Launch into one reservation (``cr-...``: a Capacity Block or an On-Demand Capacity Reservation)
    or into a capacity reservation resource group (its ARN)."""
    by_group = target.startswith("arn:")
    return aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
        capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
            capacity_reservation_id=None if by_group else target,
            capacity_reservation_resource_group_arn=target if by_group else None,
        )
    )


def efa_interfaces(
    count: int, security_groups: Sequence[pulumi.Input[str]]
) -> list[aws.ec2.LaunchTemplateNetworkInterfaceArgs]:
    """One interface per network card: card 0 an EFA with its ENA (device 0, the node's address), the
    others EFA-only (device 1): terraform-aws-eks's ``enable_efa_only`` layout. No subnet: EKS sets it."""
    return [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            device_index=0 if card == 0 else 1,
            network_card_index=card,
            interface_type="efa" if card == 0 else "efa-only",
            delete_on_termination="true",
            security_groups=list(security_groups),
        )
        for card in range(count)
    ]


NODECONFIG_BOUNDARY = "==EKSGPU=="
FAST_IMAGE_PULL = "FastImagePull"
"""nodeadm's feature gate for SOCI parallel pull and unpack (awslabs/amazon-eks-ami,
``nodeadm/internal/api/types.go`` and ``featuregates.go``: off by default, ignored on instances below
a vCPU and memory threshold)."""


FAST_IMAGE_PULL_NODE_CONFIG = "\n".join(
    [
        "apiVersion: node.eks.aws/v1alpha1",
        "kind: NodeConfig",
        "spec:",
        "  featureGates:",
        f"    {FAST_IMAGE_PULL}: true",
        "",
    ]
)
"""The nodeadm ``NodeConfig`` that turns ``FastImagePull`` on: a managed group's launch template and a
Karpenter EC2NodeClass (:mod:`eks_gpu.build.karpenter`) carry the same one."""


def user_data(design: NodeGroupDesign) -> str | None:
    """AL2023 user data: a ``NodeConfig`` that turns on ``FastImagePull``, as a MIME part EKS merges with
    its own (cluster details stay EKS's); None when there is nothing to add. Base64, as EC2 takes it."""
    if not design.fast_image_pull:
        return None
    document = "\n".join(
        [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{NODECONFIG_BOUNDARY}"',
            "",
            f"--{NODECONFIG_BOUNDARY}",
            "Content-Type: application/node.eks.aws",
            "",
            "---",
            FAST_IMAGE_PULL_NODE_CONFIG,
            f"--{NODECONFIG_BOUNDARY}--",
            "",
        ]
    )
    return base64.b64encode(document.encode()).decode()


def _asg_name(resources: Sequence[aws.eks.outputs.NodeGroupResource]) -> str:
    groups = resources[0].autoscaling_groups or []
    return groups[0].name or ""


class NodeGroup(pulumi.ComponentResource):
    """One managed node group and its launch template."""

    node_group: aws.eks.NodeGroup
    name: pulumi.Output[str]
    """The node group's EKS name (auto-named, so a replacement can be created before the old one goes)."""
    asg_name: pulumi.Output[str]
    """The Auto Scaling group EKS made for the node group (read-only, ``resources[0]``)."""

    def __init__(self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:nodegroups:NodeGroup", name, None, opts)
        design = args.design
        tags = dict(args.tags)
        capacity_block = design.capacity_type == CapacityType.CAPACITY_BLOCK
        template = aws.ec2.LaunchTemplateArgs(
            description=f"Nodes of node group {design.key}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT
            ),
            block_device_mappings=block_devices(design),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=dict(args.launch_tags))
                for kind in TAGGED_AT_LAUNCH
            ],
            user_data=user_data(design),
            update_default_version=True,
            tags=tags,
        )
        if capacity_block:
            # Capacity Blocks: the instance type and the reservation live in the launch template.
            template.instance_type = design.instance_types[0]
            template.instance_market_options = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
                market_type="capacity-block"
            )
            template.capacity_reservation_specification = reservation_target(str(design.capacity_reservation_id))
        if design.capacity_reservation is not None:
            template.capacity_reservation_specification = reservation_target(design.capacity_reservation)
        if design.efa is not None:
            self._efa(name, args, design.efa, template)
        launch_template = aws.ec2.LaunchTemplate(f"{name}-lt", template, opts=pulumi.ResourceOptions(parent=self))
        self.node_group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=args.cluster_name,
            version=args.kubernetes_version,
            node_role_arn=args.node_role_arn,
            subnet_ids=list(args.subnet_ids),
            instance_types=None if capacity_block else list(design.instance_types),
            ami_type=design.ami_type.value,
            # None: EKS's latest at creation, kept (eks_gpu.design.pinning); a change rolls every node
            release_version=design.release_version,
            capacity_type=design.capacity_type.value,
            scaling_config={
                "min_size": design.min_size,
                "desired_size": design.desired_size,
                "max_size": design.max_size,
            },
            update_config={"max_unavailable": MAX_UNAVAILABLE},
            node_repair_config={"enabled": True},
            labels=dict(design.labels),
            taints=[{"key": t.key, "value": t.value or None, "effect": t.effect.value} for t in design.taints],
            launch_template={"id": launch_template.id, "version": launch_template.latest_version.apply(str)},
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                ignore_changes=[IGNORE_DESIRED_SIZE],
            ),
        )
        self.name = self.node_group.node_group_name
        self.asg_name = self.node_group.resources.apply(_asg_name)
        for key, tag in args.asg_tags.items():
            aws.autoscaling.Tag(
                f"{name}-asg-{tag_slug(key)}",
                autoscaling_group_name=self.asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=tag.value, propagate_at_launch=tag.propagate_at_launch),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"name": self.name, "asgName": self.asg_name})

    def _efa(self, name: str, args: NodeGroupArgs, efa: EfaDesign, template: aws.ec2.LaunchTemplateArgs) -> None:
        """EFA: a security group open to itself, one interface per network card, a cluster placement group."""
        design = args.design
        child = pulumi.ResourceOptions(parent=self)
        group = efa_security_group(name, args.vpc_id, f"node group {design.key}", args.tags, self)
        template.network_interfaces = efa_interfaces(efa.interfaces, [args.cluster_security_group_id, group.id])
        if efa.placement_group:
            placement = aws.ec2.PlacementGroup(
                f"{name}-placement", strategy="cluster", tags=dict(args.tags), opts=child
            )
            template.placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=placement.name)
