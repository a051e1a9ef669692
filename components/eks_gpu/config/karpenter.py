"""Checks of ``eks-gpu:provisioner: karpenter`` stacks that no single key's model can make.

Read from the raw stack keys (as :func:`eks_gpu.config.parse.parse_config` has them), so a pool with
another problem still gets these checks in the same run. Under Karpenter every GPU pool is a NodePool
(there is no Cluster Autoscaler to grow a managed node group), so these apply to every pool, with or
without its own ``karpenter`` object (docs/design-karpenter.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eks_gpu.config.models import Karpenter, SystemNodeGroup
from eks_gpu.config.problems import Problem, key_path

KARPENTER = "karpenter"
NEEDS = f"applies only with {key_path('provisioner')}: karpenter"

_NODE_GROUP_KEYS = {
    "capacityType": "is the managed node group's capacity type; with Karpenter list them in order in "
    "karpenter.capacityTypes (reserved, spot, on-demand)",
    "capacityReservationId": "targets a reservation from a managed node group's launch template; with Karpenter "
    "name it in karpenter.capacityReservationIds and list reserved in karpenter.capacityTypes",
    "capacityReservation": "targets a reservation from a managed node group's launch template; with Karpenter "
    "name it in karpenter.capacityReservationIds and list reserved in karpenter.capacityTypes",
}
"""Managed-node-group keys a Karpenter pool has another key for, and what to use instead."""

SQS_NAME_MAX = 80
"""An SQS queue name is 1-80 characters (botocore ``sqs`` ``CreateQueue``, ``QueueName``)."""
AMI_EXAMPLES = {"al2023": "1.35.2-20260304", "bottlerocket": "1.58.0-c5c37032"}


def karpenter_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the Karpenter keys of ``data`` (stack keys without namespace)."""
    pools = data.get("gpuNodeGroups", {})
    pools = pools if isinstance(pools, Mapping) else {}
    if data.get("provisioner") != KARPENTER:
        problems = [Problem(key_path(KARPENTER), NEEDS)] if KARPENTER in data else []
        for key, pool in pools.items():
            if isinstance(pool, Mapping) and KARPENTER in pool:
                problems.append(Problem(key_path("gpuNodeGroups", str(key), KARPENTER), NEEDS))
        return problems
    problems = _stack_problems(data)
    for key, pool in pools.items():
        if isinstance(pool, Mapping):
            problems += _pool_problems(str(key), pool, data.get("amiReleaseVersion"))
    return problems


def _stack_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    name = data.get("clusterName")  # with existingCluster, its name (parse_config sets it)
    if isinstance(name, str) and len(name) > SQS_NAME_MAX:
        problems.append(
            Problem(
                key_path("existingCluster", "name")
                if data.get("existingCluster") is not None
                else key_path("clusterName"),
                f"is {len(name)} characters; with Karpenter at most {SQS_NAME_MAX}: its interruption queue is an SQS "
                f"queue named after the cluster, and SQS names are at most {SQS_NAME_MAX} characters",
            )
        )
    autoscaler = data.get("autoscaler")
    if isinstance(autoscaler, Mapping):
        for sub in autoscaler:
            problems.append(
                Problem(
                    key_path("autoscaler", str(sub)),
                    "configures the Cluster Autoscaler, which a karpenter stack does not run (Karpenter provisions "
                    "the GPU pools); remove it, or set provisioner: clusterAutoscaler",
                )
            )
    elif autoscaler is not None:
        problems.append(Problem(key_path("autoscaler"), "is not read with provisioner: karpenter; remove it"))
    replicas = _replicas(data.get(KARPENTER))
    system = data.get("systemNodeGroup", {})
    if isinstance(system, Mapping) and replicas is not None:
        defaults = SystemNodeGroup.model_fields
        lo = system.get("minSize", defaults["min_size"].default)
        desired = system.get("desiredSize", lo)
        if isinstance(desired, int) and not isinstance(desired, bool) and 0 < desired < replicas:
            named = "desiredSize" if "desiredSize" in system else "minSize"
            problems.append(
                Problem(
                    key_path("systemNodeGroup", named),
                    f"{desired} system node(s) for {replicas} Karpenter controller replicas: each replica needs a "
                    "system node of its own (the chart's required anti-affinity; never a node Karpenter made), and no "
                    f"autoscaler grows the system group under Karpenter; set {named} (and maxSize) to at least "
                    f"{replicas}, or {key_path(KARPENTER, 'replicas')} to {desired}",
                )
            )
    return problems


def _replicas(raw: Any) -> int | None:
    if raw is None:
        return Karpenter().replicas
    value = raw.get("replicas", Karpenter().replicas) if isinstance(raw, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3 else None


def _pool_problems(key: str, pool: Mapping[str, Any], stack_releases: Any) -> list[Problem]:
    prefix = ("gpuNodeGroups", key)
    problems = []
    for size in ("minSize", "desiredSize"):
        value = pool.get(size)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            problems.append(
                Problem(
                    key_path(*prefix, size),
                    f"must be 0 (or unset) with Karpenter: Karpenter keeps no minimum, it starts a node when a pod "
                    f"needs one and removes it when empty (maxSize is the pool's limit); got {value}",
                )
            )
    for node_group_key, why in _NODE_GROUP_KEYS.items():
        if node_group_key in pool:
            problems.append(Problem(key_path(*prefix, node_group_key), why))
    family = "bottlerocket" if str(pool.get("amiType", "")).startswith("BOTTLEROCKET") else "al2023"
    stack_release = stack_releases.get(family) if isinstance(stack_releases, Mapping) else None
    if pool.get("amiReleaseVersion") is None and stack_release is None:
        problems.append(
            Problem(
                key_path(*prefix, "amiReleaseVersion"),
                f"is required with Karpenter (or {key_path('amiReleaseVersion', family)}): the EC2NodeClass selects "
                f"its AMI by an alias that must be pinned, as {family}@latest would replace every node at every AMI "
                f"release; set it to a release such as {AMI_EXAMPLES[family]}",
            )
        )
    own = pool.get(KARPENTER)
    own = own if isinstance(own, Mapping) else {}
    if "instanceFamilies" in own and "instanceTypes" in pool:
        problems.append(
            Problem(
                key_path(*prefix, KARPENTER, "instanceFamilies"),
                "and instanceTypes both choose the pool's types; give one: the types, or the families to take "
                "every fitting type of",
            )
        )
    for narrowing in ("gpuName", "gpuCount"):
        if narrowing in own and "instanceFamilies" not in own:
            problems.append(
                Problem(
                    key_path(*prefix, KARPENTER, narrowing),
                    "narrows karpenter.instanceFamilies and applies only with it (listed instanceTypes fix the GPU "
                    "model and count already)",
                )
            )
    types = own.get("capacityTypes", ["on-demand"])
    ids = own.get("capacityReservationIds", [])
    reserved = isinstance(types, list) and "reserved" in types
    if reserved and not ids:
        problems.append(
            Problem(
                key_path(*prefix, KARPENTER, "capacityReservationIds"),
                "is required when capacityTypes lists reserved: name the On-Demand Capacity Reservations or "
                "Capacity Blocks (cr-...) the pool may launch into",
            )
        )
    elif ids and not reserved:
        problems.append(
            Problem(
                key_path(*prefix, KARPENTER, "capacityReservationIds"),
                "only applies when capacityTypes lists reserved (Karpenter launches into them as reserved capacity)",
            )
        )
    return problems
