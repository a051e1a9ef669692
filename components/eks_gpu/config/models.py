"""The stack file's keys as frozen pydantic models: meaning, default and constraint of each."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
)
from pydantic.alias_generators import to_camel

from eks_gpu.config.enums import GPU_AMI_TYPES, SYSTEM_AMI_TYPES, AmiType, CapacityType, TaintEffect
from eks_gpu.config.fields import (
    DNS_LABEL,
    EFFECT_HINTS,
    GPU_AMI_HINTS,
    SYSTEM_AMI_HINTS,
    Cidr,
    ClientCidr,
    InstanceTypes,
    Labels,
    PrincipalArn,
    SecurityGroupId,
    Size,
    check_label_key,
    check_label_value,
    enum_field,
    enum_field_values,
    fail,
)
from eks_gpu.facts.aws_limits import GP3_IOPS, GP3_THROUGHPUT_MIBPS, LOG_RETENTION_DAYS

DEFAULT_KUBERNETES_VERSION = "1.35"
"""The version a stack gets without ``kubernetesVersion``. A constant, not "the newest known": a
default that moved with the calendar would upgrade every stack that relies on it."""


class Model(BaseModel):
    """Every config object: frozen, unknown keys refused, camelCase keys as in the stack file."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


# --- versions: EKS add-ons and node AMI releases ---------------------------------------------

ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
"""An EKS add-on version as DescribeAddonVersions spells it (``v1.19.2-eksbuild.1``)."""
AL2023_RELEASE = re.compile(r"^(?P<minor>1\.\d+)\.\d+-(?P<date>20\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]))$")
"""An EKS-optimized AL2023 AMI release (``1.35.2-20260304``): the kubelet version, then the build date."""
BOTTLEROCKET_RELEASE = re.compile(r"^1\.\d+\.\d+-[0-9a-f]{8}$")
"""A Bottlerocket release (``1.58.0-c5c37032``): the Bottlerocket version, then its commit."""


def _addon_version(value: str) -> str:
    if not ADDON_VERSION.match(value):
        raise fail(
            "value",
            f"'{value}' is not an EKS add-on version such as v1.19.2-eksbuild.1 "
            "(aws eks describe-addon-versions --addon-name NAME --kubernetes-version VERSION lists them)",
        )
    return value


def _ami_release(value: str) -> str:
    if not (AL2023_RELEASE.match(value) or BOTTLEROCKET_RELEASE.match(value)):
        raise fail(
            "value",
            f"'{value}' is not an EKS AMI release version: 1.35.2-20260304 (AL2023: kubelet version and build "
            "date) or 1.58.0-c5c37032 (Bottlerocket: its version and commit)",
        )
    return value


def _al2023_release(value: str) -> str:
    if not AL2023_RELEASE.match(value):
        raise fail("value", f"'{value}' is not an AL2023 AMI release version such as 1.35.2-20260304")
    return value


def is_bottlerocket_release(value: str) -> bool:
    """A Bottlerocket release, and not an AL2023 one (whose build date is eight hex digits too)."""
    return bool(BOTTLEROCKET_RELEASE.match(value)) and not AL2023_RELEASE.match(value)


def _bottlerocket_release(value: str) -> str:
    if not is_bottlerocket_release(value):
        raise fail("value", f"'{value}' is not a Bottlerocket release version such as 1.58.0-c5c37032")
    return value


AmiRelease = Annotated[str, AfterValidator(_ami_release)]


class AddonPin(Model):
    """One EKS add-on's version, pinned."""

    version: Annotated[str, AfterValidator(_addon_version)] | None = None
    """The add-on version (``v1.19.2-eksbuild.1``), one EKS offers for the cluster's Kubernetes version.
    Default: EKS's default version for that Kubernetes version, looked up at every run, so a Kubernetes
    upgrade moves the add-on with it and a preview shows when EKS's default moves."""


class Addons(Model):
    """Per EKS add-on the stack installs, a pinned version ("pin where you must"). Keys are the add-on
    names as EKS spells them; a pin of an add-on the stack does not install is ignored."""

    vpc_cni: AddonPin = Field(AddonPin(), alias="vpc-cni")
    kube_proxy: AddonPin = Field(AddonPin(), alias="kube-proxy")
    coredns: AddonPin = Field(AddonPin(), alias="coredns")
    eks_pod_identity_agent: AddonPin = Field(AddonPin(), alias="eks-pod-identity-agent")
    eks_node_monitoring_agent: AddonPin = Field(AddonPin(), alias="eks-node-monitoring-agent")
    aws_ebs_csi_driver: AddonPin = Field(AddonPin(), alias="aws-ebs-csi-driver")
    amazon_cloudwatch_observability: AddonPin = Field(AddonPin(), alias="amazon-cloudwatch-observability")

    def pins(self) -> dict[str, str]:
        """Add-on name (EKS's spelling) -> its pinned version, for the pinned ones."""
        out: dict[str, str] = {}
        for name, field_info in type(self).model_fields.items():
            version = getattr(self, name).version
            if version is not None:
                out[str(field_info.alias)] = version
        return out


