"""A stand-in for the cluster of ``eks-gpu:existingCluster`` in the offline account, for ``make plan``.

The offline account has no copy of the user's cluster: the plan of such a stack runs against a
cluster of the same name, made in the account first, in a VPC with a public and a private subnet in
each of the region's first two AZs, at the program's default Kubernetes version, running no add-on.
What the plan shows of the cluster's version, subnets and add-ons is the stand-in's; ``pulumi preview``
reads the real cluster.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from eks_gpu.config.models import DEFAULT_KUBERNETES_VERSION

from .aws import AwsAccount

KEY = "eks-gpu:existingCluster"
CIDR = "10.99.0.0/16"
"""The stand-in VPC's range (its subnets are /20s of it)."""


def _existing(config: Mapping[str, Any]) -> dict[str, Any] | None:
    value = config.get(KEY)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return dict(value) if isinstance(value, Mapping) else None


def with_stand_in(account: AwsAccount, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` to plan with, and what the plan must say about it: unchanged without
    ``existingCluster``; else the stand-in cluster is made in ``account`` and ``subnetIds`` (which name
    subnets the offline account does not have) is left out, the stand-in's private subnets used instead."""
    existing = _existing(config)
    if existing is None or not isinstance(existing.get("name"), str):
        return dict(config), []
    name = existing["name"]
    zones = account._call("ec2", "describe_availability_zones")["AvailabilityZones"]
    azs = sorted(z["ZoneName"] for z in zones if z.get("OptInStatus", "opt-in-not-required") == "opt-in-not-required")[
        :2
    ]
    blocks = list(ipaddress.ip_network(CIDR).subnets(new_prefix=20))
    subnets = [
        (str(blocks[i]), az, public) for i, (az, public) in enumerate((a, p) for p in (True, False) for a in azs)
    ]
    vpc = account.create_existing_vpc(CIDR, subnets)
    account.create_existing_cluster(
        name, [*vpc.public_subnet_ids, *vpc.private_subnet_ids], version=DEFAULT_KUBERNETES_VERSION
    )
    notes = [
        f"{KEY}: the offline account has no copy of '{name}': planned against a stand-in of that name "
        f"(Kubernetes {DEFAULT_KUBERNETES_VERSION}, private subnets in {', '.join(azs)}, no add-on running); "
        "pulumi preview reads the real cluster"
    ]
    planned = dict(config)
    if "subnetIds" in existing:
        notes.append(f"{KEY}.subnetIds: not planned (the offline account has none of them): the stand-in's are used")
        planned[KEY] = {k: v for k, v in existing.items() if k != "subnetIds"}
    return planned, notes
