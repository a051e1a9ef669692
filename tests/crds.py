"""Validate a custom resource offline the way the API server validates it against its CRD: Karpenter's
``EC2NodeClass`` and ``NodePool`` (and every other kind) from the pinned ``karpenter-crd`` chart.

How the API server does it (kubernetes/kubernetes, ``staging/src/k8s.io/apiextensions-apiserver/``):

- decoding applies the version's ``default`` values to absent fields, top-down, also inside defaulted values
  (``pkg/apiserver/schema/defaulting/algorithm.go``);
- ``pkg/registry/customresource/strategy.go`` ``Validate``: the OpenAPI v3 structural schema
  (``validator.go``, kube-openapi's validator: types, ``enum``, ``pattern``, ``minimum``, ``maxItems``,
  ``required``...), then ``x-kubernetes-list-type`` ``set``/``map`` uniqueness
  (``pkg/apiserver/schema/listtype/validation.go``), then, when nothing so far blocks it, every
  ``x-kubernetes-validations`` CEL rule with ``self`` bound to the value it sits on, for each value present
  (``pkg/apiserver/schema/cel/validation.go``); a failed rule reports its ``message`` (else ``failed rule:``),
  at the value's path plus its ``fieldPath``.

Here: defaults as above; the schema with ``jsonschema``'s Draft 2020-12 validator (the keywords CRDs may use
mean the same there); list sets and maps; CEL with ``cel-python`` plus the Kubernetes CEL library functions
Karpenter's rules call (``find``, ``split``); a rule that cannot be evaluated is a problem, never a pass.
Not reproduced: transition rules (those that read ``oldSelf`` need the stored object: reported as skipped),
``messageExpression``, the CEL cost budget, ``format`` (``int32``/``int64`` ranges, ``date-time``), unknown
field pruning or ``kubectl``'s strict field validation, ObjectMeta checks, admission webhooks (Karpenter 1.14
ships none), and the blocking order (schema and CEL problems are both reported).
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

from tests.charts import render_chart

CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"
"""The chart the CRDs come from, as a release installs it (``../shared/charts/README.md``)."""
CRD_VERSION = "1.14.1"
"""Its pinned version: the same as the ``karpenter`` chart's."""

Json = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One reason the API server would reject the object."""

    path: str
    """Field path as the API server prints it: ``spec.blockDeviceMappings[0].ebs.volumeSize``, map keys in
    brackets (``spec.limits[nvidia.com/gpu]``); ``<root>`` for the object itself."""
    message: str
    layer: str
    """``schema`` (OpenAPI, incl. list sets/maps) or ``CEL`` (an ``x-kubernetes-validations`` rule)."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.layer})"


@dataclass(frozen=True)
class Report:
    """Everything checked on one object."""

    problems: list[Problem] = field(default_factory=list)
    passed: list[tuple[str, str]] = field(default_factory=list)
    """CEL rules evaluated true: (path, rule)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Transition rules (they read ``oldSelf``), not evaluated: (path, rule)."""


