"""Resource quantities and the requests of a pod, counted as the API server and the scheduler count them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

ResourceList = dict[str, Decimal]
JsonDict = dict[str, Any]

BYTE_RESOURCES = ("memory", "ephemeral-storage", "storage")


def quantity(value: object) -> Decimal:
    """A Kubernetes quantity (``"3920m"``, ``"14Gi"``, ``8``) as a number (the official client's parser)."""
    parsed: Decimal = parse_quantity(value)
    return parsed


def resource_list(raw: Mapping[str, Any] | None) -> ResourceList:
    """A manifest's ``requests``/``limits`` map, parsed."""
    return {name: quantity(value) for name, value in (raw or {}).items()}


def show(name: str, value: Decimal) -> str:
    """``value`` of resource ``name`` as a person writes it: ``3920m``, ``14Gi``, ``8``."""
    if name == "cpu" and value != value.to_integral_value():
        return f"{value * 1000:f}".rstrip("0").rstrip(".") + "m"
    if name in BYTE_RESOURCES or name.startswith("hugepages-"):
        for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if value and value % size == 0:
                return f"{value // size:f}{suffix}"
    return f"{value.normalize():f}"


def is_hugepages(name: str) -> bool:
    """``hugepages-2Mi`` and the like (pkg/apis/core/helper ``IsHugePageResourceName``)."""
    return name.startswith("hugepages-")


def overcommit_allowed(name: str) -> bool:
    """Whether a request may be below its limit (pkg/apis/core/helper ``IsOvercommitAllowed``): native
    resources (no domain, or ``kubernetes.io/``) except huge pages. Extended resources such as
    ``nvidia.com/gpu`` and ``vpc.amazonaws.com/efa`` may not."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not is_hugepages(name)


def all_containers(spec: Mapping[str, Any]) -> list[JsonDict]:
    """Init containers, containers and ephemeral containers of a pod spec."""
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def with_api_defaults(spec: Mapping[str, Any]) -> JsonDict:
    """The pod spec after the API server's defaulting: a container that sets a limit but no request
    gets the limit as its request (pkg/apis/core/v1/defaults.go ``SetDefaults_Pod``, containers and
    init containers)."""
    out: JsonDict = copy.deepcopy(dict(spec))
    for container in [*out.get("initContainers", []), *out.get("containers", [])]:
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for name, value in limits.items():
                requests.setdefault(name, value)
    return out


def _add(total: ResourceList, more: ResourceList) -> None:
    for name, value in more.items():
        total[name] = total.get(name, Decimal(0)) + value


def _max(total: ResourceList, other: ResourceList) -> None:
    for name, value in other.items():
        total[name] = max(total.get(name, value), value)


def pod_total(spec: Mapping[str, Any], kind: str = "requests") -> ResourceList:
    """What a pod requests (or, with ``kind="limits"``, is limited to), as the scheduler and quota
    count it (k8s.io/component-helpers/resource ``PodRequests``): the sum of its containers and
    sidecars (init containers with ``restartPolicy: Always``), or the largest init container plus
    the sidecars started before it, whichever is larger, per resource."""
    total: ResourceList = {}
    for container in spec.get("containers", []):
        _add(total, resource_list((container.get("resources") or {}).get(kind)))
    sidecars: ResourceList = {}
    init: ResourceList = {}
    for container in spec.get("initContainers", []):
        own = resource_list((container.get("resources") or {}).get(kind))
        if container.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            _max(init, sidecars)
        else:
            step = dict(own)
            _add(step, sidecars)
            _max(init, step)
    _max(total, init)
    return total
