"""The kube-scheduler filters a pending pod must pass on a node, for the questions asked here: does the
pod tolerate the node's taints, does the node match the pod's node selection, does it have room.

Sources (kubernetes/kubernetes ``pkg/scheduler/framework/plugins/``):
* ``tainttoleration``: every ``NoSchedule`` and ``NoExecute`` taint must be tolerated
  (``ToleratesTaint`` in ``staging/src/k8s.io/api/core/v1/toleration.go``: an empty effect matches every
  effect, an empty key with ``Exists`` every key, ``Equal`` (the default) compares values);
* ``nodeaffinity``: ``nodeSelector`` labels all equal, and the required node affinity's terms
  (any term, all of its expressions);
* ``noderesources/fit.go`` ``fitsRequest``: room for one more pod, and every resource the pod requests
  (cpu, memory, ephemeral-storage, extended resources, huge pages) at most what the node has left
  (a resource the node does not have counts as 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .resources import ResourceList, show


@dataclass(frozen=True)
class Node:
    """A node as the scheduler filters see it."""

    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, str]]
    allocatable: ResourceList


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    """``Toleration.ToleratesTaint``."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op in ("Gt", "Lt"):
        if key not in labels or not labels[key].lstrip("-").isdigit():
            return False
        return int(labels[key]) > int(values[0]) if op == "Gt" else int(labels[key]) < int(values[0])
    present = key in labels
    return {
        "In": present and labels.get(key) in values,
        "NotIn": not present or labels.get(key) not in values,
        "Exists": present,
        "DoesNotExist": not present,
    }[op]


def unfit(spec: Mapping[str, Any], requests: ResourceList, node: Node) -> list[str]:
    """Why a pod (its spec, and its requests as admitted) cannot be scheduled on an empty ``node``."""
    reasons = []
    tolerations = spec.get("tolerations") or []
    for taint in node.taints:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not any(tolerates(t, taint) for t in tolerations):
            reasons.append(f"untolerated taint {taint['key']}={taint.get('value', '')}:{taint['effect']}")
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            reasons.append(f"nodeSelector {key}={value} does not match the node's label {key}={node.labels.get(key)}")
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required and not any(
        all(_expression(e, node.labels) for e in term.get("matchExpressions") or [])
        for term in required.get("nodeSelectorTerms", [])
    ):
        reasons.append("required node affinity does not match the node's labels")
    if node.allocatable.get("pods", Decimal(0)) < 1:
        reasons.append("Too many pods: the node allows no pod")
    for name, value in sorted(requests.items()):
        has = node.allocatable.get(name, Decimal(0))
        if value > 0 and value > has:
            reasons.append(f"Insufficient {name}: the pod requests {show(name, value)}, the node has {show(name, has)}")
    return reasons


def nodes_needed(requests: Sequence[ResourceList], node: Node) -> int:
    """How many empty ``node``s the pods fill, placed first-fit in order (each must fit alone)."""
    used: list[ResourceList] = []
    for pod in requests:
        demand = {**pod, "pods": Decimal(1)}
        for load in used:
            after = {k: load.get(k, Decimal(0)) + demand.get(k, Decimal(0)) for k in {*load, *demand}}
            if all(v <= node.allocatable.get(k, Decimal(0)) for k, v in after.items()):
                load.update(after)
                break
        else:
            used.append(demand)
    return len(used)
