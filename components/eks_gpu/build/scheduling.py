"""How pods reach GPU nodes: tolerations from the pools' taints, node selection by pool label.

The taint a node group carries and the toleration a pod needs come from the same
:class:`~eks_gpu.config.Taint`; only :attr:`TaintEffect.kubernetes` translates the EKS spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eks_gpu.config import GPU_PRESENT_LABEL, POOL_LABEL, Taint
from eks_gpu.facts.node_monitoring import INSTANCE_TYPE_LABEL


def toleration(taint: Taint) -> dict[str, str]:
    """The toleration that lets a pod onto nodes with ``taint``."""
    return {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": taint.effect.kubernetes}


def tolerations(taints: Iterable[Taint]) -> list[dict[str, str]]:
    """Tolerations for every one of ``taints``, each once, in order."""
    out: list[dict[str, str]] = []
    for taint in taints:
        t = toleration(taint)
        if t not in out:
            out.append(t)
    return out


def pool_selector(pool: str) -> dict[str, str]:
    """The node selector that puts a pod on the nodes of ``pool``."""
    return {POOL_LABEL: pool}


def gpu_pools_affinity(pools: Sequence[str], instance_types: Sequence[str] = ()) -> dict[str, Any]:
    """Node affinity for GPU nodes of the given pools only and, if ``instance_types`` are given, of
    those types only (``node.kubernetes.io/instance-type``, which the kubelet sets)."""
    expressions: list[dict[str, Any]] = [
        {"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]},
        {"key": POOL_LABEL, "operator": "In", "values": list(pools)},
    ]
    if instance_types:
        expressions.append({"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(instance_types)})
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        }
    }
