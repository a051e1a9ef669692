"""What the API server does to a pod before it exists: LimitRange defaults and limits, the validation
of its resources, and ResourceQuota.

Sources (kubernetes/kubernetes):
* ``pkg/apis/core/v1/defaults.go`` ``SetDefaults_LimitRangeItem``: a Container item's ``default``
  falls back to ``max``, its ``defaultRequest`` to ``default``, then to ``min``.
* ``plugin/pkg/admission/limitranger/admission.go``: ``mergePodResourceRequirements`` (a missing limit
  gets ``default``, a missing request ``defaultRequest``; containers and init containers),
  ``PodValidateLimitFunc`` (``min``/``max``/``maxLimitRequestRatio`` per Container and per Pod) and
  ``PersistentVolumeClaimValidateLimitFunc``.
* ``pkg/apis/core/validation/validation.go`` ``ValidateResourceRequirements``: a request is at most its
  limit, equal to it for resources that cannot be overcommitted, which must have a limit; extended
  resources are whole numbers; huge pages need a cpu or memory request or limit.
* ``pkg/quota/v1/evaluator/core/pods.go`` and ``plugin/pkg/admission/resourcequota``: a pod's usage
  (``pods``, ``requests.<r>``, ``limits.<r>``, and bare ``cpu``/``memory``/``ephemeral-storage`` as
  requests) must keep every quota's ``used`` within ``hard``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .resources import (
    JsonDict,
    ResourceList,
    is_hugepages,
    overcommit_allowed,
    pod_total,
    quantity,
    resource_list,
    show,
)

COMPUTE = ("cpu", "memory")


def item_defaults(item: Mapping[str, Any]) -> JsonDict:
    """A LimitRange item as the API server stores it (``SetDefaults_LimitRangeItem``)."""
    out: JsonDict = copy.deepcopy(dict(item))
    if out.get("type") == "Container":
        default = out.setdefault("default", {})
        request = out.setdefault("defaultRequest", {})
        for key, value in (out.get("max") or {}).items():
            default.setdefault(key, value)
        for key, value in default.items():
            request.setdefault(key, value)
        for key, value in (out.get("min") or {}).items():
            request.setdefault(key, value)
    return out


@dataclass
class Admitted:
    """A pod spec after LimitRanger's mutation, with the limits and requests it filled in."""

    spec: JsonDict
    defaulted: set[tuple[str, str, str]] = field(default_factory=set)
    """(container, ``limits``/``requests``, resource) set from a LimitRange."""


def mutate(limit_ranges: Sequence[Mapping[str, Any]], spec: Mapping[str, Any]) -> Admitted:
    """LimitRanger's mutation of a pod spec (already API-defaulted) by the namespace's LimitRanges."""
    admitted = Admitted(copy.deepcopy(dict(spec)))
    for lr in limit_ranges:
        items = [item_defaults(i) for i in lr.get("spec", {}).get("limits", []) if i.get("type") == "Container"]
        defaults: dict[str, JsonDict] = {"limits": {}, "requests": {}}
        for item in items:
            defaults["limits"].update(item.get("default") or {})
            defaults["requests"].update(item.get("defaultRequest") or {})
        for c in [*admitted.spec.get("containers", []), *admitted.spec.get("initContainers", [])]:
            resources = c.setdefault("resources", {})
            for kind in ("limits", "requests"):
                present = resources.setdefault(kind, {})
                for name, value in defaults[kind].items():
                    if name not in present:
                        present[name] = value
                        admitted.defaulted.add((c["name"], kind, name))
    return admitted


def _bound(kind: str, scope: str, item: Mapping[str, Any], requests: ResourceList, limits: ResourceList) -> list[str]:
    errors = []
    for name, raw in (item.get("min") or {}).items():
        enforced = quantity(raw)
        if name not in requests:
            errors.append(f"Minimum {name} usage per {kind} is {raw}.  No request is specified.")
        elif requests[name] < enforced:
            errors.append(f"Minimum {name} usage per {kind} is {raw}, but request is {show(name, requests[name])}.")
        elif name in limits and limits[name] < enforced:
            errors.append(f"Minimum {name} usage per {kind} is {raw}, but limit is {show(name, limits[name])}.")
    for name, raw in (item.get("max") or {}).items():
        enforced = quantity(raw)
        if name not in limits:
            errors.append(f"Maximum {name} usage per {kind} is {raw}.  No limit is specified.")
        elif limits[name] > enforced:
            errors.append(f"Maximum {name} usage per {kind} is {raw}, but limit is {show(name, limits[name])}.")
        elif name in requests and requests[name] > enforced:
            errors.append(f"Maximum {name} usage per {kind} is {raw}, but request is {show(name, requests[name])}.")
    for name, raw in (item.get("maxLimitRequestRatio") or {}).items():
        if not requests.get(name):
            errors.append(
                f"{name} max limit to request ratio per {kind} is {raw}, but no request is specified or request is 0."
            )
        elif not limits.get(name):
            errors.append(
                f"{name} max limit to request ratio per {kind} is {raw}, but no limit is specified or limit is 0."
            )
        elif limits[name] / requests[name] > quantity(raw):
            ratio = limits[name] / requests[name]
            errors.append(f"{name} max limit to request ratio per {kind} is {raw}, but provided ratio is {ratio:f}.")
    return [f"{scope}: {e}" for e in errors]


