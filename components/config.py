"""Stack configuration: the user interface of the program, parsed once into frozen typed objects.

Every key lives in the ``eks-gpu`` namespace (``eks-gpu:gpuNodeGroups``). Parsing never stops at the
first problem: every problem of the stack file is collected as a :class:`Problem` naming its full key
(``eks-gpu:gpuNodeGroups.inference.minSize``) and what is allowed, and raised together as one
:class:`ConfigError` before any resource is registered. Facts that only AWS knows (does an instance
type exist, how many GPUs has it, where is it offered) are checked later, in :mod:`components.design`,
and reported in the same error.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import versions

NAMESPACE = "eks-gpu"
"""The Pulumi project name, hence the config namespace."""


# --- enums, spelled exactly as the EKS API spells them --------------------------------------


class TaintEffect(StrEnum):
    """A node group taint's effect as the EKS API spells it (botocore ``eks`` shape ``TaintEffect``)."""

    NO_SCHEDULE = "NO_SCHEDULE"
    NO_EXECUTE = "NO_EXECUTE"
    PREFER_NO_SCHEDULE = "PREFER_NO_SCHEDULE"

    @property
    def kubernetes(self) -> str:
        """The same effect as Kubernetes spells it in a taint or toleration (``NoSchedule``).

        This is the one place where the EKS spelling becomes the Kubernetes one.
        """
        return _KUBERNETES_EFFECT[self]


_KUBERNETES_EFFECT = {
    TaintEffect.NO_SCHEDULE: "NoSchedule",
    TaintEffect.NO_EXECUTE: "NoExecute",
    TaintEffect.PREFER_NO_SCHEDULE: "PreferNoSchedule",
}


class CapacityType(StrEnum):
    """How a node group buys its instances (botocore ``eks`` shape ``CapacityTypes``)."""

    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"
    CAPACITY_BLOCK = "CAPACITY_BLOCK"


class Architecture(StrEnum):
    """A CPU architecture as EC2 reports it in ``ProcessorInfo.SupportedArchitectures``."""

    X86_64 = "x86_64"
    ARM64 = "arm64"


class AmiType(StrEnum):
    """EKS-optimized AMI types this program builds node groups from (botocore ``eks`` ``AMITypes``)."""

    AL2023_x86_64_NVIDIA = "AL2023_x86_64_NVIDIA"
    AL2023_ARM_64_NVIDIA = "AL2023_ARM_64_NVIDIA"
    BOTTLEROCKET_x86_64_NVIDIA = "BOTTLEROCKET_x86_64_NVIDIA"
    BOTTLEROCKET_ARM_64_NVIDIA = "BOTTLEROCKET_ARM_64_NVIDIA"
    BOTTLEROCKET_x86_64_NVIDIA_FIPS = "BOTTLEROCKET_x86_64_NVIDIA_FIPS"
    BOTTLEROCKET_ARM_64_NVIDIA_FIPS = "BOTTLEROCKET_ARM_64_NVIDIA_FIPS"
    AL2023_x86_64_STANDARD = "AL2023_x86_64_STANDARD"
    AL2023_ARM_64_STANDARD = "AL2023_ARM_64_STANDARD"
    BOTTLEROCKET_x86_64 = "BOTTLEROCKET_x86_64"
    BOTTLEROCKET_ARM_64 = "BOTTLEROCKET_ARM_64"

    @property
    def architecture(self) -> Architecture:
        """The CPU architecture the AMI runs on."""
        return Architecture.ARM64 if "_ARM_64" in self.value else Architecture.X86_64

    @property
    def bottlerocket(self) -> bool:
        """Bottlerocket (two volumes, NVIDIA device plugin built in) rather than AL2023."""
        return self.value.startswith("BOTTLEROCKET")

    @property
    def nvidia(self) -> bool:
        """The AMI carries NVIDIA drivers and the container toolkit."""
        return "NVIDIA" in self.value