class AmiReleases(Model):
    """The stack's default node AMI release per AMI family; a pool's ``amiReleaseVersion`` overrides it."""

    al2023: Annotated[str, AfterValidator(_al2023_release)] | None = None
    """Release of every AL2023 node group (``1.35.2-20260304``; its Kubernetes minor must be the cluster's).
    Default none: EKS's latest at creation, kept until changed here or by a Kubernetes upgrade."""
    bottlerocket: Annotated[str, AfterValidator(_bottlerocket_release)] | None = None
    """Release of every Bottlerocket node group (``1.58.0-c5c37032``). Default none, as for al2023."""


# --- node groups ------------------------------------------------------------------------------


def _taint_key(value: str) -> str:
    check_label_key(value, max_length=63)
    return value


def _taint_value(value: str) -> str:
    check_label_value(value)
    return value


class Taint(Model):
    """A taint on every node of a pool; pods need the matching toleration to land there.

    The same object gives the node group its taint and the pods their toleration.
    """

    key: Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_taint_key)]
    """Taint key, 1-63 characters, a Kubernetes qualified name (``nvidia.com/gpu``)."""
    value: Annotated[str, Field(max_length=63), AfterValidator(_taint_value)] = ""
    """Taint value, 0-63 characters. Default empty."""
    effect: Annotated[TaintEffect, enum_field(TaintEffect, EFFECT_HINTS)]
    """``NO_SCHEDULE``, ``NO_EXECUTE`` or ``PREFER_NO_SCHEDULE``, as the EKS API spells it."""


GPU_TAINT_KEY = "nvidia.com/gpu"
"""The taint key every GPU pool carries: only pods that tolerate it land on GPU nodes."""
DEFAULT_GPU_TAINTS = (Taint(key=GPU_TAINT_KEY, value="true", effect=TaintEffect.NO_SCHEDULE),)
"""The taint a GPU pool gets when ``taints`` is omitted: only GPU pods land on GPU nodes."""

MAX_TAINTS = 50
"""EKS allows at most 50 taints per node group (EKS API, ``Taint``)."""


