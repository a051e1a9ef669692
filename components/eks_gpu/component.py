"""``eks-gpu:index:EksGpu``: the whole stack as a Pulumi component package, for every Pulumi language.

``provider/`` (``PulumiPlugin.yaml``, ``__main__.py``) serves :class:`EksGpu` through Pulumi's component
provider for Python (``pulumi.provider.experimental``): ``pulumi package add`` of that directory runs
it, reads the schema Pulumi's Analyzer infers from the annotations below and from
:mod:`eks_gpu.args` (generated from the config models), and generates an SDK in the consumer's
language. ``python -m eks_gpu.component > provider/schema.json`` writes that schema, checked in.
"""

import json
import re
import sys
import typing
from importlib.metadata import version
from typing import Any, TypedDict

import pulumi
from pulumi.errors import InputPropertiesError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.server import ComponentInitError
from pydantic import BaseModel

from eks_gpu.api import build_stack, design_stack
from eks_gpu.args import StackArgs
from eks_gpu.config import ConfigError, StackConfig
from eks_gpu.config.problems import NAMESPACE, Problem, key_path

PACKAGE = "eks-gpu"
"""The package name: the first part of the type token (``eks-gpu:index:EksGpu``)."""


class NodeGroupOutputs(TypedDict):
    """The system node group: its EKS name and its Auto Scaling group's."""

    nodeGroupName: str
    """The managed node group's name in EKS."""
    asgName: str
    """The name of the Auto Scaling group EKS made for it."""


class GpuPoolOutputs(TypedDict):
    """One GPU pool: names, GPUs and where workloads find it. Keys as ``EksGpuStack.outputs()`` spells
    them: the provider does not rename keys inside a map of objects (pulumi ``component.py`` get_state)."""

    nodeGroupName: str
    """The managed node group's name in EKS."""
    asgName: str
    """The name of the Auto Scaling group EKS made for it."""
    gpusPerNode: int
    """NVIDIA GPUs per node (the instance catalogue's count)."""
    gpuModel: str | None
    """The GPU model (``nvidia-a10g``), the ``k8s.amazonaws.com/accelerator`` label's value."""
    availabilityZones: list[str]
    """The AZs the pool's nodes live in."""
    singleAz: bool
    """The pool is pinned to one AZ (EFA, a capacity block or reservation, ``availabilityZone``)."""
    nodeSelector: dict[str, str]
    """The node selector that puts a pod on this pool."""
    tolerations: list[dict[str, str]]
    """The tolerations a pod needs for the pool's taints (Kubernetes spelling)."""
    allocatable: dict[str, str] | None
    """Kubernetes resource name -> quantity one node offers pods (what scale-from-zero assumes)."""


