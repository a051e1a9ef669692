"""What the program asks AWS before it builds anything: AZs, instance facts, offerings, subnets.

All lookups are invokes with plain arguments, so they return plain values at program time, before
any resource is registered, and ``pulumi preview`` shows the same plan ``pulumi up`` will build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pulumi_aws as aws

from eks_gpu.config import (
    DEFAULT_GPU_AMI,
    DEFAULT_SYSTEM_AMI,
    AmiType,
    Architecture,
    CapacityType,
    ExistingVpc,
    GpuPool,
    ParsedConfig,
    SystemNodeGroup,
)
from eks_gpu.config.models import KarpenterPool
from eks_gpu.design.pinning import installed_addons, release_parameter
from eks_gpu.design.quotas import karpenter_markets, quota_codes


@dataclass(frozen=True)
class InstanceFacts:
    """One EC2 instance type as ``DescribeInstanceTypes`` reports it."""

    instance_type: str
    architectures: tuple[Architecture, ...]
    """The architectures EKS AMIs exist for (``x86_64``, ``arm64``) among the supported ones."""
    gpu_count: int
    """GPUs per instance (0 without GPUs)."""
    gpu_manufacturer: str | None
    gpu_model: str | None
    """The GPU's name as EC2 reports it (``A10G``, ``H100``)."""
    vcpus: int
    """Default vCPUs per instance."""
    memory_mib: int
    """Memory per instance, MiB."""
    efa_supported: bool = False
    efa_max_interfaces: int = 0
    """EFA interfaces the type takes (one per network card on the types with several)."""
    network_cards: int = 1
    """Network cards of the type (``maximum_network_cards``)."""
    max_network_interfaces: int = 0
    """Network interfaces the type takes, over all its cards (``maximum_network_interfaces``)."""
    default_card_interfaces: int = 0
    """Network interfaces its default network card takes: what the EKS AMIs' max-pods formula counts
    (see :func:`eks_gpu.design.allocatable.eni_max_pods`)."""
    ipv4_per_interface: int = 0
    """IPv4 addresses per network interface (``maximum_ipv4_addresses_per_interface``)."""


@dataclass(frozen=True)
class SubnetFacts:
    """A subnet of a bring-your-own VPC."""

    subnet_id: str
    availability_zone: str
    vpc_id: str
    default_route: str | None
    """Where the subnet's 0.0.0.0/0 route goes (``nat-...``, ``tgw-...``, ``igw-...``), if anywhere."""


@dataclass(frozen=True)
class AwsFacts:
    """Everything the design needs from AWS, for one region."""

    region: str
    partition: str
    available_azs: tuple[str, ...]
    """AZs in state ``available`` that need no opt-in (no Local or Wavelength Zones), by name."""
    zone_ids: Mapping[str, str]
    """AZ name -> its zone id (``us-east-1a`` -> ``use1-az6``): names map to ids per account."""
    caller_arn: str
    """The ARN of the identity running the program (``sts:GetCallerIdentity``)."""
    offerings: Mapping[str, frozenset[str]]
    """Instance type -> the AZs that offer it; a type offered nowhere in the region is absent."""
    instances: Mapping[str, InstanceFacts]
    """Instance type -> its facts, for every type offered in the region."""
    subnets: Mapping[str, SubnetFacts]
    """Subnet id -> facts, for the subnets of a bring-your-own VPC (empty when the VPC is built)."""
    quotas: Mapping[str, float | None]
    """EC2 vCPU quota code -> the account's value in the region, None where it could not be read."""
    quota_errors: Mapping[str, str]
    """Quota code -> why it could not be read (no ``servicequotas:GetServiceQuota``, say)."""
    addon_defaults: Mapping[str, str] = field(default_factory=dict)
    """EKS add-on name -> EKS's default version for the cluster's Kubernetes version, for every add-on
    the stack installs whose default could be read."""
    addon_errors: Mapping[str, str] = field(default_factory=dict)
    """EKS add-on name -> why its default version could not be read."""
    addons_running: Mapping[str, str] = field(default_factory=dict)
    """EKS add-on name -> the version the cluster runs now (``aws.eks.get_addon``), for the add-ons an
    existing cluster has; empty before the cluster exists."""
    latest_releases: Mapping[AmiType, str] = field(default_factory=dict)
    """AMI type -> the latest release AWS publishes for it and the cluster's Kubernetes version (SSM)."""
    release_errors: Mapping[AmiType, str] = field(default_factory=dict)
    """AMI type -> why its latest release could not be read (no ``ssm:GetParameter``, say)."""
    region_types: frozenset[str] = frozenset()
    """Every instance type the region offers, read only when a configured type is not offered in any
    available AZ (to say which type was meant); empty otherwise."""
    existing_types: frozenset[str] = frozenset()
    """The configured types no available AZ offers that exist all the same: the region lists them
    (offered only in opt-in or Local Zones), or ``DescribeInstanceTypes`` describes them. A type
    EC2 does not know (a typo) is absent; so is one AWS refuses to describe here."""
    spot_role: bool | None = None
    """Whether the account has the ``AWSServiceRoleForEC2Spot`` service-linked role (``aws.iam.get_role``),
    which every spot launch needs; read only when a Karpenter pool lists ``spot``, else None, and None
    when the read failed (:attr:`spot_role_error` says why)."""
    spot_role_error: str | None = None
    """Why the spot service-linked role could not be read (no ``iam:GetRole``, say); None otherwise."""


