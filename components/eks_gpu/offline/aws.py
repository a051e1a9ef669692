"""The fake AWS account the offline engine answers from.

`AwsAccount` is one moto account in one region. It answers the pulumi-aws invokes a program
makes (`aws.get_availability_zones`, `aws.ec2.get_instance_type`, ...) by calling the real EC2
and STS APIs through boto3 against moto, and translating the answers into the result shapes
pulumi-aws returns (camelCase wire names). Availability zones, instance types and their
per-AZ offerings therefore come from AWS's own catalogue shipped inside moto, never from
numbers typed by hand. Network resources (VPCs, subnets, gateways, route tables) are created
in the account, so their ids are moto's and moto validates them (an overlapping subnet CIDR
fails the way AWS fails).

Everything moto randomises (ids, addresses, request ids) is made deterministic by seeding
moto's random source from a key naming the operation before each call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import botocore.loaders
from botocore.exceptions import ClientError

JsonDict = dict[str, Any]


class AwsError(Exception):
    """An error the fake AWS account returned, carrying AWS's own error code and text."""


class UnsupportedError(Exception):
    """The offline account was asked for something it does not implement (an invoke token,
    an argument, a resource shape). Raised so that nothing is ever answered with made-up data."""


# --------------------------------------------------------------------------------------------
# Partitions, from botocore's bundled endpoint data.


@dataclass(frozen=True)
class Partition:
    """The AWS partition a region belongs to, as botocore's `endpoints.json` describes it."""

    name: str
    """Partition name used in ARNs: `aws`, `aws-cn`, `aws-us-gov`, ..."""
    dns_suffix: str
    """DNS suffix of the partition's endpoints, e.g. `amazonaws.com`."""
    reverse_dns_prefix: str
    """The DNS suffix reversed, e.g. `com.amazonaws` (service principals, VPC endpoints)."""
    region_description: str
    """Human name of the region, e.g. `US East (N. Virginia)`; empty if botocore has none."""
    hostname_template: str
    """Default endpoint template, e.g. `{service}.{region}.{dnsSuffix}`."""

    def hostname(self, service: str, region: str) -> str:
        """The default endpoint host name of `service` in `region`."""
        return self.hostname_template.format(service=service, region=region, dnsSuffix=self.dns_suffix)


@functools.cache
def partition_for(region: str) -> Partition:
    """The partition of `region`: a partition listing the region wins, else its `regionRegex`."""
    partitions = botocore.loaders.create_loader().load_data("endpoints")["partitions"]
    chosen = next((p for p in partitions if region in p["regions"]), None)
    if chosen is None:
        chosen = next((p for p in partitions if re.match(p["regionRegex"], region)), None)
    if chosen is None:
        raise ValueError(f"region {region!r} belongs to no partition botocore knows")
    suffix: str = chosen["dnsSuffix"]
    return Partition(
        name=chosen["partition"],
        dns_suffix=suffix,
        reverse_dns_prefix=".".join(reversed(suffix.split("."))),
        region_description=chosen["regions"].get(region, {}).get("description", ""),
        hostname_template=chosen["defaults"]["hostname"],
    )


# --------------------------------------------------------------------------------------------
# JSON as Go's encoding/json writes it (the AWS provider is a Go program).

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any, *, indent: bool = False, sort_keys: bool = False) -> str:
    """`value` encoded like Go's `json.Marshal` (or `json.MarshalIndent(v, "", "  ")` with
    `indent`): UTF-8 kept, `<`, `>`, `&`, U+2028 and U+2029 escaped. Go sorts map keys and keeps
    struct field order: pass `sort_keys` for maps, build dicts in field order for structs."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        indent=2 if indent else None,
        separators=(",", ": ") if indent else (",", ":"),
        sort_keys=sort_keys,
    )
    return re.sub("[<>&\u2028\u2029]", lambda m: _GO_ESCAPES[m.group()], text)


def digest(*parts: str) -> str:
    """A hex SHA-256 of `parts`: the source of every deterministic identifier offline."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# aws.iam.get_policy_document, computed locally exactly like the provider does
# (terraform-provider-aws internal/service/iam policy_document_data_source.go, policy_model.go).

_POLICY_VERSIONS = ("2008-10-17", "2012-10-17")
_SID = re.compile(r"^[a-zA-Z0-9]*$")


def _string_set(values: Sequence[str]) -> str | list[str]:
    """A schema set of strings as the provider encodes it: one value alone as a string, more
    as a list sorted in reverse order (`policyDecodeConfigStrings`)."""
    unique = sorted(set(values), reverse=True)
    return unique[0] if len(unique) == 1 else unique


def _replace_vars(value: str | list[str], version: str) -> str | list[str]:
    """`&{aws:username}` written to avoid Pulumi/Terraform interpolation becomes `${...}`;
    the 2008-10-17 policy language has no variables at all."""

    def one(item: str) -> str:
        if version == "2008-10-17" and "&{" in item:
            raise UnsupportedError(
                f"found &{{ sequence in ({item}), which is not supported in document version 2008-10-17"
            )
        return item.replace("&{", "${")

    return one(value) if isinstance(value, str) else [one(v) for v in value]


def _unique_blocks(blocks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Blocks of a schema set, duplicates dropped, first occurrence kept."""
    seen: list[Mapping[str, Any]] = []
    for block in blocks:
        if block not in seen:
            seen.append(block)
    return seen


def _principals(blocks: Sequence[Mapping[str, Any]], version: str) -> str | JsonDict:
    """`principals` blocks grouped by type, as `iamPolicyStatementPrincipalSet.MarshalJSON`."""
    decoded = [
        (str(b["type"]), _replace_vars(_string_set(b.get("identifiers") or []), version))
        for b in _unique_blocks(blocks)
    ]
    if len(decoded) == 1 and decoded[0][0] == "*" and decoded[0][1] in ("*", ["*"]):
        return "*"
    grouped: JsonDict = {}
    for kind, identifiers in decoded:
        current = grouped.get(kind)
        if isinstance(identifiers, list):
            merged = [] if current is None else [current] if isinstance(current, str) else current
            grouped[kind] = merged + sorted(identifiers, reverse=True)
        elif current is None:
            grouped[kind] = identifiers
        elif isinstance(current, str):
            grouped[kind] = [current, identifiers]
        else:
            current.append(identifiers)
    return {kind: grouped[kind] for kind in sorted(grouped)}


def _conditions(blocks: Sequence[Mapping[str, Any]], version: str) -> JsonDict:
    """`condition` blocks grouped test -> variable -> values, values in the order given,
    single values flattened (`iamPolicyStatementConditionSet.MarshalJSON`)."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for block in _unique_blocks(blocks):
        values = _replace_vars([str(v) for v in block.get("values") or []], version)
        bucket = grouped.setdefault(str(block["test"]), {}).setdefault(str(block["variable"]), [])
        bucket.extend(values if isinstance(values, list) else [values])
    return {
        test: {
            variable: values[0] if len(values) == 1 else values for variable, values in sorted(grouped[test].items())
        }
        for test in sorted(grouped)
    }


def _statement(raw: Mapping[str, Any], version: str) -> JsonDict:
    """One statement, keys in the provider's struct order."""
    out: JsonDict = {}
    sid = raw.get("sid") or ""
    if not _SID.match(sid):
        raise UnsupportedError(f"statement sid {sid!r} must only include alphanumeric characters")
    if sid:
        out["Sid"] = sid
    effect = raw.get("effect") or "Allow"
    if effect not in ("Allow", "Deny"):
        raise UnsupportedError(f"statement effect must be Allow or Deny, not {effect!r}")
    out["Effect"] = effect
    for key, wire, has_vars in (
        ("actions", "Action", False),
        ("notActions", "NotAction", False),
        ("resources", "Resource", True),
        ("notResources", "NotResource", True),
    ):
        if raw.get(key):
            values = _string_set(raw[key])
            out[wire] = _replace_vars(values, version) if has_vars else values
    for key, wire in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
        if raw.get(key):
            out[wire] = _principals(raw[key], version)
    if raw.get("conditions"):
        out["Condition"] = _conditions(raw["conditions"], version)
    return out


def policy_document(args: Mapping[str, Any]) -> JsonDict:
    """The result of `aws:iam/getPolicyDocument:getPolicyDocument` for `args` (wire names)."""
    for unsupported in ("sourcePolicyDocuments", "overridePolicyDocuments", "sourceJson", "overrideJson"):
        if args.get(unsupported):
            raise UnsupportedError(f"getPolicyDocument: {unsupported} is not implemented offline")
    version = args.get("version") or "2012-10-17"
    if version not in _POLICY_VERSIONS:
        raise UnsupportedError(f"getPolicyDocument: version must be one of {_POLICY_VERSIONS}")
    statements = list(args.get("statements") or [])
    sids = [s.get("sid") for s in statements if s.get("sid")]
    duplicates = sorted({sid for sid in sids if sids.count(sid) > 1})
    if duplicates:
        raise UnsupportedError(f"writing IAM Policy Document: duplicate Sid ({duplicates[0]})")
    doc: JsonDict = {"Version": version}
    if args.get("policyId"):
        doc["Id"] = args["policyId"]
    if statements:
        doc["Statement"] = [_statement(s, version) for s in statements]
    pretty = go_json(doc, indent=True)
    return {
        "id": str(zlib.crc32(pretty.encode())),
        "json": pretty,
        "minifiedJson": go_json(doc),
        "policyId": args.get("policyId"),
        "statements": statements,
        "version": version,
    }


# --------------------------------------------------------------------------------------------
# Translation helpers between Pulumi wire shapes and boto3.


def _filters(raw: Sequence[Mapping[str, Any]] | None) -> list[JsonDict]:
    """Pulumi `filters` ([{name, values}]) as EC2 `Filters`."""
    return [{"Name": f["name"], "Values": [str(v) for v in f["values"]]} for f in raw or []]


def _attribute_filters(args: Mapping[str, Any], names: Mapping[str, str]) -> list[JsonDict]:
    """EC2 filters for the plain arguments that are set (`BuildAttributeFilterList`)."""
    filters = []
    for arg, name in names.items():
        value = args.get(arg)
        if value is not None and value != "":
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            filters.append({"Name": name, "Values": [text]})
    return filters


def _tag_filters(tags: Mapping[str, str] | None) -> list[JsonDict]:
    """EC2 `tag:<key>` filters for a tags map (`BuildTagFilterList`)."""
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted((tags or {}).items())]


