"""Every config rule, alone: a stack that breaks only it is refused under its key alone, for its reason.

Each case starts from the valid base stack of :func:`tests.helpers.config` (which runs clean, see the
first test), breaks exactly one rule, runs the real program offline, and asserts that the
ConfigError names exactly one key, the rule's, with the rule's reason written out here: no rule hides
behind another, none fires under a neighbour's key, and no mistake spills into a second key.

Instance types, GPU counts, AZs and EFA layouts come from AWS's own data in moto (``tests.aws_data``),
never typed in; the few cases that need the account itself (a bring-your-own VPC, a quota) prepare it
before the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from eks_gpu.config import ConfigError
from eks_gpu.design import load
from eks_gpu.facts.aws_limits import UNSUPPORTED_CONTROL_PLANE_AZ_IDS
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import AwsAccount, offline_account

from tests import aws_data
from tests.helpers import REGION, config, gpu_pool, problems_of, run

# --- what the cases are made of ------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A stack config that needs more than its keys: an account prepared first, another stack name."""

    config: dict[str, Any]
    prepare: Callable[[AwsAccount], dict[str, Any]] | None = None
    """Runs on the fresh account before the program; returns config keys to add (ids it created)."""
    name: str = "dev"


def _nvidia(info: dict[str, Any]) -> bool:
    return bool(info.get("GpuInfo", {}).get("Gpus", [{}])[0].get("Manufacturer") == "NVIDIA")


def _archs(instance_type: str) -> list[str]:
    return list(aws_data.catalogue()[instance_type]["ProcessorInfo"]["SupportedArchitectures"])


def _offered(region: str = REGION) -> dict[str, frozenset[str]]:
    """Offered instance types that are in the catalogue, sorted by name."""
    cat = aws_data.catalogue()
    return {t: azs for t, azs in sorted(aws_data.offerings(region).items()) if t in cat}


def _azs(region: str = REGION) -> list[str]:
    return sorted({az for azs in aws_data.offerings(region).values() for az in azs})


def _efa(instance_type: str) -> tuple[int, int] | None:
    """(EFA interfaces, network cards) of a type with EFA, else None."""
    net = aws_data.catalogue()[instance_type].get("NetworkInfo", {})
    if not net.get("EfaSupported"):
        return None
    return net["EfaInfo"]["MaximumEfaInterfaces"], net["MaximumNetworkCards"]


def efa_layout(instance_type: str) -> tuple[int, int]:
    """(EFA interfaces, network cards) of a type that has EFA."""
    layout = _efa(instance_type)
    assert layout is not None, instance_type
    return layout


def _full_efa(instance_type: str) -> bool:
    """EFA on every network card of the type: the layout the program builds."""
    layout = _efa(instance_type)
    return layout is not None and layout[0] == layout[1]


def _partial_efa(instance_type: str) -> bool:
    layout = _efa(instance_type)
    return layout is not None and layout[0] != layout[1]


def _gpu_types(keep: Callable[[str], bool]) -> list[str]:
    """x86_64 NVIDIA types offered in the region that ``keep`` keeps, by name."""
    cat = aws_data.catalogue()
    return [t for t in _offered() if _nvidia(cat[t]) and _archs(t) == ["x86_64"] and keep(t)]


def _plain_types(arch: str) -> list[str]:
    """Offered types without GPUs of one architecture only, by name."""
    cat = aws_data.catalogue()
    return [t for t in _offered() if "GpuInfo" not in cat[t] and _archs(t) == [arch]]


@cache
def efa_type() -> str:
    """A GPU type whose every network card takes an EFA interface: the layout the program builds."""
    return _gpu_types(_full_efa)[0]


@cache
def partial_efa_type() -> str:
    """A GPU type with EFA on some network cards only."""
    return _gpu_types(_partial_efa)[0]


def no_efa_type() -> str:
    return next(t for t in _gpu_types(lambda t: _efa(t) is None))


@cache
def efa_layout_pair() -> tuple[str, str]:
    """Two GPU types of one node shape, each with EFA on every card, in different layouts, offered
    together: the only thing wrong with pooling them is the EFA layout."""
    offered = _offered()
    full = _gpu_types(_full_efa)
    return next(
        (a, b)
        for i, a in enumerate(full)
        for b in full[i + 1 :]
        if aws_data.shape(a) == aws_data.shape(b) and _efa(a) != _efa(b) and offered[a] & offered[b]
    )


@cache
def other_shape_type() -> str:
    """A GPU type offered with g5.xlarge (the base pool's) whose node shape differs from it."""
    offered = _offered()
    base = gpu_pool()["instanceTypes"][0]
    return next(
        t for t in _gpu_types(lambda t: aws_data.shape(t) != aws_data.shape(base) and bool(offered[t] & offered[base]))
    )


def no_gpu_type() -> str:
    return _plain_types("x86_64")[0]


@cache
def not_offered_type() -> str:
    """A type the EC2 API knows that the region does not offer."""
    return sorted(aws_data.ec2_instance_types() - set(aws_data.offerings(REGION)))[0]


def odd_arch_type() -> str:
    """A type offered in the region whose architectures have no EKS AMI (a Mac)."""
    return next(t for t in _offered() if not set(_archs(t)) & {"x86_64", "arm64"})


@cache
def mixed_arch_pair() -> tuple[str, str]:
    """An x86_64 and an arm64 type without GPUs, offered together."""
    offered = _offered()
    return next((a, b) for a in _plain_types("x86_64") for b in _plain_types("arm64") if offered[a] & offered[b])


@cache
def apart_pair() -> tuple[str, str]:
    """Two x86_64 types without GPUs that no AZ of the region offers together."""
    offered = _offered()
    plain = _plain_types("x86_64")
    return next((a, b) for i, a in enumerate(plain) for b in plain[i + 1 :] if not offered[a] & offered[b])


def single_az_pool() -> tuple[str, str, list[str]]:
    """A GPU type offered in one AZ only, that AZ, and two other AZs of the region."""
    itype, az = aws_data.single_az_type(REGION)
    return itype, az, [a for a in _azs() if a != az][:2]


@cache
def no_control_plane_az(region: str = "us-east-1") -> str:
    """An AZ of ``region`` whose zone id (in moto's account) EKS cannot put a control plane in."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        zones = boto3.client("ec2", region_name=region).describe_availability_zones()["AvailabilityZones"]
    return next(z["ZoneName"] for z in zones if z["ZoneId"] in UNSUPPORTED_CONTROL_PLANE_AZ_IDS)


def past_extended_support() -> str:
    """The newest version the calendar has out of extended support on the suite's day."""
    cal = calendar()
    gone = [v for v, s in cal.versions.items() if s.end_of_extended_support < cal.updated]
    return max(gone, key=lambda v: int(v.split(".")[1]))


def gpus_per_node(instance_type: str = "g5.xlarge") -> int:
    return aws_data.gpus(instance_type)[0]


def pinned(*azs: str) -> dict[str, Any]:
    return {"cidr": "10.0.0.0/16", "availabilityZones": list(azs)}


def vpc_for(pool_az: str) -> dict[str, Any]:
    """A VPC over ``pool_az`` and another AZ of the region."""
    return pinned(pool_az, next(a for a in _azs() if a != pool_az))


