"""The design of one stack as plain frozen data: everything the components build, decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from eks_gpu.config import (
    AmiType,
    CapacityType,
    Taint,
)
from eks_gpu.design.allocatable import Allocatable

SYSTEM_KEY = "system"
"""The key of the system node group in names, labels and outputs."""


@dataclass(frozen=True)
class GpuSpec:
    """The GPUs of every node of a pool (the same for all its instance types)."""

    count: int
    model: str
    manufacturer: str

    @property
    def accelerator(self) -> str:
        """The ``k8s.amazonaws.com/accelerator`` label value, ``nvidia-a10g``."""
        return f"{self.manufacturer}-{self.model}".lower()


@dataclass(frozen=True)
class VolumePerformance:
    """A gp3 volume's provisioned IOPS and throughput (MiB/s)."""

    iops: int
    throughput_mib_ps: int


@dataclass(frozen=True)
class StorageClassDesign:
    """The cluster's default StorageClass: encrypted gp3 through the EBS CSI driver."""

    reclaim_policy: str
    """``Delete`` or ``Retain``."""
    name: str = "gp3-encrypted"


@dataclass(frozen=True)
class GpuMetricsDesign:
    """GPU metrics: the CloudWatch add-on, or NVIDIA's dcgm-exporter chart; one DCGM host engine per node."""

    exporter: str
    """``cloudwatch`` or ``dcgm-exporter``."""
    chart_version: str
    service_monitor: bool
    shared_engine: Mapping[str, tuple[str, ...]]
    """Pool -> its instance types whose nodes run the node monitoring agent's DCGM host engine
    (``dcgm-server``): there dcgm-exporter reads that engine. Empty without the agent."""
    own_engine: Mapping[str, tuple[str, ...]]
    """Pool -> its other instance types: there the exporter embeds its own DCGM host engine."""


@dataclass(frozen=True)
class EfaDesign:
    """A pool's EFA: one interface per network card (card 0 EFA with ENA, the others EFA-only)."""

    interfaces: int
    placement_group: bool
    """A ``cluster`` placement group (none for Capacity Blocks: the reservation places them)."""


@dataclass(frozen=True)
class KarpenterPoolDesign:
    """How Karpenter provisions one GPU pool (``eks-gpu:provisioner: karpenter``): the NodePool and its
    EC2NodeClass that replace the pool's managed node group (docs/design-karpenter.md)."""

    capacity_types: tuple[str, ...]
    """``karpenter.sh/capacity-type`` values in the order tried: ``reserved``, ``spot``, ``on-demand``."""
    capacity_reservation_ids: tuple[str, ...]
    """On-Demand Capacity Reservations or Capacity Blocks (``cr-...``) the EC2NodeClass selects."""
    ami_alias: str
    """The EC2NodeClass AMI alias, pinned (``al2023@v20260304``, ``bottlerocket@v1.58.0``)."""
    node_limit: int
    """The pool's ``maxSize``: NodePool ``limits.nodes``."""
    gpu_limit: int
    """NodePool ``limits[nvidia.com/gpu]``: ``maxSize`` nodes of the allowed type with the most GPUs."""
    cpu_limit: int
    """NodePool ``limits.cpu``: ``maxSize`` nodes of the allowed type with the most vCPUs."""
    consolidation_policy: str
    """``WhenEmpty`` (default: never a node under a running pod) or ``WhenEmptyOrUnderutilized``."""
    consolidate_after: str
    """How long a node is empty before it goes (``10m``)."""
    disruption_budget_nodes: str
    """How many of the pool's nodes Karpenter may disrupt at once (``1``, ``10%``)."""
    expire_after: str
    """Node lifetime before replacement (``Never``, ``720h``)."""
    termination_grace_period: str | None
    """How long a draining node waits for its pods before they are killed; None: for ever."""


@dataclass(frozen=True)
class KarpenterDesign:
    """Karpenter itself: its chart, controller and interruption queue (docs/design-karpenter.md)."""

    chart_version: str
    """The pinned ``karpenter`` and ``karpenter-crd`` chart version (``1.14.1``)."""
    replicas: int
    """Controller replicas, each on its own system node (the chart's required anti-affinity)."""
    interruption_queue: str
    """The SQS queue's name (the cluster's): spot interruptions, rebalances, health events."""