GPU_AMI_TYPES = tuple(t for t in AmiType if t.nvidia)
SYSTEM_AMI_TYPES = tuple(t for t in AmiType if not t.nvidia)

DEFAULT_GPU_AMI = {Architecture.X86_64: AmiType.AL2023_x86_64_NVIDIA, Architecture.ARM64: AmiType.AL2023_ARM_64_NVIDIA}
"""The GPU AMI type a pool gets when ``amiType`` is omitted, by the architecture of its instance types."""

DEFAULT_SYSTEM_AMI = {
    Architecture.X86_64: AmiType.AL2023_x86_64_STANDARD,
    Architecture.ARM64: AmiType.AL2023_ARM_64_STANDARD,
}
"""The AMI type of the system node group when ``amiType`` is omitted, by architecture."""

END_OF_LIFE_AMI_TYPES = {
    "AL2_x86_64_GPU": "AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA",
    "AL2_x86_64": "AL2023_x86_64_STANDARD",
    "AL2_ARM_64": "AL2023_ARM_64_STANDARD",
}
"""Amazon Linux 2 AMI types: EKS stopped publishing AL2 AMIs on 2025-11-26 (1.32 was the last version)."""


POOL_LABEL = "eks-gpu/node-group"
"""Label on every node naming its node group key (``system`` or the pool key): pods select pools by it."""
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""Label on every GPU node (``true``), the device plugin's and the pod's node affinity."""
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""Label with the GPU model (``nvidia-a10g``): the Cluster Autoscaler waits for the device plugin on it."""
RESERVED_LABELS = (POOL_LABEL, GPU_PRESENT_LABEL, ACCELERATOR_LABEL)


# --- field checks -------------------------------------------------------------------------------

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_POOL_KEY = re.compile(rf"^{_DNS_LABEL}$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+$")

DEFAULT_KUBERNETES_VERSION = "1.35"
"""The version a stack gets without ``kubernetesVersion``. A constant, not "the newest known": a
default that moved with the calendar would upgrade every stack that relies on it."""

POOL_KEY_MAX = 40
"""A pool key names resources (``<key>-ng``) and is a label value; 40 leaves room for suffixes."""


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _check_label_key(key: str, max_length: int = 316) -> None:
    prefix, _, name = key.rpartition("/")
    if len(key) > max_length:
        raise _fail("key", f"'{key}' is longer than {max_length} characters")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise _fail("key", f"'{key}': the prefix before '/' must be a DNS subdomain (a lower-case domain)")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise _fail(
            "key",
            f"'{key}': the name must be 1-63 characters of letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit",
        )


def _check_label_value(value: str) -> None:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise _fail(
            "value",
            f"'{value}' must be empty or 1-63 characters of letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit",
        )


def _label_map(value: Mapping[str, str]) -> Mapping[str, str]:
    # The EKS API is stricter than Kubernetes: keys of at most 63 characters, non-empty values
    # (botocore ``eks`` shapes ``labelKey``, ``labelValue``).
    for k, v in value.items():
        _check_label_key(k, max_length=63)
        if not v:
            raise _fail("value", f"label '{k}' needs a value: EKS refuses empty node group label values")
        _check_label_value(v)
    return value


def _enum_field(
    enum: type[StrEnum], hints: Mapping[str, str] | None = None, only: Iterable[StrEnum] | None = None
) -> Any:
    """A before-validator that spells out the allowed values and, for known mistakes, the fix.

    ``only`` narrows the enum to the members this field accepts.
    """
    members = [e.value for e in (only if only is not None else enum)]
    allowed = ", ".join(members)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in members:
            return value
        if isinstance(value, str) and hints and value in hints:
            raise _fail("enum", f"'{value}' {hints[value]}")
        raise _fail("enum", f"'{value}' is not allowed; use one of {allowed}")

    return BeforeValidator(check)


