"""The stack's cost per hour, from its resources: the one cost model of `make plan` and the policy pack.

Three points: *idle* (every node group at ``minSize``), *desired*, *max*. Line items: the EKS
control plane (standard or extended support rate for the cluster's version, from the bundled
version calendar), NAT gateways, and each node group at the on-demand price of its first instance
type (the one EKS tries first). Spot groups are priced at the on-demand price, their upper bound
(no spot price source is bundled); Capacity Block groups at the on-demand price too; both are
marked as estimates. A price the bundled table lacks is ``None``, never a guess, and makes the
totals *incomplete*: :func:`unpriced` names the items, :func:`complete` says whether there are
none, and a budget cannot be shown to hold on an incomplete total. Monthly figures are the hourly
ones times :data:`HOURS_PER_MONTH` (730).

Node volumes are priced per node-hour from their launch template (storage and provisioned throughput
over gp3's free 125 MiB/s; ``data/ebs_gp3_prices.json``). What is billed by use (the volumes of
PersistentVolumeClaims, CloudWatch Container Insights) is listed as *usage-based*: not zero, not in the
totals, and not "unknown" either.

Karpenter GPU pools (``eks-gpu:provisioner: karpenter``) have no node group: each is a
``karpenter.sh/v1`` NodePool, a line item of its own (:func:`node_pool`). Karpenter starts nodes only
for pending pods, so a NodePool counts 0 nodes idle and at desired, and at max ``limits.nodes`` nodes
of the dearest instance type its requirements allow (``node.kubernetes.io/instance-type In [...]``,
or ``karpenter.k8s.aws/instance-family In [...]``: every type of those families the bundled table
lists in the region). That is an estimate at the limit, not a ceiling: Karpenter checks limits eventually
consistently and "can result in overrun during rapid scale outs" (aws/karpenter-provider-aws
``website/content/en/v1.14/concepts/nodepools.md``, "spec.limits"); a cpu or GPU limit may stop it
earlier. Spot and reserved capacity are priced at on-demand, the upper bound, as for spot node groups.
Karpenter's interruption queue (SQS) and the EventBridge rules that feed it are billed per request and
per event: listed as usage-based.

It reads only what the program sends for its resources (type and inputs), so the same function
serves the offline plan and ``pulumi preview --policy-pack policy``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from eks_gpu.facts.versions import calendar, check_version
from eks_gpu.policy.pricing import HOURS_PER_MONTH, PriceTable

POINTS = ("idle", "desired", "max")
"""The three cost points: every node group at minSize, at desiredSize, at maxSize."""
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
CLUSTERS = ("eks:index:Cluster", "aws:eks/cluster:Cluster")
"""pulumi-eks's component (what the program sends) and the cluster it makes (what a preview shows)."""
POOL_LABEL = "eks-gpu/node-group"
"""The node label naming a node group's pool (``eks_gpu.config.POOL_LABEL``), and the tag the launch
template puts on what it launches (``eks_gpu.design.tags.NODE_GROUP_TAG``)."""
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ADDON = "aws:eks/addon:Addon"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_PRICES = Path(__file__).resolve().parent / "data" / "ebs_gp3_prices.json"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
SQS_QUEUE = "aws:sqs/queue:Queue"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
INSTANCE_FAMILY_KEY = "karpenter.k8s.aws/instance-family"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
KARPENTER_CAPACITY_ORDER = ("reserved", "spot", "on-demand")
"""The order Karpenter tries the capacity types a NodePool allows, whatever order the requirement lists
them in: reserved capacity first, then spot, then on-demand (aws/karpenter-provider-aws,
website/content/en/v1.14/concepts/nodepools.md and scheduling.md, "Capacity Type"). A NodePool without a
capacity-type requirement gets ``on-demand`` only (the same pages)."""
USAGE_BASED = {
    "amazon-cloudwatch-observability": "CloudWatch Container Insights (GPU metrics)",
}
"""Add-ons billed by what they send, not by the hour."""


@dataclass(frozen=True)
class LineItem:
    """One thing that costs by the hour, at each cost point."""

    item: str
    unit_usd_per_hour: float | None
    """None when the bundled table has no price for it."""
    counts: Mapping[str, int]
    estimate: bool = False
    note: str = ""
    usage_based: bool = False
    """Billed by use: shown, not priced, not in the totals."""

    def usd_per_hour(self, point: str) -> float | None:
        """What the item costs per hour at ``point``."""
        return None if self.unit_usd_per_hour is None else self.unit_usd_per_hour * self.counts[point]


def _int(value: Any) -> int:
    return int(float(value))


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _group_label(key: str) -> str:
    return "system" if key == "system" else f"GPU pool {key}"