@dataclass(frozen=True)
class NodeGroupDesign:
    """One managed node group, ready to build: the system group or a GPU pool."""

    key: str
    instance_types: tuple[str, ...]
    ami_type: AmiType
    capacity_type: CapacityType
    min_size: int
    desired_size: int
    max_size: int
    disk_size_gib: int
    labels: Mapping[str, str]
    """Every label of the nodes: the user's and the program's."""
    taints: tuple[Taint, ...]
    availability_zones: tuple[str, ...]
    """The AZs of the VPC that offer every instance type of the group; for a Karpenter pool (not EFA)
    those that offer any of them (Karpenter launches each type only where it is offered)."""
    gpu: GpuSpec | None
    capacity_reservation_id: str | None = None
    """The Capacity Block's reservation (``CAPACITY_BLOCK`` pools)."""
    capacity_reservation: str | None = None
    """An On-Demand Capacity Reservation id or resource group ARN the pool launches into."""
    volume: VolumePerformance | None = None
    """Provisioned performance of the image volume; None: gp3's baseline (the system group)."""
    fast_image_pull: bool = False
    """Turn on nodeadm's ``FastImagePull`` (AL2023 only)."""
    efa: EfaDesign | None = None
    """EFA interfaces, placement group and self-open security group; None without ``efa``."""
    allocatable: Allocatable | None = None
    """What the kubelet of a node of the group offers pods (the least over its instance types): what
    the autoscaler's scale-from-zero template says. None only where no instance facts were read."""
    release_version: str | None = None
    """The AMI release sent as the node group's ``releaseVersion`` (pool's, else the stack's for its
    AMI family); None: not sent, EKS takes its latest at creation and keeps it."""
    latest_release: str | None = None
    """The latest release AWS publishes for the group's AMI type and Kubernetes version (SSM), or None
    where it could not be read: what a new group would get, what ``make plan`` offers."""
    karpenter: KarpenterPoolDesign | None = None
    """With ``provisioner: karpenter``, how Karpenter provisions this GPU pool (no managed node group is
    built for it); None: a managed node group (the system group always)."""

    @property
    def single_az(self) -> bool:
        """Confined to one AZ (legitimate for capacity blocks and EFA pools, a risk otherwise)."""
        return len(self.availability_zones) == 1


@dataclass(frozen=True)
class AddonVersionDesign:
    """One EKS add-on's version, decided."""

    name: str
    """The add-on's name as EKS spells it (``vpc-cni``)."""
    version: str
    """The version sent: the pin, else EKS's default for the cluster's Kubernetes version."""
    eks_default: str | None
    """EKS's default version for the cluster's Kubernetes version; None where it could not be read."""
    pinned: bool
    """``version`` comes from ``addons.<name>.version``."""


@dataclass(frozen=True)
class NewNetwork:
    """A VPC to build."""

    cidr: str
    azs: tuple[str, ...]
    private_cidrs: tuple[str, ...]
    public_cidrs: tuple[str, ...]
    nat_per_az: bool


@dataclass(frozen=True)
class ExistingNetwork:
    """A VPC the user brings: its private subnets by AZ."""

    vpc_id: str
    private_subnets: Mapping[str, tuple[str, ...]]
    """AZ -> private subnet ids."""
    public_subnet_ids: tuple[str, ...]

    @property
    def azs(self) -> tuple[str, ...]:
        """The AZs the private subnets span."""
        return tuple(sorted(self.private_subnets))


@dataclass(frozen=True)
class GpuPodDesign:
    """The smoke-test pod: which pool, what it runs."""

    pool: str
    image: str
    gpus: int
    command: tuple[str, ...]


@dataclass(frozen=True)
class NcclTestDesign:
    """The two-node NCCL all-reduce: which EFA pool, what each worker takes of its node."""

    pool: str
    image: str
    workers: int
    """Nodes (one MPI worker pod each)."""
    gpus_per_worker: int
    """Every GPU of a node (from the catalogue)."""
    efa_per_worker: int
    """Every EFA interface of a node (from the catalogue)."""


@dataclass(frozen=True)
class KubernetesDesign:
    """What the program puts in the cluster."""

    namespace: str
    gpu_quota: int
    """``requests.nvidia.com/gpu`` of the namespace's ResourceQuota."""
    pod_security: str
    """The namespace's Pod Security level: ``restricted``, ``baseline`` or ``privileged``."""
    egress_cidrs: tuple[str, ...]
    """Where the namespace's pods may send beyond DNS, each other and the Pod Identity agent."""
    device_plugin_version: str | None
    """The device plugin chart version, or None when every pool is Bottlerocket (built in)."""
    device_plugin_pools: tuple[str, ...]
    """The pools the device plugin runs on: those with an AL2023 NVIDIA AMI."""
    gpu_pod: GpuPodDesign | None
    nccl_test: NcclTestDesign | None = None
    """The NCCL test, if ``ncclTest.enabled``."""