_EFFECT_HINTS = {
    k8s: f"is the Kubernetes spelling; the EKS API wants {eks.value}" for eks, k8s in _KUBERNETES_EFFECT.items()
}
_END_OF_LIFE_HINTS = {
    old: f"is end of life (EKS stopped publishing AL2 AMIs on 2025-11-26); use {new}"
    for old, new in END_OF_LIFE_AMI_TYPES.items()
}
_GPU_AMI_HINTS = _END_OF_LIFE_HINTS | {
    t.value: "is not a GPU AMI type: it has no NVIDIA driver" for t in SYSTEM_AMI_TYPES
}
_SYSTEM_AMI_HINTS = _END_OF_LIFE_HINTS | {
    t.value: "is a GPU AMI type; the system node group runs a standard AMI" for t in GPU_AMI_TYPES
}


def _enum_field_values(values: Iterable[str]) -> Any:
    """A before-validator for a closed set of strings, spelling out the allowed ones."""
    allowed = tuple(values)

    def check(value: Any) -> Any:
        if value in allowed:
            return value
        raise _fail("enum", f"'{value}' is not allowed; use one of {', '.join(allowed)}")

    return BeforeValidator(check)


def _instance_types(value: tuple[str, ...]) -> tuple[str, ...]:
    for t in value:
        if not _INSTANCE_TYPE.match(t):
            raise _fail("instance_type", f"'{t}' is not an EC2 instance type name such as g5.xlarge")
    if len(set(value)) != len(value):
        raise _fail("instance_type", "lists an instance type twice")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise _fail("cidr", f"'{value}' is not an IPv4 CIDR block with zero host bits ({exc})") from None
    return str(net)


DOCUMENTATION_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
"""RFC 5737 ranges, reserved for examples: no client ever has such an address."""


def _client_cidr(value: str) -> str:
    net = ipaddress.IPv4Network(_cidr(value))
    if any(net.subnet_of(doc) for doc in DOCUMENTATION_NETWORKS):
        raise _fail(
            "cidr",
            f"'{value}' is a documentation address (RFC 5737) that no client has; use your own, e.g. "
            "pulumi config set --path 'endpointPublicAccessCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\"",
        )
    return str(net)


InstanceTypes = Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_instance_types)]
Labels = Annotated[dict[str, str], AfterValidator(_label_map)]
Cidr = Annotated[str, AfterValidator(_cidr)]
ClientCidr = Annotated[str, AfterValidator(_client_cidr)]
Size = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


# --- node groups ------------------------------------------------------------------------------


def _taint_key(value: str) -> str:
    _check_label_key(value, max_length=63)
    return value


def _taint_value(value: str) -> str:
    _check_label_value(value)
    return value


class Taint(_Model):
    """A taint on every node of a pool; pods need the matching toleration to land there.

    The same object gives the node group its taint and the pods their toleration.
    """

    key: Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_taint_key)]
    """Taint key, 1-63 characters, a Kubernetes qualified name (``nvidia.com/gpu``)."""
    value: Annotated[str, Field(max_length=63), AfterValidator(_taint_value)] = ""
    """Taint value, 0-63 characters. Default empty."""
    effect: Annotated[TaintEffect, _enum_field(TaintEffect, _EFFECT_HINTS)]
    """``NO_SCHEDULE``, ``NO_EXECUTE`` or ``PREFER_NO_SCHEDULE``, as the EKS API spells it."""


GPU_TAINT_KEY = "nvidia.com/gpu"
"""The taint key every GPU pool carries: only pods that tolerate it land on GPU nodes."""
DEFAULT_GPU_TAINTS = (Taint(key=GPU_TAINT_KEY, value="true", effect=TaintEffect.NO_SCHEDULE),)
"""The taint a GPU pool gets when ``taints`` is omitted: only GPU pods land on GPU nodes."""

MAX_TAINTS = 50
"""EKS allows at most 50 taints per node group (EKS API, ``Taint``)."""