KARPENTER_CAPACITY_TYPES = ("reserved", "spot", "on-demand")
"""Karpenter's ``karpenter.sh/capacity-type`` values (karpenter-provider-aws ``v1.14/concepts/scheduling.md``)."""
CONSOLIDATION_POLICIES = ("WhenEmpty", "WhenEmptyOrUnderutilized")
"""NodePool ``disruption.consolidationPolicy`` values offered (the CRD also has ``Balanced``, new in 1.14)."""
INSTANCE_FAMILY = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""An EC2 instance family, the part of a type's name before the dot (``g6``, ``p4d``, ``p6-b200``): Karpenter's
``karpenter.k8s.aws/instance-family`` label."""
MAX_FAMILIES = 20
KARPENTER_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")
"""A NodePool duration (``10m``, ``1h30m``): the CRD's pattern for ``terminationGracePeriod``
(``karpenter-crd-1.14.1/templates/karpenter.sh_nodepools.yaml``)."""


def _karpenter_duration(never: bool) -> Any:
    def check(value: str) -> str:
        if (never and value == "Never") or KARPENTER_DURATION.match(value):
            return value
        hint = " or Never" if never else ""
        raise fail("duration", f"'{value}' is not a duration such as 10m, 90s or 1h30m{hint}")

    return AfterValidator(check)


def _capacity_types(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise fail("capacity_types", "lists a capacity type twice; each of reserved, spot, on-demand at most once")
    ordered = tuple(t for t in KARPENTER_CAPACITY_TYPES if t in value)
    if value != ordered:
        raise fail(
            "capacity_types",
            f"lists [{', '.join(value)}], but the order is not Karpenter's to take: it always tries reserved, then "
            f"spot, then on-demand, whatever the order listed; write [{', '.join(ordered)}]",
        )
    return value


def _families(value: tuple[str, ...]) -> tuple[str, ...]:
    for name in value:
        if "." in name:
            raise fail(
                "instance_families",
                f"'{name}' is an instance type, not a family (g6); list types in the pool's instanceTypes instead",
            )
        if not INSTANCE_FAMILY.match(name):
            raise fail("instance_families", f"'{name}' is not an EC2 instance family such as g6, p5 or p6-b200")
    if len(set(value)) != len(value):
        raise fail("instance_families", "lists an instance family twice")
    return value


def _gpu_name(value: str) -> str:
    if not re.match(r"^[a-z0-9]+(-[a-z0-9]+)*$", value):
        hint = value.lower().replace(" ", "-")
        raise fail("gpu_name", f"'{value}' is not as Karpenter's instance-gpu-name label spells it: write {hint}")
    return value


def _budget_nodes(value: str) -> str:
    if not re.match(r"^((100|[0-9]{1,2})%|[0-9]+)$", value):
        raise fail("budget", f"'{value}' is not a node count such as 1 or a percentage such as 10%")
    return value


class KarpenterPool(Model):
    """How Karpenter provisions a GPU pool (``eks-gpu:provisioner: karpenter``): its NodePool's capacity
    types and disruption settings. ``maxSize`` becomes the NodePool's limits; there is no minimum."""

    capacity_types: Annotated[
        tuple[Annotated[str, enum_field_values(KARPENTER_CAPACITY_TYPES)], ...],
        Field(min_length=1),
        AfterValidator(_capacity_types),
    ] = ("on-demand",)
    """The capacity types the pool may launch as, a non-empty subset of ``reserved`` (the reservations of
    ``capacityReservationIds``), ``spot``, ``on-demand``, listed in that order: Karpenter always tries
    reserved, then spot, then on-demand, whatever the order (karpenter-provider-aws
    ``v1.14/concepts/nodepools.md``, "Capacity Type"), so another order is refused. Default ``[on-demand]``."""
    capacity_reservation_ids: Annotated[
        tuple[Annotated[str, Field(pattern=r"^cr-[0-9a-f]{8,17}$")], ...], Field(max_length=30)
    ] = ()
    """On-Demand Capacity Reservations or Capacity Blocks (``cr-...``, at most 30) the pool launches
    into; required when ``capacityTypes`` lists ``reserved``, refused otherwise. Default none."""
    consolidation_policy: Annotated[str, enum_field_values(CONSOLIDATION_POLICIES)] = "WhenEmpty"
    """``WhenEmpty`` (default: only nodes without running pods are removed, never one under a GPU job) or
    ``WhenEmptyOrUnderutilized`` (also moves pods off underused nodes: it evicts running jobs)."""
    consolidate_after: Annotated[str, _karpenter_duration(never=True)] = "10m"
    """How long a node stays empty (or underused) before Karpenter removes it: a duration (``10m``,
    ``1h30m``) or ``Never``. Default ``10m``."""
    disruption_budget: Annotated[str, AfterValidator(_budget_nodes)] = "1"
    """How many of the pool's nodes Karpenter may disrupt at once: a count (``1``) or a percentage
    (``10%``). Default ``1``."""
    expire_after: Annotated[str, _karpenter_duration(never=True)] = "Never"
    """Node lifetime before Karpenter replaces it: a duration (``720h``) or ``Never``. Default ``Never``:
    no GPU job is killed by expiry. Drift (a new AMI release, a changed pool) still replaces nodes,
    draining them; only the pod annotation ``karpenter.sh/do-not-disrupt: "true"`` or a
    PodDisruptionBudget holds a running job."""
    termination_grace_period: Annotated[str, _karpenter_duration(never=False)] | None = None
    """How long a draining node waits for its pods before they are killed, even pods that a
    PodDisruptionBudget or ``karpenter.sh/do-not-disrupt`` protect (``24h``). Default none: it waits
    for ever."""
    instance_families: Annotated[
        tuple[str, ...],
        Field(max_length=MAX_FAMILIES),
        AfterValidator(_families),
    ] = ()
    """Instance families (``g6``, ``gr6``, ``p5``) instead of the pool's ``instanceTypes``: the pool gets
    every type of those families the region offers that has NVIDIA GPUs of one model and count (narrowed
    by ``gpuName`` and ``gpuCount``), read from AWS at each preview and listed in the NodePool, so the
    plan shows exactly what Karpenter may launch. At most 20; exclusive with ``instanceTypes``. Default
    none."""
    gpu_name: Annotated[str, AfterValidator(_gpu_name)] | None = None
    """Only types whose GPU is this model, as Karpenter's ``karpenter.k8s.aws/instance-gpu-name`` label
    spells it (lower case, spaces as dashes: ``l4``, ``l40s``, ``a10g``, ``h100``). Only with
    ``instanceFamilies``. Default: any model (the families' types must then share one)."""
    gpu_count: Annotated[int, Field(ge=1, le=16)] | None = None
    """Only types with this many GPUs per node (``karpenter.k8s.aws/instance-gpu-count``), 1-16. Only
    with ``instanceFamilies``. Default: any count (the families' types must then share one)."""


