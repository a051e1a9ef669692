"""Parsing a stack's ``eks-gpu`` keys into a :class:`ParsedConfig`, collecting every problem."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pulumi
from pydantic import (
    TypeAdapter,
    ValidationError,
)

from eks_gpu.config.enums import RESERVED_LABELS, CapacityType, TaintEffect
from eks_gpu.config.existing import existing_cluster_problems
from eks_gpu.config.fields import CLUSTER_NAME, POOL_KEY, POOL_KEY_MAX
from eks_gpu.config.karpenter import KARPENTER, karpenter_problems
from eks_gpu.config.models import (
    DEFAULT_KUBERNETES_VERSION,
    GPU_TAINT_KEY,
    ExistingVpc,
    GpuPool,
    NewVpc,
    Sizes,
    StackConfig,
    SystemNodeGroup,
    VpcConfig,
)
from eks_gpu.config.problems import NAMESPACE, Problem, key_path, namespace_lookalike, problems_from
from eks_gpu.facts import versions
from eks_gpu.facts.aws_limits import GP3_MAX_IOPS_PER_GIB, GP3_MAX_MIBPS_PER_IOPS

# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedConfig:
    """The outcome of parsing: the config when it is sound, and every piece that parsed on its own.

    ``pools`` and ``system`` hold what parsed even when another part of the file did not, so that
    the checks against AWS can still run on them and report in the same error.
    """

    config: StackConfig | None
    pools: Mapping[str, GpuPool]
    system: SystemNodeGroup | None
    vpc: NewVpc | ExistingVpc | None
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...] = field(default=())
    extended_support: bool = False
    karpenter: bool = False
    """``provisioner: karpenter``: Karpenter provisions every GPU pool (read even when the config failed)."""


_STRING_KEYS = {"clusterName", "kubernetesVersion", "environment"}
TOP_LEVEL_KEYS = tuple(sorted(f.alias or n for n, f in StackConfig.model_fields.items()))
"""The keys of the ``eks-gpu`` namespace (``gpuNodeGroups``, ``tags``...)."""


def read_pulumi_config() -> dict[str, Any]:
    """Every ``eks-gpu:*`` key of the running stack, objects and lists decoded from their JSON form.

    Values that are not valid JSON where JSON is expected are passed on as strings, so that the
    parser reports them against their key. Keys of another namespace that look like a misspelt
    ``eks-gpu`` (``eks_gpu:tags``) are passed on under their full key, for the parser to refuse with
    the key they were meant to be; the running project's own namespace is never one of them.
    """
    keys = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            if ns != pulumi.get_project() and namespace_lookalike(full_key, TOP_LEVEL_KEYS) is not None:
                raw[full_key] = pulumi.runtime.config.get_config(full_key)
            continue
        value = pulumi.runtime.config.get_config(full_key)
        if key not in _STRING_KEYS and isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        raw[key] = value
    return raw


def _default_cluster_name(stack: str) -> str:
    return f"eks-gpu-{stack}"


def parse_config(raw: Mapping[str, Any], stack: str, today: date) -> ParsedConfig:
    """Parse the ``eks-gpu`` keys of a stack into a :class:`ParsedConfig`, collecting every problem.

    ``raw`` maps keys without namespace (``gpuNodeGroups``) to decoded values; ``today`` dates the
    Kubernetes version check.
    """
    data = dict(raw)
    problems: list[Problem] = []
    warnings: list[str] = []

    for key in list(data):
        meant = namespace_lookalike(key, TOP_LEVEL_KEYS)
        if meant is not None:
            data.pop(key)
            problems.append(
                Problem(key, f"is not read: the program reads the {NAMESPACE} namespace only; did you mean {meant}?")
            )

    for key in ("clusterName", "environment"):
        if data.get(key) == "":
            data.pop(key)  # Pulumi.yaml declares "" as "derive it from the stack"
    existing = data.get("existingCluster")
    if existing is not None:
        # checked before the name is filled in, and instead of the reach checks: the endpoint is the cluster's
        problems.extend(existing_cluster_problems(data))
        if isinstance(existing, Mapping) and isinstance(existing.get("name"), str) and "clusterName" not in data:
            data["clusterName"] = existing["name"]
    data.setdefault("environment", stack)
    derived_name = "clusterName" not in data
    data.setdefault("clusterName", _default_cluster_name(stack))
    data.setdefault("kubernetesVersion", DEFAULT_KUBERNETES_VERSION)

    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, (), StackConfig))

    pools, system, vpc = _parse_pieces(data)
    problems.extend(_check_scalars(data, derived_name))
    problems.extend(karpenter_problems(data))
    if existing is None:
        problems.extend(_check_access(data))
    raw_pools = data.get("gpuNodeGroups", {})
    for key, raw_pool in raw_pools.items() if isinstance(raw_pools, Mapping) else ():
        problems.extend(_check_sizes(("gpuNodeGroups", str(key)), raw_pool, GpuPool))
    for key, pool in pools.items():
        problems.extend(_check_pool(key, pool, karpenter=data.get("provisioner") == KARPENTER))
    raw_system = data.get("systemNodeGroup", {})
    problems.extend(_check_sizes(("systemNodeGroup",), raw_system, SystemNodeGroup))
    if isinstance(raw_system, Mapping) and _int(raw_system.get("minSize", 1)) == 0:
        problems.append(
            Problem(
                key_path("systemNodeGroup", "minSize"),
                "must be at least 1: CoreDNS and the cluster's controllers always need a node",
            )
        )
    extended = False
    version = data.get("kubernetesVersion")
    if isinstance(version, str) and versions.VERSION_PATTERN.match(version):
        verdict = versions.check_version(version, today)
        if verdict.error:
            problems.append(Problem(key_path("kubernetesVersion"), verdict.error))
        if verdict.warning:
            warnings.append(f"{key_path('kubernetesVersion')}: {verdict.warning}")
        extended = verdict.extended_support

    problems = _dedupe(problems)
    return ParsedConfig(
        config=config if not problems else None,
        pools=pools,
        system=system,
        vpc=vpc,
        problems=tuple(problems),
        warnings=tuple(warnings),
        extended_support=extended,
        karpenter=data.get("provisioner") == KARPENTER,
    )


def _parse_pieces(
    data: Mapping[str, Any],
) -> tuple[dict[str, GpuPool], SystemNodeGroup | None, NewVpc | ExistingVpc | None]:
    """Parse each pool, the system group and the VPC on their own (problems are already reported)."""
    pools: dict[str, GpuPool] = {}
    raw_pools = data.get("gpuNodeGroups", {})
    if isinstance(raw_pools, Mapping):
        for key, raw_pool in raw_pools.items():
            with contextlib.suppress(ValidationError):
                pools[str(key)] = GpuPool.model_validate(raw_pool)
    system: SystemNodeGroup | None
    try:
        system = SystemNodeGroup.model_validate(data.get("systemNodeGroup", {}))
    except ValidationError:
        system = None
    vpc: NewVpc | ExistingVpc | None
    try:
        vpc = TypeAdapter(VpcConfig).validate_python(data.get("vpc", {}))
    except ValidationError:
        vpc = None
    return pools, system, vpc


def _check_scalars(data: Mapping[str, Any], derived_name: bool) -> list[Problem]:
    problems = []
    name = data.get("clusterName")
    if isinstance(name, str) and name and not CLUSTER_NAME.match(name):
        origin = " (derived from the stack name: set eks-gpu:clusterName)" if derived_name else ""
        problems.append(
            Problem(
                key_path("clusterName"),
                f"'{name}'{origin} is not a valid EKS cluster name: use letters, digits, '-' and '_', "
                "starting with a letter or digit",
            )
        )
    version = data.get("kubernetesVersion")
    if not isinstance(version, str) or not versions.VERSION_PATTERN.match(version):
        shown = "missing" if version in ("", None) else f"'{version}'"
        problems.append(
            Problem(
                key_path("kubernetesVersion"),
                f'{shown} is not a Kubernetes minor version such as "1.35" '
                "(quote it in YAML: 1.30 unquoted reads as 1.3)",
            )
        )
    tags = data.get("tags", {})
    if isinstance(tags, Mapping):
        for k, v in tags.items():
            if not 1 <= len(str(k)) <= 128 or str(k).lower().startswith("aws:"):
                problems.append(
                    Problem(key_path("tags", str(k)), "a tag key is 1-128 characters and may not start with 'aws:'")
                )
            if len(str(v)) > 256:
                problems.append(Problem(key_path("tags", str(k)), "a tag value is at most 256 characters"))
    vpc = data.get("vpc")
    if isinstance(vpc, Mapping) and "id" not in vpc and isinstance(vpc.get("cidr"), str):
        try:
            net = ipaddress.IPv4Network(vpc["cidr"], strict=True)
        except ValueError:
            net = None
        if net is not None and not (16 <= net.prefixlen <= 20 and net.is_private):
            problems.append(
                Problem(
                    key_path("vpc", "cidr"),
                    f"'{net}' must be a private IPv4 range (RFC 1918) from /16 to /20: the VPC CNI gives "
                    "every pod an address from it",
                )
            )
    if isinstance(vpc, Mapping) and "id" in vpc:
        for key in ("privateSubnetIds", "publicSubnetIds"):
            ids = vpc.get(key, [])
            if isinstance(ids, list):
                for i, sid in enumerate(ids):
                    if not (isinstance(sid, str) and re.match(r"^subnet-[0-9a-f]{8,17}$", sid)):
                        problems.append(Problem(key_path("vpc", key, i), f"'{sid}' is not a subnet id (subnet-...)"))
                if len(set(map(str, ids))) != len(ids):
                    problems.append(Problem(key_path("vpc", key), "lists a subnet twice"))
    pools = data.get("gpuNodeGroups", {})
    if isinstance(pools, Mapping):
        for key in pools:
            if not (isinstance(key, str) and POOL_KEY.match(key) and len(key) <= POOL_KEY_MAX) or key == "system":
                problems.append(
                    Problem(
                        key_path("gpuNodeGroups", str(key)),
                        f"a pool name is a lower-case DNS label of at most {POOL_KEY_MAX} characters "
                        "(letters, digits, '-'), and not 'system' (the system node group's)",
                    )
                )
    return problems


REACH_KEYS = ("endpointPublicAccessCidrs", "endpointPrivateAccessCidrs", "endpointPrivateAccessSecurityGroupIds")
"""The keys that let someone reach the Kubernetes API; at least one must name a party."""
REACH_FIX = "pulumi config set --path 'endpointPublicAccessCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\""
"""The one line that opens the API to the deployer's own address (docs/deploy.md, "First deploy")."""