class _Sizes(_Model):
    min_size: Size = 0
    desired_size: Size | None = None
    max_size: Size = 1

    @property
    def desired(self) -> int:
        """The desired size, defaulting to ``minSize``."""
        return self.min_size if self.desired_size is None else self.desired_size


class GpuPool(_Sizes):
    """One GPU managed node group, keyed by a stable name in ``eks-gpu:gpuNodeGroups``."""

    instance_types: InstanceTypes
    """EC2 instance types, non-empty, all with NVIDIA GPUs of one model and count, one architecture."""
    ami_type: Annotated[AmiType | None, _enum_field(AmiType, _GPU_AMI_HINTS, GPU_AMI_TYPES)] = None
    """An NVIDIA AMI type of the pool's architecture. Default: AL2023 NVIDIA of that architecture."""
    capacity_type: Annotated[CapacityType, _enum_field(CapacityType)] = CapacityType.ON_DEMAND
    """``ON_DEMAND`` (default), ``SPOT`` or ``CAPACITY_BLOCK`` (needs ``capacityReservationId``)."""
    capacity_reservation_id: Annotated[str | None, Field(pattern=r"^cr-[0-9a-f]{8,17}$")] = None
    """The Capacity Block reservation (``cr-...``); only with ``capacityType: CAPACITY_BLOCK``."""
    min_size: Size = 0
    """Fewest nodes, >= 0. Default 0: an idle pool costs nothing."""
    desired_size: Size | None = None
    """Nodes at creation, minSize..maxSize. Default minSize. Afterwards the autoscaler owns it."""
    max_size: Size = 1
    """Most nodes, >= 1 and >= desiredSize. Default 1."""
    disk_size_gib: Annotated[int, Field(ge=20, le=16384, alias="diskSizeGiB")] = 100
    """Encrypted gp3 root (AL2023) or data (Bottlerocket) volume in GiB, 20-16384. Default 100."""
    labels: Labels = {}
    """Extra Kubernetes labels on the pool's nodes. Default none."""
    taints: Annotated[tuple[Taint, ...], Field(max_length=MAX_TAINTS)] = DEFAULT_GPU_TAINTS
    """Taints of the pool's nodes, at most 50. Default ``nvidia.com/gpu=true:NO_SCHEDULE``."""


class SystemNodeGroup(_Sizes):
    """The small untainted on-demand node group where CoreDNS and the controllers run."""

    instance_types: InstanceTypes = ("t3.medium",)
    """EC2 instance types, non-empty, one architecture. Default ``[t3.medium]``."""
    ami_type: Annotated[AmiType | None, _enum_field(AmiType, _SYSTEM_AMI_HINTS, SYSTEM_AMI_TYPES)] = None
    """A standard (non-GPU) AMI type. Default AL2023 standard of the instance types' architecture."""
    min_size: Size = 1
    """Fewest nodes, >= 1: CoreDNS and the controllers must always have a node. Default 1."""
    desired_size: Size | None = None
    """Nodes at creation, minSize..maxSize. Default minSize."""
    max_size: Size = 2
    """Most nodes, >= desiredSize. Default 2."""
    disk_size_gib: Annotated[int, Field(ge=20, le=16384, alias="diskSizeGiB")] = 50
    """Encrypted gp3 root volume in GiB, 20-16384. Default 50."""


# --- network ----------------------------------------------------------------------------------


class NewVpc(_Model):
    """Build a VPC: public and private subnets in ``azCount`` AZs, NAT gateways for egress."""

    cidr: Cidr = "10.0.0.0/16"
    """VPC CIDR block, a private IPv4 range from /16 to /20. Default ``10.0.0.0/16``."""
    az_count: Annotated[int, Field(ge=2, le=6)] = 3
    """Availability Zones to span, 2-6 (EKS needs two at least). Default 3."""
    availability_zones: Annotated[tuple[str, ...] | None, Field(min_length=2, max_length=6)] = None
    """The AZs to span, by name. Default: chosen for the pools (README, "Where pools land").
    Pin them once a stack is up: a new pool then never moves the VPC's subnets."""
    nat_gateways: Annotated[Literal["single", "perAz"], _enum_field_values(("single", "perAz"))] = "single"
    """``single`` (one NAT gateway, cheapest; default) or ``perAz`` (one per AZ, survives an AZ loss)."""