class Sizes(Model):
    min_size: Size = 0
    desired_size: Size | None = None
    max_size: Size = 1

    @property
    def desired(self) -> int:
        """The desired size, defaulting to ``minSize``."""
        return self.min_size if self.desired_size is None else self.desired_size


class GpuPool(Sizes):
    """One GPU managed node group, keyed by a stable name in ``eks-gpu:gpuNodeGroups``."""

    instance_types: InstanceTypes = ()
    """EC2 instance types, all with NVIDIA GPUs of one model and count, one architecture. Required,
    except for a Karpenter pool that names ``karpenter.instanceFamilies`` instead."""
    ami_type: Annotated[AmiType | None, enum_field(AmiType, GPU_AMI_HINTS, GPU_AMI_TYPES)] = None
    """An NVIDIA AMI type of the pool's architecture. Default: AL2023 NVIDIA of that architecture."""
    capacity_type: Annotated[CapacityType, enum_field(CapacityType)] = CapacityType.ON_DEMAND
    """``ON_DEMAND`` (default), ``SPOT`` or ``CAPACITY_BLOCK`` (needs ``capacityReservationId``)."""
    capacity_reservation_id: Annotated[str | None, Field(pattern=r"^cr-[0-9a-f]{8,17}$")] = None
    """The Capacity Block reservation (``cr-...``); only with ``capacityType: CAPACITY_BLOCK``."""
    capacity_reservation: Annotated[
        str | None,
        Field(pattern=r"^(cr-[0-9a-f]{8,17}|arn:aws[a-z-]*:resource-groups:[a-z0-9-]+:\d{12}:group/[\w.-]{1,128})$"),
    ] = None
    """An On-Demand Capacity Reservation (``cr-...``) or a capacity reservation resource group's ARN
    the pool's instances launch into; ``ON_DEMAND`` pools only, with ``availabilityZone`` (the
    reservation's). Default none (open: any matching reservation is used)."""
    availability_zone: str | None = None
    """The one AZ (by name) the pool's nodes live in, one of the VPC's. Default: every VPC AZ that
    offers the pool's types. Required with ``CAPACITY_BLOCK``: the reservation's AZ."""
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
    volume_throughput_mib_ps: Annotated[
        int, Field(ge=GP3_THROUGHPUT_MIBPS[0], le=GP3_THROUGHPUT_MIBPS[1], alias="volumeThroughputMiBps")
    ] = 500
    """Provisioned throughput of the pool's gp3 image volume (root on AL2023, data on Bottlerocket),
    MiB/s, 125-2000 and at most IOPS/4. Default 500: a multi-GB CUDA image unpacks about 4x faster
    than at gp3's baseline 125. Over 125 it is billed per MiB/s-month (the plan shows it)."""
    volume_iops: Annotated[int, Field(ge=GP3_IOPS[0], le=GP3_IOPS[1])] = GP3_IOPS[0]
    """Provisioned IOPS of that volume, 3000-80000 and at most 500 per GiB. Default 3000 (gp3's
    baseline, free)."""
    efa: bool = False
    """Multi-node training: one EFA interface per network card of the type, a ``cluster`` placement
    group, one AZ, a security group open to itself, the EFA device plugin. Default false."""
    fast_image_pull: bool = True
    """AL2023 pools: nodeadm's ``FastImagePull`` feature gate (SOCI parallel pull and unpack of
    image layers). Default true. Bottlerocket pools ignore it."""
    ami_release_version: AmiRelease | None = None
    """The pool's AMI release (``1.35.2-20260304`` AL2023, ``1.58.0-c5c37032`` Bottlerocket), of its
    AMI family and, for AL2023, the cluster's Kubernetes minor. Default ``amiReleaseVersion.<family>``,
    else none (EKS's latest at creation, kept). A change replaces every node, one at a time."""
    karpenter: KarpenterPool | None = None
    """With ``eks-gpu:provisioner: karpenter``: the pool's NodePool settings (capacity types,
    reservations, disruption). Default: Karpenter's defaults of the program (on-demand, ``WhenEmpty``).
    Refused without ``provisioner: karpenter``."""


