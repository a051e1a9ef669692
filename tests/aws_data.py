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
