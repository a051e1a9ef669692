"""Checks of single config values: labels, CIDRs, ids and ARNs, enums, instance type names."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import partial
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)
from pydantic_core import PydanticCustomError

from eks_gpu.config.enums import END_OF_LIFE_AMI_TYPES, GPU_AMI_TYPES, KUBERNETES_EFFECT, SYSTEM_AMI_TYPES

# --- field checks -------------------------------------------------------------------------------

DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(rf"^{DNS_LABEL}(\.{DNS_LABEL})*$")
POOL_KEY = re.compile(rf"^{DNS_LABEL}$")
CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+$")

POOL_KEY_MAX = 40
"""A pool key names resources (``<key>-ng``) and is a label value; 40 leaves room for suffixes."""


def fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def check_label_key(key: str, max_length: int = 316) -> None:
    prefix, _, name = key.rpartition("/")
    if len(key) > max_length:
        raise fail("key", f"'{key}' is longer than {max_length} characters")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise fail("key", f"'{key}': the prefix before '/' must be a DNS subdomain (a lower-case domain)")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise fail(
            "key",
            f"'{key}': the name must be 1-63 characters of letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit",
        )


def check_label_value(value: str) -> None:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise fail(
            "value",
            f"'{value}' must be empty or 1-63 characters of letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit",
        )


def _label_map(value: Mapping[str, str]) -> Mapping[str, str]:
    # The EKS API is stricter than Kubernetes: keys of at most 63 characters, non-empty values
    # (botocore ``eks`` shapes ``labelKey``, ``labelValue``).
    for k, v in value.items():
        check_label_key(k, max_length=63)
        if not v:
            raise fail("value", f"label '{k}' needs a value: EKS refuses empty node group label values")
        check_label_value(v)
    return value


def enum_field(
    enum: type[StrEnum], hints: Mapping[str, str] | None = None, only: Iterable[StrEnum] | None = None
) -> Any:
    """A before-validator that spells out the allowed values and, for known mistakes, the fix.

    ``only`` narrows the enum to the members this field accepts.
    """
    # Models call this when their class is defined (at import), so the work is done in the validator,
    # at validation time, where tests (and mutation tests) reach it; these lines run once, at import.
    narrowed = tuple(only) if only is not None else None  # pragma: no mutate
    return BeforeValidator(partial(_check_enum, enum, hints, narrowed))  # pragma: no mutate


def _check_enum(
    enum: type[StrEnum], hints: Mapping[str, str] | None, only: tuple[StrEnum, ...] | None, value: Any
) -> Any:
    members = [e.value for e in (only if only is not None else enum)]
    if isinstance(value, str) and value in members:
        return value
    if isinstance(value, str) and hints and value in hints:
        raise fail("enum", f"'{value}' {hints[value]}")
    raise fail("enum", f"'{value}' is not allowed; use one of {', '.join(members)}")


EFFECT_HINTS = {
    k8s: f"is the Kubernetes spelling; the EKS API wants {eks.value}" for eks, k8s in KUBERNETES_EFFECT.items()
}
_END_OF_LIFE_HINTS = {
    old: f"is end of life (EKS stopped publishing AL2 AMIs on 2025-11-26); use {new}"
    for old, new in END_OF_LIFE_AMI_TYPES.items()
}
GPU_AMI_HINTS = _END_OF_LIFE_HINTS | {
    t.value: "is not a GPU AMI type: it has no NVIDIA driver" for t in SYSTEM_AMI_TYPES
}
SYSTEM_AMI_HINTS = _END_OF_LIFE_HINTS | {
    t.value: "is a GPU AMI type; the system node group runs a standard AMI" for t in GPU_AMI_TYPES
}


def enum_field_values(values: Iterable[str]) -> Any:
    """A before-validator for a closed set of strings, spelling out the allowed ones."""
    return BeforeValidator(partial(_check_value, tuple(values)))  # pragma: no mutate (runs at import)


def _check_value(allowed: tuple[str, ...], value: Any) -> Any:
    if value in allowed:
        return value
    raise fail("enum", f"'{value}' is not allowed; use one of {', '.join(allowed)}")


def _instance_types(value: tuple[str, ...]) -> tuple[str, ...]:
    for t in value:
        if not _INSTANCE_TYPE.match(t):
            raise fail("instance_type", f"'{t}' is not an EC2 instance type name such as g5.xlarge")
    if len(set(value)) != len(value):
        raise fail("instance_type", "lists an instance type twice")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise fail("cidr", f"'{value}' is not an IPv4 CIDR block with zero host bits ({exc})") from None
    return str(net)


DOCUMENTATION_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
"""RFC 5737 ranges, reserved for examples: no client ever has such an address."""


def _client_cidr(value: str) -> str:
    net = ipaddress.IPv4Network(_cidr(value))
    if net.prefixlen == 0:
        raise fail(
            "cidr",
            f"'{value}' admits every address to the Kubernetes API; name the networks pulumi and kubectl run "
            "from (your address as a /32, a runner's network)",
        )
    if any(net.subnet_of(doc) for doc in DOCUMENTATION_NETWORKS):
        raise fail(
            "cidr",
            f"'{value}' is a documentation address (RFC 5737) that no client has; use your own, e.g. "
            "pulumi config set --path 'endpointPublicAccessCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\"",
        )
    return str(net)


_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def _security_group_id(value: str) -> str:
    if not _SECURITY_GROUP_ID.match(value):
        raise fail("id", f"'{value}' is not a security group id (sg- and 8 or 17 hex digits)")
    return value


PRINCIPAL_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?P<kind>role|user)/"
    r"(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,128})$"
)
"""An IAM role or user ARN (``arn:aws:iam::111122223333:role/ml-admins``), path allowed."""


def _principal_arn(value: str) -> str:
    if value.startswith("arn:") and ":sts::" in value and ":assumed-role/" in value:
        role = value.split(":assumed-role/", 1)[1].split("/", 1)[0]
        raise fail(
            "arn",
            f"'{value}' is a session of a role, not the role: name the role itself "
            f"(arn:<partition>:iam::<account>:role/{role})",
        )
    if not PRINCIPAL_ARN.match(value):
        raise fail("arn", f"'{value}' is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
    return value


InstanceTypes = Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_instance_types)]
Labels = Annotated[dict[str, str], AfterValidator(_label_map)]
Cidr = Annotated[str, AfterValidator(_cidr)]
ClientCidr = Annotated[str, AfterValidator(_client_cidr)]
SecurityGroupId = Annotated[str, AfterValidator(_security_group_id)]
PrincipalArn = Annotated[str, AfterValidator(_principal_arn)]
Size = Annotated[int, Field(ge=0)]