class SystemNodeGroup(Sizes):
    """The small untainted on-demand node group where CoreDNS and the controllers run."""

    instance_types: InstanceTypes = ("t3.medium",)
    """EC2 instance types, non-empty, one architecture. Default ``[t3.medium]``."""
    ami_type: Annotated[AmiType | None, enum_field(AmiType, SYSTEM_AMI_HINTS, SYSTEM_AMI_TYPES)] = None
    """A standard (non-GPU) AMI type. Default AL2023 standard of the instance types' architecture."""
    min_size: Size = 1
    """Fewest nodes, >= 1: CoreDNS and the controllers must always have a node. Default 1."""
    desired_size: Size | None = None
    """Nodes at creation, minSize..maxSize. Default minSize."""
    max_size: Size = 2
    """Most nodes, >= desiredSize. Default 2."""
    disk_size_gib: Annotated[int, Field(ge=20, le=16384, alias="diskSizeGiB")] = 50
    """Encrypted gp3 root volume in GiB, 20-16384. Default 50."""
    ami_release_version: AmiRelease | None = None
    """The system group's AMI release, as for a GPU pool. Default ``amiReleaseVersion.<family>``, else none."""


# --- network ----------------------------------------------------------------------------------


class NewVpc(Model):
    """Build a VPC: public and private subnets in ``azCount`` AZs, NAT gateways for egress."""

    cidr: Cidr = "10.0.0.0/16"
    """VPC CIDR block, a private IPv4 range from /16 to /20. Default ``10.0.0.0/16``."""
    az_count: Annotated[int, Field(ge=2, le=6)] = 3
    """Availability Zones to span, 2-6 (EKS needs two at least). Default 3."""
    availability_zones: Annotated[tuple[str, ...] | None, Field(min_length=2, max_length=6)] = None
    """The AZs to span, by name. Default: chosen for the pools (docs/operations.md, "Where pools land").
    Pin them once a stack is up: a new pool then never moves the VPC's subnets."""
    nat_gateways: Annotated[Literal["single", "perAz"], enum_field_values(("single", "perAz"))] = "single"
    """``single`` (one NAT gateway, cheapest; default) or ``perAz`` (one per AZ, survives an AZ loss)."""


class ExistingVpc(Model):
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


VPC_KINDS: dict[str, type[BaseModel]] = {"new": NewVpc, "existing": ExistingVpc}
VpcConfig = Annotated[
    Annotated[NewVpc, Tag("new")] | Annotated[ExistingVpc, Tag("existing")],
    Discriminator(_vpc_kind),
]


SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
"""A subnet id (``subnet-...``)."""


class ExistingCluster(Model):
    """GPU pools on an EKS cluster that exists already (README, "GPU pools on an existing cluster").

    The program reads the cluster (``aws.eks.getCluster``: version, VPC, subnets, endpoint, CA,
    security group, authentication mode) and builds only what a GPU platform adds; it never changes the
    cluster's own settings, network, access entries or its ``vpc-cni``, ``kube-proxy`` and ``coredns``
    add-ons. The keys that configure those (``vpc``, ``clusterName``, ``kubernetesVersion``, the
    ``endpoint*`` keys, ``clusterAdmins``, ``clusterCreatorAdmin``, ...) are refused beside it."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]*$")]
    """The EKS cluster's name, in the stack's region (``aws:region``). Required."""
    subnet_ids: Annotated[tuple[SubnetId, ...], Field(min_length=2)] | None = None
    """The subnets (``subnet-...``) the program's node groups use, subnets of the cluster's VPC in two
    or more AZs, with egress (a NAT gateway, or VPC endpoints). Default: the cluster's own subnets
    whose default route does not go to an internet gateway (its private ones)."""


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
        raise fail("image", f"'{value}' is not pinned: name a tag (not latest) or a digest, e.g. {CUDA_IMAGE}")
    return value


class DevicePlugin(Model):
    """The NVIDIA device plugin: advertises ``nvidia.com/gpu`` on AL2023 NVIDIA nodes."""

    enabled: bool = True
    """Install it on the AL2023 NVIDIA pools (Bottlerocket NVIDIA nodes have it built in and never get it).
    Default true. Set false where the cluster runs its own (NVIDIA's device plugin, or the GPU Operator's):
    two plugins would both register ``nvidia.com/gpu`` on the same nodes. Then that one must run on these
    pools (tolerate their taints), or their GPUs are never advertised and GPU pods, the smoke test's too,
    stay Pending."""

    chart_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = DEVICE_PLUGIN_CHART_VERSION
    """``nvidia-device-plugin`` chart version, ``X.Y.Z``. Default the tested one."""


POD_SECURITY_LEVELS = ("restricted", "baseline", "privileged")
"""The Pod Security Standards' levels (Kubernetes docs, "Pod Security Standards"), strictest first."""
ANYWHERE = "0.0.0.0/0"