def validate_limits(limit_ranges: Sequence[Mapping[str, Any]], spec: Mapping[str, Any]) -> list[str]:
    """LimitRanger's validation of a mutated pod spec: each item's min, max and ratio."""
    errors = []
    for lr in limit_ranges:
        name = lr.get("metadata", {}).get("name", "")
        for item in lr.get("spec", {}).get("limits", []):
            if item.get("type") == "Container":
                for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
                    res = c.get("resources") or {}
                    scope = f'LimitRange {name}, container "{c["name"]}"'
                    errors += _bound(
                        "Container", scope, item, resource_list(res.get("requests")), resource_list(res.get("limits"))
                    )
            elif item.get("type") == "Pod":
                errors += _bound("Pod", f"LimitRange {name}", item, pod_total(spec), pod_total(spec, "limits"))
    return errors


def validate_claim(limit_ranges: Sequence[Mapping[str, Any]], claim_spec: Mapping[str, Any]) -> list[str]:
    """LimitRanger's validation of a PersistentVolumeClaim: min and max hold for its requests."""
    requests = resource_list((claim_spec.get("resources") or {}).get("requests"))
    errors = []
    for lr in limit_ranges:
        scope = f"LimitRange {lr.get('metadata', {}).get('name', '')}"
        for item in lr.get("spec", {}).get("limits", []):
            if item.get("type") != "PersistentVolumeClaim":
                continue
            bounds = [("Minimum", k, v, -1) for k, v in (item.get("min") or {}).items()]
            bounds += [("Maximum", k, v, 1) for k, v in (item.get("max") or {}).items()]
            for word, name, raw, side in bounds:
                bound = f"{scope}: {word} {name} usage per PersistentVolumeClaim is {raw}"
                if name not in requests:
                    errors.append(f"{bound}.  No request is specified.")
                elif (requests[name] - quantity(raw)) * side > 0:
                    errors.append(f"{bound}, but request is {show(name, requests[name])}.")
    return errors


def validate_resources(admitted: Admitted) -> list[str]:
    """``ValidateResourceRequirements`` on every container of a mutated pod. A limit LimitRanger set is
    named as the LimitRange's default, since that is where it came from."""
    errors = []
    for c in [*admitted.spec.get("containers", []), *admitted.spec.get("initContainers", [])]:
        res = c.get("resources") or {}
        requests, limits = resource_list(res.get("requests")), resource_list(res.get("limits"))
        where = f'container "{c["name"]}"'
        for kind, amounts in (("limits", limits), ("requests", requests)):
            for name, value in amounts.items():
                if not overcommit_allowed(name) and not is_hugepages(name) and value != value.to_integral_value():
                    errors.append(f"{where}: {kind} {name} {show(name, value)} must be an integer")
        for name, request in requests.items():
            if name not in limits:
                if not overcommit_allowed(name):
                    errors.append(f"{where}: {name}: Limit must be set for non overcommitable resources")
                continue
            limit = f"{name} limit {show(name, limits[name])}"
            if (c["name"], "limits", name) in admitted.defaulted:
                limit += " (the LimitRange's default limit)"
            if request != limits[name] and not overcommit_allowed(name):
                errors.append(f"{where}: {name} request {show(name, request)} must be equal to {limit}")
            elif request > limits[name]:
                errors.append(f"{where}: {name} request {show(name, request)} must be less than or equal to {limit}")
        names = set(requests) | set(limits)
        if any(map(is_hugepages, names)) and not names & set(COMPUTE):
            errors.append(f"{where}: HugePages require cpu or memory")
    return errors


def usage(spec: Mapping[str, Any]) -> ResourceList:
    """What one pod counts against a ResourceQuota (``pods.go`` ``podComputeUsageHelper``)."""
    requests, limits = pod_total(spec), pod_total(spec, "limits")
    out: ResourceList = {"pods": Decimal(1)}
    out |= {f"requests.{k}": v for k, v in requests.items()}
    out |= {k: v for k, v in requests.items() if k in (*COMPUTE, "ephemeral-storage")}
    out |= {f"limits.{k}": v for k, v in limits.items()}
    return out


def within_quotas(quotas: Sequence[Mapping[str, Any]], pod_specs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Whether pods created together, in an otherwise empty namespace, stay within its quotas."""
    total: ResourceList = {}
    for spec in pod_specs:
        for k, v in usage(spec).items():
            total[k] = total.get(k, Decimal(0)) + v
    errors = []
    for rq in quotas:
        name, spec = rq.get("metadata", {}).get("name", ""), rq.get("spec", {})
        if spec.get("scopes") or spec.get("scopeSelector"):
            errors.append(f"ResourceQuota {name}: scoped quotas are not reproduced here; evaluate it by hand")
            continue
        for key, raw in (spec.get("hard") or {}).items():
            resource = key.removeprefix("requests.").removeprefix("limits.")
            if total.get(key, Decimal(0)) > quantity(raw):
                errors.append(
                    f"ResourceQuota {name}: exceeded quota: the workload's {len(pod_specs)} pod(s) need "
                    f"{key}={show(resource, total[key])} in all, hard limit {key}={raw}"
                )
    return errors