def common_az(*types: str) -> str:
    offered = _offered()
    return sorted(frozenset.intersection(*(offered[t] for t in types)))[0]


def efa_pools(**train: Any) -> dict[str, Any]:
    """An EFA training pool that the NCCL test can run on, and the base inference pool."""
    return {"train": gpu_pool(efa_type(), **{"efa": True, "maxSize": 2, **train}), "inference": gpu_pool()}


# --- accounts ------------------------------------------------------------------------------------


def quota_zero(code: str) -> Callable[[AwsAccount], dict[str, Any]]:
    def prepare(account: AwsAccount) -> dict[str, Any]:
        account.quotas[code] = 0
        return {}

    return prepare


BAD_AZ = -1
"""In :func:`existing_vpc`: the us-east-1 AZ where EKS cannot run a control plane."""


def existing_vpc(*azs: int, extra: tuple[str, ...] = (), twice: bool = False, public: tuple[str, ...] = ()) -> Stack:
    """A bring-your-own VPC with a private subnet in each of ``azs`` (indexes into the region's AZs
    EKS can use, or ``BAD_AZ``, which moves the stack to us-east-1), listed in ``privateSubnetIds``
    followed by ``extra`` (and the first one again, ``twice``); ``public`` are its ``publicSubnetIds``."""
    region = "us-east-1" if BAD_AZ in azs else REGION

    def prepare(account: AwsAccount) -> dict[str, Any]:
        good = [a for a in _azs(region) if a != no_control_plane_az()]
        layout = [
            (f"10.50.{16 * i}.0/20", no_control_plane_az() if az == BAD_AZ else good[az], False)
            for i, az in enumerate(azs)
        ]
        vpc = account.create_existing_vpc("10.50.0.0/16", [*layout, ("10.50.240.0/24", good[0], True)])
        again = vpc.private_subnet_ids[:1] if twice else []
        cfg = {"id": vpc.vpc_id, "privateSubnetIds": [*vpc.private_subnet_ids, *extra, *again]}
        return {"eks-gpu:vpc": cfg | ({"publicSubnetIds": list(public)} if public else {})}

    return Stack(config() | {"aws:region": region}, prepare)


def foreign_subnet() -> Stack:
    """A bring-your-own VPC that lists a subnet of another VPC of the account."""

    def prepare(account: AwsAccount) -> dict[str, Any]:
        azs = _azs()
        mine = account.create_existing_vpc(
            "10.70.0.0/16", [("10.70.0.0/20", azs[0], False), ("10.70.16.0/20", azs[1], False)], egress=False
        )
        other = account.create_existing_vpc("10.80.0.0/16", [("10.80.0.0/20", azs[0], False)], egress=False)
        ids = [*mine.private_subnet_ids, *other.private_subnet_ids]
        return {"eks-gpu:vpc": {"id": mine.vpc_id, "privateSubnetIds": ids}}

    return Stack(config(), prepare)


# --- the rules -----------------------------------------------------------------------------------

CB = "cr-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
"""Well-formed subnet ids that no account has."""
ROLE = "arn:aws:iam::111122223333:role/ml-admins"
SIZES = "sizes must satisfy 0 <= minSize <= desiredSize <= maxSize"
GPU = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
P = "eks-gpu:gpuNodeGroups.inference"
"""The base pool's key."""


def pool(**overrides: Any) -> dict[str, Any]:
    """The base stack with its one pool changed."""
    return config({"inference": gpu_pool(**overrides)})