class GpuNamespace(Model):
    """The namespace GPU workloads run in: its Pod Security level, GPU quota, default requests and
    network policies (docs/operations.md, "Running your workloads")."""

    name: Annotated[str, Field(max_length=63, pattern=rf"^{DNS_LABEL}$")] = "gpu-workloads"
    """Namespace name, a DNS label. Default ``gpu-workloads``."""
    gpu_quota: Size | None = None
    """Most GPUs the namespace's pods may request together. Default: every pool at maxSize."""
    pod_security: Annotated[str, enum_field_values(POD_SECURITY_LEVELS)] = "restricted"
    """Pod Security level enforced on the namespace's pods: ``restricted`` (default: non-root,
    no privilege escalation, every capability dropped, a seccomp profile), ``baseline`` (admits
    images that run as root; still no privileged pods, host namespaces or host paths) or
    ``privileged`` (nothing refused)."""
    egress_cidrs: tuple[Cidr, ...] = (ANYWHERE,)
    """IPv4 CIDRs the namespace's pods may send to, on any port, beyond what they always may (the
    cluster's DNS, each other, the Pod Identity agent). Default ``[0.0.0.0/0]``: anywhere (model
    hubs, S3, registries, pip). ``[]``: nowhere else."""


class GpuPod(Model):
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


NCCL_TESTS_IMAGE = "public.ecr.aws/hpc-cloud/nccl-tests:efa1.43.2-ofiv1.16.3-ncclv2.27.7-1-testsv2.16.9"
"""AWS's NCCL tests image: the one aws-samples/awsome-distributed-training (``micro-benchmarks/nccl-tests``)
publishes on ``public.ecr.aws/hpc-cloud/nccl-tests``, tagged by what it builds (EFA installer 1.43.2,
aws-ofi-nccl v1.16.3, NCCL v2.27.7-1, nccl-tests v2.16.9, CUDA 12.8 on Ubuntu 22.04, OpenMPI and
sshd for the MPI Operator)."""


class NcclTest(Model):
    """A two-node NCCL all-reduce over EFA (an MPIJob of the Kubeflow MPI Operator): proof that a
    training pool gets the network it is paid for."""

    enabled: bool = False
    """Install the MPI Operator and run the test. Default false: it starts two nodes of the pool
    (p5.48xlarge: about $110 per hour for both) until it ends, at most an hour."""
    node_group: str | None = None
    """The EFA pool (a ``gpuNodeGroups`` key with ``efa: true``) to run on. Default the only EFA pool."""
    image: Annotated[str, AfterValidator(_pinned_image)] = NCCL_TESTS_IMAGE
    """NCCL tests image with OpenMPI, sshd, libfabric and aws-ofi-nccl, pinned. Default AWS's."""


def _duration(value: str) -> str:
    if not re.match(r"^\d+(s|m|h)$", value):
        raise fail("duration", f"'{value}' is not a duration such as 10m, 600s or 1h")
    return value


EXPANDERS = ("least-waste", "priority", "random", "most-pods")
"""Cluster Autoscaler expanders that work on AWS (``price`` needs a pricing model AWS lacks)."""


class Autoscaler(Model):
    """The Cluster Autoscaler: resizes the node groups' Auto Scaling groups for pending pods."""

    enabled: bool = True
    """Install it, with its IAM role and the ASG tags it discovers node groups by. Default true. With
    ``existingCluster`` it has no default and must be set: true installs one that scales only this stack's
    node groups, under names of its own (``eks-gpu-cluster-autoscaler``); false leaves the pools to the
    cluster's own autoscaler, which finds them by the discovery tags EKS and the program put on their ASGs."""
    chart_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] | None = None
    """``cluster-autoscaler`` chart version, ``X.Y.Z``. Default the bundled one."""
    image_tag: Annotated[str, Field(pattern=r"^v1\.\d+\.\d+$")] | None = None
    """Cluster Autoscaler image tag (``v1.35.0``). Default the release for the cluster's minor version."""
    expander: Annotated[str, enum_field_values(EXPANDERS)] = "least-waste"
    """How it picks a node group to grow: ``least-waste`` (default), ``priority``, ``random``, ``most-pods``."""
    priorities: dict[str, Annotated[int, Field(ge=0)]] = {}
    """Pool key (or ``system``) -> priority, higher first; required with, and only with, ``priority``."""
    scale_down_unneeded_time: Annotated[str, AfterValidator(_duration)] = "10m"
    """How long a node stays unneeded before it is removed. Default ``10m``."""
    extra_args: dict[str, str | int | bool] = {}
    """More command-line flags (``{scale-down-delay-after-add: 5m}``), over the program's defaults."""


