"""The network's design: AZs of a VPC to build, or the subnets of one the user brings."""

from __future__ import annotations

from collections.abc import Mapping

from eks_gpu.config import (
    ExistingVpc,
    NewVpc,
    Problem,
    key_path,
)
from eks_gpu.design.lookup import AwsFacts
from eks_gpu.design.model import ExistingNetwork, NewNetwork
from eks_gpu.design.placement import choose_azs, subnet_layout
from eks_gpu.facts.aws_limits import UNSUPPORTED_CONTROL_PLANE_AZ_IDS


def cluster_azs(facts: AwsFacts) -> tuple[str, ...]:
    """The available AZs where EKS can place the control plane's network interfaces, by name."""
    return tuple(az for az in facts.available_azs if facts.zone_ids.get(az) not in UNSUPPORTED_CONTROL_PLANE_AZ_IDS)


def _no_control_plane(az: str, facts: AwsFacts) -> str:
    return (
        f"'{az}' is AZ id {facts.zone_ids.get(az)} in this account, where EKS cannot run a cluster's control plane "
        f"(EKS User Guide, network requirements); use another of {', '.join(cluster_azs(facts))}"
    )


def new_network(
    vpc: NewVpc,
    facts: AwsFacts,
    needs: Mapping[str, frozenset[str]],
    problems: list[Problem],
    notes: list[str],
) -> NewNetwork | None:
    before = len(problems)
    if vpc.availability_zones is not None:
        for i, az in enumerate(vpc.availability_zones):
            if az not in facts.available_azs:
                problems.append(
                    Problem(
                        key_path("vpc", "availabilityZones", i),
                        f"'{az}' is not an available AZ of {facts.region} ({', '.join(facts.available_azs)})",
                    )
                )
            elif facts.zone_ids.get(az) in UNSUPPORTED_CONTROL_PLANE_AZ_IDS:
                problems.append(Problem(key_path("vpc", "availabilityZones", i), _no_control_plane(az, facts)))
        if len(set(vpc.availability_zones)) != len(vpc.availability_zones):
            problems.append(Problem(key_path("vpc", "availabilityZones"), "lists an AZ twice"))
        if "az_count" in vpc.model_fields_set and vpc.az_count != len(vpc.availability_zones):
            problems.append(
                Problem(
                    key_path("vpc", "azCount"),
                    f"{vpc.az_count} disagrees with the {len(vpc.availability_zones)} availabilityZones; "
                    "set one of the two",
                )
            )
        azs = tuple(sorted(vpc.availability_zones))
    elif len(usable := cluster_azs(facts)) < vpc.az_count:
        problems.append(
            Problem(
                key_path("vpc", "azCount"),
                f"{vpc.az_count} AZs asked, but {facts.region} has {len(usable)} available where EKS can run a "
                f"control plane ({', '.join(usable)})",
            )
        )
    else:
        azs = choose_azs(usable, needs, vpc.az_count)
        notes.append(
            f"the VPC spans {', '.join(azs)}, chosen for the node groups' instance types; pin them with "
            f"eks-gpu:vpc.availabilityZones so that a new pool never moves the VPC's subnets"
        )
    if len(problems) > before:
        return None
    layout = subnet_layout(vpc.cidr, azs)
    return NewNetwork(
        cidr=vpc.cidr,
        azs=azs,
        private_cidrs=layout.private,
        public_cidrs=layout.public,
        nat_per_az=vpc.nat_gateways == "perAz",
    )


def existing_network(
    vpc: ExistingVpc, facts: AwsFacts, problems: list[Problem], warnings: list[str]
) -> ExistingNetwork | None:
    before = len(problems)
    by_az: dict[str, list[str]] = {}
    for field, ids in (("privateSubnetIds", vpc.private_subnet_ids), ("publicSubnetIds", vpc.public_subnet_ids)):
        for i, sid in enumerate(ids):
            subnet = facts.subnets.get(sid)
            if subnet is None:
                problems.append(Problem(key_path("vpc", field, i), f"'{sid}' is not a subnet of {vpc.id}"))
            elif facts.zone_ids.get(subnet.availability_zone) in UNSUPPORTED_CONTROL_PLANE_AZ_IDS:
                problems.append(
                    Problem(key_path("vpc", field, i), f"'{sid}': {_no_control_plane(subnet.availability_zone, facts)}")
                )
            elif field == "privateSubnetIds":
                by_az.setdefault(subnet.availability_zone, []).append(sid)
                if not (subnet.default_route or "").startswith(("nat-", "tgw-", "eni-")):
                    warnings.append(
                        f"{key_path('vpc', field, i)}: '{sid}' has no default route through a NAT gateway "
                        f"(it goes to {subnet.default_route or 'nowhere'}); nodes there join only with VPC "
                        "endpoints for EKS, ECR, S3, EC2 and STS"
                    )
    if len(problems) == before and len(by_az) < 2:
        problems.append(
            Problem(
                key_path("vpc", "privateSubnetIds"),
                f"all in {', '.join(by_az)}: EKS needs private subnets in at least two AZs",
            )
        )
    if len(problems) > before:
        return None
    return ExistingNetwork(
        vpc_id=vpc.id,
        private_subnets={az: tuple(ids) for az, ids in sorted(by_az.items())},
        public_subnet_ids=vpc.public_subnet_ids,
    )