def _rules() -> list[Any]:
    sa_type, sa_az, sa_others = single_az_pool()
    pair = aws_data.same_shape_pair(REGION)
    pair_az = common_az(*pair)
    layout_pair = efa_layout_pair()
    east_az = next(a for a in _azs("us-east-1") if a != no_control_plane_az())
    return [
        # --- the stack's scalars (components/config/parse.py, _check_scalars) -------------------
        pytest.param(
            config(clusterName="-gpu"),
            "eks-gpu:clusterName",
            "'-gpu' is not a valid EKS cluster name: use letters, digits, '-' and '_', starting with a letter or digit",
            id="cluster-name-syntax",
        ),
        pytest.param(
            Stack(config(), name="dev.eu"),
            "eks-gpu:clusterName",
            "'eks-gpu-dev.eu' (derived from the stack name: set eks-gpu:clusterName) is not a valid EKS cluster name",
            id="cluster-name-derived-from-stack",
        ),
        pytest.param(
            config(clusterName="c" * 101),
            "eks-gpu:clusterName",
            "string should have at most 100 characters",
            id="cluster-name-length",
        ),
        pytest.param(
            config(kubernetesVersion="1.3"),
            "eks-gpu:kubernetesVersion",
            "'1.3' is not a Kubernetes minor version such as \"1.35\" (quote it in YAML: 1.30 unquoted reads as 1.3)",
            id="kubernetes-version-format",
        ),
        pytest.param(
            config(kubernetesVersion=""),
            "eks-gpu:kubernetesVersion",
            'missing is not a Kubernetes minor version such as "1.35"',
            id="kubernetes-version-empty",
        ),
        pytest.param(
            config(kubernetesVersion=past_extended_support()),
            "eks-gpu:kubernetesVersion",
            "left EKS extended support on",
            id="kubernetes-version-past-extended-support",
        ),
        pytest.param(
            config(kubernetesVersion="1.10"),
            "eks-gpu:kubernetesVersion",
            "Kubernetes 1.10 is no longer supported by EKS; supported versions:",
            id="kubernetes-version-older-than-the-calendar",
        ),
        pytest.param(
            config(tags={"aws:owner": "me"}),
            "eks-gpu:tags.aws:owner",
            "a tag key is 1-128 characters and may not start with 'aws:'",
            id="tag-key",
        ),
        pytest.param(
            config(tags={"owner": "x" * 257}),
            "eks-gpu:tags.owner",
            "a tag value is at most 256 characters",
            id="tag-value",
        ),
        pytest.param(
            config(tags={"Environment": "prod"}),
            "eks-gpu:tags.Environment",
            "is set from eks-gpu:environment; set that key instead",
            id="tag-environment",
        ),
        pytest.param(
            config(vpc={"cidr": "10.0.0.0/24"}),
            "eks-gpu:vpc.cidr",
            "'10.0.0.0/24' must be a private IPv4 range (RFC 1918) from /16 to /20: the VPC CNI gives every pod an "
            "address from it",
            id="vpc-cidr-size",
        ),
        pytest.param(
            config(vpc={"cidr": "100.64.0.0/16"}),
            "eks-gpu:vpc.cidr",
            "'100.64.0.0/16' must be a private IPv4 range (RFC 1918)",
            id="vpc-cidr-private",
        ),
        pytest.param(
            config(vpc={"cidr": "10.0.0.1/16"}),
            "eks-gpu:vpc.cidr",
            "'10.0.0.1/16' is not an IPv4 CIDR block with zero host bits",
            id="vpc-cidr-host-bits",
        ),
        pytest.param(
            config({"Bad_Name": gpu_pool()}),
            "eks-gpu:gpuNodeGroups.Bad_Name",
            "a pool name is a lower-case DNS label of at most 40 characters (letters, digits, '-'), and not 'system'",
            id="pool-name-syntax",
        ),
        pytest.param(
            config({"p" * 41: gpu_pool()}),
            f"eks-gpu:gpuNodeGroups.{'p' * 41}",
            "a pool name is a lower-case DNS label of at most 40 characters",
            id="pool-name-length",
        ),
        pytest.param(
            config({"system": gpu_pool()}),
            "eks-gpu:gpuNodeGroups.system",
            "and not 'system' (the system node group's)",
            id="pool-name-system",
        ),
        # --- reaching and administering the API (parse.py _check_access, fields.py) -------------
        pytest.param(
            config(endpointPublicAccessCidrs=[]),
            "eks-gpu:endpointPublicAccessCidrs",
            "nothing can reach the Kubernetes API: the program creates Kubernetes objects, so pulumi must reach the "
            "endpoint",
            id="nobody-reaches-the-api",
        ),
        pytest.param(
            config(clusterCreatorAdmin=False),
            "eks-gpu:clusterCreatorAdmin",
            "false with no eks-gpu:clusterAdmins would leave the cluster with no administrator",
            id="creator-admin-off-without-admins",
        ),
        pytest.param(
            config(endpointPublicAccessCidrs=["nope"]),
            "eks-gpu:endpointPublicAccessCidrs[0]",
            "'nope' is not an IPv4 CIDR block with zero host bits",
            id="endpoint-cidr-syntax",
        ),
        pytest.param(
            config(endpointPublicAccessCidrs=["0.0.0.0/0"]),
            "eks-gpu:endpointPublicAccessCidrs[0]",
            "'0.0.0.0/0' admits every address to the Kubernetes API",
            id="endpoint-cidr-everyone",
        ),
        pytest.param(
            config(endpointPrivateAccessCidrs=["198.51.100.0/24"]),
            "eks-gpu:endpointPrivateAccessCidrs[0]",
            "'198.51.100.0/24' is a documentation address (RFC 5737) that no client has",
            id="endpoint-cidr-documentation",
        ),
        pytest.param(
            config(endpointPrivateAccessSecurityGroupIds=["sg-123"]),
            "eks-gpu:endpointPrivateAccessSecurityGroupIds[0]",
            "'sg-123' is not a security group id (sg- and 8 or 17 hex digits)",
            id="security-group-id",
        ),
        pytest.param(
            config(clusterAdmins=["arn:aws:sts::111122223333:assumed-role/Deployer/ci-7"]),
            "eks-gpu:clusterAdmins[0]",
            "is a session of a role, not the role: name the role itself (arn:<partition>:iam::<account>:role/Deployer)",
            id="admin-is-a-role-session",
        ),
        pytest.param(
            config(clusterAdmins=["arn:aws:iam::111122223333:group/admins"]),
            "eks-gpu:clusterAdmins[0]",
            "is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)",
            id="admin-arn-syntax",
        ),
        pytest.param(
            config(clusterAdmins=["arn:aws-cn:iam::111122223333:role/ml-admins"]),
            "eks-gpu:clusterAdmins[0]",
            "'arn:aws-cn:iam::111122223333:role/ml-admins' is an ARN of partition aws-cn, but us-west-2 is in aws",
            id="admin-partition",
        ),
        pytest.param(
            config(clusterAdmins=[ROLE, ROLE]),
            "eks-gpu:clusterAdmins[1]",
            f"lists '{ROLE}' twice",
            id="admin-twice",
        ),
        pytest.param(
            config(clusterAdmins=[ROLE], clusterCreatorAdmin=False),
            "eks-gpu:clusterAdmins",
            "and clusterCreatorAdmin is false: pulumi could not reach the cluster it creates; add that role or user",
            id="admins-miss-the-caller",
        ),
        pytest.param(
            config(logRetentionDays=2),
            "eks-gpu:logRetentionDays",
            "2 is not a retention CloudWatch Logs accepts; use one of 1, 3, 5, 7, 14, 30, 60, 90,",
            id="log-retention",
        ),
        # --- keys (components/config/problems.py) ------------------------------------------------
        pytest.param(
            config(gpuPods={"enabled": True}),
            "eks-gpu:gpuPods",
            "unknown key; allowed keys: addons, amiReleaseVersion, autoscaler, budget, clusterAdmins,",
            id="unknown-stack-key",
        ),
        pytest.param(
            pool(minsize=1),
            f"{P}.minsize",
            "unknown key; allowed keys: amiReleaseVersion, amiType, availabilityZone, capacityReservation,",
            id="unknown-pool-key",
        ),
        pytest.param(
            config(vpc={"cidr": "10.0.0.0/16", "azcount": 2}),
            "eks-gpu:vpc.azcount",
            "unknown key; allowed keys: availabilityZones, azCount, cidr, natGateways",
            id="unknown-vpc-key",
        ),
        pytest.param(
            config(vpc={"id": "vpc-0123456789abcdef0", "privateSubnetIds": SUBNETS, "cidr": "10.0.0.0/16"}),
            "eks-gpu:vpc.cidr",
            "unknown key; allowed keys: id, privateSubnetIds, publicSubnetIds",
            id="new-vpc-key-with-an-existing-vpc",
        ),
        pytest.param(
            config({"inference": {"maxSize": 2}}),
            f"{P}.instanceTypes",
            "is required",
            id="missing-key",
        ),
        pytest.param(
            config(vpc={"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0"]}),
            "eks-gpu:vpc.privateSubnetIds",
            "must list at least 2 items (got 1)",
            id="too-short-list",
        ),
        pytest.param(
            config(gpuPod={"enabled": "sometimes"}),
            "eks-gpu:gpuPod.enabled",
            "input should be a valid boolean, unable to interpret input (got 'sometimes')",
            id="wrong-type",
        ),
        # --- the network (models.py NewVpc/ExistingVpc, parse.py, design/network.py) -------------
        pytest.param(
            config(vpc={"azCount": 1}),
            "eks-gpu:vpc.azCount",
            "input should be greater than or equal to 2 (got 1)",
            id="az-count-at-least-2",
        ),
        pytest.param(
            config(vpc={"azCount": 7}),
            "eks-gpu:vpc.azCount",
            "input should be less than or equal to 6 (got 7)",
            id="az-count-at-most-6",
        ),
        pytest.param(
            config(vpc={"azCount": len(_azs()) + 1}),
            "eks-gpu:vpc.azCount",
            f"{len(_azs()) + 1} AZs asked, but us-west-2 has {len(_azs())} available where EKS can run a control plane",
            id="az-count-over-the-region",
        ),
        pytest.param(
            config(vpc={"natGateways": "none"}),
            "eks-gpu:vpc.natGateways",
            "'none' is not allowed; use one of single, perAz",
            id="nat-gateways",
        ),
        pytest.param(
            config(vpc=pinned(_azs()[0])),
            "eks-gpu:vpc.availabilityZones",
            "must list at least 2 items (got 1)",
            id="azs-at-least-2",
        ),
        pytest.param(
            config(vpc=pinned(*[_azs()[0]] * 7)),
            "eks-gpu:vpc.availabilityZones",
            "tuple should have at most 6 items after validation, not 7",
            id="azs-at-most-6",
        ),
        pytest.param(
            config(vpc=pinned(_azs()[0], f"{REGION}{chr(ord(_azs()[-1][-1]) + 1)}")),
            "eks-gpu:vpc.availabilityZones[1]",
            f"'{REGION}{chr(ord(_azs()[-1][-1]) + 1)}' is not an available AZ of us-west-2",
            id="az-not-available",
        ),
        pytest.param(
            config(vpc=pinned(east_az, no_control_plane_az())) | {"aws:region": "us-east-1"},
            "eks-gpu:vpc.availabilityZones[1]",
            "in this account, where EKS cannot run a cluster's control plane (EKS User Guide, network requirements)",
            id="az-without-control-plane",
        ),
        pytest.param(
            config(vpc=pinned(_azs()[0], _azs()[0])),
            "eks-gpu:vpc.availabilityZones",
            "lists an AZ twice",
            id="az-twice",
        ),
        pytest.param(
            config(vpc={**pinned(*_azs()[:2]), "azCount": 3}),
            "eks-gpu:vpc.azCount",
            "3 disagrees with the 2 availabilityZones; set one of the two",
            id="az-count-disagrees",
        ),
        pytest.param(
            config(vpc={"id": "vpc-1", "privateSubnetIds": SUBNETS}),
            "eks-gpu:vpc.id",
            "string should match pattern '^vpc-[0-9a-f]{8,17}$'",
            id="vpc-id",
        ),
        pytest.param(
            config(vpc={"id": "vpc-0123456789abcdef0"}),
            "eks-gpu:vpc.privateSubnetIds",
            "is required",
            id="existing-vpc-needs-subnets",
        ),
        pytest.param(
            existing_vpc(0, 1, extra=("sn-1",)),
            "eks-gpu:vpc.privateSubnetIds[2]",
            "'sn-1' is not a subnet id (subnet-...)",
            id="subnet-id-syntax",
        ),
        pytest.param(
            existing_vpc(0, 1, twice=True),
            "eks-gpu:vpc.privateSubnetIds",
            "lists a subnet twice",
            id="subnet-twice",
        ),
        pytest.param(
            existing_vpc(0, 1, public=(SUBNETS[0],)),
            "eks-gpu:vpc.publicSubnetIds[0]",
            "is not a subnet of",
            id="public-subnet-not-of-the-vpc",
        ),
        pytest.param(
            foreign_subnet(),
            "eks-gpu:vpc.privateSubnetIds[2]",
            "is not a subnet of",
            id="private-subnet-not-of-the-vpc",
        ),
        pytest.param(
            existing_vpc(0, 1, BAD_AZ),
            "eks-gpu:vpc.privateSubnetIds[2]",
            "in this account, where EKS cannot run a cluster's control plane",
            id="subnet-without-control-plane",
        ),
        pytest.param(
            existing_vpc(0, 0),
            "eks-gpu:vpc.privateSubnetIds",
            ": EKS needs private subnets in at least two AZs",
            id="subnets-in-one-az",
        ),
        # --- node group sizes (parse.py _check_sizes) --------------------------------------------
        pytest.param(
            pool(minSize=3, desiredSize=2, maxSize=4),
            f"{P}.desiredSize",
            f"2 is below minSize 3; {SIZES}",
            id="desired-below-min",
        ),
        pytest.param(
            pool(minSize=0, desiredSize=5, maxSize=4),
            f"{P}.maxSize",
            f"4 is below desiredSize 5; {SIZES}",
            id="max-below-desired",
        ),
        pytest.param(
            config({"inference": {"instanceTypes": ["g5.xlarge"], "minSize": 3, "maxSize": 2}}),
            f"{P}.maxSize",
            f"2 is below minSize 3; {SIZES}",
            id="max-below-min",
        ),
        pytest.param(
            pool(maxSize=0),
            f"{P}.maxSize",
            "must be at least 1 (EKS rejects a node group of 0)",
            id="max-zero",
        ),
        pytest.param(
            pool(minSize=-1),
            f"{P}.minSize",
            "input should be greater than or equal to 0 (got -1)",
            id="size-negative",
        ),
        pytest.param(
            config(systemNodeGroup={"minSize": 0}),
            "eks-gpu:systemNodeGroup.minSize",
            "must be at least 1: CoreDNS and the cluster's controllers always need a node",
            id="system-min-zero",
        ),
        # --- a pool's fields (models.py GpuPool, fields.py) --------------------------------------
        pytest.param(
            pool(instanceTypes=[]),
            f"{P}.instanceTypes",
            "must list at least 1 item (got 0)",
            id="instance-types-empty",
        ),
        pytest.param(
            pool(instanceTypes=["G5 XLARGE"]),
            f"{P}.instanceTypes",
            "'G5 XLARGE' is not an EC2 instance type name such as g5.xlarge",
            id="instance-type-name",
        ),
        pytest.param(
            pool(instanceTypes=["g5.xlarge", "g5.xlarge"]),
            f"{P}.instanceTypes",
            "lists an instance type twice",
            id="instance-type-twice",
        ),
        pytest.param(
            pool(amiType="AL2_x86_64_GPU"),
            f"{P}.amiType",
            "'AL2_x86_64_GPU' is end of life (EKS stopped publishing AL2 AMIs on 2025-11-26); use AL2023_x86_64_NVIDIA "
            "or BOTTLEROCKET_x86_64_NVIDIA",
            id="gpu-ami-end-of-life",
        ),
        pytest.param(
            pool(amiType="AL2023_x86_64_STANDARD"),
            f"{P}.amiType",
            "'AL2023_x86_64_STANDARD' is not a GPU AMI type: it has no NVIDIA driver",
            id="gpu-ami-standard",
        ),
        pytest.param(
            pool(amiType="UBUNTU"),
            f"{P}.amiType",
            "'UBUNTU' is not allowed; use one of AL2023_x86_64_NVIDIA, AL2023_ARM_64_NVIDIA,",
            id="gpu-ami-unknown",
        ),
        pytest.param(
            config(systemNodeGroup={"amiType": "AL2023_x86_64_NVIDIA"}),
            "eks-gpu:systemNodeGroup.amiType",
            "'AL2023_x86_64_NVIDIA' is a GPU AMI type; the system node group runs a standard AMI",
            id="system-ami-gpu",
        ),
        pytest.param(
            config(systemNodeGroup={"amiType": "AL2_x86_64"}),
            "eks-gpu:systemNodeGroup.amiType",
            "'AL2_x86_64' is end of life (EKS stopped publishing AL2 AMIs on 2025-11-26); use AL2023_x86_64_STANDARD",
            id="system-ami-end-of-life",
        ),
        pytest.param(
            pool(capacityType="spot"),
            f"{P}.capacityType",
            "'spot' is not allowed; use one of ON_DEMAND, SPOT, CAPACITY_BLOCK",
            id="capacity-type",
        ),
        pytest.param(
            pool(diskSizeGiB=10),
            f"{P}.diskSizeGiB",
            "input should be greater than or equal to 20 (got 10)",
            id="disk-size-at-least-20",
        ),
        pytest.param(
            pool(diskSizeGiB=16385),
            f"{P}.diskSizeGiB",
            "input should be less than or equal to 16384 (got 16385)",
            id="disk-size-at-most-16384",
        ),
        pytest.param(
            config(systemNodeGroup={"diskSizeGiB": 10}),
            "eks-gpu:systemNodeGroup.diskSizeGiB",
            "input should be greater than or equal to 20 (got 10)",
            id="system-disk-size",
        ),
        pytest.param(
            pool(volumeIops=2999),
            f"{P}.volumeIops",
            "input should be greater than or equal to 3000 (got 2999)",
            id="iops-range",
        ),
        pytest.param(
            pool(volumeThroughputMiBps=2001),
            f"{P}.volumeThroughputMiBps",
            "input should be less than or equal to 2000 (got 2001)",
            id="throughput-range",
        ),
        pytest.param(
            pool(diskSizeGiB=20, volumeIops=10001),
            f"{P}.volumeIops",
            "10001 is over gp3's 500 IOPS per GiB: a 20 GiB volume takes at most 10000",
            id="iops-per-gib",
        ),
        pytest.param(
            pool(volumeIops=3000, volumeThroughputMiBps=751),
            f"{P}.volumeThroughputMiBps",
            "751 is over gp3's 0.25 MiB/s per IOPS: at 3000 IOPS at most 750 (raise volumeIops)",
            id="throughput-per-iops",
        ),
        pytest.param(
            pool(fastImagePull="yes please"),
            f"{P}.fastImagePull",
            "input should be a valid boolean",
            id="pool-flag-type",
        ),
        # --- taints and labels (parse.py _check_pool, models.py Taint, fields.py) ----------------
        pytest.param(
            pool(taints=[]),
            f"{P}.taints",
            "a GPU pool needs the taint nvidia.com/gpu with effect NO_SCHEDULE or NO_EXECUTE, or any pod lands on "
            "its GPU nodes (the policy pack refuses such a pool); keep it and add yours",
            id="gpu-taint-missing",
        ),
        pytest.param(
            pool(taints=[{"key": "dedicated", "value": "ml", "effect": "NO_SCHEDULE"}]),
            f"{P}.taints",
            "a GPU pool needs the taint nvidia.com/gpu with effect NO_SCHEDULE or NO_EXECUTE",
            id="gpu-taint-missing-among-others",
        ),
        pytest.param(
            pool(taints=[{**GPU, "effect": "PREFER_NO_SCHEDULE"}]),
            f"{P}.taints",
            "a GPU pool needs the taint nvidia.com/gpu with effect NO_SCHEDULE or NO_EXECUTE",
            id="gpu-taint-only-preferred",
        ),
        pytest.param(
            pool(taints=[GPU, {**GPU, "effect": "NO_EXECUTE"}]),
            f"{P}.taints[1]",
            "repeats the taint key nvidia.com/gpu: a pool has one taint per key",
            id="taint-key-twice",
        ),
        pytest.param(
            pool(taints=[GPU, *({"key": f"k{i}", "effect": "NO_SCHEDULE"} for i in range(50))]),
            f"{P}.taints",
            "tuple should have at most 50 items after validation, not 51",
            id="taints-at-most-50",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "", "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].key",
            "string should have at least 1 character",
            id="taint-key-empty",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "k" * 64, "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].key",
            "string should have at most 63 characters",
            id="taint-key-length",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "UPPER.case/x", "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].key",
            "'UPPER.case/x': the prefix before '/' must be a DNS subdomain (a lower-case domain)",
            id="taint-key-prefix",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "-x", "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].key",
            "'-x': the name must be 1-63 characters of letters, digits, '-', '_', '.', starting and ending with a "
            "letter or digit",
            id="taint-key-name",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "team", "value": "a b", "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].value",
            "'a b' must be empty or 1-63 characters of letters, digits, '-', '_', '.', starting and ending with a "
            "letter or digit",
            id="taint-value",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "team", "value": "v" * 64, "effect": "NO_SCHEDULE"}]),
            f"{P}.taints[1].value",
            "string should have at most 63 characters",
            id="taint-value-length",
        ),
        pytest.param(
            pool(taints=[{**GPU, "effect": "NoSchedule"}]),
            f"{P}.taints[0].effect",
            "'NoSchedule' is the Kubernetes spelling; the EKS API wants NO_SCHEDULE",
            id="taint-effect-kubernetes-spelling",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "team", "effect": "NEVER"}]),
            f"{P}.taints[1].effect",
            "'NEVER' is not allowed; use one of NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE",
            id="taint-effect-unknown",
        ),
        pytest.param(
            pool(taints=[GPU, {"key": "team"}]),
            f"{P}.taints[1].effect",
            "is required",
            id="taint-effect-missing",
        ),
        pytest.param(
            pool(labels={"nvidia.com/gpu.present": "no"}),
            f"{P}.labels.nvidia.com/gpu.present",
            "is set by the program itself; choose another label key",
            id="label-reserved",
        ),
        pytest.param(
            pool(labels={"-bad": "x"}),
            f"{P}.labels",
            "'-bad': the name must be 1-63 characters of letters, digits, '-', '_', '.'",
            id="label-key-name",
        ),
        pytest.param(
            pool(labels={"Team.Example/x": "x"}),
            f"{P}.labels",
            "'Team.Example/x': the prefix before '/' must be a DNS subdomain (a lower-case domain)",
            id="label-key-prefix",
        ),
        pytest.param(
            pool(labels={"k" * 64: "x"}),
            f"{P}.labels",
            f"'{'k' * 64}' is longer than 63 characters",
            id="label-key-length",
        ),
        pytest.param(
            pool(labels={"team": ""}),
            f"{P}.labels",
            "label 'team' needs a value: EKS refuses empty node group label values",
            id="label-value-empty",
        ),
        pytest.param(
            pool(labels={"team": "a b"}),
            f"{P}.labels",
            "'a b' must be empty or 1-63 characters of letters, digits, '-', '_', '.'",
            id="label-value",
        ),
        # --- capacity reservations (parse.py _check_pool, models.py) -----------------------------
        pytest.param(
            config(
                {"cb": gpu_pool(capacityType="CAPACITY_BLOCK", availabilityZone=common_az("g5.xlarge"))},
                vpc=vpc_for(common_az("g5.xlarge")),
            ),
            "eks-gpu:gpuNodeGroups.cb.capacityReservationId",
            "is required with capacityType CAPACITY_BLOCK: the launch template targets the reservation",
            id="capacity-block-needs-its-reservation",
        ),
        pytest.param(
            config(
                {
                    "cb": gpu_pool(
                        *pair, capacityType="CAPACITY_BLOCK", capacityReservationId=CB, availabilityZone=pair_az
                    )
                },
                vpc=vpc_for(pair_az),
            ),
            "eks-gpu:gpuNodeGroups.cb.instanceTypes",
            "a CAPACITY_BLOCK pool has exactly one instance type, the reservation's",
            id="capacity-block-one-type",
        ),
        pytest.param(
            config({"cb": gpu_pool(capacityType="CAPACITY_BLOCK", capacityReservationId=CB)}),
            "eks-gpu:gpuNodeGroups.cb.availabilityZone",
            "is required with capacityType CAPACITY_BLOCK: a Capacity Block lives in one AZ",
            id="capacity-block-needs-its-az",
        ),
        pytest.param(
            pool(capacityReservationId=CB),
            f"{P}.capacityReservationId",
            "only applies to capacityType CAPACITY_BLOCK, not ON_DEMAND",
            id="capacity-block-id-on-demand",
        ),
        pytest.param(
            pool(capacityReservationId="cr-1"),
            f"{P}.capacityReservationId",
            "string should match pattern '^cr-[0-9a-f]{8,17}$'",
            id="capacity-block-id-syntax",
        ),
        pytest.param(
            config(
                {"r": gpu_pool(capacityType="SPOT", capacityReservation=CB, availabilityZone=common_az("g5.xlarge"))},
                vpc=vpc_for(common_az("g5.xlarge")),
            ),
            "eks-gpu:gpuNodeGroups.r.capacityReservation",
            "targets an On-Demand Capacity Reservation, so capacityType must be ON_DEMAND, not SPOT",
            id="reservation-spot",
        ),
        pytest.param(
            config(
                {
                    "r": gpu_pool(
                        capacityType="CAPACITY_BLOCK",
                        capacityReservationId=CB,
                        capacityReservation=CB,
                        availabilityZone=common_az("g5.xlarge"),
                    )
                },
                vpc=vpc_for(common_az("g5.xlarge")),
            ),
            "eks-gpu:gpuNodeGroups.r.capacityReservation",
            "so capacityType must be ON_DEMAND, not CAPACITY_BLOCK (a Capacity Block goes in capacityReservationId)",
            id="reservation-capacity-block",
        ),
        pytest.param(
            config(
                {"r": gpu_pool(*pair, capacityReservation=CB, availabilityZone=pair_az)},
                vpc=vpc_for(pair_az),
            ),
            "eks-gpu:gpuNodeGroups.r.instanceTypes",
            "a pool with capacityReservation has exactly one instance type, the reservation's",
            id="reservation-one-type",
        ),
        pytest.param(
            config({"r": gpu_pool(capacityReservation=CB)}),
            "eks-gpu:gpuNodeGroups.r.availabilityZone",
            "is required with capacityReservation: a reservation lives in one AZ",
            id="reservation-needs-its-az",
        ),
        pytest.param(
            pool(capacityReservation="odcr-1"),
            f"{P}.capacityReservation",
            "string should match pattern '^(cr-[0-9a-f]{8,17}|arn:aws[a-z-]*:resource-groups:"
            "[a-z0-9-]+:\\d{12}:group/[\\w.-]{1,128})$' (got 'odcr-1')",
            id="reservation-syntax",
        ),
        # --- instance types against AWS (design/resolve.py _group) -------------------------------
        pytest.param(
            pool(instanceTypes=[not_offered_type()]),
            f"{P}.instanceTypes[0]",
            f"'{not_offered_type()}' exists but is not offered in any available AZ of us-west-2; "
            "choose a type the region offers, or another aws:region",
            id="instance-type-not-offered",
        ),
        pytest.param(
            config(systemNodeGroup={"instanceTypes": ["t3.nope"]}),
            "eks-gpu:systemNodeGroup.instanceTypes[0]",
            "'t3.nope' is not offered in any available AZ of us-west-2 (or does not exist)",
            id="system-instance-type-does-not-exist",
        ),
        pytest.param(
            pool(instanceTypes=[no_gpu_type()]),
            f"{P}.instanceTypes[0]",
            f"'{no_gpu_type()}' has no GPU; a GPU pool needs NVIDIA GPUs",
            id="instance-type-without-gpu",
        ),
        pytest.param(
            config(systemNodeGroup={"instanceTypes": [odd_arch_type()]}),
            "eks-gpu:systemNodeGroup.instanceTypes[0]",
            f"'{odd_arch_type()}' has no architecture EKS AMIs support",
            id="instance-type-architecture",
        ),
        pytest.param(
            config(systemNodeGroup={"instanceTypes": list(mixed_arch_pair())}),
            "eks-gpu:systemNodeGroup.instanceTypes",
            f"mixes CPU architectures ({mixed_arch_pair()[0]} x86_64, {mixed_arch_pair()[1]} arm64); a pool has one",
            id="mixed-architectures",
        ),
        pytest.param(
            pool(amiType="AL2023_ARM_64_NVIDIA"),
            f"{P}.amiType",
            "AL2023_ARM_64_NVIDIA is for arm64 but the instance types are x86_64; use AL2023_x86_64_NVIDIA",
            id="ami-architecture",
        ),
        pytest.param(
            pool(instanceTypes=["g5.xlarge", other_shape_type()]),
            f"{P}.instanceTypes",
            "): the Cluster Autoscaler builds a pool's scale-from-zero template from its first type, and the "
            "accelerator label names one GPU model, so every type of a pool needs the same vCPUs, memory, GPU model "
            "and GPU count; split them into pools",
            id="mixed-node-shapes",
        ),
        # --- where node groups land (design/resolve.py) ------------------------------------------
        pytest.param(
            config(systemNodeGroup={"instanceTypes": list(apart_pair())}),
            "eks-gpu:systemNodeGroup",
            f"no AZ of us-west-2 offers all its instance types ({apart_pair()[0]} in",
            id="types-offered-nowhere-together",
        ),
        pytest.param(
            config({"scarce": gpu_pool(sa_type)}, vpc=pinned(*sa_others)),
            "eks-gpu:gpuNodeGroups.scarce",
            f"the VPC's AZs ({', '.join(sa_others)}) offer not all its instance types ({sa_type} in {sa_az}); they "
            f"are all offered together in {sa_az}",
            id="types-not-in-the-vpc-azs",
        ),
        pytest.param(
            config({"pinned": gpu_pool(availabilityZone=_azs()[2])}, vpc=pinned(*_azs()[:2])),
            "eks-gpu:gpuNodeGroups.pinned.availabilityZone",
            f"'{_azs()[2]}' is not one of the VPC's AZs ({', '.join(_azs()[:2])})",
            id="pool-az-not-in-the-vpc",
        ),
        pytest.param(
            config({"scarce": gpu_pool(sa_type, availabilityZone=sa_others[0])}, vpc=pinned(sa_az, sa_others[0])),
            "eks-gpu:gpuNodeGroups.scarce.availabilityZone",
            f"'{sa_others[0]}' does not offer all the pool's instance types (they are in: {sa_az})",
            id="pool-az-not-offering-its-types",
        ),
        # --- EFA (design/efa.py) -----------------------------------------------------------------
        pytest.param(
            pool(instanceTypes=[no_efa_type()], efa=True),
            f"{P}.instanceTypes[0]",
            f"'{no_efa_type()}' has no EFA, and eks-gpu:gpuNodeGroups.inference.efa is true",
            id="efa-without-efa",
        ),
        pytest.param(
            config({"train": gpu_pool(partial_efa_type(), efa=True)}),
            "eks-gpu:gpuNodeGroups.train.instanceTypes",
            "'{}' takes {} EFA interfaces on {} network cards: not every card has one, a layout this program does "
            "not build".format(partial_efa_type(), *efa_layout(partial_efa_type())),
            id="efa-not-on-every-card",
        ),
        pytest.param(
            config({"train": gpu_pool(*layout_pair, efa=True)}),
            "eks-gpu:gpuNodeGroups.train.instanceTypes",
            "mixes EFA layouts ({}: {} EFA on {} cards, {}: {} EFA on {} cards); an EFA pool has one".format(
                layout_pair[0], *efa_layout(layout_pair[0]), layout_pair[1], *efa_layout(layout_pair[1])
            ),
            id="efa-mixed-layouts",
        ),
        # --- the autoscaler (design/autoscaler.py, models.py Autoscaler) -------------------------
        pytest.param(
            config(autoscaler={"imageTag": "1.35.0"}),
            "eks-gpu:autoscaler.imageTag",
            "string should match pattern '^v1\\.\\d+\\.\\d+$'",
            id="autoscaler-image-syntax",
        ),
        pytest.param(
            config(autoscaler={"chartVersion": "latest"}),
            "eks-gpu:autoscaler.chartVersion",
            "string should match pattern '^\\d+\\.\\d+\\.\\d+$' (got 'latest')",
            id="autoscaler-chart-version",
        ),
        pytest.param(
            config(autoscaler={"expander": "price"}),
            "eks-gpu:autoscaler.expander",
            "'price' is not allowed; use one of least-waste, priority, random, most-pods",
            id="autoscaler-expander",
        ),
        pytest.param(
            config(autoscaler={"expander": "priority"}),
            "eks-gpu:autoscaler.priorities",
            "is required with expander priority",
            id="priorities-required",
        ),
        pytest.param(
            config(autoscaler={"priorities": {"inference": 1}}),
            "eks-gpu:autoscaler.priorities",
            "only applies to expander priority, not least-waste",
            id="priorities-without-priority-expander",
        ),
        pytest.param(
            config(autoscaler={"expander": "priority", "priorities": {"nope": 1}}),
            "eks-gpu:autoscaler.priorities.nope",
            "is not a node group; the node groups are: inference, system",
            id="priorities-unknown-group",
        ),
        pytest.param(
            config(autoscaler={"expander": "priority", "priorities": {"inference": -1}}),
            "eks-gpu:autoscaler.priorities.inference",
            "input should be greater than or equal to 0 (got -1)",
            id="priorities-negative",
        ),
        pytest.param(
            config(autoscaler={"scaleDownUnneededTime": "ten"}),
            "eks-gpu:autoscaler.scaleDownUnneededTime",
            "'ten' is not a duration such as 10m, 600s or 1h",
            id="autoscaler-duration",
        ),
        pytest.param(
            config(autoscaler={"extraArgs": {"--cloud-provider": "gce"}}),
            "eks-gpu:autoscaler.extraArgs.--cloud-provider",
            "is set by the chart (cloudProvider: aws); set it there instead",
            id="autoscaler-reserved-flag",
        ),
        pytest.param(
            config(autoscaler={"extraArgs": {"expander": "random"}}),
            "eks-gpu:autoscaler.extraArgs.expander",
            "is set by eks-gpu:autoscaler.expander; set it there instead",
            id="autoscaler-flag-of-a-key",
        ),
        # --- the Auto Scaling group's 50 tags (design/tags.py) -----------------------------------
        pytest.param(
            pool(labels={f"team.example.com/l{i}": "x" for i in range(50)}),
            P,
            "but an ASG holds at most 50: drop",
            id="asg-tag-budget",
        ),
        # --- in the cluster (design/kubernetes.py, models.py) ------------------------------------
        pytest.param(
            config({"a": gpu_pool(), "b": gpu_pool()}, gpuPod={"enabled": True}),
            "eks-gpu:gpuPod.nodeGroup",
            "is required with several pools; the pools are: a, b",
            id="gpu-pod-pool-required",
        ),
        pytest.param(
            config(gpuPod={"enabled": True, "nodeGroup": "training"}),
            "eks-gpu:gpuPod.nodeGroup",
            "'training' is not a pool; the pools are: inference",
            id="gpu-pod-pool-unknown",
        ),
        pytest.param(
            config(gpuPod={"enabled": True, "gpus": gpus_per_node() + 1}),
            "eks-gpu:gpuPod.gpus",
            f"{gpus_per_node() + 1} GPUs do not fit on one node of pool inference ({gpus_per_node()} per node)",
            id="gpu-pod-gpus-per-node",
        ),
        pytest.param(
            config(gpuPod={"enabled": True}, autoscaler={"enabled": False}),
            f"{P}.desiredSize",
            "is 0 while eks-gpu:gpuPod runs on this pool and the autoscaler is disabled: nothing would start a node",
            id="gpu-pod-nothing-starts-a-node",
        ),
        pytest.param(
            config(gpuPod={"enabled": True}, gpuNamespace={"gpuQuota": 0}),
            "eks-gpu:gpuNamespace.gpuQuota",
            "0 is below the pod's 1 GPUs",
            id="gpu-quota-below-the-pod",
        ),
        pytest.param(
            config(gpuNamespace={"gpuQuota": -1}),
            "eks-gpu:gpuNamespace.gpuQuota",
            "input should be greater than or equal to 0 (got -1)",
            id="gpu-quota-negative",
        ),
        pytest.param(
            config(gpuNamespace={"name": "GPU_Work"}),
            "eks-gpu:gpuNamespace.name",
            "string should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' (got 'GPU_Work')",
            id="namespace-name",
        ),
        pytest.param(
            config(gpuNamespace={"name": "n" * 64}),
            "eks-gpu:gpuNamespace.name",
            "string should have at most 63 characters",
            id="namespace-name-length",
        ),
        pytest.param(
            config(gpuNamespace={"podSecurity": "Restricted"}),
            "eks-gpu:gpuNamespace.podSecurity",
            "'Restricted' is not allowed; use one of restricted, baseline, privileged",
            id="namespace-pod-security-level",
        ),
        pytest.param(
            config(gpuNamespace={"egressCidrs": ["10.0.0.1/8"]}),
            "eks-gpu:gpuNamespace.egressCidrs[0]",
            "'10.0.0.1/8' is not an IPv4 CIDR block with zero host bits",
            id="namespace-egress-cidr",
        ),
        pytest.param(
            config(gpuPod={"image": "nvidia/cuda:latest"}),
            "eks-gpu:gpuPod.image",
            "'nvidia/cuda:latest' is not pinned: name a tag (not latest) or a digest, e.g. ",
            id="gpu-pod-image-pinned",
        ),
        pytest.param(
            config(gpuPod={"gpus": 0}),
            "eks-gpu:gpuPod.gpus",
            "input should be greater than or equal to 1 (got 0)",
            id="gpu-pod-gpus-at-least-1",
        ),
        pytest.param(
            config(gpuPod={"command": []}),
            "eks-gpu:gpuPod.command",
            "must list at least 1 item (got 0)",
            id="gpu-pod-command",
        ),
        pytest.param(
            config(devicePlugin={"chartVersion": "v0.19"}),
            "eks-gpu:devicePlugin.chartVersion",
            "string should match pattern '^\\d+\\.\\d+\\.\\d+$' (got 'v0.19')",
            id="device-plugin-chart-version",
        ),
        pytest.param(
            config(gpuMetrics={"exporter": "prometheus"}),
            "eks-gpu:gpuMetrics.exporter",
            "'prometheus' is not allowed; use one of cloudwatch, dcgm-exporter, none",
            id="gpu-metrics-exporter",
        ),
        pytest.param(
            config(gpuMetrics={"chartVersion": "4.8"}),
            "eks-gpu:gpuMetrics.chartVersion",
            "string should match pattern '^\\d+\\.\\d+\\.\\d+$' (got '4.8')",
            id="gpu-metrics-chart-version",
        ),
        pytest.param(
            config(storage={"ebsCsiDriver": False}),
            "eks-gpu:storage.defaultStorageClass",
            "needs eks-gpu:storage.ebsCsiDriver: the StorageClass's provisioner is the EBS CSI driver",
            id="storage-class-needs-the-driver",
        ),
        pytest.param(
            config(storage={"reclaimPolicy": "Recycle"}),
            "eks-gpu:storage.reclaimPolicy",
            "'Recycle' is not allowed; use one of Delete, Retain",
            id="storage-reclaim-policy",
        ),
        pytest.param(
            config(budget={"maxUsdPerHour": 0}),
            "eks-gpu:budget.maxUsdPerHour",
            "input should be greater than 0 (got 0)",
            id="budget-positive",
        ),
        pytest.param(
            config(budget={"maxUsdPerHour": "12"}),
            "eks-gpu:budget.maxUsdPerHour",
            "input should be a valid number (got '12')",
            id="budget-a-number",
        ),
        pytest.param(
            config(budget={"maxUsdPerHour": float("inf")}),
            "eks-gpu:budget.maxUsdPerHour",
            "input should be a finite number (got inf)",
            id="budget-finite",
        ),
        # --- the NCCL test (design/kubernetes.py _nccl_test) -------------------------------------
        pytest.param(
            config(ncclTest={"enabled": True}),
            "eks-gpu:ncclTest.nodeGroup",
            "names no EFA pool; the EFA pools are: none (set efa: true on a pool)",
            id="nccl-no-efa-pool",
        ),
        pytest.param(
            config(
                {**efa_pools(), "train2": gpu_pool(efa_type(), efa=True, maxSize=2)},
                ncclTest={"enabled": True},
            ),
            "eks-gpu:ncclTest.nodeGroup",
            "is required with several EFA pools; the EFA pools are: train, train2",
            id="nccl-pool-required",
        ),
        pytest.param(
            config(efa_pools(), ncclTest={"enabled": True, "nodeGroup": "inference"}),
            "eks-gpu:ncclTest.nodeGroup",
            "'inference' is not a pool with efa: true; the EFA pools are: train",
            id="nccl-pool-without-efa",
        ),
        pytest.param(
            config(efa_pools(amiType="BOTTLEROCKET_x86_64_NVIDIA"), ncclTest={"enabled": True}),
            "eks-gpu:gpuNodeGroups.train.amiType",
            "is BOTTLEROCKET_x86_64_NVIDIA while eks-gpu:ncclTest runs on this pool: the test asks for the 2 MiB huge "
            "pages",
            id="nccl-bottlerocket",
        ),
        pytest.param(
            config(efa_pools(maxSize=1), ncclTest={"enabled": True}),
            "eks-gpu:gpuNodeGroups.train.maxSize",
            "is 1 while eks-gpu:ncclTest needs 2 nodes of this pool; set it to 2 or more, or disable the test",
            id="nccl-max-size",
        ),
        pytest.param(
            config(efa_pools(), ncclTest={"enabled": True}, autoscaler={"enabled": False}),
            "eks-gpu:gpuNodeGroups.train.desiredSize",
            "is 0 while eks-gpu:ncclTest needs 2 nodes and the autoscaler is disabled: nothing would start them",
            id="nccl-desired-size",
        ),
        pytest.param(
            config(efa_pools(), ncclTest={"enabled": True, "image": "public.ecr.aws/hpc-cloud/nccl-tests"}),
            "eks-gpu:ncclTest.image",
            "'public.ecr.aws/hpc-cloud/nccl-tests' is not pinned: name a tag (not latest) or a digest",
            id="nccl-image-pinned",
        ),
        # --- the account's vCPU quotas (design/quotas.py) ----------------------------------------
        pytest.param(
            Stack(pool(minSize=1, desiredSize=1), quota_zero("L-DB2E81BA")),
            f"{P}.desiredSize",
            f"starting 1 g5.xlarge needs {aws_data.shape('g5.xlarge')[0]} vCPUs of 'Running On-Demand G and VT "
            "instances' (L-DB2E81BA; node groups inference), but the account's quota in us-west-2 is 0: the node "
            "group would fail after EKS's create timeout; request an increase: aws service-quotas "
            "request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA --desired-value "
            f"{2 * aws_data.shape('g5.xlarge')[0]} --region us-west-2, or start at desiredSize 0",
            id="quota-gpu-pool",
        ),
        pytest.param(
            Stack(config(), quota_zero("L-1216C47A")),
            "eks-gpu:systemNodeGroup.desiredSize",
            "vCPUs of 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' (L-1216C47A; node groups "
            "system), but the account's quota in us-west-2 is 0",
            id="quota-system",
        ),
    ]