def _architectures(supported: Iterable[str]) -> tuple[Architecture, ...]:
    values = {a.value for a in Architecture}
    return tuple(Architecture(a) for a in supported if a in values)


def instance_facts(instance_type: str) -> InstanceFacts:
    """Look up one instance type (``aws.ec2.get_instance_type``)."""
    result = aws.ec2.get_instance_type(instance_type=instance_type)
    gpus = list(result.gpuses or [])
    return InstanceFacts(
        instance_type=instance_type,
        architectures=_architectures(result.supported_architectures or []),
        gpu_count=sum(int(g.count) for g in gpus),
        gpu_manufacturer=gpus[0].manufacturer if gpus else None,
        gpu_model=gpus[0].name if gpus else None,
        vcpus=int(result.default_vcpus),
        memory_mib=int(result.memory_size),
        efa_supported=bool(result.efa_supported),
        efa_max_interfaces=int(result.efa_maximum_interfaces or 0),
        network_cards=int(result.maximum_network_cards or 1),
        max_network_interfaces=int(result.maximum_network_interfaces or 0),
        default_card_interfaces=_default_card_interfaces(result),
        ipv4_per_interface=int(result.maximum_ipv4_addresses_per_interface or 0),
    )


def _describes(instance_type: str) -> bool:
    """``DescribeInstanceTypes`` describes ``instance_type`` (``aws.ec2.get_instance_type`` answers);
    an unknown type is an ``InvalidInstanceType`` error, and any failure counts as not known."""
    try:
        aws.ec2.get_instance_type(instance_type=instance_type)
    except Exception:
        return False
    return True


def _default_card_interfaces(result: aws.ec2.GetInstanceTypeResult) -> int:
    """Interfaces of the type's default network card; the type's total where it lists no cards."""
    for card in result.network_cards or []:
        if int(card.index) == int(result.default_network_card_index or 0):
            return int(card.maximum_interfaces)
    return int(result.maximum_network_interfaces or 0)


def _default_route(subnet_id: str, vpc_id: str) -> str | None:
    """The target of the subnet's default route: its own route table's, or else the VPC's main one's."""
    ids = aws.ec2.get_route_tables(filters=[{"name": "association.subnet-id", "values": [subnet_id]}]).ids
    if not ids:
        ids = aws.ec2.get_route_tables(vpc_id=vpc_id, filters=[{"name": "association.main", "values": ["true"]}]).ids
    if not ids:
        return None
    for route in aws.ec2.get_route_table(route_table_id=ids[0]).routes:
        if route.cidr_block == "0.0.0.0/0":
            return route.nat_gateway_id or route.transit_gateway_id or route.gateway_id or route.network_interface_id
    return None


def read_quotas(codes: Iterable[str]) -> tuple[dict[str, float | None], dict[str, str]]:
    """The account's value of each EC2 quota (``aws.servicequotas.get_service_quota``); a failed
    read is recorded, never raised: a deployer without Service Quotas permissions still deploys."""
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for code in codes:
        try:
            values[code] = float(aws.servicequotas.get_service_quota(service_code="ec2", quota_code=code).value)
        except Exception as exc:
            values[code] = None
            errors[code] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return values, errors


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_addon_defaults(names: Iterable[str], kubernetes_version: str) -> tuple[dict[str, str], dict[str, str]]:
    """EKS's default version of each add-on for ``kubernetes_version`` (``aws.eks.get_addon_version``
    with ``most_recent=False``: DescribeAddonVersions' ``defaultVersion``); failures are recorded."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = aws.eks.get_addon_version(
                addon_name=name, kubernetes_version=kubernetes_version, most_recent=False
            ).version
        except Exception as exc:
            errors[name] = _first_line(exc)
    return values, errors


ADDON_NOT_FOUND = ("couldn't find resource", "ResourceNotFoundException")
"""How ``aws.eks.get_addon`` says an add-on (or its cluster) does not exist: terraform-provider-aws
``internal/service/eks/addon.go`` ``findAddonByTwoPartKey`` turns DescribeAddon's
``ResourceNotFoundException``, and only it, into a ``retry.NotFoundError`` ("couldn't find resource");
the exception's own name is accepted too. Every other failure (``AccessDeniedException``, throttling)
says nothing about whether the add-on runs."""


def read_running_addons(names: Iterable[str], cluster_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The version each add-on runs at on ``cluster_name`` now (``aws.eks.get_addon``), and the add-ons
    that could not be read, each with AWS's message. An add-on or a cluster that does not exist (a first
    deploy) is absent from both: only :data:`ADDON_NOT_FOUND` means "not running"."""
    running: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            running[name] = aws.eks.get_addon(addon_name=name, cluster_name=cluster_name).addon_version
        except Exception as exc:
            message = _first_line(exc)
            if not any(marker in message for marker in ADDON_NOT_FOUND):
                errors[name] = message
    return running, errors