class ExistingVpc(_Model):
    """Bring your own VPC: its private subnets must span two AZs and have egress (NAT or endpoints)."""

    id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    """The VPC id (``vpc-...``)."""
    private_subnet_ids: Annotated[tuple[str, ...], Field(min_length=2)]
    """Private subnets for the nodes and the control plane's network interfaces, in 2 or more AZs."""
    public_subnet_ids: tuple[str, ...] = ()
    """Public subnets for internet-facing load balancers. Default none."""


def _vpc_kind(value: Any) -> str:
    """``existing`` when the VPC config names an ``id``, else ``new``."""
    if isinstance(value, ExistingVpc) or (isinstance(value, Mapping) and "id" in value):
        return "existing"
    return "new"


_VPC_KINDS: dict[str, type[BaseModel]] = {"new": NewVpc, "existing": ExistingVpc}
VpcConfig = Annotated[
    Annotated[NewVpc, Tag("new")] | Annotated[ExistingVpc, Tag("existing")],
    Discriminator(_vpc_kind),
]


# --- in the cluster ----------------------------------------------------------------------------

DEVICE_PLUGIN_CHART_VERSION = "0.19.0"
"""The ``nvidia-device-plugin`` chart (NVIDIA's ``k8s-device-plugin`` Helm repository) by default."""
CUDA_IMAGE = "nvidia/cuda:13.0.2-base-ubuntu24.04"
"""The smoke test's default image: CUDA 13.0 runs on the R580 driver of the EKS NVIDIA AMIs, a
long-term support branch, so NVIDIA keeps the tag (it deletes tags six months after their driver's
end of life, as it did the seed's 11.4.0 tags)."""


def _pinned_image(value: str) -> str:
    name, _, tag = value.rpartition(":") if "@" not in value else (value, "", "digest")
    if not name or "/" in tag or tag in ("", "latest"):
        raise _fail("image", f"'{value}' is not pinned: name a tag (not latest) or a digest, e.g. {CUDA_IMAGE}")
    return value


class DevicePlugin(_Model):
    """The NVIDIA device plugin: advertises ``nvidia.com/gpu`` on AL2023 NVIDIA nodes."""

    chart_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = DEVICE_PLUGIN_CHART_VERSION
    """``nvidia-device-plugin`` chart version, ``X.Y.Z``. Default the tested one."""


class GpuNamespace(_Model):
    """The namespace GPU workloads run in: restricted Pod Security, a GPU quota, default limits."""

    name: Annotated[str, Field(max_length=63, pattern=rf"^{_DNS_LABEL}$")] = "gpu-workloads"
    """Namespace name, a DNS label. Default ``gpu-workloads``."""
    gpu_quota: Size | None = None
    """Most GPUs the namespace's pods may request together. Default: every pool at maxSize."""


class GpuPod(_Model):
    """The smoke test: a pod that runs ``nvidia-smi`` on a GPU node and completes."""

    enabled: bool = False
    """Create the pod. Default false: it needs a node of its pool when it is created."""
    node_group: str | None = None
    """The pool (a ``gpuNodeGroups`` key) to run on. Default the only pool, if there is one."""
    image: Annotated[str, AfterValidator(_pinned_image)] = CUDA_IMAGE
    """Container image, pinned by tag or digest. Default a supported CUDA base image."""
    gpus: Annotated[int, Field(ge=1)] = 1
    """GPUs to ask for, 1..GPUs per node of the pool. Default 1."""
    command: Annotated[tuple[str, ...], Field(min_length=1)] = ("nvidia-smi",)
    """The command. Default ``nvidia-smi``."""


