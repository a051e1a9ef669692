"""Karpenter's view of one NodePool a run sent: the nodes it may launch, and whether a pending pod fits one.

For every allowed instance type, capacity type and zone of the NodePool's requirements, the node Karpenter
would launch:

* labels: the template's labels, then the labels of the NodeClaim's single-valued requirements, which
  Karpenter writes on the node: ``node.kubernetes.io/instance-type``, ``kubernetes.io/arch``,
  ``kubernetes.io/os``, ``topology.kubernetes.io/zone`` and ``region``, ``karpenter.sh/capacity-type``,
  ``karpenter.sh/nodepool`` (kubernetes-sigs/karpenter ``pkg/apis/v1/labels.go``: ``WellKnownLabels``,
  ``NodePoolLabelKey``, ``CapacityTypeLabelKey``) and the AWS provider's instance labels, among them
  ``karpenter.k8s.aws/instance-gpu-name``, ``-manufacturer``, ``-count``, ``-memory`` for a type with one
  kind of GPU, names lower-kebab-cased (aws/karpenter-provider-aws ``pkg/apis/v1/labels.go``;
  ``pkg/providers/instancetype/types.go`` ``computeRequirements``), and ``karpenter.k8s.aws/ec2nodeclass``;
* taints: the template's;
* allocatable: :func:`eks_gpu.design.allocatable.node_allocatable` in Karpenter mode for that one type
  (maxPods the ENI limit, uncapped), from moto's catalogue, the EC2NodeClass's AMI family (its alias) and
  its root volume (``rootVolume: true``, what Karpenter's ``ephemeralStorage`` reads); plus
  ``vpc.amazonaws.com/efa``, which Karpenter gives every type with EFA (aws/karpenter-provider-aws
  ``pkg/providers/instancetype/types.go`` ``computeCapacity``, ``efas``: ``EfaInfo.MaximumEfaInterfaces``),
  and the capacity of the run's NodeOverlays that select the NodePool (``karpenter.sh/nodepool``; Karpenter
  adds an overlay's extended resources to its simulation, ``v1.14/concepts/nodeoverlays.md``): the huge
  pages of an EFA pool, which no instance type of Karpenter's has otherwise; less the requests
  of the DaemonSets that land on the node, one pod each (Karpenter's daemon overhead: kubernetes-sigs/karpenter
  ``pkg/controllers/provisioning/scheduling/scheduler.go`` ``getDaemonOverhead``, ``resources.RequestsForPods``):
  those of the run's Helm releases (rendered) and those of the EKS add-ons it installs, at their charts'
  defaults with the configuration values the run sends (``tests/data/eks_addon_daemonsets.json``,
  :attr:`tests.workloads.stack.Stack.addon_daemon_specs`; an add-on listed there as unknown adds none).

A pod fits the pool when one of those nodes passes every scheduler filter
(:func:`tests.workloads.scheduling.unfit`). Otherwise Karpenter leaves it Pending: its scheduler drops
every instance type whose allocatable cannot hold the daemon overhead plus the pod's requests, and with
none left it reports "incompatible with nodepool ..., no instance type satisfied resources ... and
requirements" (kubernetes-sigs/karpenter ``pkg/controllers/provisioning/scheduling/nodeclaim.go``,
``NodeClaim.Add``, ``filterInstanceTypesByRequirements``: taints tolerated, requirements compatible,
``resources.Fits(requests, instanceType.Allocatable())``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from eks_gpu.config import EFA_LABEL, AmiType
from eks_gpu.design.allocatable import node_allocatable

from tests import aws_data
from tests.helpers import integral
from tests.test_allocatable import facts

from .resources import ResourceList, pod_total, quantity, with_api_defaults
from .scheduling import Node, nodes_needed, unfit
from .stack import Pool, Stack

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
EFA = "vpc.amazonaws.com/efa"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
ARCH = "kubernetes.io/arch"
ZONE = "topology.kubernetes.io/zone"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
NODE_POOL_LABEL = "karpenter.sh/nodepool"
AWS = "karpenter.k8s.aws/"
KUBE_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
"""``AWSToKubeArchitectures`` (aws/karpenter-provider-aws ``pkg/apis/v1/labels.go``)."""
AMI_TYPES = {
    ("al2023", "amd64"): AmiType.AL2023_x86_64_NVIDIA,
    ("al2023", "arm64"): AmiType.AL2023_ARM_64_NVIDIA,
    ("bottlerocket", "amd64"): AmiType.BOTTLEROCKET_x86_64_NVIDIA,
    ("bottlerocket", "arm64"): AmiType.BOTTLEROCKET_ARM_64_NVIDIA,
}
"""(alias family, architecture) -> the EKS AMI Karpenter resolves for a GPU type (it picks the NVIDIA
variant of the family's SSM parameter for an instance type with NVIDIA GPUs)."""
GPU = "nvidia.com/gpu"


def kebab(name: str) -> str:
    """``lowerKabobCase`` (aws/karpenter-provider-aws ``types.go``): lower case, spaces to dashes."""
    return name.lower().replace(" ", "-")


@dataclass(frozen=True)
class Launched:
    """One node Karpenter may launch for a NodePool."""

    instance_type: str
    capacity_type: str
    zone: str
    node: Node


@dataclass(frozen=True)
class KarpenterPool:
    """A NodePool and its EC2NodeClass, as the run sent them."""

    key: str
    node_pool: Mapping[str, Any]
    node_class: Mapping[str, Any]
    region: str
    overlay_capacity: Mapping[str, str] = field(default_factory=dict)
    """What the NodeOverlays selecting this NodePool add to every type's capacity (default none)."""

    @property
    def template(self) -> Mapping[str, Any]:
        template: Mapping[str, Any] = self.node_pool["spec"]["template"]
        return template

    @property
    def requirements(self) -> dict[str, list[str]]:
        """Key -> allowed values of the template's ``In`` requirements (the only operator the program sends)."""
        reqs = self.template["spec"]["requirements"]
        assert all(r["operator"] == "In" for r in reqs), reqs
        return {r["key"]: list(r["values"]) for r in reqs}

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.template.get("metadata", {}).get("labels", {}))

    @property
    def taints(self) -> list[dict[str, str]]:
        """Template taints, Kubernetes spelling (the CRD's enum)."""
        return [
            {"key": t["key"], "value": t.get("value", ""), "effect": t["effect"]}
            for t in self.template["spec"].get("taints", [])
        ]

    @property
    def limits(self) -> ResourceList:
        return {name: quantity(v) for name, v in self.node_pool["spec"].get("limits", {}).items()}

    @property
    def ami_type(self) -> AmiType:
        """From the EC2NodeClass's alias family and the NodePool's one architecture."""
        (alias,) = [t["alias"] for t in self.node_class["spec"]["amiSelectorTerms"]]
        (arch,) = self.requirements[ARCH]
        return AMI_TYPES[(alias.split("@")[0], arch)]

    @property
    def disk_size_gib(self) -> int:
        """The ``rootVolume`` mapping's size: where images and ephemeral storage live."""
        (root,) = [m for m in self.node_class["spec"]["blockDeviceMappings"] if m.get("rootVolume")]
        size = str(root["ebs"]["volumeSize"])
        assert size.endswith("Gi"), size
        return int(size.removesuffix("Gi"))

    def dropped_types(self) -> dict[str, str]:
        """Allowed instance types no node can be launched of (another requirement rules them out), and why."""
        out = {}
        for itype in self.requirements[INSTANCE_TYPE]:
            record = aws_data.catalogue().get(itype)
            if record is None:
                out[itype] = "not in the region's catalogue"
                continue
            archs = {KUBE_ARCH[a] for a in record["ProcessorInfo"]["SupportedArchitectures"] if a in KUBE_ARCH}
            if not archs & set(self.requirements.get(ARCH, archs)):
                out[itype] = f"its architectures {sorted(archs)} are not among {self.requirements[ARCH]}"
        return out

    def type_labels(self, itype: str) -> dict[str, str]:
        """What ``computeRequirements`` gives a type, single-valued, for the labels this module reads."""
        record = aws_data.catalogue()[itype]
        family, size = itype.split(".", 1)
        out = {
            INSTANCE_TYPE: itype,
            ARCH: next(KUBE_ARCH[a] for a in record["ProcessorInfo"]["SupportedArchitectures"] if a in KUBE_ARCH),
            "kubernetes.io/os": "linux",
            "topology.kubernetes.io/region": self.region,
            f"{AWS}instance-family": family,
            f"{AWS}instance-size": size,
            f"{AWS}instance-cpu": str(record["VCpuInfo"]["DefaultVCpus"]),
            f"{AWS}instance-memory": str(record["MemoryInfo"]["SizeInMiB"]),
        }
        gpus = record.get("GpuInfo", {}).get("Gpus", [])
        if len(gpus) == 1:
            out |= {
                f"{AWS}instance-gpu-name": kebab(gpus[0]["Name"]),
                f"{AWS}instance-gpu-manufacturer": kebab(gpus[0]["Manufacturer"]),
                f"{AWS}instance-gpu-count": str(gpus[0]["Count"]),
                f"{AWS}instance-gpu-memory": str(gpus[0]["MemoryInfo"]["SizeInMiB"]),
            }
        return out

    def allocatable(self, itype: str) -> ResourceList:
        """What the kubelet of a node of ``itype`` reports, by the program's model in Karpenter mode."""
        info = facts(itype)
        model = node_allocatable([info], self.ami_type, self.disk_size_gib, gpus=info.gpu_count, karpenter=True)
        efa = aws_data.catalogue()[itype]["NetworkInfo"].get("EfaInfo", {}).get("MaximumEfaInterfaces", 0)
        extra = {EFA: str(efa), **self.overlay_capacity}
        return {name: quantity(v) for name, v in {**model.quantities(), **extra}.items()}

    @cached_property
    def launchable(self) -> list[Launched]:
        """Every node Karpenter may launch: allowed type x capacity type x zone offering the type, before daemon
        overhead."""
        dropped, out = self.dropped_types(), []
        for itype in self.requirements[INSTANCE_TYPE]:
            if itype in dropped:
                continue
            offered = aws_data.offerings(self.region).get(itype, frozenset())
            for capacity in self.requirements.get(CAPACITY_TYPE, ["on-demand"]):
                # an offering is available only in a zone that offers the type (aws/karpenter-provider-aws
                # pkg/providers/instancetype/offering/provider.go, createOfferings: itZones.Has(zone))
                for zone in (z for z in self.requirements[ZONE] if z in offered):
                    labels = {
                        **self.labels,
                        **self.type_labels(itype),
                        ZONE: zone,
                        CAPACITY_TYPE: capacity,
                        NODE_POOL_LABEL: self.key,
                        f"{AWS}ec2nodeclass": self.template["spec"]["nodeClassRef"]["name"],
                    }
                    out.append(Launched(itype, capacity, zone, Node(labels, self.taints, self.allocatable(itype))))
        return out


