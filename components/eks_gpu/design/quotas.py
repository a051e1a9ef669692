"""Whether the account's EC2 vCPU quotas let the node groups start and grow.

New accounts often have 0 vCPUs of G/VT and P quota: a node group that must start nodes beyond
its quota fails after EKS's long create timeout, and one that may grow beyond it never gets there
(the autoscaler's scale-ups fail). The quota is the account's limit in the region, shared with
everything else running there; this compares it with what the stack alone needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from eks_gpu.config import CapacityType, Problem, key_path
from eks_gpu.facts.quotas import Market, VcpuQuota, quota_for

MARKETS: Mapping[CapacityType, Market] = {CapacityType.ON_DEMAND: "on-demand", CapacityType.SPOT: "spot"}
"""Capacity types that draw on a vCPU quota; Capacity Blocks are reserved capacity, not checked."""

KARPENTER_MARKETS: Mapping[str, CapacityType] = {"spot": CapacityType.SPOT, "on-demand": CapacityType.ON_DEMAND}
"""A Karpenter pool's ``capacityTypes`` that draw on a vCPU quota, as the capacity type each is checked as.

``reserved`` is not one: its nodes launch into the On-Demand Capacity Reservations or Capacity Blocks of
``capacityReservationIds``, capacity the account already holds. An ODCR draws on the On-Demand quota when
it is created ("Your request to create a Capacity Reservation could fail if ... the requested quantity
exceeds your On-Demand Instance limit", EC2 User Guide, capacity-reservations-create.html), and a
Capacity Block is bought for a number of instances that launching into it uses up (EC2 User Guide,
capacity-blocks-launch.html): what bounds a reserved launch is the reservation's size, not a quota."""


def karpenter_markets(capacity_types: Iterable[str]) -> tuple[CapacityType, ...]:
    """The quota-drawing capacity types of a Karpenter pool's ``capacityTypes``, in its order."""
    return tuple(KARPENTER_MARKETS[t] for t in capacity_types if t in KARPENTER_MARKETS)


@dataclass(frozen=True)
class QuotaUse:
    """What one node group draws on a quota."""

    key: str
    prefix: tuple[str, ...]
    """Its config key's parts (``gpuNodeGroups``, ``inference``)."""
    instance_types: tuple[str, ...]
    capacity_type: CapacityType
    vcpus_per_node: int
    desired: int
    max: int
    test_nodes: int = 0
    """Nodes the stack's own tests (``gpuPod``, ``ncclTest``) need of the group during ``pulumi up``."""
    tests: tuple[str, ...] = ()
    """The config keys of those tests (``gpuPod``, ``ncclTest``)."""
    karpenter_types: tuple[str, ...] = ()
    """A Karpenter pool's ``capacityTypes`` (``spot``, ``on-demand``, ``reserved``), one use per market
    that draws on a quota; empty for a managed node group, which has one capacity type."""

    @property
    def market(self) -> Market | None:
        """The quota market this use draws on; None for capacity that draws on none."""
        return MARKETS.get(self.capacity_type)

    @property
    def starting(self) -> int:
        """Nodes the group runs while ``pulumi up`` is still waiting: its desired size, or what the
        stack's tests start on it, whichever is more (the autoscaler starts the tests' nodes)."""
        return max(self.desired, self.test_nodes)


@dataclass
class QuotaNeed:
    """What the stack needs of one quota, at desired and at max size."""

    quota: VcpuQuota
    desired_vcpus: int = 0
    max_vcpus: int = 0
    uses: list[QuotaUse] = field(default_factory=list)


def quota_needs(uses: Iterable[QuotaUse]) -> tuple[dict[str, QuotaNeed], list[QuotaUse]]:
    """Quota code -> what the node groups need of it; and the groups no bundled quota covers."""
    needs: dict[str, QuotaNeed] = {}
    unchecked: list[QuotaUse] = []
    for use in uses:
        market = MARKETS.get(use.capacity_type)
        if market is None or not use.instance_types:
            continue
        quota = quota_for(use.instance_types[0], market)
        if quota is None:
            unchecked.append(use)
            continue
        need = needs.setdefault(quota.code, QuotaNeed(quota))
        need.desired_vcpus += use.starting * use.vcpus_per_node
        need.max_vcpus += use.max * use.vcpus_per_node
        need.uses.append(use)
    return needs, unchecked


def quota_codes(instance_types: Iterable[tuple[str, CapacityType]]) -> list[str]:
    """The quota codes (instance type, capacity type) pairs draw on: what to read from AWS."""
    found = {q.code for t, c in instance_types if (m := MARKETS.get(c)) and (q := quota_for(t, m))}
    return sorted(found)


def check_quotas(
    uses: Iterable[QuotaUse],
    values: Mapping[str, float | None],
    region: str,
    problems: list[Problem],
    warnings: list[str],
) -> None:
    """Refuse a stack whose node groups cannot start their desired nodes; warn where max cannot be reached.

    ``values`` is quota code -> the account's value, or None where it could not be read (already
    warned about when it was read).
    """
    needs, unchecked = quota_needs(uses)
    for use in unchecked:
        warnings.append(
            f"{key_path(*use.prefix, 'instanceTypes')}: no vCPU quota is bundled for {use.instance_types[0]}'s "
            "family; its quota is not checked"
        )
    short = {c for c, n in needs.items() if (v := values.get(c)) is not None and n.desired_vcpus > v}
    for code, need in needs.items():
        value = values.get(code)
        if value is None:
            continue
        name, groups = need.quota.name, ", ".join(u.key for u in need.uses)
        increase = (
            f"request an increase: aws service-quotas request-service-quota-increase --service-code ec2 "
            f"--quota-code {code} --desired-value {need.max_vcpus} --region {region}"
        )
        starting = [u for u in need.uses if u.starting > 0]
        if need.desired_vcpus > value and starting and all(_fallbacks(u, short) for u in starting):
            warnings.append(_falls_back(need, value, region, increase, short))
        elif need.desired_vcpus > value:
            problems.append(_cannot_start(need, value, region, increase))
        elif need.max_vcpus > value:
            growing = max(need.uses, key=lambda u: u.max * u.vcpus_per_node)
            warnings.append(
                f"{key_path(*growing.prefix, 'maxSize')}: at maxSize node groups {groups} need {need.max_vcpus} "
                f"vCPUs of '{name}' ({code}), but the account's quota in {region} is {value:g}: scale-ups past it "
                f"fail; {increase}"
            )


def _fallbacks(use: QuotaUse, short: set[str]) -> tuple[str, ...]:
    """The other capacity types of a Karpenter pool's ``capacityTypes`` that could start the nodes ``use``
    cannot: ``reserved``, or a market whose quota is not short (or not bundled, or not read: unknown).

    Karpenter treats EC2's refusals over a quota (``MaxSpotInstanceCountExceeded``, ``VcpuLimitExceeded``)
    as unfulfillable capacity, marks that offering unavailable and launches from another the NodePool
    allows (karpenter-provider-aws ``pkg/errors/errors.go``, ``unfulfillableCapacityErrorCodes``)."""
    others = []
    for other in use.karpenter_types:
        if other == use.market:
            continue
        capacity = KARPENTER_MARKETS.get(other)
        quota = quota_for(use.instance_types[0], MARKETS[capacity]) if capacity else None
        if other == "reserved" or quota is None or quota.code not in short:
            others.append(other)
    return tuple(others)


def _falls_back(need: QuotaNeed, value: float, region: str, increase: str, short: set[str]) -> str:
    """The warning of a quota too small for the nodes Karpenter pools start, each of which lists another
    capacity type to start them as instead (:func:`_fallbacks`)."""
    parts = []
    for use in (u for u in need.uses if u.starting > 0):
        tests = " and ".join(f"eks-gpu:{t}" for t in use.tests) or "its desired size"
        parts.append(
            f"{use.starting} {use.instance_types[0]} of pool {use.key} as {use.market} for {tests} (it falls back to "
            f"{' or '.join(_fallbacks(use, short))})"
        )
    first = next(u for u in need.uses if u.starting > 0)
    return (
        f"{key_path(*first.prefix, 'karpenter', 'capacityTypes')}: starting {', '.join(parts)} needs "
        f"{need.desired_vcpus} vCPUs of '{need.quota.name}' ({need.quota.code}), but the account's quota in {region} "
        f"is {value:g}: Karpenter launches them as the fallback instead (a launch over a quota is unavailable "
        f"capacity to it); to get {first.market} nodes, {increase}"
    )


def _cannot_start(need: QuotaNeed, value: float, region: str, increase: str) -> Problem:
    """The problem of a quota too small for what ``pulumi up`` starts: the node groups' desired nodes
    and the nodes the stack's tests wait for (each would fail only after its long timeout)."""
    starting = [u for u in need.uses if u.starting > 0]
    first = starting[0]
    what = []
    for use in starting:
        if use.test_nodes > use.desired:
            tests = " and ".join(f"eks-gpu:{t}" for t in use.tests)
            market = f" as {use.market}" if use.karpenter_types else ""
            what.append(f"{use.test_nodes} {use.instance_types[0]} of pool {use.key}{market} for {tests}")
        else:
            what.append(f"{use.desired} {use.instance_types[0]}")
    groups = ", ".join(u.key for u in need.uses)
    by_tests = first.test_nodes > first.desired
    key = key_path(first.tests[0], "enabled") if by_tests else key_path(*first.prefix, "desiredSize")
    consequence = (
        "a pulumi up that creates or reruns the test would wait for its GPU node until the test times out (20 "
        "minutes or more) and fail"
        if by_tests
        else "the node group would fail after EKS's create timeout"
    )
    fixes = [increase]
    if by_tests:
        fixes.append(f"or disable {' and '.join(f'eks-gpu:{t}' for t in first.tests)} until the quota is raised")
    elif all(u.prefix[0] == "gpuNodeGroups" for u in starting):
        fixes.append("or start at desiredSize 0")
    return Problem(
        key,
        f"starting {', '.join(what)} needs {need.desired_vcpus} vCPUs of '{need.quota.name}' ({need.quota.code}; "
        f"node groups {groups}), but the account's quota in {region} is {value:g}: {consequence}; " + ", ".join(fixes),
    )