@dataclass(frozen=True)
class AutoscalerDesign:
    """The Cluster Autoscaler, decided: chart, image, flags, priorities by pool."""

    chart_version: str
    image_tag: str
    expander: str
    priorities: Mapping[str, int]
    """Pool key (or ``system``) -> priority, for the priority expander."""
    args: Mapping[str, str | int | bool]
    """Every flag it runs with (``extraArgs`` of the chart)."""


@dataclass(frozen=True)
class ApiAccess:
    """Who reaches the Kubernetes API, from where, and as whom."""

    public_cidrs: tuple[str, ...]
    """CIDRs of the public endpoint; empty: no public endpoint."""
    private_cidrs: tuple[str, ...]
    """CIDRs admitted on TCP 443 into the cluster security group (the private endpoint)."""
    private_security_group_ids: tuple[str, ...]
    """Security groups admitted on TCP 443 into the cluster security group."""
    admins: tuple[str, ...]
    """IAM principal ARNs with an access entry and ``AmazonEKSClusterAdminPolicy`` (cluster scope)."""
    creator_admin: bool
    """The creating identity keeps its bootstrap admin access."""
    profile: str | None
    """``aws:profile``: the kubeconfig's ``aws eks get-token`` runs with it, as the provider does."""


@dataclass(frozen=True)
class ExistingClusterDesign:
    """An EKS cluster the stack adds GPU pools to, as ``aws.eks.getCluster`` read it: never changed."""

    name: str
    arn: str
    version: str
    """Its Kubernetes minor version: the node groups', the autoscaler's and the add-ons' too."""
    endpoint: str
    certificate_authority: str
    """Base64 PEM of the API server's CA, for the Kubernetes provider's kubeconfig."""
    security_group_id: str
    """The cluster security group EKS made: an EFA pool's interfaces list it beside their own."""
    authentication_mode: str
    """``API``, ``API_AND_CONFIG_MAP`` or ``CONFIG_MAP``: managed node groups join in each (EKS adds
    their role to ``aws-auth`` or makes their access entry itself); the program creates no access entry."""
    addons_running: Mapping[str, str]
    """EKS add-on -> the version the cluster runs, for the add-ons the stack would install: those are
    used as they are, never created or changed."""


@dataclass(frozen=True)
class StackDesign:
    """Everything the components build, decided before any resource exists."""

    stack: str
    cluster_name: str
    kubernetes_version: str
    region: str
    partition: str
    tags: Mapping[str, str]
    """Tags of every taggable AWS resource: the user's plus ``Environment``."""
    access: ApiAccess
    log_retention_days: int
    """Retention of the control-plane log group, days."""
    protect: bool
    """Protect the cluster and its secrets key from deletion."""
    budget_usd_per_hour: float | None
    """The most the stack may cost per hour at every node group's maxSize (the policy pack checks it)."""
    node_monitoring: bool
    """Install the EKS node monitoring agent (GPU health for auto-repair)."""
    ebs_csi_driver: bool
    """Install the EBS CSI driver add-on."""
    storage_class: StorageClassDesign | None
    """The default StorageClass, if one is made."""
    gpu_metrics: GpuMetricsDesign | None
    """Where GPU metrics go; None: nowhere."""
    network: NewNetwork | ExistingNetwork
    system: NodeGroupDesign
    gpu_pools: Mapping[str, NodeGroupDesign]
    kubernetes: KubernetesDesign
    autoscaler: AutoscalerDesign | None
    """None when ``autoscaler.enabled`` is false."""
    warnings: tuple[str, ...]
    """Things the user should act on (``pulumi.log.warn``)."""
    notes: tuple[str, ...]
    """Choices the program made that the user may want to pin (``pulumi.log.info``)."""
    addon_versions: Mapping[str, AddonVersionDesign] = field(default_factory=dict)
    """EKS add-on name -> its version, for every EKS add-on the stack installs."""
    existing_cluster: ExistingClusterDesign | None = None
    """The cluster the GPU pools are added to (``existingCluster``); None: the stack builds its cluster."""
    karpenter: KarpenterDesign | None = None
    """Karpenter, with ``provisioner: karpenter`` (then ``autoscaler`` is None); None: the Cluster
    Autoscaler provisions the GPU pools' managed node groups."""