def _check_access(data: Mapping[str, Any]) -> list[Problem]:
    """Someone can reach the API, and someone stays its admin.

    The program creates Kubernetes objects, so ``pulumi`` itself must reach the endpoint: a stack
    nobody can reach would build the cluster, then time out on every object, and (with
    ``refresh: always``) on every later preview, update and destroy.
    """
    problems = []
    if not any(isinstance(data.get(k), list) and data.get(k) for k in REACH_KEYS):
        problems.append(
            Problem(
                key_path(REACH_KEYS[0]),
                "nothing can reach the Kubernetes API: the program creates Kubernetes objects, so pulumi must "
                f"reach the endpoint. Open it to your address with: {REACH_FIX} "
                f"(or, from inside the VPC or a network routed to it, set {key_path(REACH_KEYS[1])} or "
                f"{key_path(REACH_KEYS[2])})",
            )
        )
    admins = data.get("clusterAdmins", [])
    if data.get("clusterCreatorAdmin") is False and not (isinstance(admins, list) and admins):
        problems.append(
            Problem(
                key_path("clusterCreatorAdmin"),
                "false with no eks-gpu:clusterAdmins would leave the cluster with no administrator, pulumi "
                "included; list the deployer's role in clusterAdmins",
            )
        )
    return problems


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_sizes(prefix: tuple[str, ...], raw: Any, model: type[Sizes]) -> list[Problem]:
    """``0 <= minSize <= desiredSize <= maxSize`` and ``maxSize >= 1``, read from the raw mapping.

    Checked on the raw values (model defaults filling the gaps) so that a pool with another problem
    still gets its sizes checked in the same run.
    """
    if not isinstance(raw, Mapping):
        return []
    fields = model.model_fields
    lo = _int(raw.get("minSize", fields["min_size"].default))
    hi = _int(raw.get("maxSize", fields["max_size"].default))
    desired = _int(raw.get("desiredSize", lo))
    rule = "sizes must satisfy 0 <= minSize <= desiredSize <= maxSize"
    problems = []
    if lo is not None and desired is not None and 0 <= desired < lo:
        problems.append(Problem(key_path(*prefix, "desiredSize"), f"{desired} is below minSize {lo}; {rule}"))
    if hi is not None and desired is not None and 0 <= hi < desired:
        # an unset desiredSize is minSize: name the key the stack set
        below = f"desiredSize {desired}" if "desiredSize" in raw else f"minSize {lo}"
        problems.append(Problem(key_path(*prefix, "maxSize"), f"{hi} is below {below}; {rule}"))
    elif hi is not None and lo is not None and 0 <= hi < lo:
        problems.append(Problem(key_path(*prefix, "maxSize"), f"{hi} is below minSize {lo}; {rule}"))
    if hi == 0:
        problems.append(Problem(key_path(*prefix, "maxSize"), "must be at least 1 (EKS rejects a node group of 0)"))
    return problems