def daemon_overhead(daemon_specs: Sequence[Mapping[str, Any]], node: Node) -> ResourceList:
    """Requests (and one pod each) of the DaemonSets whose pods land on ``node``."""
    total: ResourceList = {}
    for spec in daemon_specs:
        if unfit(spec, {}, Node(node.labels, node.taints, {"pods": Decimal(1)})):
            continue
        for name, value in {**pod_total(with_api_defaults(spec)), "pods": Decimal(1)}.items():
            total[name] = total.get(name, Decimal(0)) + value
    return total


def less(allocatable: ResourceList, overhead: ResourceList) -> ResourceList:
    return {name: value - overhead.get(name, Decimal(0)) for name, value in allocatable.items()}


@dataclass(frozen=True)
class KarpenterStack:
    """A ``provisioner: karpenter`` run: its NodePools, and the Pools the workload checks read."""

    stack: Stack

    @cached_property
    def karpenter_pools(self) -> dict[str, KarpenterPool]:
        run = self.stack.run
        classes = {integral(c.inputs)["metadata"]["name"]: integral(c.inputs) for c in run.of_type(NODE_CLASS)}
        overlays: dict[str, dict[str, str]] = {}
        for o in run.of_type(NODE_OVERLAY):
            spec = integral(o.inputs)["spec"]
            # the program's overlays select by NodePool only: a check here, not a matcher of every requirement
            (req,) = spec["requirements"]
            assert (req["key"], req["operator"]) == (NODE_POOL_LABEL, "In"), req
            for pool in req["values"]:
                overlays.setdefault(pool, {}).update(spec.get("capacity", {}))
        out = {}
        for np in run.of_type(NODE_POOL):
            inputs = integral(np.inputs)
            name = inputs["metadata"]["name"]
            node_class = classes[inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"]]
            out[name] = KarpenterPool(name, inputs, node_class, run.config["aws:region"], overlays.get(name, {}))
        return out

    @cached_property
    def pools(self) -> dict[str, Pool]:
        """Stack outputs of each Karpenter pool as a :class:`Pool` (the admission and network checks read
        its outputs, and the instance type a whole-node job is sized for): no node group, so its
        ``node_group`` carries only the NodePool's instance types; no Auto Scaling group tags; EFA where the
        NodePool's nodes carry the EFA label."""
        outputs = self.stack.run.outputs["gpuNodeGroups"]
        region = self.stack.run.config["aws:region"]
        return {
            key: Pool(
                key,
                outputs[key],
                {"instanceTypes": kp.requirements[INSTANCE_TYPE]},
                {},
                efa=kp.labels.get(EFA_LABEL) == "true",
                region=region,
            )
            for key, kp in self.karpenter_pools.items()
        }

    def nodes(self, key: str) -> list[Launched]:
        """The pool's launchable nodes, their allocatable less the daemon overhead on each."""
        return [
            Launched(
                n.instance_type,
                n.capacity_type,
                n.zone,
                Node(
                    n.node.labels,
                    n.node.taints,
                    less(n.node.allocatable, daemon_overhead(self.stack.daemon_specs, n.node)),
                ),
            )
            for n in self.karpenter_pools[key].launchable
        ]


def unplaceable(
    where: str,
    pods: Sequence[tuple[str, Mapping[str, Any], ResourceList]],
    kp: KarpenterPool,
    nodes: Sequence[Launched],
) -> list[str]:
    """Why Karpenter leaves pods (name, admitted spec, requests) Pending on this NodePool: a pod no allowed
    type's node takes (each type's reasons), or more nodes or GPUs than the NodePool's limits allow."""
    problems = []
    fitting: dict[str, Node] = {}
    for name, spec, requests in pods:
        reasons = {n.instance_type: unfit(spec, requests, n.node) for n in nodes}
        ok = [t for t, r in reasons.items() if not r]
        if not ok:
            why = (
                "; ".join(f"{t}: {', '.join(r)}" for t, r in reasons.items()) or "the NodePool allows no instance type"
            )
            problems.append(f"{where}: Karpenter: pod {name} fits no instance type of NodePool {kp.key}: {why}")
        for n in nodes:
            if n.instance_type in ok:
                fitting.setdefault(n.instance_type, n.node)
    if problems or not pods:
        return problems
    needed = min(nodes_needed([r for _, _, r in pods], node) for node in fitting.values())
    if (most := kp.limits.get("nodes")) is not None and needed > most:
        problems.append(f"{where}: Karpenter: the pods fill {needed} nodes, NodePool {kp.key}'s limits.nodes is {most}")
    gpus = sum((r.get(GPU, Decimal(0)) for _, _, r in pods), Decimal(0))
    if (cap := kp.limits.get(GPU)) is not None and gpus > cap:
        problems.append(f"{where}: Karpenter: the pods request {gpus} GPUs, NodePool {kp.key}'s limits.{GPU} is {cap}")
    return problems