RULES = _rules()


def test_the_base_stack_runs_clean() -> None:
    result = run(config())
    assert result.warnings == []


def _problems(stack: dict[str, Any] | Stack) -> dict[str, str]:
    """The problems the program reports for ``stack``, in an offline account prepared for it."""
    case = stack if isinstance(stack, Stack) else Stack(stack)
    with offline_account(case.config["aws:region"]) as account:
        extra = case.prepare(account) if case.prepare else {}
        return problems_of({**case.config, **extra}, account=account, stack=case.name)


@pytest.mark.parametrize(("stack", "key", "message"), RULES)
def test_each_rule_alone_names_its_key_and_reason(stack: dict[str, Any] | Stack, key: str, message: str) -> None:
    found = _problems(stack)
    assert list(found) == [key]
    assert message in found[key]


def test_a_stack_without_a_region_is_refused_before_aws_is_asked() -> None:
    """The offline engine refuses to run without ``aws:region`` itself, so the program's own rule is
    reached through its entry point, as ``__main__.py`` calls it with the region Pulumi gives it."""
    raw = {"endpointPublicAccessCidrs": ["198.18.0.20/32"]}
    with pytest.raises(ConfigError) as err:
        load(raw, stack="dev", region=None, today=calendar().updated)
    assert [(p.key, p.message) for p in err.value.problems] == [
        ("aws:region", "is required: the AWS region to build in, e.g. us-west-2")
    ]


ENUM_RULES = [r for r in RULES if "is not allowed; use one of" in r.values[2] and not r.values[2].endswith(",")]
assert len(ENUM_RULES) == 7, "the rules above lost their enum cases"  # an empty list would run nothing


@pytest.mark.parametrize(("stack", "key", "message"), ENUM_RULES)
def test_a_value_outside_its_set_gets_exactly_the_allowed_list(
    stack: dict[str, Any] | Stack, key: str, message: str
) -> None:
    """The whole reason, nothing appended: the generic "(got ...)" suffix is for pydantic's own errors."""
    assert _problems(stack) == {key: message}
