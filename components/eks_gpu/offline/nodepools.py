"""Karpenter's NodePools as the plan reads and shows them: the vCPU quotas they may draw on, their JSON rows,
the AMI their EC2NodeClasses pin and AWS's latest for it, and their cells in the plan's tables and diagram.

It reads only what the program sends (the NodePool's and EC2NodeClass's inputs), as
:mod:`eks_gpu.policy.cost` does; :mod:`eks_gpu.offline.plan` lays the tables out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eks_gpu.config import AmiType, Architecture, CapacityType
from eks_gpu.design.karpenter import ami_alias
from eks_gpu.design.lookup import family_of
from eks_gpu.design.pinning import release_parameter
from eks_gpu.design.quotas import QuotaUse
from eks_gpu.facts.quotas import quota_for
from eks_gpu.policy.cost import KARPENTER_CAPACITY_ORDER, NodePoolView, dearest
from eks_gpu.policy.pricing import price_table

from .diff import value_at

SSM_INVOKE = "aws:ssm/getParameter:getParameter"
"""The invoke that reads an SSM parameter (AWS's latest AMI release of an AMI type)."""


KARPENTER_MARKETS = {"spot": CapacityType.SPOT, "on-demand": CapacityType.ON_DEMAND}
"""NodePool capacity types that draw on a vCPU quota (``reserved`` is capacity already held: not checked)."""


def node_pool_quota_uses(pools: Iterable[NodePoolView], vcpus: Mapping[str, int]) -> list[QuotaUse]:
    """What each NodePool may draw on each vCPU quota: ``limits.nodes`` nodes of its allowed type with
    the most vCPUs in that quota's family class, for spot and for on-demand (Karpenter may fill the
    limit with either); none at desired, for Karpenter starts nodes only for pending pods."""
    uses = []
    for pool in pools:
        if pool.node_limit is None or not pool.instance_types:
            continue
        for capacity, capacity_type in KARPENTER_MARKETS.items():
            if capacity not in pool.capacity_types:
                continue
            by_quota: dict[str, list[str]] = {}
            for t in pool.instance_types:
                quota = quota_for(t, "spot" if capacity_type == CapacityType.SPOT else "on-demand")
                by_quota.setdefault(quota.code if quota else "", []).append(t)
            for types in by_quota.values():
                largest = max(types, key=lambda t: (vcpus.get(t, 0), t))
                uses.append(
                    QuotaUse(
                        key=pool.pool,
                        prefix=(),
                        instance_types=(largest,),
                        capacity_type=capacity_type,
                        vcpus_per_node=vcpus.get(largest, 0),
                        desired=0,
                        max=pool.node_limit,
                    )
                )
    return uses


def node_pool_row(pool: NodePoolView, region: str, vcpus: Mapping[str, int]) -> dict[str, Any]:
    """One NodePool as the plan's JSON shows it (``nodePools``)."""
    disruption = pool.disruption
    return {
        "pool": pool.pool,
        "name": pool.name,
        "instanceTypes": list(pool.instance_types or []),
        "instanceFamilies": list(pool.families),
        "capacityOrder": list(pool.capacity_types),
        "limits": dict(pool.limits),
        "nodeLimit": pool.node_limit,
        "dearestType": dearest(pool, region, price_table()),
        "vcpusPerNode": {t: vcpus[t] for t in pool.instance_types or () if t in vcpus},
        "consolidationPolicy": disruption.get("consolidationPolicy"),
        "consolidateAfter": disruption.get("consolidateAfter"),
        "budgets": [dict(b) for b in disruption.get("budgets") or []],
        "expireAfter": pool.expire_after,
        "terminationGracePeriod": pool.termination_grace_period,
        "nodeClass": pool.node_class,
    }


ARCH_KEY = "kubernetes.io/arch"
ZONE_KEY = "topology.kubernetes.io/zone"
KUBERNETES_ARCH = {"amd64": Architecture.X86_64, "arm64": Architecture.ARM64}
"""``kubernetes.io/arch`` (Go's GOARCH names, as the program's NodePools send it) -> EC2's architecture."""
ALIAS_FAMILIES = ("al2023", "bottlerocket")
"""The alias families whose releases the plan can read (the EKS AMI types the program builds from)."""


def requirement_values(nodepool: Mapping[str, Any], key: str) -> list[str] | None:
    """The values of a NodePool's ``key In [...]`` requirement (``spec.template.spec.requirements``); None
    without one."""
    for req in value_at(nodepool, "spec.template.spec.requirements") or []:
        if isinstance(req, Mapping) and req.get("key") == key and req.get("operator") == "In":
            return [str(v) for v in req.get("values") or []]
    return None


def _alias_ami_type(family: str, architecture: Architecture, nvidia: bool) -> AmiType:
    """The EKS AMI type whose releases an alias of ``family`` resolves to for such nodes (never FIPS: an
    alias names none)."""
    (found,) = [
        t
        for t in AmiType
        if t.bottlerocket == (family == "bottlerocket")
        and t.architecture == architecture
        and t.nvidia == nvidia
        and not t.value.endswith("_FIPS")
    ]
    return found


def node_pool_ami(
    nodepool: Mapping[str, Any],
    node_class: Mapping[str, Any] | None,
    records: Mapping[str, Mapping[str, Any]],
    instance_types: Sequence[str] | None,
    kubernetes_version: str | None,
    answer: Callable[[str, Mapping[str, Any]], Any],
) -> dict[str, Any]:
    """What a NodePool's EC2NodeClass pins of the AMI (``spec.amiSelectorTerms``), and the latest release AWS
    publishes for it: the JSON keys the plan adds to the pool's ``nodePools`` row.

    An alias (``al2023@v20260304``) resolves per instance type: Karpenter reads one SSM parameter per
    architecture and variant (standard, nvidia, neuron) and gives each image the requirements of its variant,
    nvidia for a type with GPUs (aws/karpenter-provider-aws ``pkg/providers/amifamily/al2023.go``
    ``DescribeImageQuery`` and ``resolvePath``, ``types.go`` ``Variant.Requirements``: ``nvidia`` is
    ``karpenter.k8s.aws/instance-gpu-count Exists``). So the latest release offered is the one the program
    reads for a node group of that AMI type (:func:`eks_gpu.design.pinning.release_parameter`), for the
    architecture the pool's ``kubernetes.io/arch`` requirement (else its types) allows and the variant its
    types have (from the instance types' records), as the alias it would be
    (:func:`eks_gpu.design.karpenter.ami_alias`). When any of that is not one thing, ``latestAmiRelease`` is
    None and ``latestAmiUnknown`` says why.
    """
    terms = list(value_at(node_class or {}, "spec.amiSelectorTerms") or [])
    alias = str(terms[0]["alias"]) if terms and isinstance(terms[0], Mapping) and terms[0].get("alias") else None
    out: dict[str, Any] = {
        "amiSelectorTerms": terms,
        "amiAlias": alias,
        "amiType": None,
        "kubernetesVersion": kubernetes_version,
        "latestAmiRelease": None,
        "latestAmiAlias": None,
        "latestAmiUnknown": None,
    }
    family = (alias or "").partition("@")[0]

    def unknown(why: str) -> dict[str, Any]:
        out["latestAmiUnknown"] = why
        return out

    if node_class is None:
        return unknown("its EC2NodeClass is not among the stack's resources")
    if alias is None:
        return unknown("the EC2NodeClass selects AMIs by id or tags, not by a release alias")
    if family not in ALIAS_FAMILIES:
        return unknown(f"the plan reads releases of {' and '.join(ALIAS_FAMILIES)} only, not {family}")
    if not kubernetes_version:
        return unknown("the cluster's Kubernetes version is not among the stack's inputs")
    arch_values = requirement_values(nodepool, ARCH_KEY)
    known = [t for t in instance_types or () if t in records]
    if arch_values is not None:
        architectures = {KUBERNETES_ARCH[a] for a in arch_values if a in KUBERNETES_ARCH}
    else:
        named = {str(a) for t in known for a in records[t].get("supportedArchitectures") or []}
        architectures = {a for a in Architecture if a.value in named}
    if len(architectures) != 1:
        return unknown("the pool allows several architectures (or none the plan knows): one release each")
    if not instance_types or len(known) != len(instance_types):
        return unknown("the pool's allowed instance types are not all known: which variant (nvidia or standard)")
    with_gpus = {any(g.get("manufacturer") == "NVIDIA" for g in records[t].get("gpuses") or []) for t in known}
    if len(with_gpus) != 1:
        return unknown("the pool mixes types with and without NVIDIA GPUs: Karpenter picks a variant per type")
    ami_type = _alias_ami_type(family, architectures.pop(), with_gpus.pop())
    out["amiType"] = ami_type.value
    parameter = release_parameter(ami_type, kubernetes_version)
    latest = (answer(SSM_INVOKE, {"name": parameter}) or {}).get("value")
    if latest is None:
        return unknown(f"AWS's latest could not be read ({parameter})")
    out["latestAmiRelease"] = latest
    try:
        out["latestAmiAlias"] = ami_alias(str(latest), ami_type)
    except ValueError:
        out["latestAmiUnknown"] = f"AWS's latest {latest} is not a {family} release the plan can read as an alias"
    return out


def pool_zones(nodepool: Mapping[str, Any]) -> list[str]:
    """The zones a NodePool's ``topology.kubernetes.io/zone`` requirement allows (empty: any its
    EC2NodeClass's subnets are in)."""
    return sorted(requirement_values(nodepool, ZONE_KEY) or [])


def in_karpenter_order(capacity_types: Iterable[str]) -> list[str]:
    """Capacity types in the order Karpenter tries them (:data:`eks_gpu.policy.cost.KARPENTER_CAPACITY_ORDER`),
    unknown ones last."""
    order = KARPENTER_CAPACITY_ORDER
    return sorted(capacity_types, key=lambda t: order.index(t) if t in order else len(order))


NODE_POOL_HEADERS = ("pool", "allowed types", "capacity (tried in this order)", "limits", "disruption", "expireAfter")


def node_pool_cells(p: Mapping[str, Any]) -> tuple[str, ...]:
    budgets = ",".join(str(b.get("nodes")) for b in p["budgets"])
    disruption = f"{p['consolidationPolicy'] or 'default'} after {p['consolidateAfter'] or 'default'}"
    return (
        p["pool"],
        allowed_types_summary(p),
        " > ".join(in_karpenter_order(p["capacityOrder"])),
        ",".join(f"{k}={v}" for k, v in p["limits"].items()) or "none",
        disruption + (f", budget {budgets} nodes" if budgets else ""),
        p["expireAfter"] or "default (720h)",
    )


DEFAULT_BUDGET = "10%"
"""A NodePool's disruption budget when it lists none (aws/karpenter-provider-aws
``website/content/en/v1.14/concepts/disruption.md`` at 388ed61993b0fd6cd61ec684984bbcc3bb60e065, "NodePool
Disruption Budgets": "If undefined, Karpenter will default to one budget with ``nodes: 10%``")."""


def drift_budget(budgets: Sequence[Mapping[str, Any]]) -> str:
    """How many of a NodePool's nodes drift may replace at once, as its budgets say.

    The same page, "Reasons": a budget without ``reasons`` applies to every reason, and for a reason Karpenter
    takes the minimum of the budgets that list it or list none; with several, the most restrictive active one
    applies (a ``schedule`` makes a budget active only for its ``duration``)."""
    if not budgets:
        return f"at most {DEFAULT_BUDGET} of them at a time (Karpenter's default budget)"
    applying = [b for b in budgets if not b.get("reasons") or "Drifted" in b["reasons"]]
    if not applying:
        return "no budget lists Drifted: drift is not paced by a budget"
    parts = [
        str(b.get("nodes"))
        + (f" (while schedule '{b['schedule']}' is active, for {b.get('duration')})" if b.get("schedule") else "")
        for b in applying
    ]
    if len(parts) == 1:
        return f"at most {parts[0]} at a time (its disruption budget)"
    return f"at most the least of {', '.join(parts)} at a time (its disruption budgets)"


def pool_latest(p: Mapping[str, Any]) -> str:
    latest, alias = p.get("latestAmiRelease"), p.get("latestAmiAlias")
    if latest is None or alias is None:
        return f"unknown: {p.get('latestAmiUnknown') or 'not read'}"
    newer = " (newer)" if p.get("amiAlias") not in (None, alias) and not str(p["amiAlias"]).endswith("@latest") else ""
    return f"{alias} ({latest}){newer}"


def pool_ami_cells(p: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """A NodePool's row of the AMI-release table: its AMI, the alias its EC2NodeClass pins, AWS's latest, and
    what a new alias does (Karpenter drift: ``amiSelectorTerms`` is hashed into the EC2NodeClass's spec, and a
    changed spec drifts every node of the pools that use it; disruption.md, "Drift", as --against says it)."""
    alias = p.get("amiAlias")
    family = str(alias).partition("@")[0] if alias else "by selector"
    ami = f"{family} ({p['amiType']})" if p.get("amiType") else family
    pace = drift_budget(p.get("budgets") or [])
    if alias is None:
        terms = ",".join(json.dumps(t, sort_keys=True) for t in p.get("amiSelectorTerms") or []) or "none"
        release = f"amiSelectorTerms {terms}"
        change = f"Karpenter drift: every node whose AMI the terms no longer select is replaced (drained), {pace}"
    elif str(alias).endswith("@latest"):
        release = f"{alias}: not pinned, follows each release"
        change = f"Karpenter drift at every release AWS publishes: every node replaced (drained), {pace}"
    else:
        release = f"{alias} (EC2NodeClass {p.get('nodeClass') or '?'})"
        change = f"Karpenter drift: every node of the pool replaced (drained, then terminated), {pace}"
    return (ami, f"{p['pool']} (NodePool)", release, pool_latest(p), change)


def allowed_types_summary(pool: Mapping[str, Any]) -> str:
    """A NodePool's allowed instance types in few words: per family, its sizes from the fewest vCPUs
    (``g6 xlarge/2xlarge/4xlarge``); else its families; else ``any type``."""
    types = list(pool.get("instanceTypes") or [])
    if not types:
        families = pool.get("instanceFamilies") or []
        return f"families {','.join(families)}" if families else "any type"
    vcpus = pool.get("vcpusPerNode") or {}
    by_family: dict[str, list[str]] = {}
    for t in sorted(types, key=lambda t: (vcpus.get(t, 0), t)):
        by_family.setdefault(family_of(t), []).append(t.partition(".")[2])
    return ", ".join(f"{family} {'/'.join(sizes)}" for family, sizes in sorted(by_family.items()))


def node_pool_label(pool: Mapping[str, Any]) -> str:
    """A NodePool's node in the diagram: its name, allowed types, the order Karpenter tries capacity types in,
    its node limit and the AMI alias its EC2NodeClass pins (no double quote: it ends a Mermaid label)."""
    order = in_karpenter_order(pool["capacityOrder"])
    limit = f"up to {pool['nodeLimit']} nodes" if pool.get("nodeLimit") is not None else "no node limit"
    parts = [
        f"NodePool {pool['pool']} (Karpenter)",
        allowed_types_summary(pool),
        ", then ".join(order),
        limit,
        str(pool.get("amiAlias") or "AMI by selector"),
    ]
    return "<br/>".join(parts).replace('"', "'")