class EksGpu(pulumi.ComponentResource):
    """EKS with GPU managed node groups that scale to zero: the whole eks-gpu stack as one component. Its
    inputs are the stack file's keys (docs/configuration.md), checked by the same parser: a bad value
    fails before any resource is registered, naming the property and what is allowed."""

    cluster_name: pulumi.Output[str]
    """The EKS cluster's name."""
    kubeconfig: pulumi.Output[str]
    """A kubeconfig for the cluster (JSON, secret): ``aws eks get-token`` with the deployer's identity."""
    vpc_id: pulumi.Output[str]
    """The VPC's id (built or given)."""
    private_subnet_ids: pulumi.Output[list[str]]
    """The private subnets the nodes use."""
    public_subnet_ids: pulumi.Output[list[str]]
    """The public subnets (for internet-facing load balancers)."""
    node_role_arn: pulumi.Output[str]
    """The IAM role of every node."""
    system_node_group: pulumi.Output[NodeGroupOutputs]
    """The untainted system node group."""
    gpu_node_groups: pulumi.Output[dict[str, GpuPoolOutputs]]
    """The GPU pools by their ``gpuNodeGroups`` key."""
    gpu_namespace: pulumi.Output[str]
    """The namespace for GPU workloads."""
    gpu_smoke_test_job: pulumi.Output[str | None]
    """The smoke test's Job name, when ``gpuPod.enabled``."""
    gpu_smoke_test_urn: pulumi.Output[str | None]
    """The smoke test Job's URN, when ``gpuPod.enabled``."""
    nccl_test_job: pulumi.Output[str | None]
    """The NCCL test's MPIJob name, when ``ncclTest.enabled``."""
    nccl_test_urn: pulumi.Output[str | None]
    """The NCCL test MPIJob's URN, when ``ncclTest.enabled``."""
    device_plugin_chart_version: pulumi.Output[str | None]
    """The NVIDIA device plugin chart version, when a pool needs the plugin (AL2023 NVIDIA)."""
    autoscaler_role_arn: pulumi.Output[str | None]
    """The Cluster Autoscaler's IAM role, when it is installed."""
    autoscaler_chart_version: pulumi.Output[str | None]
    """The Cluster Autoscaler chart version, when it is installed."""
    karpenter_node_role_name: pulumi.Output[str | None]
    """With Karpenter: its node role's name, what a team's own EC2NodeClass names in ``role``."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Designed first: a config error is raised before anything, this component included, is registered.
        design = design_stack(plain_args(args))
        super().__init__(f"{PACKAGE}:index:EksGpu", name, {}, opts)
        # The inner stack takes the same name, so its resources are named as `build_stack(name, ...)`
        # in a Python program names them.
        outputs = build_stack(name, design, opts=pulumi.ResourceOptions(parent=self)).outputs()
        for key, value in outputs.items():
            setattr(self, _snake(key), value)
        self.register_outputs(outputs)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def plain_args(args: StackArgs) -> dict[str, Any]:
    """``args`` as the config parser takes them: whole numbers back to ``int`` where the key is one.

    Numbers reach a provider as floats (a protobuf ``Struct`` has no integers) and the SDK's mapping
    keeps the float (pulumi ``provider/experimental/component.py`` map_input_properties), while
    ``logRetentionDays`` and the sizes want an ``int``. A value that is an output of another resource
    (or a secret) cannot be designed from: each is a problem naming its key.
    """
    problems: list[Problem] = []
    out = _plain(args, StackArgs, (), problems)
    if problems:
        raise ConfigError(problems)
    return typing.cast(dict[str, Any], out)


def _plain(value: Any, annotation: Any, path: tuple[str | int, ...], problems: list[Problem]) -> Any:
    if isinstance(value, pulumi.Output):
        problems.append(
            Problem(key_path(*path), "must be a plain value known at preview, not an output of a resource or a secret")
        )
        return None
    origin, type_args = typing.get_origin(annotation), typing.get_args(annotation)
    if typing.is_typeddict(annotation) and isinstance(value, dict):
        hints = typing.get_type_hints(annotation)
        return {k: _plain(v, hints.get(k), (*path, k), problems) for k, v in value.items()}
    if origin is dict and isinstance(value, dict):
        return {k: _plain(v, type_args[1], (*path, k), problems) for k, v in value.items()}
    if origin is list and isinstance(value, list):
        return [_plain(v, type_args[0], (*path, i), problems) for i, v in enumerate(value)]
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def schema_path(key: str) -> str:
    """A config key (``eks-gpu:gpuNodeGroups.train.diskSizeGiB``) as the schema names the property
    (``gpuNodeGroups.train.diskSizeGib``): the Analyzer camelCases the Python names."""
    current: Any = StackConfig
    out = ""
    for token in re.findall(r"\[\d+\]|[^.\[\]]+", key.removeprefix(f"{NAMESPACE}:")):
        name = token
        models = _models(current)
        fields = {f.alias or n: n for m in models for n, f in m.model_fields.items()}
        if token.startswith("["):
            current = _item(current)
        elif token in fields:
            python = fields[token]
            name = python.split("_")[0] + "".join(w[:1].upper() + w[1:] for w in python.split("_")[1:])
            current = next(m.model_fields[python].annotation for m in models if python in m.model_fields)
        elif not models:
            current = _item(current)  # a map key: the value's type follows
        out += token if token.startswith("[") else (f".{name}" if out else name)
    return out


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (dict, tuple, list):
        return []
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _item(annotation: Any) -> Any:
    """The value type of a map or the item type of a tuple (``None`` if neither)."""
    for arg in typing.get_args(annotation):
        origin = typing.get_origin(arg)
        if origin in (dict, tuple, list):
            return _item(arg)
    origin, type_args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict:
        return type_args[1]
    if origin in (tuple, list):
        return type_args[0]
    return None


class EksGpuProvider(ComponentProvider):
    """The component provider for :class:`EksGpu`: the SDK's, with config errors reported as input errors.

    The SDK's server appends the Python traceback to any other exception of a construct (pulumi
    ``provider/server.py`` Construct); an ``InputPropertiesError`` becomes an ``INVALID_ARGUMENT``
    status that the CLI shows as the message and one ``property: reason`` line per problem.
    """

    def __init__(self) -> None:
        super().__init__([EksGpu], PACKAGE, None, version(PACKAGE))

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> Any:
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as error:
            if not isinstance(error.inner, ConfigError):
                raise
            problems = error.inner.problems
            raise InputPropertiesError(
                f"{name}: the {PACKAGE} configuration has {len(problems)} problem{'s' if len(problems) != 1 else ''}",
                [{"property_path": schema_path(p.key), "reason": p.message} for p in problems],
            ) from None


def schema() -> dict[str, Any]:
    """The package schema: what the provider's GetSchema answers (pulumi ``provider/server.py``) and
    ``pulumi package add`` / ``pulumi package get-schema`` read."""
    return typing.cast(dict[str, Any], json.loads(EksGpuProvider().schema or "{}"))


if __name__ == "__main__":
    sys.stdout.write(json.dumps(schema(), indent=2, sort_keys=True) + "\n")
