"""The stack file's form of a config given from Python: snake_case names to the keys the file spells.

A program that embeds eks-gpu passes its config as a :class:`~eks_gpu.config.StackConfig`, or as a
mapping with the Python names of the models' fields (``gpu_node_groups``, ``disk_size_gib``, what the
``StackArgs`` TypedDict declares) or with the stack file's keys (``gpuNodeGroups``, ``diskSizeGiB``).
:func:`stack_file_form` turns each into the stack file's form, so that the one parser checks it and its
errors name the same keys (``eks-gpu:gpuNodeGroups.train.diskSizeGiB``) whichever way it came.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from eks_gpu.config.models import VPC_KINDS, StackConfig
from eks_gpu.config.problems import ConfigError, Problem, key_path


def stack_file_form(config: StackConfig | Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the stack file's keys, values as the stack file would give them (lists, strings).

    A :class:`StackConfig` gives the keys it was built with (``exclude_unset``): its defaults are
    the parser's, so what the stack derives (``clusterName``, ``environment``) is derived the same
    way. Keys that are neither a field's name nor its key are kept, for the parser to refuse by name.
    A key given both ways (``gpu_node_groups`` and ``gpuNodeGroups``) is a :class:`ConfigError`: one
    would silently replace the other.
    """
    if isinstance(config, BaseModel):
        return dict(config.model_dump(mode="json", by_alias=True, exclude_unset=True))
    return _object(config, StackConfig)


def _object(value: Mapping[str, Any], model: type[BaseModel], at: tuple[str, ...] = ()) -> dict[str, Any]:
    fields = model.model_fields
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, item in value.items():
        field = fields.get(key)
        name = (field.alias or key) if field is not None else key
        if name in given_as:
            first, second = sorted((given_as[name], key))
            raise ConfigError([Problem(key_path(*at, name), f"is given twice, as {first!r} and {second!r}: keep one")])
        given_as[name] = key
        out[name] = _value(item, field.annotation if field is not None else None, (*at, name))
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation may hold (``VpcConfig`` is a union of two)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _value(value: Any, annotation: Any, at: tuple[str, ...]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    origin = typing.get_origin(annotation)
    if isinstance(value, Mapping):
        models = _models_in(annotation)
        if origin is dict:
            _, item = typing.get_args(annotation)
            return {k: _value(v, item, (*at, str(k))) for k, v in value.items()}
        if len(models) > 1 and set(models) == set(VPC_KINDS.values()):
            # the VPC: an existing one when it names an id (config.models._vpc_kind)
            return _object(value, VPC_KINDS["existing" if "id" in value else "new"], at)
        if models:
            return _object(value, models[0], at)
        return dict(value)
    if isinstance(value, (list, tuple)):
        args = typing.get_args(annotation) if origin in (tuple, list, types.UnionType, typing.Union) else ()
        item = next((a for a in args if a is not Ellipsis and a is not type(None)), None)
        if typing.get_origin(item) in (tuple, list):
            item = typing.get_args(item)[0]
        return [_value(v, item, at) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value  # an enum member, as the stack file spells it
    return value