def line_items(
    resources: Iterable[tuple[str, Mapping[str, Any]]], region: str, prices: PriceTable, today: date
) -> list[LineItem]:
    """Control plane, NAT gateways and every node group of ``resources`` ((type, inputs) pairs), priced."""
    resources = list(resources)
    items: list[LineItem] = []
    versions = [str(props["version"]) for type_, props in resources if type_ in CLUSTERS and props.get("version")]
    if versions:
        version, cal = versions[0], calendar()
        extended = check_version(version, today).extended_support
        items.append(
            LineItem(
                item=f"EKS control plane (Kubernetes {version}, {'extended' if extended else 'standard'} support)",
                unit_usd_per_hour=cal.extended_usd_per_hour if extended else cal.standard_usd_per_hour,
                counts=dict.fromkeys(POINTS, 1),
                note=f"rates from {cal.source}",
            )
        )
    nats = sum(1 for type_, _ in resources if type_ == NAT_GATEWAY)
    if nats:
        items.append(
            LineItem(
                item="NAT gateways",
                unit_usd_per_hour=prices.nat_gateway(region),
                counts=dict.fromkeys(POINTS, nats),
                note="hourly charge only; data processing is per GB",
            )
        )
    groups = [props for type_, props in resources if type_ == NODE_GROUP]
    volumes = _volumes_by_group(resources)
    for props in sorted(groups, key=lambda p: (p["labels"][POOL_LABEL] != "system", p["labels"][POOL_LABEL])):
        item = _node_group_item(props, region, prices)
        items.append(item)
        key = props["labels"][POOL_LABEL]
        if key in volumes:
            items.append(_volume_item(key, volumes[key], item.counts, region))
    catalogue = catalogue_of(prices, region)
    classes = {str(_meta(props).get("name")): props for type_, props in resources if type_ == EC2_NODE_CLASS}
    for props in sorted((p for t, p in resources if t == NODE_POOL), key=lambda p: node_pool(p, ()).pool):
        pool = node_pool(props, catalogue)
        item = _node_pool_item(pool, region, prices)
        items.append(item)
        node_class = classes.get(pool.node_class)
        if node_class is not None and (node_class.get("spec") or {}).get("blockDeviceMappings"):
            disks: list[Mapping[str, Any]] = [_ebs_of_node_class(m) for m in node_class["spec"]["blockDeviceMappings"]]
            items.append(_volume_item(pool.pool, disks, item.counts, region))
    addons = {props.get("addonName") for type_, props in resources if type_ == ADDON}
    usage = [label for addon, label in USAGE_BASED.items() if addon in addons]
    if any(type_ == SQS_QUEUE for type_, _ in resources):
        usage.append("Karpenter's interruption queue (SQS): billed per request")
    rules = sum(1 for type_, _ in resources if type_ == EVENT_RULE)
    if rules:
        usage.append(
            f"EventBridge rules ({rules}) sending AWS service events to the interruption queue: billed per event"
        )
    if any(type_ == STORAGE_CLASS for type_, _ in resources):
        usage.append("EBS volumes of PersistentVolumeClaims (gp3-encrypted)")
    items += [
        LineItem(item=u, unit_usd_per_hour=None, counts=dict.fromkeys(POINTS, 0), usage_based=True) for u in usage
    ]
    return items


@functools.cache
def _ebs_prices() -> dict[str, Any]:
    return dict(json.loads(EBS_PRICES.read_text()))


def ebs_price_source() -> str:
    """Where the bundled gp3 prices come from, and when."""
    table = _ebs_prices()
    return f"{table['source']} ({table['date']})"


def _volumes_by_group(resources: list[tuple[str, Mapping[str, Any]]]) -> dict[str, list[Mapping[str, Any]]]:
    """Pool key -> the EBS volumes of one of its nodes, from its launch template (found by the identity
    tag it puts on what it launches)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for type_, props in resources:
        if type_ != LAUNCH_TEMPLATE:
            continue
        keys = {(spec.get("tags") or {}).get(POOL_LABEL) for spec in props.get("tagSpecifications") or []}
        for key in keys - {None}:
            out[str(key)] = [d.get("ebs") or {} for d in props.get("blockDeviceMappings") or []]
    return out


def _volume_item(key: str, volumes: list[Mapping[str, Any]], counts: Mapping[str, int], region: str) -> LineItem:
    """A node's gp3 volumes per node-hour: storage, and throughput over the free baseline."""
    table = _ebs_prices()
    rates = table["regions"].get(region)
    sizes = [_int(v["volumeSize"]) for v in volumes if v.get("volumeSize") is not None]
    throughput = max((_int(v.get("throughput") or 0) for v in volumes), default=0)
    iops = max((_int(v.get("iops") or 0) for v in volumes), default=0)
    label = f"{_group_label(key)} volumes ({'+'.join(map(str, sizes))} GiB gp3"
    label += f", {throughput} MiB/s)" if throughput else ")"
    unit: float | None = None
    notes = [f"storage + throughput over {table['regions'].get(region, {}).get('freeThroughputMibps', 125)} MiB/s"]
    if rates is not None:
        month = sum(sizes) * rates["storageUsdPerGibMonth"]
        month += max(0, throughput - rates["freeThroughputMibps"]) * rates["throughputUsdPerMibpsMonth"]
        unit = month / table["hoursPerMonth"]
        if iops > rates["freeIops"]:
            notes.insert(0, f"IOPS over {rates['freeIops']} not priced")
    if any(v.get("volumeSize") is None for v in volumes):
        notes.insert(0, "the AMI-sized OS volume not counted")
    return LineItem(item=label, unit_usd_per_hour=unit, counts=dict(counts), note="; ".join(notes))