def _tags(items: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    """EC2 `Tags` ([{Key, Value}]) as a map."""
    return {t["Key"]: t["Value"] for t in items or []}


def _aws_tags(tags: Mapping[str, str] | None) -> list[JsonDict]:
    """A tags map as EC2 `Tags`, in key order."""
    return [{"Key": k, "Value": str(v)} for k, v in sorted((tags or {}).items())]


_ROUTE_TARGETS = {
    "gatewayId": "GatewayId",
    "natGatewayId": "NatGatewayId",
    "transitGatewayId": "TransitGatewayId",
    "vpcEndpointId": "VpcEndpointId",
    "networkInterfaceId": "NetworkInterfaceId",
    "vpcPeeringConnectionId": "VpcPeeringConnectionId",
    "egressOnlyGatewayId": "EgressOnlyInternetGatewayId",
    "carrierGatewayId": "CarrierGatewayId",
    "localGatewayId": "LocalGatewayId",
    "coreNetworkArn": "CoreNetworkArn",
}
"""Route target arguments (`aws.ec2.Route`, `aws.ec2.RouteTable.routes`) and their EC2 names."""

_ROUTE_RESULT_FIELDS = (
    "carrierGatewayId",
    "cidrBlock",
    "coreNetworkArn",
    "destinationPrefixListId",
    "egressOnlyGatewayId",
    "gatewayId",
    "instanceId",
    "ipv6CidrBlock",
    "localGatewayId",
    "natGatewayId",
    "networkInterfaceId",
    "transitGatewayId",
    "vpcEndpointId",
    "vpcPeeringConnectionId",
)
"""Fields of a `getRouteTable` route; the provider reports unset ones as empty strings."""


def _route_target(args: Mapping[str, Any]) -> JsonDict:
    """The EC2 target arguments of a route given in Pulumi wire names."""
    return {ec2: args[wire] for wire, ec2 in _ROUTE_TARGETS.items() if args.get(wire)}


def _route_result(route: Mapping[str, Any]) -> JsonDict:
    """An EC2 route as a `getRouteTable` route (`dataSourceRoutesRead`)."""
    found: JsonDict = {
        "cidrBlock": route.get("DestinationCidrBlock"),
        "ipv6CidrBlock": route.get("DestinationIpv6CidrBlock"),
        "destinationPrefixListId": route.get("DestinationPrefixListId"),
        "carrierGatewayId": route.get("CarrierGatewayId"),
        "coreNetworkArn": route.get("CoreNetworkArn"),
        "egressOnlyGatewayId": route.get("EgressOnlyInternetGatewayId"),
        "natGatewayId": route.get("NatGatewayId"),
        "localGatewayId": route.get("LocalGatewayId"),
        "instanceId": route.get("InstanceId"),
        "transitGatewayId": route.get("TransitGatewayId"),
        "vpcPeeringConnectionId": route.get("VpcPeeringConnectionId"),
        "networkInterfaceId": route.get("NetworkInterfaceId"),
    }
    gateway = route.get("GatewayId") or ""
    found["vpcEndpointId" if gateway.startswith("vpce-") else "gatewayId"] = gateway or None
    return {field: found.get(field) or "" for field in _ROUTE_RESULT_FIELDS}


def _listed(items: Sequence[Mapping[str, Any]] | None, **fields: Callable[[Mapping[str, Any]], Any]) -> list[JsonDict]:
    """Each item of an EC2 list mapped to a dict by the given field extractors."""
    return [{name: get(item) for name, get in fields.items()} for item in items or []]


def _memory(item: Mapping[str, Any]) -> Any:
    return item.get("MemoryInfo", {}).get("SizeInMiB", 0)


def _instance_type_result(it: Mapping[str, Any]) -> JsonDict:
    """An EC2 `InstanceTypeInfo` as the `getInstanceType` result (wire names)."""
    proc = it.get("ProcessorInfo", {})
    vcpu = it.get("VCpuInfo", {})
    gpu = it.get("GpuInfo", {})
    net = it.get("NetworkInfo", {})
    ebs = it.get("EbsInfo", {})
    ebs_perf = ebs.get("EbsOptimizedInfo", {})
    storage = it.get("InstanceStorageInfo", {})
    fpga = it.get("FpgaInfo", {})
    inference = it.get("InferenceAcceleratorInfo", {})
    media = it.get("MediaAcceleratorInfo", {})
    neuron = it.get("NeuronInfo", {})
    name = it["InstanceType"]
    accelerator = {
        "count": lambda a: a.get("Count", 0),
        "manufacturer": lambda a: a.get("Manufacturer", ""),
        "memorySize": _memory,
        "name": lambda a: a.get("Name", ""),
    }
    return {
        "id": name,
        "instanceType": name,
        "autoRecoverySupported": it.get("AutoRecoverySupported", False),
        "bareMetal": it.get("BareMetal", False),
        "bootModes": it.get("SupportedBootModes", []),
        "burstablePerformanceSupported": it.get("BurstablePerformanceSupported", False),
        "currentGeneration": it.get("CurrentGeneration", False),
        "dedicatedHostsSupported": it.get("DedicatedHostsSupported", False),
        "defaultCores": vcpu.get("DefaultCores", 0),
        "defaultThreadsPerCore": vcpu.get("DefaultThreadsPerCore", 0),
        "defaultVcpus": vcpu.get("DefaultVCpus", 0),
        "validCores": vcpu.get("ValidCores", []),
        "validThreadsPerCores": vcpu.get("ValidThreadsPerCore", []),
        "freeTierEligible": it.get("FreeTierEligible", False),
        "hibernationSupported": it.get("HibernationSupported", False),
        "hypervisor": it.get("Hypervisor", ""),
        "memorySize": it.get("MemoryInfo", {}).get("SizeInMiB", 0),
        "supportedArchitectures": proc.get("SupportedArchitectures", []),
        "supportedCpuFeatures": proc.get("SupportedFeatures", []),
        "sustainedClockSpeed": proc.get("SustainedClockSpeedInGhz", 0),
        "supportedPlacementStrategies": it.get("PlacementGroupInfo", {}).get("SupportedStrategies", []),
        "supportedRootDeviceTypes": it.get("SupportedRootDeviceTypes", []),
        "supportedUsagesClasses": it.get("SupportedUsageClasses", []),
        "supportedVirtualizationTypes": it.get("SupportedVirtualizationTypes", []),
        "gpuses": _listed(gpu.get("Gpus"), **accelerator),
        "totalGpuMemory": gpu.get("TotalGpuMemoryInMiB", 0),
        "fpgas": _listed(fpga.get("Fpgas"), **accelerator),
        "totalFpgaMemory": fpga.get("TotalFpgaMemoryInMiB", 0),
        "inferenceAccelerators": _listed(inference.get("Accelerators"), **accelerator),
        "totalInferenceMemory": inference.get("TotalInferenceMemoryInMiB", 0),
        "mediaAccelerators": _listed(media.get("Accelerators"), **accelerator),
        "totalMediaMemory": media.get("TotalMediaMemoryInMiB", 0),
        "neuronDevices": _listed(
            neuron.get("NeuronDevices"),
            count=lambda d: d.get("Count", 0),
            name=lambda d: d.get("Name", ""),
            memorySize=_memory,
            coreCount=lambda d: d.get("CoreInfo", {}).get("Count", 0),
            coreVersion=lambda d: d.get("CoreInfo", {}).get("Version", 0),
        ),
        "totalNeuronDeviceMemory": neuron.get("TotalNeuronDeviceMemoryInMiB", 0),
        "instanceStorageSupported": it.get("InstanceStorageSupported", False),
        "totalInstanceStorage": storage.get("TotalSizeInGB", 0),
        "instanceDisks": _listed(
            storage.get("Disks"),
            count=lambda d: d.get("Count", 0),
            size=lambda d: d.get("SizeInGB", 0),
            type=lambda d: d.get("Type", ""),
        ),
        "ebsEncryptionSupport": ebs.get("EncryptionSupport", ""),
        "ebsNvmeSupport": ebs.get("NvmeSupport", ""),
        "ebsOptimizedSupport": ebs.get("EbsOptimizedSupport", ""),
        "ebsPerformanceBaselineBandwidth": ebs_perf.get("BaselineBandwidthInMbps", 0),
        "ebsPerformanceBaselineIops": ebs_perf.get("BaselineIops", 0),
        "ebsPerformanceBaselineThroughput": ebs_perf.get("BaselineThroughputInMBps", 0),
        "ebsPerformanceMaximumBandwidth": ebs_perf.get("MaximumBandwidthInMbps", 0),
        "ebsPerformanceMaximumIops": ebs_perf.get("MaximumIops", 0),
        "ebsPerformanceMaximumThroughput": ebs_perf.get("MaximumThroughputInMBps", 0),
        "efaSupported": net.get("EfaSupported", False),
        "efaMaximumInterfaces": net.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0),
        "enaSupport": net.get("EnaSupport", ""),
        "enaSrdSupported": net.get("EnaSrdSupported", False),
        "encryptionInTransitSupported": net.get("EncryptionInTransitSupported", False),
        "ipv6Supported": net.get("Ipv6Supported", False),
        "maximumIpv4AddressesPerInterface": net.get("Ipv4AddressesPerInterface", 0),
        "maximumIpv6AddressesPerInterface": net.get("Ipv6AddressesPerInterface", 0),
        "maximumNetworkCards": net.get("MaximumNetworkCards", 0),
        "maximumNetworkInterfaces": net.get("MaximumNetworkInterfaces", 0),
        "defaultNetworkCardIndex": net.get("DefaultNetworkCardIndex", 0),
        "networkPerformance": net.get("NetworkPerformance", ""),
        "networkCards": _listed(
            net.get("NetworkCards"),
            index=lambda c: c.get("NetworkCardIndex", 0),
            maximumInterfaces=lambda c: c.get("MaximumNetworkInterfaces", 0),
            performance=lambda c: c.get("NetworkPerformance", ""),
            baselineBandwidth=lambda c: c.get("BaselineBandwidthInGbps", 0),
            peakBandwidth=lambda c: c.get("PeakBandwidthInGbps", 0),
        ),
        "nitroEnclavesSupport": it.get("NitroEnclavesSupport", ""),
        "nitroTpmSupport": it.get("NitroTpmSupport", ""),
        "nitroTpmSupportedVersions": it.get("NitroTpmInfo", {}).get("SupportedVersions", []),
        "phcSupport": it.get("PhcSupport", ""),
    }


