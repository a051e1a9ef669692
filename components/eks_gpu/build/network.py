"""The network: a VPC with public and private subnets across AZs and NAT egress, or the user's own.

Nodes live in the private subnets and reach the cluster endpoint, ECR and the internet through NAT
gateways; a node group waits for its subnets' NAT route (:attr:`Network.egress`), because nodes that
start without egress never join the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from eks_gpu.build.tagging import tags_for
from eks_gpu.design import ExistingNetwork, NewNetwork

PUBLIC_ELB_TAG = {"kubernetes.io/role/elb": "1"}
"""Public subnets: where the AWS Load Balancer Controller puts internet-facing load balancers."""
INTERNAL_ELB_TAG = {"kubernetes.io/role/internal-elb": "1"}
"""Private subnets: where it puts internal load balancers."""


@dataclass(frozen=True)
class NetworkArgs:
    """What the network is built from."""

    network: NewNetwork | ExistingNetwork
    cluster_name: str
    tags: Mapping[str, str]
    private_subnet_tags: Mapping[str, str] = field(default_factory=dict)
    """More tags on the private subnets the program builds (Karpenter's discovery tag). An existing VPC's
    subnets are never tagged: they may be shared, and EC2's ``CreateTags`` overwrites a key another
    cluster set, which a destroy would then delete. Default none."""


class Network(pulumi.ComponentResource):
    """VPC, subnets, internet and NAT gateways, routes; or just the ids of an existing VPC."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: dict[str, list[pulumi.Input[str]]]
    """AZ -> private subnet ids."""
    public_subnet_ids: list[pulumi.Input[str]]
    egress: dict[str, list[pulumi.Resource]]
    """AZ -> the resources that give its private subnets egress (empty for an existing VPC)."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:network:Network", name, None, opts)
        net = args.network
        self.egress = {}
        if isinstance(net, ExistingNetwork):
            self.vpc_id = net.vpc_id
            self.private_subnet_ids = {az: list(ids) for az, ids in net.private_subnets.items()}
            self.public_subnet_ids = list(net.public_subnet_ids)
        else:
            self._build(name, net, args)
        self.register_outputs({"vpcId": self.vpc_id, "publicSubnetIds": self.public_subnet_ids})

    def all_private_subnet_ids(self) -> list[pulumi.Input[str]]:
        """Every private subnet, AZ by AZ."""
        return [sid for az in sorted(self.private_subnet_ids) for sid in self.private_subnet_ids[az]]

    def _build(self, name: str, net: NewNetwork, args: NetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)

        def tags(role: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
            return {**tags_for(args.tags, f"{args.cluster_name}-{role}"), **(extra or {})}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=net.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags("vpc"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id, tags=tags("public"), opts=child)
        public_route = aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        public: dict[str, aws.ec2.Subnet] = {}
        nats: dict[str, aws.ec2.NatGateway] = {}
        self.private_subnet_ids = {}
        for i, az in enumerate(net.azs):
            public[az] = aws.ec2.Subnet(
                f"{name}-public-{az}",
                vpc_id=vpc.id,
                cidr_block=net.public_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=tags(f"public-{az}", PUBLIC_ELB_TAG),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}", subnet_id=public[az].id, route_table_id=public_rt.id, opts=child
            )
            if net.nat_per_az or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc", tags=tags(f"nat-{az}"), opts=child)
                nats[az] = aws.ec2.NatGateway(
                    f"{name}-nat-{az}",
                    allocation_id=eip.id,
                    subnet_id=public[az].id,
                    tags=tags(f"nat-{az}"),
                    # no way out until the public subnets route to the internet gateway
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[public_route]),
                )
        first_nat = nats[net.azs[0]]
        for i, az in enumerate(net.azs):
            private = aws.ec2.Subnet(
                f"{name}-private-{az}",
                vpc_id=vpc.id,
                cidr_block=net.private_cidrs[i],
                availability_zone=az,
                tags=tags(f"private-{az}", {**INTERNAL_ELB_TAG, **args.private_subnet_tags}),
                opts=child,
            )
            rt = aws.ec2.RouteTable(f"{name}-private-{az}", vpc_id=vpc.id, tags=tags(f"private-{az}"), opts=child)
            route = aws.ec2.Route(
                f"{name}-private-{az}-default",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats.get(az, first_nat).id,
                opts=child,
            )
            assoc = aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}", subnet_id=private.id, route_table_id=rt.id, opts=child
            )
            self.private_subnet_ids[az] = [private.id]
            self.egress[az] = [route, assoc]
        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public.values()]