class NodeMonitoring(Model):
    """The ``eks-node-monitoring-agent`` EKS add-on: node health (GPU faults included) for auto-repair."""

    enabled: bool = True
    """Install it. Default true: without it node auto-repair sees no GPU fault. Its ``dcgm-server`` is
    then the DCGM host engine of the GPU nodes it runs on (amd64 nodes of the types its chart lists),
    so ``gpuMetrics.exporter: cloudwatch`` (a second engine) is refused when a pool has such nodes."""


class Storage(Model):
    """Volumes for models and checkpoints: the EBS CSI driver and a default StorageClass."""

    ebs_csi_driver: bool = True
    """Install the ``aws-ebs-csi-driver`` EKS add-on, with its Pod Identity role. Default true."""
    default_storage_class: bool = True
    """Create ``gp3-encrypted``, the cluster's default StorageClass (needs the driver). Default true."""
    reclaim_policy: Annotated[Literal["Delete", "Retain"], enum_field_values(("Delete", "Retain"))] = "Delete"
    """What happens to a volume when its PersistentVolumeClaim is deleted: ``Delete`` (default; no
    orphaned volumes billing on) or ``Retain`` (keep checkpoints; delete the volume by hand)."""


DCGM_EXPORTER_CHART_VERSION = "4.8.2"
"""The ``dcgm-exporter`` chart (NVIDIA's ``dcgm-exporter`` Helm repository) by default."""
GPU_METRICS_EXPORTERS = ("cloudwatch", "dcgm-exporter", "none")


class GpuMetrics(Model):
    """Per-GPU metrics (utilisation, memory, temperature, XID errors), per node and per pod."""

    exporter: Annotated[Literal["cloudwatch", "dcgm-exporter", "none"], enum_field_values(GPU_METRICS_EXPORTERS)] = (
        "dcgm-exporter"
    )
    """``dcgm-exporter`` (default: NVIDIA's chart, for a Prometheus you run; it reads the node monitoring
    agent's DCGM host engine where that runs and embeds its own elsewhere), ``cloudwatch`` (the
    ``amazon-cloudwatch-observability`` add-on, Container Insights with GPU metrics; its DCGM exporter
    is a host engine of its own, so refused where the node monitoring agent runs one) or ``none``.
    One DCGM host engine per GPU node whichever is chosen."""
    chart_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = DCGM_EXPORTER_CHART_VERSION
    """The ``dcgm-exporter`` chart version, ``X.Y.Z`` (exporter ``dcgm-exporter`` only)."""
    service_monitor: bool = False
    """Create the chart's ``ServiceMonitor`` (needs the Prometheus operator's CRDs). Default false."""


PROVISIONERS = ("clusterAutoscaler", "karpenter")
"""How the GPU pools get nodes: managed node groups resized by the Cluster Autoscaler, or Karpenter."""


class Karpenter(Model):
    """Karpenter's controller (``eks-gpu:provisioner: karpenter``), from its pinned official chart."""

    replicas: Annotated[int, Field(ge=1, le=3)] = 2
    """Controller replicas, 1-3. Default 2 (one leader, one standby). The chart keeps each on its own
    node (required anti-affinity) and never on a node Karpenter made: each needs its own system node,
    so the system group's desired size (``desiredSize``, else ``minSize``) must be at least this (no
    autoscaler grows the system group under Karpenter)."""


class Budget(Model):
    """What the stack may cost at most, checked by the policy pack against the plan's cost model."""

    max_usd_per_hour: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] | None = None
    """USD per hour at every node group's maxSize (the plan's "max" point). Default none: no budget.
    Over it, the ``stack-budget`` policy is a mandatory violation; over 80 % of it, an advisory one."""


# --- the stack --------------------------------------------------------------------------------


