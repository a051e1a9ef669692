"""Problems with a stack file: the full key, a whole-sentence reason, all raised together."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import (
    BaseModel,
    ValidationError,
)

from eks_gpu.config.models import VPC_KINDS

NAMESPACE = "eks-gpu"
"""The Pulumi project name, hence the config namespace."""


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the stack file: the full config key and a whole-sentence reason."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(pulumi.RunError):
    """Every problem of a stack file, raised together before any resource is registered."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"the stack configuration has {n} problem{'s' if n != 1 else ''}:\n{lines}")


def key_path(*parts: str | int) -> str:
    """``eks-gpu:gpuNodeGroups.inference.taints[0].effect`` from its parts."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return f"{NAMESPACE}:{out}"


def problems_from(exc: ValidationError, prefix: tuple[str | int, ...], model: type[BaseModel]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        raw_loc = list(err["loc"])
        owner = _model_at(model, raw_loc[:-1])
        loc = [p for i, p in enumerate(raw_loc) if not (i > 0 and raw_loc[i - 1] == "vpc" and p in VPC_KINDS)]
        loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(f.alias or n for n, f in owner.model_fields.items())) if owner else ""
            message = f"unknown key; allowed keys: {allowed}" if allowed else "unknown key"
        elif err["type"] == "missing":
            message = "is required"
        elif err["type"] in LIST_TYPES:
            example = "" if err["input"] is None else f", e.g. [{_shown(err['input'])}]"
            message = f"must be a list{example} (got {err['input']!r})"
        elif err["type"] == "dict_type":
            message = f"must be a mapping of key: value (got {err['input']!r})"
        elif err["type"] == "too_short":
            n = err["ctx"]["min_length"]
            message = f"must list at least {n} item{'s' if n != 1 else ''} (got {len(err['input'])})"
        elif err["type"] not in (
            *("enum", "key", "value", "instance_type", "cidr", "image", "duration", "id", "arn"),
            *("instance_families", "gpu_name"),
        ):
            message = f"{message} (got {err['input']!r})"
        problems.append(Problem(key_path(*prefix, *loc), _sentence(message)))
    return problems


LIST_TYPES = frozenset({"tuple_type", "list_type", "set_type", "frozen_set_type"})
"""pydantic's error types for a value that is not a sequence: the stack file says "a list"."""


def _shown(value: Any) -> str:
    """A scalar as it would be written inside a YAML list."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def namespace_lookalike(key: str, names: Iterable[str]) -> str | None:
    """The ``eks-gpu:<name>`` that ``key``, a full config key outside the namespace, was meant to be.

    ``eks_gpu:tags``, ``eksgpu:tags``, ``eks-gpu-tags`` and ``eks-gpu.tags`` are read by nobody: Pulumi
    gives the program every key, but the program reads the ``eks-gpu`` namespace only, so the setting
    would silently vanish. ``names`` are the top-level keys; a near-miss name is corrected too. None
    when ``key`` looks like someone else's (``aws:region``, ``kubernetes:context``).
    """
    namespace, colon, name = key.partition(":")
    if not colon:
        # no namespace at all: the namespace and the name were run together (eks-gpu-tags)
        match = re.match(r"(?i)^eks[-_. ]?gpu[-_./](.+)$", key)
        if match is None:
            return None
        name = match.group(1)
    elif namespace == NAMESPACE or not difflib.get_close_matches(namespace.lower(), [NAMESPACE], cutoff=0.75):
        return None
    known = list(names)
    close = difflib.get_close_matches(name, known, n=1) if name not in known else [name]
    return f"{NAMESPACE}:{close[0] if close else name}"


def _model_at(model: type[BaseModel], loc: list[str | int]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (to list its allowed keys)."""
    current: Any = model
    previous: str | int | None = None
    for part in loc:
        if previous == "vpc" and part in VPC_KINDS:
            current = VPC_KINDS[str(part)]
        elif isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            if part in fields:
                current = _inner_model(fields[part].annotation)
            # otherwise a map key (a pool name): the value type stays the map's value type
        previous = part
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]