# --------------------------------------------------------------------------------------------
# The account.


class ExistingVpc(NamedTuple):
    """A VPC created in the account before the program runs (a bring-your-own VPC)."""

    vpc_id: str
    private_subnet_ids: list[str]
    public_subnet_ids: list[str]


class _Clients(NamedTuple):
    ec2: Any
    sts: Any
    eks: Any
    iam: Any
    sqs: Any


@functools.cache
def _clients(region: str) -> _Clients:
    """boto3 clients for `region`, built once per process: building a client loads the EC2
    service model, which costs more than a whole offline run. Must first be called while moto
    is active, so the clients carry moto's fake credentials."""
    import boto3

    session = boto3.session.Session(region_name=region)
    return _Clients(
        ec2=session.client("ec2"),
        sts=session.client("sts"),
        eks=session.client("eks"),
        iam=session.client("iam"),
        sqs=session.client("sqs"),
    )


Handler = Callable[[Mapping[str, Any]], JsonDict]

DEFAULT_QUOTA_VCPUS = 10_000.0
"""What every EC2 vCPU quota is unless a test sets it: generous, so that a plan of the shipped stacks
is not limited by it (moto has no EC2 quotas to answer with; a real account's are often 0 for G and P)."""

_AMIS_SETTING = "MOTO_EC2_LOAD_DEFAULT_AMIS"


@functools.cache
def _share_service_models() -> None:
    """Let every botocore session share one parsed copy of each file of AWS API data.

    moto makes fresh sessions while it imports and whenever it builds a backend, and each parses
    the models again, if only to list a service's regions (EC2's model: 0.1 s a time, six times a
    run). The files ship with botocore and are only read, so one parsed copy per file serves the
    whole process.
    """
    import botocore.loaders

    for method in ("load_service_model", "load_data"):
        original = getattr(botocore.loaders.Loader, method)
        shared: dict[tuple[Any, ...], Any] = {}

        def load(self: Any, *args: Any, _original: Any = original, _shared: Any = shared, **kwargs: Any) -> Any:
            key = (args, tuple(sorted(kwargs.items())))
            if key not in _shared:
                _shared[key] = _original(self, *args, **kwargs)
            return _shared[key]

        setattr(botocore.loaders.Loader, method, functools.wraps(original)(load))


DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

_AL2023_PARAMETER = re.compile(
    r"^/aws/service/eks/optimized-ami/(?P<k8s>1\.\d+)/amazon-linux-2023/(x86_64|arm64)/(standard|nvidia)"
    r"/recommended/release_version$"
)
_BOTTLEROCKET_PARAMETER = re.compile(
    r"^/aws/service/bottlerocket/aws-k8s-(?P<k8s>1\.\d+)(-nvidia)?(-fips)?/(x86_64|arm64)/latest/image_version$"
)


@functools.cache
def addon_versions() -> JsonDict:
    """The bundled EKS add-on versions per Kubernetes version (``data/eks_addon_versions.json``)."""
    with open(os.path.join(DATA, "eks_addon_versions.json")) as f:
        data: JsonDict = json.load(f)
    return data


@functools.cache
def ami_releases() -> JsonDict:
    """The bundled EKS-optimized AMI releases per family and Kubernetes version (``data/eks_ami_releases.json``)."""
    with open(os.path.join(DATA, "eks_ami_releases.json")) as f:
        data: JsonDict = json.load(f)
    return data