def _node_group_item(props: Mapping[str, Any], region: str, prices: PriceTable) -> LineItem:
    key = props["labels"][POOL_LABEL]
    types = tuple(props.get("instanceTypes") or ())
    itype = types[0] if types else "?"
    capacity = props["capacityType"]
    spot, block = capacity == "SPOT", capacity == "CAPACITY_BLOCK"
    note = ""
    if spot:
        note = "spot: the on-demand price shown is the upper bound (no spot price source bundled)"
    elif block:
        note = "capacity block: paid upfront for the reservation; on-demand price shown"
    elif len(types) > 1:
        dearest = max(types, key=lambda t: prices.on_demand(region, t) or 0.0)
        note = (
            f"priced as {itype}, the first type EKS tries; up to "
            f"{_usd(prices.on_demand(region, dearest))}/node as {dearest}"
        )
    scaling = props["scalingConfig"]
    return LineItem(
        item=f"{_group_label(key)} nodes ({itype}, {capacity})",
        unit_usd_per_hour=prices.on_demand(region, itype),
        counts={
            "idle": _int(scaling["minSize"]),
            "desired": _int(scaling["desiredSize"]),
            "max": _int(scaling["maxSize"]),
        },
        estimate=spot or block,
        note=note,
    )


# --- Karpenter NodePools -------------------------------------------------------------------


@dataclass(frozen=True)
class NodePoolView:
    """What a NodePool's inputs say about the nodes Karpenter may start for it."""

    name: str
    """``metadata.name``."""
    pool: str
    """The GPU pool it provisions: its nodes' ``eks-gpu/node-group`` label, else its name."""
    instance_types: tuple[str, ...] | None
    """The instance types its requirements allow, sorted; None: no instance-type or family requirement
    (any type Karpenter finds), or a family the table does not list."""
    families: tuple[str, ...]
    """``karpenter.k8s.aws/instance-family In`` values (empty without that requirement)."""
    capacity_types: tuple[str, ...]
    """The capacity types allowed, in the order Karpenter tries them (:data:`KARPENTER_CAPACITY_ORDER`)."""
    limits: Mapping[str, str]
    node_limit: int | None
    """``limits.nodes``; None without it."""
    node_class: str
    """``template.spec.nodeClassRef.name``: its EC2NodeClass."""
    disruption: Mapping[str, Any]
    expire_after: str | None
    termination_grace_period: str | None


def _meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("metadata") or {}


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``2``, ``500m``, ``4k``) as a number."""
    text = str(value)
    for suffix, scale in (("m", 0.001), ("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def catalogue_of(prices: PriceTable, region: str) -> frozenset[str]:
    """Every instance type the bundled table prices in ``region``: where an instance-family requirement
    is expanded (outside us-east-1 that is GPU types only, and GPU pools ask only for GPU families)."""
    return frozenset(prices.on_demand_usd_per_hour.get(region, {})) | frozenset(
        prices.gpu_on_demand_usd_per_hour.get(region, {})
    )


def node_pool(props: Mapping[str, Any], catalogue: Iterable[str] | None) -> NodePoolView:
    """A NodePool's inputs (apiVersion, kind, metadata, spec) read; ``catalogue`` expands families."""
    spec = props.get("spec") or {}
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    name = str(_meta(props).get("name") or "")
    allowed: set[str] | None = None
    families: tuple[str, ...] = ()
    capacity: set[str] = {"on-demand"}
    excluded: set[str] = set()
    for req in tspec.get("requirements") or []:
        key, op, values = req.get("key"), req.get("operator"), [str(v) for v in req.get("values") or []]
        if key == INSTANCE_TYPE_KEY and op == "In":
            allowed = set(values) if allowed is None else allowed & set(values)
        elif key == INSTANCE_TYPE_KEY and op == "NotIn":
            excluded |= set(values)
        elif key == INSTANCE_FAMILY_KEY and op == "In":
            families = tuple(sorted(values))
            of_family = {t for t in catalogue or () if t.split(".", 1)[0] in values}
            allowed = of_family if allowed is None else allowed & of_family
        elif key == CAPACITY_TYPE_KEY and op == "In":
            capacity = set(values)
    if families and not allowed:
        allowed = None
    limits = {str(k): str(v) for k, v in (spec.get("limits") or {}).items()}
    return NodePoolView(
        name=name,
        pool=str(labels.get(POOL_LABEL) or name),
        instance_types=None if allowed is None else tuple(sorted(allowed - excluded)),
        families=families,
        capacity_types=tuple(c for c in KARPENTER_CAPACITY_ORDER if c in capacity),
        limits=limits,
        node_limit=int(quantity(limits["nodes"])) if "nodes" in limits else None,
        node_class=str((tspec.get("nodeClassRef") or {}).get("name") or ""),
        disruption=dict(spec.get("disruption") or {}),
        expire_after=tspec.get("expireAfter"),
        termination_grace_period=tspec.get("terminationGracePeriod"),
    )


