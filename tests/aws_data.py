"""AWS's own data, read straight from the files moto ships (shared/FACTS.md gives the paths).

Tests compute what they expect from here, so no GPU count or AZ list is typed into a test. The
offline engine answers the program's invokes from the same data through moto's API emulation:
the two paths meet only in AWS's files.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import moto

_RESOURCES = Path(moto.__file__).parent / "ec2" / "resources"


@cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Instance type -> its DescribeInstanceTypes record."""
    with gzip.open(_RESOURCES / "instance_types.json.gz") as f:
        data: dict[str, dict[str, Any]] = json.load(f)
    return data


@cache
def offerings(region: str) -> dict[str, frozenset[str]]:
    """Instance type -> the AZs of ``region`` that offer it."""
    with gzip.open(_RESOURCES / "instance_type_offerings" / "availability-zone" / f"{region}.json.gz") as f:
        rows = json.load(f)
    by_type: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_type[row["InstanceType"]].add(row["Location"])
    return {t: frozenset(azs) for t, azs in by_type.items()}


def gpus(instance_type: str) -> tuple[int, str]:
    """(GPU count, GPU model) of an instance type."""
    info = catalogue()[instance_type]["GpuInfo"]["Gpus"]
    return sum(g["Count"] for g in info), info[0]["Name"]


def eks_enum(shape: str) -> set[str]:
    """An enum of the EKS API model botocore ships."""
    return set(botocore.session.get_session().get_service_model("eks").shape_for(shape).enum)


def ec2_instance_types() -> set[str]:
    """Every instance type name the EC2 API model accepts."""
    return set(botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum)


def shape(instance_type: str) -> tuple[int, int, str, int]:
    """(vCPUs, memory MiB, GPU model, GPU count): what every type of one pool must share."""
    info = catalogue()[instance_type]
    count, model = gpus(instance_type)
    return info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"], model, count


def same_shape_pair(region: str, architecture: str = "x86_64") -> tuple[str, str]:
    """Two NVIDIA GPU types of one shape and architecture offered together in an AZ of ``region``
    (the first such pair by name)."""
    offered = offerings(region)
    candidates = sorted(
        t
        for t, info in catalogue().items()
        if t in offered
        and info.get("GpuInfo", {}).get("Gpus", [{}])[0].get("Manufacturer") == "NVIDIA"
        and architecture in info["ProcessorInfo"]["SupportedArchitectures"]
    )
    for i, a in enumerate(candidates):
        for b in candidates[i + 1 :]:
            if shape(a) == shape(b) and offered[a] & offered[b]:
                return a, b
    raise LookupError(f"no two NVIDIA types of one shape in {region}")


def az_of_zone_id(region: str, zone_id: str) -> str:
    """The AZ name moto's account gives ``zone_id`` (names map to ids per account)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        zones = boto3.client("ec2", region_name=region).describe_availability_zones()["AvailabilityZones"]
    return next(z["ZoneName"] for z in zones if z["ZoneId"] == zone_id)


def single_az_type(region: str) -> tuple[str, str]:
    """An NVIDIA type that ``region`` offers in exactly one AZ, from AWS's data."""
    cat = catalogue()
    found = sorted(
        (t, next(iter(azs)))
        for t, azs in offerings(region).items()
        if len(azs) == 1 and cat.get(t, {}).get("GpuInfo", {}).get("Gpus", [{}])[0].get("Manufacturer") == "NVIDIA"
    )
    assert found, f"AWS's data has no single-AZ NVIDIA type in {region}"
    return found[0]
