"""Where things go: which AZs the VPC spans, which AZs each pool uses, how the VPC CIDR is cut.

Pure functions over plain data, so the choices can be tested without Pulumi.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PRIVATE_SPLIT = 3
"""The VPC CIDR is cut into 2**3 = 8 blocks: private subnets of AZs a-g in blocks 0-6, block 7 for public."""
PUBLIC_SPLIT = 3
"""The last block is cut into 8 again: one small public subnet per AZ for NAT gateways and load balancers."""


def choose_azs(available: Sequence[str], needs: Mapping[str, frozenset[str]], az_count: int) -> tuple[str, ...]:
    """Pick ``az_count`` AZs among ``available``, preferring those that serve the node groups.

    ``needs`` maps a node group to the AZs that serve it: those offering all its instance types (for a
    Karpenter pool whose types no AZ offers together, those offering any). First every group gets
    an AZ (greedily, the AZ that serves the most groups still without one), then the remaining
    places go to the AZs that serve the most groups; ties go to the AZ that comes first by name,
    so the choice is stable from run to run. Returns the chosen AZs sorted by name; a group none of
    them serves is the caller's to report.
    """
    candidates = sorted(available)
    chosen: list[str] = []
    waiting = {g for g, azs in needs.items() if azs & set(candidates)}

    def serves(az: str, groups: set[str] | Mapping[str, frozenset[str]]) -> int:
        return sum(1 for g in groups if az in needs[g])

    while waiting and len(chosen) < az_count:
        best = max(
            (az for az in candidates if az not in chosen),
            key=lambda az: (serves(az, waiting), -candidates.index(az)),
        )
        if serves(best, waiting) == 0:
            break
        chosen.append(best)
        waiting = {g for g in waiting if best not in needs[g]}
    rest = sorted(
        (az for az in candidates if az not in chosen),
        key=lambda az: (-serves(az, needs), candidates.index(az)),
    )
    chosen.extend(rest[: max(0, az_count - len(chosen))])
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class SubnetLayout:
    """CIDR blocks per AZ, in the order of the AZs given."""

    private: tuple[str, ...]
    public: tuple[str, ...]


def az_slot(az: str) -> int:
    """The AZ's fixed place in the VPC CIDR: its letter (``us-west-2c`` -> 2).

    The letter never changes, so an AZ keeps its subnets' CIDRs whichever other AZs the VPC spans:
    adding or dropping an AZ never renumbers the others (a renumbered subnet is a replaced one).
    """
    slot = ord(az[-1]) - ord("a")
    if not 0 <= slot < 2**PRIVATE_SPLIT - 1:
        raise ValueError(f"AZ {az} has no subnet slot: only AZs a-g fit the layout")
    return slot


def subnet_layout(vpc_cidr: str, azs: Sequence[str]) -> SubnetLayout:
    """Cut ``vpc_cidr`` into one large private and one small public subnet per AZ, by AZ letter.

    For a /16: private /19s (8,190 addresses each: the VPC CNI gives every pod an address) in
    blocks 0-6, and public /22s inside block 7.
    """
    net = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(net.subnets(prefixlen_diff=PRIVATE_SPLIT))
    public = list(blocks[-1].subnets(prefixlen_diff=PUBLIC_SPLIT))
    return SubnetLayout(
        private=tuple(str(blocks[az_slot(az)]) for az in azs),
        public=tuple(str(public[az_slot(az)]) for az in azs),
    )