def _duration(value: str) -> str:
    if not re.match(r"^\d+(s|m|h)$", value):
        raise _fail("duration", f"'{value}' is not a duration such as 10m, 600s or 1h")
    return value


EXPANDERS = ("least-waste", "priority", "random", "most-pods")
"""Cluster Autoscaler expanders that work on AWS (``price`` needs a pricing model AWS lacks)."""


class Autoscaler(_Model):
    """The Cluster Autoscaler: resizes the node groups' Auto Scaling groups for pending pods."""

    enabled: bool = True
    """Install it, with its IAM role and the ASG tags it discovers node groups by. Default true."""
    chart_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] | None = None
    """``cluster-autoscaler`` chart version, ``X.Y.Z``. Default the bundled one."""
    image_tag: Annotated[str, Field(pattern=r"^v1\.\d+\.\d+$")] | None = None
    """Cluster Autoscaler image tag (``v1.35.0``). Default the release for the cluster's minor version."""
    expander: Annotated[str, _enum_field_values(EXPANDERS)] = "least-waste"
    """How it picks a node group to grow: ``least-waste`` (default), ``priority``, ``random``, ``most-pods``."""
    priorities: dict[str, Annotated[int, Field(ge=0)]] = {}
    """Pool key (or ``system``) -> priority, higher first; required with, and only with, ``priority``."""
    scale_down_unneeded_time: Annotated[str, AfterValidator(_duration)] = "10m"
    """How long a node stays unneeded before it is removed. Default ``10m``."""
    extra_args: dict[str, str | int | bool] = {}
    """More command-line flags (``{scale-down-delay-after-add: 5m}``), over the program's defaults."""


# --- the stack --------------------------------------------------------------------------------


class StackConfig(_Model):
    """The whole stack file, parsed. Built only by :func:`parse_config`."""

    cluster_name: Annotated[str, Field(min_length=1, max_length=100)]
    """EKS cluster name: 1-100 letters, digits, '-', '_', starting alphanumeric. Default ``eks-gpu-<stack>``."""
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """Kubernetes minor version (``"1.35"``), quoted; must be in EKS standard or extended support."""
    environment: str
    """Value of the ``Environment`` tag. Default the stack name."""
    tags: dict[str, str] = {}
    """Tags added to every taggable AWS resource. Default none."""
    vpc: VpcConfig = NewVpc()
    """A VPC to build (default) or one to use (``id``, ``privateSubnetIds``, ``publicSubnetIds``)."""
    protect: bool = False
    """Protect the EKS cluster (and its KMS key) from deletion: ``pulumi destroy`` refuses until unset."""
    endpoint_public_access_cidrs: tuple[ClientCidr, ...] = ()
    """CIDRs that may reach the public API endpoint. Default none: the endpoint is private only."""
    system_node_group: SystemNodeGroup = SystemNodeGroup()
    """The untainted system node group. Default one t3.medium."""
    gpu_node_groups: dict[str, GpuPool] = {}
    """GPU pools keyed by a stable name (lower-case DNS label, at most 40 characters)."""
    device_plugin: DevicePlugin = DevicePlugin()
    """The NVIDIA device plugin chart. Installed when a pool runs an AL2023 NVIDIA AMI."""
    gpu_namespace: GpuNamespace = GpuNamespace()
    """The namespace for GPU workloads."""
    gpu_pod: GpuPod = GpuPod()
    """The GPU smoke-test pod."""
    autoscaler: Autoscaler = Autoscaler()
    """The Cluster Autoscaler."""


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