def dearest(pool: NodePoolView, region: str, prices: PriceTable) -> str | None:
    """The allowed type with the highest on-demand price; None when a type is unpriced or none is known."""
    types = pool.instance_types or ()
    if not types or any(prices.on_demand(region, t) is None for t in types):
        return None
    return max(types, key=lambda t: (prices.on_demand(region, t) or 0.0, t))


def _node_pool_item(pool: NodePoolView, region: str, prices: PriceTable) -> LineItem:
    types = pool.instance_types
    top = dearest(pool, region, prices)
    nodes = pool.node_limit
    notes = [
        "Karpenter: no node until a pod is pending; max = limits.nodes of the dearest allowed type, an estimate at "
        "the limit, not a ceiling (limits are eventually consistent: a fast scale-out can overrun them)"
    ]
    if not types:
        notes.insert(0, "no instance-type requirement the bundled table can resolve: any type, not priced")
    elif top is None:
        missing = [t for t in types if prices.on_demand(region, t) is None]
        notes.insert(0, f"no price for {', '.join(missing)} in {region}")
    if nodes is None:
        notes.insert(0, "no limits.nodes: Karpenter may start nodes without bound")
    spot_or_reserved = [c for c in pool.capacity_types if c != "on-demand"]
    if spot_or_reserved:
        notes.append(f"{'/'.join(spot_or_reserved)}: the on-demand price shown is the upper bound")
    shown = top or (",".join(types) if types and len(types) <= 3 else f"{len(types or ())} types" if types else "any")
    return LineItem(
        item=f"GPU pool {pool.pool} nodes (Karpenter NodePool {pool.name}: {shown}, {'/'.join(pool.capacity_types)})",
        unit_usd_per_hour=None if top is None or nodes is None else prices.on_demand(region, top),
        counts={"idle": 0, "desired": 0, "max": 1 if nodes is None else nodes},
        estimate=True,
        note="; ".join(notes),
    )


def _ebs_of_node_class(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """An EC2NodeClass block device's ``ebs`` in a launch template's terms (``volumeSize`` in GiB)."""
    ebs = dict(mapping.get("ebs") or {})
    size = ebs.get("volumeSize")
    if size is not None:
        text = str(size)
        scale = {"Ti": 1024.0, "T": 1000**4 / 1024**3, "Gi": 1.0, "G": 1000**3 / 1024**3}
        unit = next((u for u in scale if text.endswith(u)), "")
        ebs["volumeSize"] = math.ceil(float(text.removesuffix(unit)) * scale.get(unit, 1.0))
    return ebs


def totals(items: Iterable[LineItem]) -> dict[str, float]:
    """Cost point -> USD per hour, summed over the items with a known price (a floor when
    :func:`complete` is False)."""
    items = list(items)
    return {p: round(sum(i.usd_per_hour(p) or 0.0 for i in items), 4) for p in POINTS}


def monthly(usd_per_hour: float) -> float:
    """USD per month of something that costs ``usd_per_hour`` all month (730 hours), to the cent."""
    return round(usd_per_hour * HOURS_PER_MONTH, 2)


def unpriced(items: Iterable[LineItem]) -> list[str]:
    """The hourly items the bundled tables hold no price for (their cost is missing from the totals).

    An item that counts zero at every point (a group with ``maxSize`` 0) costs nothing whatever
    its price, and is not listed."""
    return [i.item for i in items if i.unit_usd_per_hour is None and not i.usage_based and any(i.counts.values())]


def complete(items: Iterable[LineItem]) -> bool:
    """Whether every hourly item has a price, so the totals are the stack's cost, not a floor."""
    return not unpriced(items)