def read_latest_releases(
    ami_types: Iterable[AmiType], kubernetes_version: str
) -> tuple[dict[AmiType, str], dict[AmiType, str]]:
    """The latest release AWS publishes for each AMI type (``aws.ssm.get_parameter`` on
    :func:`eks_gpu.design.pinning.release_parameter`); a failed read is recorded, never raised: it
    only informs (a group without a set release is created with EKS's latest anyway)."""
    values: dict[AmiType, str] = {}
    errors: dict[AmiType, str] = {}
    for ami in ami_types:
        try:
            values[ami] = aws.ssm.get_parameter(name=release_parameter(ami, kubernetes_version)).value
        except Exception as exc:
            errors[ami] = _first_line(exc)
    return values, errors


SPOT_ROLE = "AWSServiceRoleForEC2Spot"
"""The account-wide service-linked role EC2 needs to launch spot instances (EC2 User Guide,
"Service-linked role for Spot Instance requests"); Karpenter's getting-started guide creates it once per
account, its controller policy cannot (``v1.14/getting-started/getting-started-with-karpenter``)."""
ROLE_NOT_FOUND = ("couldn't find resource", "NoSuchEntity")
"""How ``aws.iam.get_role`` says a role does not exist: terraform-provider-aws
``internal/service/iam/role.go`` ``findRoleByName`` turns GetRole's ``NoSuchEntity``, and only it, into a
``retry.NotFoundError`` ("couldn't find resource"), which ``role_data_source.go`` reports as
"reading IAM Role (name): couldn't find resource"."""


def read_spot_role() -> tuple[bool | None, str | None]:
    """Whether :data:`SPOT_ROLE` exists: True, False (not found), or None with AWS's message when it could
    not be read; recorded, never raised."""
    try:
        aws.iam.get_role(name=SPOT_ROLE)
    except Exception as exc:
        message = _first_line(exc)
        if any(marker in message for marker in ROLE_NOT_FOUND):
            return False, None
        return None, message
    return True, None


def _lists_spot(parsed: ParsedConfig) -> bool:
    """A Karpenter stack with a pool whose ``karpenter.capacityTypes`` lists ``spot``."""
    return parsed.karpenter and any(
        "spot" in (pool.karpenter or KarpenterPool()).capacity_types for pool in parsed.pools.values()
    )


def _ami_types(
    parsed: ParsedConfig, instances: Mapping[str, InstanceFacts], region_types: frozenset[str]
) -> list[AmiType]:
    """The AMI types the node groups run: the configured one, else the default for each architecture
    of the group's instance types (the design picks among them)."""
    found: set[AmiType] = set()
    groups: list[GpuPool | SystemNodeGroup] = [*parsed.pools.values(), *([parsed.system] if parsed.system else [])]
    for cfg in groups:
        if cfg.ami_type is not None:
            found.add(cfg.ami_type)
            continue
        defaults = DEFAULT_GPU_AMI if isinstance(cfg, GpuPool) else DEFAULT_SYSTEM_AMI
        for t in pool_instance_types(cfg, region_types) if isinstance(cfg, GpuPool) else cfg.instance_types:
            found.update(defaults[a] for a in (instances[t].architectures if t in instances else ()))
    return sorted(found)


def _markets(parsed: ParsedConfig, pool: GpuPool) -> tuple[CapacityType, ...]:
    """The capacity types whose vCPU quotas a pool draws on: a managed node group's one, or each a
    Karpenter pool lists (:data:`eks_gpu.design.quotas.KARPENTER_MARKETS`; default ``on-demand``)."""
    if not parsed.karpenter:
        return (pool.capacity_type,)
    return karpenter_markets((pool.karpenter or KarpenterPool()).capacity_types)


def family_of(instance_type: str) -> str:
    """An instance type's family, the part before the dot (``g6`` of ``g6.xlarge``, ``p6-b200`` of
    ``p6-b200.48xlarge``): Karpenter's ``karpenter.k8s.aws/instance-family`` label
    (aws/karpenter-provider-aws ``pkg/providers/instancetype/types.go``, ``computeRequirements``)."""
    return instance_type.split(".", 1)[0]