def ami_release_parameter(name: str) -> str | None:
    """The value of the AMI-release SSM parameter ``name`` in the snapshot, or None."""
    for family, pattern in (("al2023", _AL2023_PARAMETER), ("bottlerocket", _BOTTLEROCKET_PARAMETER)):
        match = pattern.match(name)
        if match:
            entry = ami_releases()[family].get(match["k8s"])
            return str(entry["release"]) if entry else None
    return None


class AwsAccount:
    """A fake AWS account in one region: moto's backends, reached through boto3.

    Use it as a context manager (or `start()`/`stop()`): moto is active, and fake credentials
    are in the environment, only while it is running. Each start is a fresh, empty account
    (plus the default VPC every real account has)."""

    def __init__(self, region: str) -> None:
        self.region = region
        """The one region this account answers for."""
        self.partition = partition_for(region)
        """The AWS partition of the region (ARNs, DNS suffix)."""
        self.account_id = ""
        """The 12-digit account id, known once the account is running."""
        self._caller: JsonDict = {}
        self.quotas: dict[str, float] = {}
        """Service Quotas code -> value for `getServiceQuota` (else `DEFAULT_QUOTA_VCPUS`); set by tests."""
        self.quota_error: str | None = None
        """When set, every `getServiceQuota` fails with this message (a deployer without the permission)."""
        self.addon_defaults: dict[str, str] = {}
        """Add-on -> the default version `getAddonVersion` answers for every Kubernetes version, over the
        snapshot's: an account where EKS's default differs; set by tests."""
        self.addons_running: dict[str, str] = {}
        """EKS add-on -> the version it runs at on the stack's cluster (`getAddon`): an existing cluster;
        empty, every `getAddon` finds nothing, as before a first deploy; set by tests."""
        self.addon_read_error: str | None = None
        """When set, every `getAddon` fails with this AWS error (a deployer without `eks:DescribeAddon`),
        as the provider reports it; set by tests."""
        self.offers_like: dict[str, str] = {}
        """Kubernetes version -> a bundled one whose add-on builds `getAddonVersion` answers for it: an
        account where EKS already offers a version the snapshot predates; set by tests."""
        self.cluster_access: dict[str, JsonDict] = {}
        """Existing cluster name -> what DescribeCluster reports beyond moto's model (the cluster security
        group EKS makes, the authentication mode); set by :meth:`create_existing_cluster`."""
        self._mock: Any = None
        self._saved_amis_setting: str | None = None
        self._invokes: dict[str, Handler] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._get_availability_zones,
            "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": self._get_instance_type_offerings,
            "aws:ec2/getInstanceType:getInstanceType": self._get_instance_type,
            "aws:ec2/getSubnets:getSubnets": self._get_subnets,
            "aws:ec2/getSubnet:getSubnet": self._get_subnet,
            "aws:ec2/getRouteTable:getRouteTable": self._get_route_table,
            "aws:ec2/getRouteTables:getRouteTables": self._get_route_tables,
            "aws:index/getPartition:getPartition": self._get_partition,
            "aws:index/getCallerIdentity:getCallerIdentity": self._get_caller_identity,
            "aws:index/getRegion:getRegion": self._get_region,
            "aws:iam/getPolicyDocument:getPolicyDocument": policy_document,
            "aws:servicequotas/getServiceQuota:getServiceQuota": self._get_service_quota,
            "aws:eks/getAddonVersion:getAddonVersion": self._get_addon_version,
            "aws:eks/getAddon:getAddon": self._get_addon,
            "aws:eks/getCluster:getCluster": self._get_cluster,
            "aws:ssm/getParameter:getParameter": self._get_parameter,
            "aws:iam/getRole:getRole": self._get_role,
            "aws:sqs/getQueue:getQueue": self._get_queue,
        }
        self._creators: dict[str, Callable[[Mapping[str, Any]], tuple[str, JsonDict]]] = {
            "aws:ec2/vpc:Vpc": self._create_vpc,
            "aws:ec2/subnet:Subnet": self._create_subnet,
            "aws:ec2/internetGateway:InternetGateway": self._create_internet_gateway,
            "aws:ec2/eip:Eip": self._create_eip,
            "aws:ec2/natGateway:NatGateway": self._create_nat_gateway,
            "aws:ec2/routeTable:RouteTable": self._create_route_table,
            "aws:ec2/route:Route": self._create_route,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": self._create_route_table_association,
        }

    # ---- lifecycle

    @property
    def running(self) -> bool:
        """Whether moto is active for this account."""
        return self._mock is not None

    def start(self) -> None:
        """Activate moto (a fresh account) and learn the account's identity."""
        if self._mock is not None:
            raise RuntimeError("the offline AWS account is already running")
        _share_service_models()
        from moto import mock_aws

        # moto would otherwise load (and draw random ids for) thousands of public AMIs into
        # every fresh account, the bulk of a run's time; no invoke answered here reads AMIs.
        self._saved_amis_setting = os.environ.get(_AMIS_SETTING)
        os.environ[_AMIS_SETTING] = "false"
        self._mock = mock_aws()
        self._mock.start()
        try:
            self._seed("account")
            self._caller = self._call("sts", "get_caller_identity")
            self.account_id = self._caller["Account"]
            # Build the region's EC2 backend (with its default VPC) under a fixed seed, so its
            # ids do not depend on which call happens to come first.
            self._call("ec2", "describe_vpcs")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Deactivate moto; the account's contents are gone."""
        if self._mock is not None:
            mock, self._mock = self._mock, None
            mock.stop()
            if self._saved_amis_setting is None:
                os.environ.pop(_AMIS_SETTING, None)
            else:
                os.environ[_AMIS_SETTING] = self._saved_amis_setting

    def __enter__(self) -> AwsAccount:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- plumbing

    def _seed(self, key: str) -> None:
        """Make moto's next random draws a function of `key` alone."""
        from moto.moto_api._internal import mock_random

        mock_random.seed(f"{self.region}\0{key}")

    def _call(self, service: str, operation: str, **kwargs: Any) -> JsonDict:
        """One AWS API call against moto; AWS errors become `AwsError`."""
        if self._mock is None:
            raise RuntimeError("the offline AWS account is not running")
        client = getattr(_clients(self.region), service)
        try:
            response: JsonDict = getattr(client, operation)(**kwargs)
        except ClientError as exc:
            raise AwsError(str(exc)) from exc
        response.pop("ResponseMetadata", None)
        return response

    def _paginate(self, operation: str, key: str, **kwargs: Any) -> list[JsonDict]:
        """All items under `key` of a paginated EC2 operation."""
        client = _clients(self.region).ec2
        try:
            return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]
        except ClientError as exc:
            raise AwsError(str(exc)) from exc

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """An ARN in this account (`regional=False` for global services such as IAM)."""
        region = self.region if regional else ""
        return f"arn:{self.partition.name}:{service}:{region}:{self.account_id}:{resource}"

    def _check_region(self, args: Mapping[str, Any], token: str) -> None:
        requested = args.get("region")
        if requested and requested != self.region:
            raise UnsupportedError(
                f"{token}: region {requested!r} asked for, but the offline account is in {self.region!r}"
            )

    # ---- invokes

    def invoke(self, token: str, args: Mapping[str, Any]) -> JsonDict:
        """Answer the invoke `token` with `args` (wire names) as pulumi-aws would."""
        handler = self._invokes.get(token)
        if handler is None:
            raise UnsupportedError(f"no offline answer for invoke {token}")
        self._check_region(args, token)
        self._seed(f"invoke\0{token}\0{json.dumps(args, sort_keys=True, default=str)}")
        try:
            return handler(args)
        except AwsError as exc:
            raise AwsError(f"{token}: {exc}") from exc

    def _get_availability_zones(self, args: Mapping[str, Any]) -> JsonDict:
        filters = _filters(args.get("filters"))
        if args.get("state"):
            filters.append({"Name": "state", "Values": [args["state"]]})
        request: JsonDict = {"Filters": filters} if filters else {}
        if args.get("allAvailabilityZones"):
            request["AllAvailabilityZones"] = True
        zones = sorted(
            self._call("ec2", "describe_availability_zones", **request)["AvailabilityZones"],
            key=lambda z: z["ZoneName"],
        )
        excluded_names = set(args.get("excludeNames") or [])
        excluded_ids = set(args.get("excludeZoneIds") or [])
        zones = [z for z in zones if z["ZoneName"] not in excluded_names and z["ZoneId"] not in excluded_ids]
        return {
            "id": self.region,
            "region": self.region,
            "names": [z["ZoneName"] for z in zones],
            "zoneIds": [z["ZoneId"] for z in zones],
            "groupNames": sorted({z["GroupName"] for z in zones if z.get("GroupName")}),
            "state": args.get("state"),
            "filters": args.get("filters"),
            "allAvailabilityZones": args.get("allAvailabilityZones"),
            "excludeNames": args.get("excludeNames"),
            "excludeZoneIds": args.get("excludeZoneIds"),
        }

    def _get_instance_type_offerings(self, args: Mapping[str, Any]) -> JsonDict:
        request: JsonDict = {"Filters": _filters(args.get("filters"))}
        if args.get("locationType"):
            request["LocationType"] = args["locationType"]
        offerings = self._paginate("describe_instance_type_offerings", "InstanceTypeOfferings", **request)
        return {
            "id": self.region,
            "region": self.region,
            "instanceTypes": [o["InstanceType"] for o in offerings],
            "locations": [o["Location"] for o in offerings],
            "locationTypes": [o["LocationType"] for o in offerings],
            "filters": args.get("filters"),
            "locationType": args.get("locationType"),
        }

    def _get_instance_type(self, args: Mapping[str, Any]) -> JsonDict:
        name = args["instanceType"]
        try:
            found = self._call("ec2", "describe_instance_types", InstanceTypes=[name])["InstanceTypes"]
        except AwsError as exc:
            raise AwsError(f"reading EC2 Instance Type ({name}): {exc}") from exc
        if not found:
            raise AwsError(f"reading EC2 Instance Type ({name}): empty result")
        return {**_instance_type_result(found[0]), "region": self.region}

    def _get_subnets(self, args: Mapping[str, Any]) -> JsonDict:
        filters = _tag_filters(args.get("tags")) + _filters(args.get("filters"))
        subnets = self._paginate("describe_subnets", "Subnets", **({"Filters": filters} if filters else {}))
        return {
            "id": self.region,
            "region": self.region,
            "ids": [s["SubnetId"] for s in subnets],
            "filters": args.get("filters"),
            "tags": args.get("tags"),
        }

    def _get_route_tables(self, args: Mapping[str, Any]) -> JsonDict:
        filters = _attribute_filters(args, {"vpcId": "vpc-id"})
        filters += _tag_filters(args.get("tags")) + _filters(args.get("filters"))
        tables = self._paginate("describe_route_tables", "RouteTables", **({"Filters": filters} if filters else {}))
        return {
            "id": self.region,
            "region": self.region,
            "ids": [t["RouteTableId"] for t in tables],
            "vpcId": args.get("vpcId"),
            "filters": args.get("filters"),
            "tags": args.get("tags"),
        }

    def _get_subnet(self, args: Mapping[str, Any]) -> JsonDict:
        filters = _attribute_filters(
            args,
            {
                "availabilityZone": "availability-zone",
                "availabilityZoneId": "availability-zone-id",
                "cidrBlock": "cidr-block",
                "defaultForAz": "default-for-az",
                "ipv6CidrBlock": "ipv6-cidr-block-association.ipv6-cidr-block",
                "state": "state",
                "vpcId": "vpc-id",
            },
        )
        filters += _tag_filters(args.get("tags")) + _filters(args.get("filters"))
        request: JsonDict = {"Filters": filters} if filters else {}
        if args.get("id"):
            request["SubnetIds"] = [args["id"]]
        subnets = self._paginate("describe_subnets", "Subnets", **request)
        if not subnets:
            raise AwsError("no matching EC2 Subnet found")
        if len(subnets) > 1:
            raise AwsError(
                "multiple EC2 Subnets matched; use additional constraints to reduce matches to a single EC2 Subnet"
            )
        return {**self._subnet_result(subnets[0]), "filters": args.get("filters")}

    def _subnet_result(self, subnet: Mapping[str, Any]) -> JsonDict:
        """An EC2 subnet as the `getSubnet` result (wire names)."""
        ipv6: Mapping[str, Any] = next(iter(subnet.get("Ipv6CidrBlockAssociationSet") or []), {})
        dns = subnet.get("PrivateDnsNameOptionsOnLaunch", {})
        return {
            "id": subnet["SubnetId"],
            "region": self.region,
            "arn": subnet.get("SubnetArn") or self.arn("ec2", f"subnet/{subnet['SubnetId']}"),
            "assignIpv6AddressOnCreation": subnet.get("AssignIpv6AddressOnCreation", False),
            "availabilityZone": subnet["AvailabilityZone"],
            "availabilityZoneId": subnet["AvailabilityZoneId"],
            "availableIpAddressCount": subnet.get("AvailableIpAddressCount", 0),
            "cidrBlock": subnet["CidrBlock"],
            "customerOwnedIpv4Pool": subnet.get("CustomerOwnedIpv4Pool", ""),
            "defaultForAz": subnet.get("DefaultForAz", False),
            "enableDns64": subnet.get("EnableDns64", False),
            "enableLniAtDeviceIndex": subnet.get("EnableLniAtDeviceIndex", 0),
            "enableResourceNameDnsARecordOnLaunch": dns.get("EnableResourceNameDnsARecord", False),
            "enableResourceNameDnsAaaaRecordOnLaunch": dns.get("EnableResourceNameDnsAAAARecord", False),
            "ipv6CidrBlock": ipv6.get("Ipv6CidrBlock", ""),
            "ipv6CidrBlockAssociationId": ipv6.get("AssociationId", ""),
            "ipv6Native": subnet.get("Ipv6Native", False),
            "mapCustomerOwnedIpOnLaunch": subnet.get("MapCustomerOwnedIpOnLaunch", False),
            "mapPublicIpOnLaunch": subnet.get("MapPublicIpOnLaunch", False),
            "outpostArn": subnet.get("OutpostArn", ""),
            "ownerId": subnet.get("OwnerId", self.account_id),
            "privateDnsHostnameTypeOnLaunch": dns.get("HostnameType", ""),
            "state": subnet.get("State", ""),
            "tags": _tags(subnet.get("Tags")),
            "vpcId": subnet["VpcId"],
        }

    def _get_route_table(self, args: Mapping[str, Any]) -> JsonDict:
        # Like the provider, this matches explicit associations only: a subnet that relies on
        # its VPC's main route table has no route table of its own, and the query fails.
        keys = ("routeTableId", "vpcId", "subnetId", "gatewayId", "filters", "tags")
        if not any(args.get(k) for k in keys):
            raise AwsError("one of route_table_id, vpc_id, subnet_id, gateway_id, filters, or tags must be assigned")
        filters = _attribute_filters(
            args,
            {
                "routeTableId": "route-table-id",
                "vpcId": "vpc-id",
                "subnetId": "association.subnet-id",
                "gatewayId": "association.gateway-id",
            },
        )
        filters += _tag_filters(args.get("tags")) + _filters(args.get("filters"))
        tables = self._paginate("describe_route_tables", "RouteTables", Filters=filters)
        if not tables:
            raise AwsError("query returned no results. Please change your search criteria and try again")
        if len(tables) > 1:
            raise AwsError(
                "multiple Route Tables matched; use additional constraints to reduce matches to a single Route Table"
            )
        table = tables[0]
        owner = table.get("OwnerId", self.account_id)
        routes = [
            r
            for r in table.get("Routes", [])
            if r.get("GatewayId") != "local"
            and r.get("Origin") != "EnableVgwRoutePropagation"
            and not (r.get("DestinationPrefixListId") and (r.get("GatewayId") or "").startswith("vpce-"))
        ]
        return {
            "id": table["RouteTableId"],
            "region": self.region,
            "arn": f"arn:{self.partition.name}:ec2:{self.region}:{owner}:route-table/{table['RouteTableId']}",
            "ownerId": owner,
            "routeTableId": table["RouteTableId"],
            "vpcId": table["VpcId"],
            "subnetId": args.get("subnetId") or "",
            "gatewayId": args.get("gatewayId") or "",
            "tags": _tags(table.get("Tags")),
            "filters": args.get("filters"),
            "routes": [_route_result(r) for r in routes],
            "associations": [
                {
                    "routeTableId": a.get("RouteTableId", ""),
                    "routeTableAssociationId": a.get("RouteTableAssociationId", ""),
                    "subnetId": a.get("SubnetId", ""),
                    "gatewayId": a.get("GatewayId", ""),
                    "main": a.get("Main", False),
                }
                for a in table.get("Associations", [])
            ],
        }

    def _get_partition(self, args: Mapping[str, Any]) -> JsonDict:
        p = self.partition
        return {"id": p.name, "partition": p.name, "dnsSuffix": p.dns_suffix, "reverseDnsPrefix": p.reverse_dns_prefix}

    def _get_caller_identity(self, args: Mapping[str, Any]) -> JsonDict:
        return {
            "id": self.account_id,
            "accountId": self.account_id,
            "arn": self._caller["Arn"],
            "userId": self._caller["UserId"],
        }

    def _get_service_quota(self, args: Mapping[str, Any]) -> JsonDict:
        if self.quota_error is not None:
            raise AwsError(self.quota_error)
        service, code = args["serviceCode"], args.get("quotaCode")
        if service != "ec2" or not code:
            raise UnsupportedError(f"getServiceQuota: only ec2 quotas by code are answered offline, not {dict(args)}")
        value = self.quotas.get(code, DEFAULT_QUOTA_VCPUS)
        return {
            "id": f"{service}/{code}",
            "arn": self.arn("servicequotas", f"{service}/{code}"),
            "adjustable": True,
            "defaultValue": value,
            "globalQuota": False,
            "quotaCode": code,
            "quotaName": code,
            "serviceCode": service,
            "serviceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "usageMetrics": [],
            "value": value,
        }

    def _get_addon_version(self, args: Mapping[str, Any]) -> JsonDict:
        """EKS's default (or, with ``mostRecent``, newest) version of an add-on for a Kubernetes
        version, from the bundled snapshot (``data/eks_addon_versions.json``)."""
        name, kubernetes = str(args["addonName"]), str(args["kubernetesVersion"])
        most_recent = bool(args.get("mostRecent"))
        entry = addon_versions()["addons"].get(name, {}).get(self.offers_like.get(kubernetes, kubernetes))
        if entry is None:
            # DescribeAddonVersions answers an empty list; the provider then fails like this.
            raise AwsError(f"reading EKS Add-On version info ({name}, {kubernetes}): empty result")
        return {
            "id": name,
            "addonName": name,
            "kubernetesVersion": kubernetes,
            "mostRecent": most_recent,
            "version": entry["latest"] if most_recent else self.addon_defaults.get(name, entry["default"]),
            "region": self.region,
        }

    def _get_addon(self, args: Mapping[str, Any]) -> JsonDict:
        """An add-on of an existing cluster (DescribeAddon), from :attr:`addons_running`. A missing one fails
        as the provider says it (terraform-provider-aws ``internal/service/eks/addon.go``: DescribeAddon's
        ResourceNotFoundException becomes ``retry.NotFoundError``, "couldn't find resource"); with
        :attr:`addon_read_error` every read fails with that error instead."""
        name, cluster = str(args["addonName"]), str(args["clusterName"])
        if self.addon_read_error is not None:
            raise AwsError(f"reading EKS Add-On ({cluster}:{name}): {self.addon_read_error}")
        version = self.addons_running.get(name)
        if version is None:
            raise AwsError(f"reading EKS Add-On ({cluster}:{name}): couldn't find resource")
        return {"id": f"{cluster}:{name}", "addonName": name, "clusterName": cluster, "addonVersion": version}

    def _get_queue(self, args: Mapping[str, Any]) -> JsonDict:
        """An SQS queue of the account by name (moto's SQS backend), as pulumi-aws's ``getQueue`` reports it:
        GetQueueUrl, the ARN from GetQueueAttributes, ListQueueTags (terraform-provider-aws
        ``internal/service/sqs/queue_data_source.go``); a missing queue fails with GetQueueUrl's error."""
        name = str(args["name"])
        url = self._call("sqs", "get_queue_url", QueueName=name)["QueueUrl"]
        arn = self._call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        tags = self._call("sqs", "list_queue_tags", QueueUrl=url).get("Tags", {})
        return {"id": url, "name": name, "url": url, "arn": arn["QueueArn"], "tags": dict(tags)}

    def _get_role(self, args: Mapping[str, Any]) -> JsonDict:
        """An IAM role of the account (GetRole, moto's IAM backend), as pulumi-aws's ``getRole`` reports it. A
        missing one fails as the provider says it (terraform-provider-aws ``internal/service/iam/role.go``
        ``findRoleByName``: GetRole's NoSuchEntity becomes ``retry.NotFoundError``, "couldn't find resource").
        A fresh account has no service-linked role: create one with :meth:`create_service_linked_role`."""
        name = str(args["name"])
        try:
            role = self._call("iam", "get_role", RoleName=name)["Role"]
        except AwsError as exc:
            if "NoSuchEntity" in str(exc):
                raise AwsError(f"reading IAM Role ({name}): couldn't find resource") from exc
            raise
        return {
            "id": name,
            "name": name,
            "arn": role["Arn"],
            "path": role["Path"],
            "uniqueId": role["RoleId"],
            "assumeRolePolicy": json.dumps(role.get("AssumeRolePolicyDocument", {})),
            "createDate": str(role.get("CreateDate", "")),
            "description": role.get("Description", ""),
            "maxSessionDuration": role.get("MaxSessionDuration", 3600),
            "permissionsBoundary": "",
            "roleLastUseds": [],
            "tags": {t["Key"]: t["Value"] for t in role.get("Tags", [])},
        }

    def create_spot_service_linked_role(self) -> str:
        """Create ``AWSServiceRoleForEC2Spot`` in the account, as ``aws iam create-service-linked-role
        --aws-service-name spot.amazonaws.com`` does (path ``/aws-service-role/spot.amazonaws.com/``, trust
        ``spot.amazonaws.com``: EC2 User Guide, "Service-linked role for Spot Instance requests"); its ARN.
        Made with CreateRole: moto's CreateServiceLinkedRole knows no name for this service
        ("AWSServiceRoleForspot")."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "spot.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = self._call(
            "iam",
            "create_role",
            RoleName="AWSServiceRoleForEC2Spot",
            Path="/aws-service-role/spot.amazonaws.com/",
            AssumeRolePolicyDocument=json.dumps(trust),
        )["Role"]
        return str(role["Arn"])

    def _get_cluster(self, args: Mapping[str, Any]) -> JsonDict:
        """An EKS cluster of the account (DescribeCluster, moto's EKS backend), as pulumi-aws's
        ``getCluster`` reports it; an unknown name fails with AWS's ResourceNotFoundException. The VPC is
        the one of the cluster's subnets (EKS reports it; moto keeps only what CreateCluster was sent)."""
        name = str(args["name"])
        cluster = self._call("eks", "describe_cluster", name=name)["cluster"]
        extra = self.cluster_access.get(name, {})
        sent = cluster.get("resourcesVpcConfig") or {}
        subnets = list(sent.get("subnetIds") or [])
        vpc_id = (self.subnet_vpc_id(subnets[0]) if subnets else None) or ""
        return {
            "id": name,
            "name": name,
            "arn": cluster["arn"],
            "version": cluster["version"],
            "status": cluster["status"],
            "endpoint": cluster["endpoint"],
            "roleArn": cluster["roleArn"],
            "platformVersion": cluster.get("platformVersion", ""),
            "createdAt": str(cluster.get("createdAt", "")),
            "certificateAuthorities": [{"data": cluster["certificateAuthority"]["data"]}],
            "identities": [{"oidcs": [{"issuer": cluster["identity"]["oidc"]["issuer"]}]}],
            "accessConfigs": [
                {
                    "authenticationMode": extra.get("authenticationMode", "CONFIG_MAP"),
                    "bootstrapClusterCreatorAdminPermissions": True,
                }
            ],
            "vpcConfig": {
                "vpcId": vpc_id,
                "subnetIds": subnets,
                "securityGroupIds": list(sent.get("securityGroupIds") or []),
                "clusterSecurityGroupId": extra.get("clusterSecurityGroupId", ""),
                "endpointPrivateAccess": bool(sent.get("endpointPrivateAccess", False)),
                "endpointPublicAccess": bool(sent.get("endpointPublicAccess", True)),
                "publicAccessCidrs": list(sent.get("publicAccessCidrs") or ["0.0.0.0/0"]),
            },
            "tags": dict(cluster.get("tags") or {}),
            "region": self.region,
        }

    def _get_parameter(self, args: Mapping[str, Any]) -> JsonDict:
        """The SSM parameters AWS publishes for the EKS-optimized AMIs' latest release, from the
        bundled snapshot (``data/eks_ami_releases.json``); any other name is ParameterNotFound."""
        name = str(args["name"])
        value = ami_release_parameter(name)
        if value is None:
            raise AwsError(f"reading SSM Parameter ({name}): ParameterNotFound (none in the offline snapshot)")
        return {
            "id": name,
            "arn": f"arn:{self.partition.name}:ssm:{self.region}::parameter{name}",
            "name": name,
            "type": "String",
            "value": value,
            "insecureValue": value,
            "version": 1,
            "withDecryption": args.get("withDecryption"),
            "region": self.region,
        }

    def _get_region(self, args: Mapping[str, Any]) -> JsonDict:
        for key in ("name", "id"):
            if args.get(key) and args[key] != self.region:
                raise UnsupportedError(f"getRegion: {key} {args[key]!r} is not the account's region {self.region!r}")
        return {
            "id": self.region,
            "name": self.region,
            "region": self.region,
            "description": self.partition.region_description,
            "endpoint": self.partition.hostname("ec2", self.region),
        }

    # ---- resources

    def creates(self, type_token: str) -> bool:
        """Whether resources of `type_token` are created in the account (moto ids, moto checks)."""
        return type_token in self._creators

    def create(self, type_token: str, urn: str, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        """Create the resource `urn` of `type_token` from its inputs (wire names, secrets
        unwrapped); return its id and the outputs the provider computes."""
        self._check_region(inputs, type_token)
        self._seed(f"resource\0{urn}")
        try:
            return self._creators[type_token](inputs)
        except AwsError as exc:
            raise AwsError(f"creating {urn}: {exc}") from exc

    def _tag(self, resource_id: str, tags: Mapping[str, str] | None) -> None:
        if tags:
            self._call("ec2", "create_tags", Resources=[resource_id], Tags=_aws_tags(tags))

    def _create_vpc(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        if not inputs.get("cidrBlock"):
            raise UnsupportedError("aws:ec2/vpc:Vpc without cidrBlock (IPAM pools) is not implemented offline")
        request: JsonDict = {"CidrBlock": inputs["cidrBlock"]}
        if inputs.get("instanceTenancy"):
            request["InstanceTenancy"] = inputs["instanceTenancy"]
        vpc = self._call("ec2", "create_vpc", **request)["Vpc"]
        vpc_id = vpc["VpcId"]
        dns_support = inputs.get("enableDnsSupport", True)
        dns_hostnames = inputs.get("enableDnsHostnames", False)
        if not dns_support:
            self._call("ec2", "modify_vpc_attribute", VpcId=vpc_id, EnableDnsSupport={"Value": False})
        if dns_hostnames:
            self._call("ec2", "modify_vpc_attribute", VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        self._tag(vpc_id, inputs.get("tags"))
        in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
        main = self._call(
            "ec2", "describe_route_tables", Filters=[*in_vpc, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        group = self._call(
            "ec2", "describe_security_groups", Filters=[*in_vpc, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        acl = self._call("ec2", "describe_network_acls", Filters=[*in_vpc, {"Name": "default", "Values": ["true"]}])[
            "NetworkAcls"
        ][0]["NetworkAclId"]
        return vpc_id, {
            "arn": self.arn("ec2", f"vpc/{vpc_id}"),
            "cidrBlock": vpc["CidrBlock"],
            "defaultNetworkAclId": acl,
            "defaultRouteTableId": main,
            "defaultSecurityGroupId": group,
            "dhcpOptionsId": vpc.get("DhcpOptionsId", ""),
            "enableDnsHostnames": dns_hostnames,
            "enableDnsSupport": dns_support,
            "instanceTenancy": vpc.get("InstanceTenancy", "default"),
            "mainRouteTableId": main,
            "ownerId": vpc.get("OwnerId", self.account_id),
        }

    def _create_subnet(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        request: JsonDict = {"VpcId": inputs["vpcId"], "CidrBlock": inputs["cidrBlock"]}
        if inputs.get("availabilityZone"):
            request["AvailabilityZone"] = inputs["availabilityZone"]
        elif inputs.get("availabilityZoneId"):
            request["AvailabilityZoneId"] = inputs["availabilityZoneId"]
        subnet = self._call("ec2", "create_subnet", **request)["Subnet"]
        subnet_id = subnet["SubnetId"]
        if inputs.get("mapPublicIpOnLaunch"):
            self._call("ec2", "modify_subnet_attribute", SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
        self._tag(subnet_id, inputs.get("tags"))
        return subnet_id, {
            "arn": subnet.get("SubnetArn") or self.arn("ec2", f"subnet/{subnet_id}"),
            "availabilityZone": subnet["AvailabilityZone"],
            "availabilityZoneId": subnet["AvailabilityZoneId"],
            "cidrBlock": subnet["CidrBlock"],
            "mapPublicIpOnLaunch": bool(inputs.get("mapPublicIpOnLaunch", False)),
            "ownerId": subnet.get("OwnerId", self.account_id),
            "vpcId": subnet["VpcId"],
        }

    def _create_internet_gateway(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        gateway_id = self._call("ec2", "create_internet_gateway")["InternetGateway"]["InternetGatewayId"]
        if inputs.get("vpcId"):
            self._call("ec2", "attach_internet_gateway", InternetGatewayId=gateway_id, VpcId=inputs["vpcId"])
        self._tag(gateway_id, inputs.get("tags"))
        return gateway_id, {
            "arn": self.arn("ec2", f"internet-gateway/{gateway_id}"),
            "ownerId": self.account_id,
        }

    def _create_eip(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        domain = inputs.get("domain") or "vpc"
        if domain != "vpc":
            raise UnsupportedError(f"aws:ec2/eip:Eip with domain {domain!r} is not implemented offline")
        address = self._call("ec2", "allocate_address", Domain="vpc")
        allocation_id = address["AllocationId"]
        self._tag(allocation_id, inputs.get("tags"))
        return allocation_id, {
            "allocationId": allocation_id,
            "arn": self.arn("ec2", f"elastic-ip/{allocation_id}"),
            "domain": "vpc",
            "publicIp": address["PublicIp"],
        }

    def _create_nat_gateway(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        if not inputs.get("subnetId"):
            raise UnsupportedError("aws:ec2/natGateway:NatGateway without subnetId is not implemented offline")
        connectivity = inputs.get("connectivityType") or "public"
        request: JsonDict = {"SubnetId": inputs["subnetId"], "ConnectivityType": connectivity}
        if inputs.get("allocationId"):
            request["AllocationId"] = inputs["allocationId"]
        nat = self._call("ec2", "create_nat_gateway", **request)["NatGateway"]
        nat_id = nat["NatGatewayId"]
        self._tag(nat_id, inputs.get("tags"))
        address: Mapping[str, Any] = next(iter(nat.get("NatGatewayAddresses") or []), {})
        return nat_id, {
            "allocationId": address.get("AllocationId", ""),
            "associationId": address.get("AssociationId", ""),
            "connectivityType": connectivity,
            "networkInterfaceId": address.get("NetworkInterfaceId", ""),
            "privateIp": address.get("PrivateIp", ""),
            "publicIp": address.get("PublicIp", ""),
            "subnetId": nat["SubnetId"],
        }

    def _create_route_table(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        table_id = self._call("ec2", "create_route_table", VpcId=inputs["vpcId"])["RouteTable"]["RouteTableId"]
        for route in inputs.get("routes") or []:
            destination = {
                ec2: route[wire]
                for wire, ec2 in (
                    ("cidrBlock", "DestinationCidrBlock"),
                    ("ipv6CidrBlock", "DestinationIpv6CidrBlock"),
                    ("destinationPrefixListId", "DestinationPrefixListId"),
                )
                if route.get(wire)
            }
            self._call("ec2", "create_route", RouteTableId=table_id, **destination, **_route_target(route))
        self._tag(table_id, inputs.get("tags"))
        return table_id, {
            "arn": self.arn("ec2", f"route-table/{table_id}"),
            "ownerId": self.account_id,
            "propagatingVgws": inputs.get("propagatingVgws") or [],
            "routes": inputs.get("routes") or [],
        }

    def _create_route(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        destination = {
            ec2: inputs[wire]
            for wire, ec2 in (
                ("destinationCidrBlock", "DestinationCidrBlock"),
                ("destinationIpv6CidrBlock", "DestinationIpv6CidrBlock"),
                ("destinationPrefixListId", "DestinationPrefixListId"),
            )
            if inputs.get(wire)
        }
        if len(destination) != 1:
            raise AwsError(
                "exactly one of destination_cidr_block, destination_ipv6_cidr_block, "
                "destination_prefix_list_id must be set"
            )
        table_id = inputs["routeTableId"]
        self._call("ec2", "create_route", RouteTableId=table_id, **destination, **_route_target(inputs))
        # The provider's id: "r-" + table id + hash code of the destination (RouteCreateID).
        (target,) = destination.values()
        return f"r-{table_id}{zlib.crc32(str(target).encode())}", {"origin": "CreateRoute", "state": "active"}

    def _create_route_table_association(self, inputs: Mapping[str, Any]) -> tuple[str, JsonDict]:
        request: JsonDict = {"RouteTableId": inputs["routeTableId"]}
        for wire, ec2 in (("subnetId", "SubnetId"), ("gatewayId", "GatewayId")):
            if inputs.get(wire):
                request[ec2] = inputs[wire]
        association = self._call("ec2", "associate_route_table", **request)
        return association["AssociationId"], {}

    # ---- helpers for tests

    def create_existing_vpc(
        self,
        cidr: str,
        subnets: Sequence[tuple[str, str, bool]],
        *,
        egress: bool = True,
        role_tags: bool = True,
    ) -> ExistingVpc:
        """Create a bring-your-own VPC in the account, as someone else's stack would have.

        `subnets` are `(cidr, availability zone, public)`. Public subnets get an internet
        gateway route and public IPs on launch; with `egress`, a NAT gateway in the first public
        subnet and a route table sending private subnets' 0.0.0.0/0 to it. `role_tags` adds the
        `kubernetes.io/role/elb` / `kubernetes.io/role/internal-elb` subnet tags load balancers
        are discovered by. Every subnet is explicitly associated with a route table."""
        self._seed(f"existing-vpc\0{cidr}\0{json.dumps(list(subnets))}")
        vpc_id = self._call("ec2", "create_vpc", CidrBlock=cidr)["Vpc"]["VpcId"]
        self._call("ec2", "modify_vpc_attribute", VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        private: list[str] = []
        public: list[str] = []
        for subnet_cidr, zone, is_public in subnets:
            subnet_id = self._call("ec2", "create_subnet", VpcId=vpc_id, CidrBlock=subnet_cidr, AvailabilityZone=zone)[
                "Subnet"
            ]["SubnetId"]
            if is_public:
                self._call("ec2", "modify_subnet_attribute", SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
            if role_tags:
                role = "kubernetes.io/role/elb" if is_public else "kubernetes.io/role/internal-elb"
                self._tag(subnet_id, {role: "1"})
            (public if is_public else private).append(subnet_id)
        if public:
            gateway_id = self._call("ec2", "create_internet_gateway")["InternetGateway"]["InternetGatewayId"]
            self._call("ec2", "attach_internet_gateway", InternetGatewayId=gateway_id, VpcId=vpc_id)
            public_table = self._call("ec2", "create_route_table", VpcId=vpc_id)["RouteTable"]["RouteTableId"]
            self._call(
                "ec2", "create_route", RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway_id
            )
            for subnet_id in public:
                self._call("ec2", "associate_route_table", RouteTableId=public_table, SubnetId=subnet_id)
        if private:
            private_table = self._call("ec2", "create_route_table", VpcId=vpc_id)["RouteTable"]["RouteTableId"]
            if egress:
                if not public:
                    raise ValueError("a NAT gateway for the private subnets needs a public subnet")
                allocation = self._call("ec2", "allocate_address", Domain="vpc")["AllocationId"]
                nat_id = self._call("ec2", "create_nat_gateway", SubnetId=public[0], AllocationId=allocation)[
                    "NatGateway"
                ]["NatGatewayId"]
                self._call(
                    "ec2",
                    "create_route",
                    RouteTableId=private_table,
                    DestinationCidrBlock="0.0.0.0/0",
                    NatGatewayId=nat_id,
                )
            for subnet_id in private:
                self._call("ec2", "associate_route_table", RouteTableId=private_table, SubnetId=subnet_id)
        return ExistingVpc(vpc_id, private, public)

    def create_existing_cluster(
        self,
        name: str,
        subnet_ids: Sequence[str],
        *,
        version: str,
        authentication_mode: str = "API_AND_CONFIG_MAP",
        addons: Mapping[str, str] | None = None,
    ) -> str:
        """Create EKS cluster `name` in the account, as its owner's stack would have: its role, the
        cluster in `subnet_ids` (moto's EKS backend), the cluster security group EKS makes in their
        VPC, its `authentication_mode`, and the EKS `addons` (name -> version) it runs. Returns its ARN."""
        self._seed(f"existing-cluster\0{name}")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = self._call("iam", "create_role", RoleName=f"{name}-cluster", AssumeRolePolicyDocument=json.dumps(trust))
        vpc_id = self.subnet_vpc_id(subnet_ids[0])
        group = self._call(
            "ec2",
            "create_security_group",
            GroupName=f"eks-cluster-sg-{name}",
            VpcId=vpc_id,
            Description="EKS created security group applied to ENI that is attached to EKS Control Plane master "
            "nodes, as well as any managed workloads.",
        )
        cluster = self._call(
            "eks",
            "create_cluster",
            name=name,
            version=version,
            roleArn=role["Role"]["Arn"],
            resourcesVpcConfig={"subnetIds": list(subnet_ids), "endpointPublicAccess": True},
        )["cluster"]
        self.cluster_access[name] = {
            "clusterSecurityGroupId": group["GroupId"],
            "authenticationMode": authentication_mode,
        }
        self.addons_running.update(addons or {})
        return str(cluster["arn"])

    def sign_in_as_role(self, role_name: str, session_name: str = "deployer") -> str:
        """Create IAM role `role_name` in the account, assume it, and answer later
        `getCallerIdentity` invokes as that session (as a CI runner or SSO user is seen).
        Returns the session's ARN as STS reports it."""
        import boto3

        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": self._caller["Arn"]}, "Action": "sts:AssumeRole"}],
        }
        session = boto3.session.Session(region_name=self.region)
        role = session.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        creds = session.client("sts").assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName=session_name)
        assumed = boto3.session.Session(
            region_name=self.region,
            aws_access_key_id=creds["Credentials"]["AccessKeyId"],
            aws_secret_access_key=creds["Credentials"]["SecretAccessKey"],
            aws_session_token=creds["Credentials"]["SessionToken"],
        )
        self._caller = assumed.client("sts").get_caller_identity()
        return str(self._caller["Arn"])

    def subnet_vpc_id(self, subnet_id: str) -> str | None:
        """The VPC of a subnet that exists in the account, else None."""
        try:
            subnets = self._call("ec2", "describe_subnets", SubnetIds=[subnet_id])["Subnets"]
        except AwsError:
            return None
        return subnets[0]["VpcId"] if subnets else None


@contextmanager
def offline_account(region: str) -> Iterator[AwsAccount]:
    """A running fresh `AwsAccount` for the `with` block, e.g. to create a BYO VPC, read its
    ids, and pass both the ids (in config) and the account to `run_program(..., account=...)`."""
    with AwsAccount(region) as account:
        yield account