@functools.cache
def crd_schemas() -> dict[tuple[str, str, str], Json]:
    """``(group, version, kind)`` -> ``openAPIV3Schema`` of every served version of every CRD the pinned chart
    renders (rendered with Helm, so its template directives are applied, not stripped)."""
    schemas: dict[tuple[str, str, str], Json] = {}
    for crd in render_chart(CRD_CHART, CRD_VERSION, {}, name="karpenter-crd", namespace="kube-system"):
        if crd["kind"] != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                key = (spec["group"], version["name"], spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def schema_of(obj: Json) -> Json:
    """The schema for ``obj``'s ``apiVersion`` and ``kind``; ``KeyError`` naming what exists if none."""
    group, _, version = obj["apiVersion"].rpartition("/")
    key = (group, version, obj["kind"])
    schemas = crd_schemas()
    if key not in schemas:
        raise KeyError(f"no served CRD version for {key}; the chart has {sorted(schemas)}")
    return schemas[key]


def validate(obj: Json) -> list[Problem]:
    """Every problem the API server would report creating ``obj``; empty when it would accept it."""
    return check(obj).problems


def check(obj: Json) -> Report:
    """Default, then validate ``obj`` (a custom resource as a dict; it is not changed): see the module."""
    schema = schema_of(obj)
    value = with_defaults(schema, copy.deepcopy(obj))
    report = Report()
    for error in jsonschema.Draft202012Validator(schema).iter_errors(value):
        report.problems.append(Problem(path_of(error.absolute_path), error.message, "schema"))
    _walk(schema, value, [], report)
    return report


def with_defaults(schema: Json, value: Any) -> Any:
    """``value`` with every absent property that has a ``default`` set to it, recursively (the API server's
    structural defaulting; ``value`` is changed in place and returned)."""
    if isinstance(value, dict):
        for key, prop in schema.get("properties", {}).items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
        for key, item in value.items():
            sub = _property(schema, key)
            if sub is not None:
                with_defaults(sub, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            with_defaults(schema["items"], item)
    return value


def path_of(parts: Any) -> str:
    """``["spec", "limits", "nvidia.com/gpu"]`` -> ``spec.limits[nvidia.com/gpu]``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part}]"
    return text or "<root>"


def _property(schema: Json, key: str) -> Json | None:
    """The schema of ``key`` in an object: its property, else the map's ``additionalProperties``."""
    sub = schema.get("properties", {}).get(key)
    if sub is None and isinstance(schema.get("additionalProperties"), dict):
        sub = schema["additionalProperties"]
    return sub


def _walk(schema: Json, value: Any, parts: list[Any], report: Report) -> None:
    """List-type invariants and CEL rules of ``schema`` on ``value``, then on each of its present children."""
    path = path_of(parts)
    _list_invariants(schema, value, path, report)
    for rule in schema.get("x-kubernetes-validations", []):
        _evaluate(rule, value, parts, report)
    if isinstance(value, dict):
        for key, item in value.items():
            sub = _property(schema, key)
            if sub is not None:
                _walk(sub, item, [*parts, key], report)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _walk(schema["items"], item, [*parts, index], report)


def _list_invariants(schema: Json, value: Any, path: str, report: Report) -> None:
    """``x-kubernetes-list-type: set`` items unique; ``map`` items unique by ``x-kubernetes-list-map-keys``."""
    if not isinstance(value, list):
        return
    kind = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys", [])
    if kind == "set":
        seen = [repr(item) for item in value]
    elif kind == "map":
        seen = [repr([item.get(k) for k in keys]) for item in value if isinstance(item, dict)]
    else:
        return
    for duplicate in sorted({s for s in seen if seen.count(s) > 1}):
        report.problems.append(Problem(path, f"Duplicate value: {duplicate} (list-type {kind})", "schema"))


def _find(text: celtypes.StringType, pattern: celtypes.StringType) -> celtypes.StringType:
    """Kubernetes CEL regex library ``<string>.find(<regex>)``: the first match, or ``""``
    (``k8s.io/apiserver/pkg/cel/library/regex.go``)."""
    match = re.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    """cel-go strings extension ``<string>.split(<string>)``, enabled in Kubernetes' CEL environment."""
    return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])


KUBERNETES_FUNCTIONS: dict[str, Any] = {"find": _find, "split": _split}
"""The Kubernetes CEL functions Karpenter's rules call that cel-python lacks; a rule calling another one fails
to evaluate, which is reported as a problem."""
_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule), functions=KUBERNETES_FUNCTIONS)


def _evaluate(rule: Json, value: Any, parts: list[Any], report: Report) -> None:
    """One ``x-kubernetes-validations`` entry on ``value``: passed, skipped (transition rule) or a problem."""
    text, path = rule["rule"], path_of(parts)
    if "oldSelf" in text:
        report.skipped.append((path, text))
        return
    if not parts and isinstance(value, dict) and "metadata" in value:  # CEL sees only name and generateName
        meta = {k: v for k, v in value["metadata"].items() if k in ("name", "generateName")}
        value = {**value, "metadata": meta}
    field_path = rule.get("fieldPath", "")  # where the rule reports, relative to its value
    at = (path + field_path if parts else field_path.lstrip(".")) or path
    try:
        result = _program(text).evaluate({"self": celpy.json_to_cel(value)})
    except Exception as error:  # cel-python raises several kinds; each means the rule was not evaluated
        report.problems.append(Problem(at, f"rule not evaluated ({type(error).__name__}: {error}): {text}", "CEL"))
        return
    if isinstance(result, celpy.CELEvalError) or not isinstance(result, celtypes.BoolType):
        report.problems.append(Problem(at, f"rule not evaluated ({result!r}): {text}", "CEL"))
    elif result:
        report.passed.append((path, text))
    else:
        report.problems.append(Problem(at, rule.get("message") or f"failed rule: {text}", "CEL"))