def pool_instance_types(pool: GpuPool, region_types: Iterable[str]) -> tuple[str, ...]:
    """The types a pool names: its ``instanceTypes``, else every type of its ``karpenter.instanceFamilies``
    among ``region_types`` (the types the region offers), sorted."""
    families = pool.karpenter.instance_families if pool.karpenter and not pool.instance_types else ()
    return tuple(sorted(t for t in region_types if family_of(t) in families)) if families else pool.instance_types


def _region_types() -> frozenset[str]:
    """Every instance type the region offers (``DescribeInstanceTypeOfferings``, location type ``region``)."""
    return frozenset(aws.ec2.get_instance_type_offerings(location_type="region").instance_types)


def lookup(parsed: ParsedConfig, region: str) -> AwsFacts:
    """Ask AWS about every instance type and subnet the parsed config names."""
    partition = aws.get_partition().partition
    zones = aws.get_availability_zones(
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    )
    available = tuple(sorted(zones.names))
    zone_ids = dict(zip(zones.names, zones.zone_ids, strict=True))

    region_types: frozenset[str] = frozenset()
    if parsed.karpenter and any(p.karpenter and p.karpenter.instance_families for p in parsed.pools.values()):
        region_types = _region_types()
    types = sorted(
        {t for pool in parsed.pools.values() for t in pool_instance_types(pool, region_types)}
        | set(parsed.system.instance_types if parsed.system else ())
    )
    offerings: dict[str, set[str]] = {}
    if types:
        found = aws.ec2.get_instance_type_offerings(
            filters=[{"name": "instance-type", "values": types}],
            location_type="availability-zone",
        )
        for itype, location in zip(found.instance_types, found.locations, strict=True):
            if location in available:
                offerings.setdefault(itype, set()).add(location)
    instances = {t: instance_facts(t) for t in sorted(offerings)}
    existing: set[str] = set()
    if set(types) - set(offerings):
        region_types = region_types or _region_types()
        for t in sorted(set(types) - set(offerings)):
            if t in region_types or _describes(t):
                existing.add(t)

    subnets: dict[str, SubnetFacts] = {}
    if isinstance(parsed.vpc, ExistingVpc):
        in_vpc = set(aws.ec2.get_subnets(filters=[{"name": "vpc-id", "values": [parsed.vpc.id]}]).ids)
        for sid in sorted({*parsed.vpc.private_subnet_ids, *parsed.vpc.public_subnet_ids} & in_vpc):
            subnet = aws.ec2.get_subnet(id=sid)
            subnets[sid] = SubnetFacts(sid, subnet.availability_zone, subnet.vpc_id, _default_route(sid, subnet.vpc_id))

    # a Karpenter pool may launch as any market its karpenter.capacityTypes lists (reserved needs none)
    used = [
        (t, c)
        for pool in parsed.pools.values()
        for c in _markets(parsed, pool)
        for t in pool_instance_types(pool, region_types)
    ]
    used += [(t, CapacityType.ON_DEMAND) for t in (parsed.system.instance_types if parsed.system else ())]
    quotas, quota_errors = read_quotas(quota_codes((t, c) for t, c in used if t in offerings))

    addon_defaults: dict[str, str] = {}
    addon_errors: dict[str, str] = {}
    running: dict[str, str] = {}
    latest: dict[AmiType, str] = {}
    release_errors: dict[AmiType, str] = {}
    if parsed.config is not None:
        kubernetes = parsed.config.kubernetes_version
        addon_defaults, addon_errors = read_addon_defaults(installed_addons(parsed.config), kubernetes)
        # an existing cluster's unreadable add-ons are refused by eks_gpu.design.existing.adopt; the
        # stack's own cluster's only keep pins from going backwards, so a denied read is not fatal here
        running, _ = read_running_addons(installed_addons(parsed.config), parsed.config.cluster_name)
        latest, release_errors = read_latest_releases(_ami_types(parsed, instances, region_types), kubernetes)
    spot_role, spot_role_error = read_spot_role() if _lists_spot(parsed) else (None, None)

    return AwsFacts(
        region=region,
        partition=partition,
        available_azs=available,
        zone_ids=zone_ids,
        caller_arn=aws.get_caller_identity().arn,
        offerings={t: frozenset(azs) for t, azs in offerings.items()},
        instances=instances,
        subnets=subnets,
        quotas=quotas,
        quota_errors=quota_errors,
        addon_defaults=addon_defaults,
        addon_errors=addon_errors,
        addons_running=running,
        latest_releases=latest,
        release_errors=release_errors,
        region_types=region_types,
        existing_types=frozenset(existing),
        spot_role=spot_role,
        spot_role_error=spot_role_error,
    )