def _retention_days(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value in LOG_RETENTION_DAYS:
        return value
    allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
    raise fail("enum", f"{value!r} is not a retention CloudWatch Logs accepts; use one of {allowed} (days)")


class StackConfig(Model):
    """The whole stack file, parsed. Built only by :func:`parse_config`."""

    cluster_name: Annotated[str, Field(min_length=1, max_length=100)]
    """EKS cluster name: 1-100 letters, digits, '-', '_', starting alphanumeric. Default ``eks-gpu-<stack>``."""
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """Kubernetes minor version (``"1.35"``), quoted; must be in EKS standard or extended support."""
    environment: str
    """Value of the ``Environment`` tag. Default the stack name."""
    tags: dict[str, str] = {}
    """Tags added to every taggable AWS resource. Default none. With ``provisioner: karpenter`` they are in
    each pool's EC2NodeClass (so the GPU instances carry them), and Karpenter drifts on it: a tag edit
    replaces every GPU node, drained (``make plan --against`` says so)."""
    vpc: VpcConfig = NewVpc()
    """A VPC to build (default) or one to use (``id``, ``privateSubnetIds``, ``publicSubnetIds``)."""
    protect: bool = False
    """Protect every resource of the stack: ``pulumi destroy`` deletes nothing and ``pulumi up`` replaces or
    removes nothing until it is unset (a destroy deletes dependents first, so protecting the cluster
    alone would lose everything under it). Default false."""
    endpoint_public_access_cidrs: tuple[ClientCidr, ...] = ()
    """CIDRs that may reach the public API endpoint (``203.0.113.7/32``; no ``0.0.0.0/0``). Default none:
    no public endpoint. At least one of the three ``endpoint*`` keys must let pulumi reach the API."""
    endpoint_private_access_cidrs: tuple[ClientCidr, ...] = ()
    """CIDRs inside the VPC or a network routed to it (peering, Transit Gateway, VPN) that may reach
    the private endpoint: each gets TCP 443 into the cluster security group. Default none."""
    endpoint_private_access_security_group_ids: tuple[SecurityGroupId, ...] = ()
    """Security groups (``sg-...``) of deployers in the VPC (a CI runner) that may reach the private
    endpoint: each gets TCP 443 into the cluster security group. Default none."""
    cluster_admins: tuple[PrincipalArn, ...] = ()
    """IAM role or user ARNs of this partition that get an EKS access entry with
    ``AmazonEKSClusterAdminPolicy`` on the whole cluster. Default none."""
    cluster_creator_admin: bool = True
    """The identity that creates the cluster keeps the admin access EKS gives it at creation. Default
    true. With false, the creator must be one of ``clusterAdmins``. Applies when the cluster is created:
    pulumi-eks ignores later changes to it."""
    log_retention_days: Annotated[int, BeforeValidator(_retention_days)] = 90
    """Days CloudWatch keeps the control-plane logs (and, with ``gpuMetrics.exporter: cloudwatch``, the
    Container Insights log groups), one of CloudWatch's allowed values. Default 90."""
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
    nccl_test: NcclTest = NcclTest()
    """The two-node NCCL all-reduce test of an EFA pool."""
    provisioner: Annotated[Literal["clusterAutoscaler", "karpenter"], enum_field_values(PROVISIONERS)] = (
        "clusterAutoscaler"
    )
    """How GPU pools get nodes: ``clusterAutoscaler`` (default: a managed node group per pool, resized by
    the Cluster Autoscaler) or ``karpenter`` (a Karpenter NodePool per pool; no Cluster Autoscaler)."""
    karpenter: Karpenter = Karpenter()
    """Karpenter's controller; only with ``provisioner: karpenter``."""
    autoscaler: Autoscaler = Autoscaler()
    """The Cluster Autoscaler."""
    budget: Budget = Budget()
    """The stack's cost ceiling."""
    node_monitoring: NodeMonitoring = NodeMonitoring()
    """Node health monitoring for auto-repair."""
    gpu_metrics: GpuMetrics = GpuMetrics()
    """Where GPU metrics go."""
    storage: Storage = Storage()
    """The EBS CSI driver and the default StorageClass."""
    addons: Addons = Addons.model_validate({})
    """Pinned EKS add-on versions. Default none pinned: EKS's default for the Kubernetes version."""
    ami_release_version: AmiReleases = AmiReleases()
    """The node groups' AMI release per AMI family. Default none: EKS's latest at each group's creation."""
    existing_cluster: ExistingCluster | None = None
    """An EKS cluster to add the GPU pools to, instead of building one. Default none: build the cluster."""