def _check_volume(prefix: tuple[str, ...], pool: GpuPool) -> list[Problem]:
    """gp3's ratios: IOPS per GiB of size, throughput per IOPS (Amazon EBS User Guide)."""
    problems = []
    most_iops = GP3_MAX_IOPS_PER_GIB * pool.disk_size_gib
    if pool.volume_iops > most_iops:
        problems.append(
            Problem(
                key_path(*prefix, "volumeIops"),
                f"{pool.volume_iops} is over gp3's {GP3_MAX_IOPS_PER_GIB} IOPS per GiB: a {pool.disk_size_gib} GiB "
                f"volume takes at most {most_iops}",
            )
        )
    most_throughput = int(GP3_MAX_MIBPS_PER_IOPS * pool.volume_iops)
    if pool.volume_throughput_mib_ps > most_throughput:
        problems.append(
            Problem(
                key_path(*prefix, "volumeThroughputMiBps"),
                f"{pool.volume_throughput_mib_ps} is over gp3's {GP3_MAX_MIBPS_PER_IOPS} MiB/s per IOPS: at "
                f"{pool.volume_iops} IOPS at most {most_throughput} (raise volumeIops)",
            )
        )
    return problems


def _check_pool(key: str, pool: GpuPool, karpenter: bool) -> list[Problem]:
    prefix = ("gpuNodeGroups", key)
    problems = []
    if not pool.instance_types and not (pool.karpenter and pool.karpenter.instance_families):
        also = " (or karpenter.instanceFamilies, the families Karpenter may choose types from)" if karpenter else ""
        problems.append(Problem(key_path(*prefix, "instanceTypes"), f"is required{also}"))
    seen: set[str] = set()
    for i, taint in enumerate(pool.taints):
        if taint.key in seen:
            problems.append(
                Problem(
                    key_path(*prefix, "taints", i),
                    f"repeats the taint key {taint.key}: a pool has one taint per key (the autoscaler's "
                    "scale-from-zero template carries one tag per key, so it could describe only one of them)",
                )
            )
        seen.add(taint.key)
    if pool.capacity_type == CapacityType.CAPACITY_BLOCK:
        if pool.capacity_reservation_id is None:
            problems.append(
                Problem(
                    key_path(*prefix, "capacityReservationId"),
                    "is required with capacityType CAPACITY_BLOCK: the launch template targets the reservation",
                )
            )
        if len(pool.instance_types) != 1:
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    "a CAPACITY_BLOCK pool has exactly one instance type, the reservation's",
                )
            )
        if pool.availability_zone is None:
            problems.append(
                Problem(
                    key_path(*prefix, "availabilityZone"),
                    "is required with capacityType CAPACITY_BLOCK: a Capacity Block lives in one AZ, and the "
                    "pool may use only that AZ's subnets (name the AZ the reservation shows)",
                )
            )
    elif pool.capacity_reservation_id is not None:
        problems.append(
            Problem(
                key_path(*prefix, "capacityReservationId"),
                f"only applies to capacityType CAPACITY_BLOCK, not {pool.capacity_type.value}",
            )
        )
    if pool.capacity_reservation is not None:
        if pool.capacity_type != CapacityType.ON_DEMAND:
            problems.append(
                Problem(
                    key_path(*prefix, "capacityReservation"),
                    f"targets an On-Demand Capacity Reservation, so capacityType must be ON_DEMAND, not "
                    f"{pool.capacity_type.value}"
                    + (
                        " (a Capacity Block goes in capacityReservationId)"
                        if pool.capacity_type == CapacityType.CAPACITY_BLOCK
                        else ""
                    ),
                )
            )
        if len(pool.instance_types) != 1:
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    "a pool with capacityReservation has exactly one instance type, the reservation's: launches "
                    "that target a reservation must match its instance type",
                )
            )
        if pool.availability_zone is None:
            problems.append(
                Problem(
                    key_path(*prefix, "availabilityZone"),
                    "is required with capacityReservation: a reservation lives in one AZ, and the pool may use only "
                    "that AZ's subnets (name the AZ the reservation shows)",
                )
            )
    problems += _check_volume(prefix, pool)
    if not any(t.key == GPU_TAINT_KEY and t.effect != TaintEffect.PREFER_NO_SCHEDULE for t in pool.taints):
        problems.append(
            Problem(
                key_path(*prefix, "taints"),
                f"a GPU pool needs the taint {GPU_TAINT_KEY} with effect NO_SCHEDULE or NO_EXECUTE, or any pod "
                "lands on its GPU nodes (the policy pack refuses such a pool); keep it and add yours",
            )
        )
    for label in pool.labels:
        if label in RESERVED_LABELS:
            problems.append(
                Problem(key_path(*prefix, "labels", label), "is set by the program itself; choose another label key")
            )
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