def _problems_from(exc: ValidationError, prefix: tuple[str | int, ...], model: type[BaseModel]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        raw_loc = list(err["loc"])
        owner = _model_at(model, raw_loc[:-1])
        loc = [p for i, p in enumerate(raw_loc) if not (i > 0 and raw_loc[i - 1] == "vpc" and p in _VPC_KINDS)]
        loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(f.alias or n for n, f in owner.model_fields.items())) if owner else ""
            message = f"unknown key; allowed keys: {allowed}" if allowed else "unknown key"
        elif err["type"] == "missing":
            message = "is required"
        elif err["type"] == "too_short":
            n = err["ctx"]["min_length"]
            message = f"must list at least {n} item{'s' if n != 1 else ''} (got {len(err['input'])})"
        elif err["type"] not in ("enum", "key", "value", "instance_type", "cidr", "image", "duration"):
            message = f"{message} (got {err['input']!r})"
        problems.append(Problem(key_path(*prefix, *loc), _sentence(message)))
    return problems


def _model_at(model: type[BaseModel], loc: list[str | int]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (to list its allowed keys)."""
    current: Any = model
    previous: str | int | None = None
    for part in loc:
        if previous == "vpc" and part in _VPC_KINDS:
            current = _VPC_KINDS[str(part)]
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


_STRING_KEYS = {"clusterName", "kubernetesVersion", "environment"}


def read_pulumi_config() -> dict[str, Any]:
    """Every ``eks-gpu:*`` key of the running stack, objects and lists decoded from their JSON form.

    Values that are not valid JSON where JSON is expected are passed on as strings, so that the
    parser reports them against their key.
    """
    keys = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
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

    for key in ("clusterName", "environment"):
        if data.get(key) == "":
            data.pop(key)  # Pulumi.yaml declares "" as "derive it from the stack"
    data.setdefault("environment", stack)
    derived_name = "clusterName" not in data
    data.setdefault("clusterName", _default_cluster_name(stack))
    data.setdefault("kubernetesVersion", DEFAULT_KUBERNETES_VERSION)

    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, (), StackConfig))

    pools, system, vpc = _parse_pieces(data)
    problems.extend(_check_scalars(data, derived_name))
    raw_pools = data.get("gpuNodeGroups", {})
    for key, raw_pool in raw_pools.items() if isinstance(raw_pools, Mapping) else ():
        problems.extend(_check_sizes(("gpuNodeGroups", str(key)), raw_pool, GpuPool))
    for key, pool in pools.items():
        problems.extend(_check_pool(key, pool))
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
    if isinstance(name, str) and name and not _CLUSTER_NAME.match(name):
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
            if not (isinstance(key, str) and _POOL_KEY.match(key) and len(key) <= POOL_KEY_MAX) or key == "system":
                problems.append(
                    Problem(
                        key_path("gpuNodeGroups", str(key)),
                        f"a pool name is a lower-case DNS label of at most {POOL_KEY_MAX} characters "
                        "(letters, digits, '-'), and not 'system' (the system node group's)",
                    )
                )
    return problems


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_sizes(prefix: tuple[str, ...], raw: Any, model: type[_Sizes]) -> list[Problem]:
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
        problems.append(Problem(key_path(*prefix, "maxSize"), f"{hi} is below desiredSize {desired}; {rule}"))
    elif hi is not None and lo is not None and 0 <= hi < lo and "desiredSize" in raw:
        problems.append(Problem(key_path(*prefix, "maxSize"), f"{hi} is below minSize {lo}; {rule}"))
    if hi == 0:
        problems.append(Problem(key_path(*prefix, "maxSize"), "must be at least 1 (EKS rejects a node group of 0)"))
    return problems


def _check_pool(key: str, pool: GpuPool) -> list[Problem]:
    prefix = ("gpuNodeGroups", key)
    problems = []
    seen: set[tuple[str, TaintEffect]] = set()
    for i, taint in enumerate(pool.taints):
        if (taint.key, taint.effect) in seen:
            problems.append(
                Problem(key_path(*prefix, "taints", i), f"repeats the taint {taint.key}:{taint.effect.value}")
            )
        seen.add((taint.key, taint.effect))
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
    elif pool.capacity_reservation_id is not None:
        problems.append(
            Problem(
                key_path(*prefix, "capacityReservationId"),
                f"only applies to capacityType CAPACITY_BLOCK, not {pool.capacity_type.value}",
            )
        )
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
