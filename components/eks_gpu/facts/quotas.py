"""The EC2 vCPU quotas an account has per instance family and market (On-Demand, Spot).

EC2 limits running instances by vCPUs per quota, each quota a set of instance families
(``g5.xlarge`` and ``vt1.3xlarge`` share "Running On-Demand G and VT instances"). The data is
``data/ec2_vcpu_quotas.json``; each quota's families are read from its own name, so the mapping
cannot drift from what AWS calls it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

Market = Literal["on-demand", "spot"]


@dataclass(frozen=True)
class VcpuQuota:
    """One Service Quotas quota of service ``ec2``."""

    code: str
    """The quota code (``L-DB2E81BA``): what ``get_service_quota`` and an increase request take."""
    name: str
    market: Market
    families: frozenset[str]
    """Instance family prefixes, lower case (``g``, ``vt``)."""


def families_in(name: str) -> frozenset[str]:
    """The families a quota's name lists: ``(A, C, D, ...)`` or ``G and VT`` or ``P``."""
    listed = re.search(r"\(([A-Z, ]+)\)", name)
    if listed:
        return frozenset(f.strip().lower() for f in listed.group(1).split(","))
    words = re.sub(r"^(Running On-Demand|All) ", "", name).split(" instances")[0].split(" Spot")[0]
    return frozenset(w.lower() for w in words.split(" and "))


@cache
def _data() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "data" / "ec2_vcpu_quotas.json").read_text()))


@cache
def vcpu_quotas() -> tuple[VcpuQuota, ...]:
    """The bundled quotas (once)."""
    return tuple(VcpuQuota(q["code"], q["name"], q["market"], families_in(q["name"])) for q in _data()["quotas"])


def family_of(instance_type: str) -> str:
    """``g6e.xlarge`` -> ``g``, ``p5en.48xlarge`` -> ``p``, ``trn1.2xlarge`` -> ``trn``; a family that is
    another's variant under its own name (``gr6``: G6) -> that one (``familyAliases``)."""
    found = re.match(r"[a-z]+", instance_type.lower())
    family = found.group(0) if found else ""
    return str(_data()["familyAliases"].get(family, family))


def quota_for(instance_type: str, market: Market) -> VcpuQuota | None:
    """The quota ``instance_type`` counts against in ``market``, or None if none is bundled."""
    family = family_of(instance_type)
    return next((q for q in vcpu_quotas() if q.market == market and family in q.families), None)
