"""Issue 24, offline proofs: the workload corpus runs on Karpenter's pools, and the GPU software lands on
Karpenter's GPU nodes as on managed ones.

Every corpus workload, placed on every NodePool of ``Pulumi.karpenter.yaml`` and of a second Karpenter
stack (a Bottlerocket pool with a taint of its own, a 4-GPU pool of two shapes, an arm64 pool; NVIDIA's
exporter on) and of a third with an EFA pool (the EFA job too), from the stack outputs as a user would, is
admitted and connected (the same checks as ``test_workloads.py``) and fits a node Karpenter may launch for
one of the pool's allowed types, after Karpenter's overhead model, the daemon overhead and the NodePool's
limits (``tests/workloads/karpenter.py``).
A workload no allowed type can take is reported with the pool, the workload and each type's reason. Then
for each allowed type's node: the device plugin, the node monitoring agent's DCGM engine and dcgm-exporter
select it (or not) by the values sent, by the same rules and with the same result as the node of a managed
node group of the pool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from eks_gpu.facts.node_monitoring import runs_dcgm_server
from eks_gpu.offline import AwsAccount, ProgramRun, load_stack_file, run_program

from tests import aws_data
from tests.charts import render
from tests.helpers import ROOT, program_scope, run, with_deployer
from tests.test_charts import PLUGIN_CONTAINER, daemon_set, pod_spec
from tests.test_gpu_health import AGENT, RELEASE, addon, addon_values, exporters, gpu_nodes
from tests.test_karpenter_config import karpenter_config, karpenter_pool
from tests.workloads import verdict
from tests.workloads.corpus import GPU, WORKLOADS
from tests.workloads.karpenter import KarpenterStack, daemon_overhead, unplaceable
from tests.workloads.resources import pod_total, quantity, with_api_defaults
from tests.workloads.scheduling import Node, tolerates, unfit
from tests.workloads.stack import K8S_EFFECT, Stack

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
MIXED = {
    "rocket": karpenter_pool(
        "g6.xlarge",
        "g6.2xlarge",
        amiType="BOTTLEROCKET_x86_64_NVIDIA",
        taints=[GPU_TAINT, {"key": "rocket", "value": "only", "effect": "NO_EXECUTE"}],
    ),
    "big": karpenter_pool("g6.12xlarge", "g6.24xlarge", maxSize=3),
    "arm": karpenter_pool("g5g.xlarge", "g5g.2xlarge", amiType="AL2023_ARM_64_NVIDIA"),
}
"""Bottlerocket (device plugin built in) with a NoExecute taint of its own; four L4s in two shapes; arm64."""
EFA_POOLS = {
    "training": karpenter_pool(
        "p5.48xlarge",
        efa=True,
        maxSize=2,
        labels={"workload": "training"},
        taints=[GPU_TAINT, {"key": "workload", "value": "training", "effect": "NO_SCHEDULE"}],
    )
}
"""Pulumi.prod.yaml's EFA pool (p5.48xlarge, 32 EFA interfaces) under Karpenter."""
CONFIGS = {
    "karpenter": load_stack_file(ROOT / "Pulumi.karpenter.yaml"),
    "karpenter-mixed": karpenter_config(MIXED, gpuMetrics={"exporter": "dcgm-exporter"}),
    "karpenter-efa": karpenter_config(EFA_POOLS),
}
CASES = [
    (label, pool, w.name)
    for label, cfg in CONFIGS.items()
    for pool, spec in cfg["eks-gpu:gpuNodeGroups"].items()
    for w in WORKLOADS
    if spec.get("efa") or not w.efa
]
"""Every workload on every NodePool, the EFA job on the EFA pools (as ``test_workloads.py``)."""
BY_NAME = {w.name: w for w in WORKLOADS}
EFA_CHART = "aws-efa-k8s-device-plugin"
PLUGIN_CHART = "nvidia-device-plugin"


@pytest.fixture(scope=program_scope)
def stacks() -> dict[str, KarpenterStack]:
    # the shipped stack's pool lists spot: an account that has the spot service-linked role (as make plan assumes)
    shipped = run_program(
        with_deployer(CONFIGS["karpenter"])[0],
        stack="karpenter",
        account_setup=AwsAccount.create_spot_service_linked_role,
    )
    runs = {"karpenter": shipped, **{label: run(CONFIGS[label]) for label in ("karpenter-mixed", "karpenter-efa")}}
    return {label: KarpenterStack(Stack(label, r)) for label, r in runs.items()}


def case(stacks: dict[str, KarpenterStack], label: str, pool: str, workload: str) -> verdict.Case:
    ks = stacks[label]
    return verdict.Case(ks.stack, ks.pools[pool], BY_NAME[workload])


def fits_karpenter(ks: KarpenterStack, c: verdict.Case) -> list[str]:
    """Karpenter launches a node for every pod of the workload within the NodePool's limits."""
    pods = [(p.name, a.spec, r) for p, a, r in zip(c.pods, c.admitted, c.requests, strict=True)]
    return unplaceable(str(c), pods, ks.karpenter_pools[c.pool.key], ks.nodes(c.pool.key))


CHECKS: dict[str, Callable[[KarpenterStack, verdict.Case], list[str]]] = {
    "admitted": lambda _, c: verdict.admitted(c),
    "connected": lambda _, c: verdict.connected(c),
    "fits-karpenter": fits_karpenter,
}


def test_the_cases_cover_every_node_pool_and_no_pool_has_a_node_group(stacks: dict[str, KarpenterStack]) -> None:
    for label, ks in stacks.items():
        configured = CONFIGS[label]["eks-gpu:gpuNodeGroups"]
        assert set(ks.karpenter_pools) == set(ks.pools) == set(configured), label
        assert {k for k, p in ks.pools.items() if p.efa} == {k for k, p in configured.items() if p.get("efa")}
        assert {
            r.inputs["labels"]["eks-gpu/node-group"] for r in ks.stack.run.of_type("aws:eks/nodeGroup:NodeGroup")
        } == {"system"}
    assert {(label, pool) for label, pool, _ in CASES} == {
        ("karpenter", "inference"),
        ("karpenter-mixed", "rocket"),
        ("karpenter-mixed", "big"),
        ("karpenter-mixed", "arm"),
        ("karpenter-efa", "training"),
    }
    assert {(label, pool) for label, pool, name in CASES if name == "efa"} == {("karpenter-efa", "training")}


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize(("label", "pool", "workload"), CASES, ids=["-".join(c) for c in CASES])
def test_workload_runs_on_karpenter(
    stacks: dict[str, KarpenterStack], check: str, label: str, pool: str, workload: str
) -> None:
    problems = CHECKS[check](stacks[label], case(stacks, label, pool, workload))
    assert not problems, "\n".join(problems)


def test_every_allowed_type_can_be_launched_in_every_zone_and_capacity_type(stacks: dict[str, KarpenterStack]) -> None:
    for label, ks in stacks.items():
        for key, kp in ks.karpenter_pools.items():
            assert kp.dropped_types() == {}, (label, key)
            reqs = kp.requirements
            assert len(kp.launchable) == len(reqs["node.kubernetes.io/instance-type"]) * len(
                reqs["karpenter.sh/capacity-type"]
            ) * len(reqs["topology.kubernetes.io/zone"])


def test_the_outputs_select_and_tolerate_every_node_karpenter_launches(stacks: dict[str, KarpenterStack]) -> None:
    """What a user copies (``nodeSelector``, ``tolerations``) takes them to every node of the pool, and to
    no node of another pool."""
    for ks in stacks.values():
        for key, pool in ks.pools.items():
            spec = {"nodeSelector": pool.outputs["nodeSelector"], "tolerations": pool.outputs["tolerations"]}
            for other, kp in ks.karpenter_pools.items():
                for n in kp.launchable:
                    assert (unfit(spec, {}, n.node) == []) == (other == key), (key, other, n.instance_type)


def test_the_published_allocatable_is_the_smallest_launchable_node(stacks: dict[str, KarpenterStack]) -> None:
    """``gpuNodeGroups.<pool>.allocatable`` is what the smallest allowed type offers: a pod sized by it fits
    whichever type Karpenter picks. Except memory on an EFA pool: the kubelet takes the driver's huge pages out
    of it, which Karpenter's instance types do not (``types.go`` ``memory``; an overlay may not change memory),
    so Karpenter expects that much more: the published value is the node's, and still fits."""
    for ks in stacks.values():
        for key, kp in ks.karpenter_pools.items():
            published = {k: quantity(v) for k, v in ks.pools[key].outputs["allocatable"].items()}
            for name, value in published.items():
                offered = [n.node.allocatable[name] for n in kp.launchable]
                held = published.get("hugepages-2Mi", Decimal(0)) if name == "memory" else Decimal(0)
                assert value == min(offered) - held, (key, name, value, offered)


def gpu_limit_raised(c: verdict.Case, gpus: int) -> verdict.Case:
    """``c`` with every container that asks for GPUs asking for ``gpus``."""
    for pod in c.pods:
        for container in pod.spec["containers"]:
            for kind in ("limits", "requests"):
                amounts = container.get("resources", {}).get(kind, {})
                if GPU in amounts:
                    amounts[GPU] = str(gpus)
    return c


def test_a_workload_no_allowed_type_fits_is_reported(stacks: dict[str, KarpenterStack]) -> None:
    ks = stacks["karpenter"]
    c = gpu_limit_raised(case(stacks, "karpenter", "inference", "single-gpu"), 8)
    problems = fits_karpenter(ks, c)
    (problem,) = problems
    assert problem.startswith(
        "single-gpu on karpenter/inference: Karpenter: pod train-single-0 fits no instance type of NodePool inference: "
    )
    for itype in ("g6.xlarge", "g6.2xlarge", "g6.4xlarge"):
        assert f"{itype}: Insufficient nvidia.com/gpu: the pod requests 8, the node has 1" in problem
    # the 4-GPU pool takes 4, not 8: both of its shapes say so
    big = gpu_limit_raised(case(stacks, "karpenter-mixed", "big", "vllm"), 8)
    (problem,) = fits_karpenter(stacks["karpenter-mixed"], big)
    assert "g6.12xlarge: Insufficient nvidia.com/gpu: the pod requests 8, the node has 4" in problem
    assert "g6.24xlarge: Insufficient nvidia.com/gpu: the pod requests 8, the node has 4" in problem


def test_the_arm_pool_takes_the_corpus_only_on_its_larger_shape(stacks: dict[str, KarpenterStack]) -> None:
    """g5g.xlarge (8 GiB, moto's catalogue) is too small for every corpus workload after Karpenter's overhead;
    g5g.2xlarge takes them. Allowed alone, the small shape leaves them Pending, and that is reported."""
    ks = stacks["karpenter-mixed"]
    small = [n for n in ks.nodes("arm") if n.instance_type == "g5g.xlarge"]
    c = case(stacks, "karpenter-mixed", "arm", "notebook")
    pods = [(p.name, a.spec, r) for p, a, r in zip(c.pods, c.admitted, c.requests, strict=True)]
    assert unplaceable(str(c), pods, ks.karpenter_pools["arm"], ks.nodes("arm")) == []
    (problem,) = unplaceable(str(c), pods, ks.karpenter_pools["arm"], small[:1])
    assert problem.startswith(
        "notebook on karpenter-mixed/arm: Karpenter: pod notebook fits no instance type of NodePool arm: g5g.xlarge: "
        "Insufficient memory: the pod requests 8Gi, the node has "
    )


def test_a_pod_without_the_pools_toleration_or_selector_is_reported(stacks: dict[str, KarpenterStack]) -> None:
    ks = stacks["karpenter-mixed"]
    c = case(stacks, "karpenter-mixed", "rocket", "notebook")
    for pod in c.pods:
        pod.spec["tolerations"] = [t for t in pod.spec["tolerations"] if t["key"] != "rocket"]
        pod.spec["nodeSelector"] = {"eks-gpu/node-group": "big"}
    (problem,) = fits_karpenter(ks, c)
    assert "untolerated taint rocket=only:NoExecute" in problem
    assert "nodeSelector eks-gpu/node-group=big does not match the node's label eks-gpu/node-group=rocket" in problem


def test_a_job_beyond_the_node_pools_limits_is_reported(stacks: dict[str, KarpenterStack]) -> None:
    ks = stacks["karpenter"]
    kp = ks.karpenter_pools["inference"]
    spec = {**kp.node_pool["spec"], "limits": {"nodes": "1", "nvidia.com/gpu": "1"}}
    small = dataclasses.replace(kp, node_pool={**kp.node_pool, "spec": spec})
    c = case(stacks, "karpenter", "inference", "ddp")
    pods = [(p.name, a.spec, r) for p, a, r in zip(c.pods, c.admitted, c.requests, strict=True)]
    assert unplaceable(str(c), pods, small, ks.nodes("inference")) == [
        "ddp on karpenter/inference: Karpenter: the pods fill 2 nodes, NodePool inference's limits.nodes is 1",
        "ddp on karpenter/inference: Karpenter: the pods request 2 GPUs, NodePool inference's limits.nvidia.com/gpu "
        "is 1",
    ]


def test_the_daemon_overhead_counts_the_device_plugin_where_it_lands(stacks: dict[str, KarpenterStack]) -> None:
    """Both pools' nodes run the shared exporter; only the AL2023 one runs the device plugin (Bottlerocket has
    it built in): the overheads differ by exactly the plugin's pod."""
    ks = stacks["karpenter-mixed"]
    plugin = daemon_set(render(ks.stack.run.one(RELEASE, "-nvidia-release")), PLUGIN_CONTAINER)
    overhead = {}
    for key in ("big", "rocket"):
        raw, after = ks.karpenter_pools[key].launchable[0].node.allocatable, ks.nodes(key)[0].node.allocatable
        overhead[key] = {name: raw[name] - after[name] for name in raw}
        assert overhead[key]["pods"] >= 1, key
    plugin_pod = {**pod_total(with_api_defaults(plugin)), "pods": Decimal(1)}
    assert plugin_pod["memory"] > 0 and plugin_pod["cpu"] > 0
    difference = {name: overhead["big"][name] - overhead["rocket"][name] for name in overhead["big"]}
    assert {k: v for k, v in difference.items() if v} == plugin_pod


def test_the_daemon_overhead_counts_the_eks_addons_on_a_g6_xlarge_node(stacks: dict[str, KarpenterStack]) -> None:
    """On a g6.xlarge node of the shipped Karpenter stack, the add-ons' DaemonSets take 190m CPU, 150Mi and six
    pods beyond the Helm releases' (tests/data/eks_addon_daemonsets.json, each from its upstream chart):
    aws-node 25m + 25m (its init container's 25m runs before them), kube-proxy 100m, ebs-csi-node 3 x (10m,
    40Mi), eks-node-monitoring-agent (10m, 30Mi); eks-pod-identity-agent and the agent's dcgm-server request
    nothing but a pod each (dcgm-server lands: the program gives it the GPU taints)."""
    ks = stacks["karpenter"]
    assert set(ks.stack.addons) >= {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    assert "eks-node-monitoring-agent" in ks.stack.addons
    (index, launched) = next(
        (i, n) for i, n in enumerate(ks.karpenter_pools["inference"].launchable) if n.instance_type == "g6.xlarge"
    )
    total = daemon_overhead(ks.stack.daemon_specs, launched.node)
    helm = daemon_overhead(ks.stack.helm_daemon_specs, launched.node)
    # what Karpenter's simulation offers the pods: the node less both
    after = ks.nodes("inference")[index].node.allocatable
    assert {k: launched.node.allocatable[k] - after[k] for k in total} == total
    added = {k: total[k] - helm.get(k, Decimal(0)) for k in total}
    assert {k: v for k, v in added.items() if v} == {
        "cpu": Decimal("0.190"),
        "memory": Decimal(150 * 2**20),
        "pods": Decimal(6),
    }


# ---- the GPU software on Karpenter's nodes ---------------------------------------------------------


def landing(result: ProgramRun, labels: Mapping[str, str], taints: Sequence[Mapping[str, str]]) -> list[str]:
    """Which GPU DaemonSets select a node of ``labels`` and ``taints`` (Kubernetes spelling), by the values
    sent: the device plugin, the agent's ``dcgm-server`` (its add-on values, as ``test_gpu_health``
    reads them), each dcgm-exporter release (``client`` when it reads the agent's engine)."""
    node = Node(labels, taints, {"pods": Decimal(1)})
    out = []
    for release in result.of_type(RELEASE):
        if release.inputs["chart"] in (PLUGIN_CHART, EFA_CHART):
            container = PLUGIN_CONTAINER if release.inputs["chart"] == PLUGIN_CHART else None
            objects = render(release)
            specs = (
                [daemon_set(objects, container)]
                if container
                else [pod_spec(o) for o in objects if o["kind"] == "DaemonSet"]
            )
            out += [release.inputs["chart"] for s in specs if not unfit(s, {}, node)]
    if addon(result, AGENT) is not None:
        dcgm = addon_values(result, AGENT)["dcgmAgent"]
        server = {**dcgm, "nodeSelector": {"kubernetes.io/os": "linux"}}
        if not unfit(server, {}, node):
            out.append(f"{AGENT} dcgm-server")
    for name, (_, spec) in exporters(result).items():
        if not unfit(spec, {}, node):
            out.append(f"{name} {'client' if '-r' in spec['containers'][0]['args'] else 'engine'}")
    return out


def karpenter_placement(ks: KarpenterStack) -> dict[str, list[str]]:
    """``pool instance-type`` -> the GPU DaemonSets on its nodes (the same on every zone and capacity type)."""
    out: dict[str, list[str]] = {}
    for key, kp in ks.karpenter_pools.items():
        for n in kp.launchable:
            found = landing(ks.stack.run, n.node.labels, n.node.taints)
            assert out.setdefault(f"{key} {n.instance_type}", found) == found, (key, n)
    return out


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_gpu_software_lands_on_every_karpenter_gpu_node_by_the_managed_rules(
    stacks: dict[str, KarpenterStack], label: str
) -> None:
    ks = stacks[label]
    result = ks.stack.run
    placement = karpenter_placement(ks)
    releases = set(exporters(result))
    efa_plugin = [r for r in result.of_type(RELEASE) if r.inputs["chart"] == EFA_CHART]
    assert bool(efa_plugin) == any(p.efa for p in ks.pools.values())  # the EFA plugin with an EFA pool only
    for key, kp in ks.karpenter_pools.items():
        bottlerocket = kp.ami_type.bottlerocket
        for n in kp.launchable:
            where, found = f"{key} {n.instance_type}", placement[f"{key} {n.instance_type}"]
            (arch,) = aws_data.catalogue()[n.instance_type]["ProcessorInfo"]["SupportedArchitectures"]
            # the device plugin exactly on the AL2023 nodes, tolerating their taints
            assert (PLUGIN_CHART in found) == (not bottlerocket), where
            # the EFA device plugin exactly on the EFA pools' nodes, tolerating their taints
            assert (EFA_CHART in found) == ks.pools[key].efa, where
            # the agent's engine where its chart's affinity puts it
            agent = f"{AGENT} dcgm-server" in found
            assert agent == runs_dcgm_server(n.instance_type, arch), where
            engines = [f for f in found if f.endswith(" engine")] + ([f"{AGENT} dcgm-server"] if agent else [])
            clients = [f for f in found if f.endswith(" client")]
            assert len(engines) <= 1, where  # one DCGM host engine per node
            if clients:
                assert agent, where  # a client reads the agent's engine on its own node
            if releases:  # an exporter on every GPU node, once
                assert len([f for f in found if f.split()[0] in releases]) == 1, where
    for t in [t for kp in ks.karpenter_pools.values() if not kp.ami_type.bottlerocket for t in kp.taints]:
        plugin = daemon_set(render(result.one(RELEASE, "-nvidia-release")), PLUGIN_CONTAINER)
        assert any(tolerates(tol, t) for tol in plugin["tolerations"]), t


def test_the_mixed_stacks_placement(stacks: dict[str, KarpenterStack]) -> None:
    placement = karpenter_placement(stacks["karpenter-mixed"])
    shared, own = "eks-gpu-dcgm-exporter-shared-release", "eks-gpu-dcgm-exporter-own-release"
    al2023 = [PLUGIN_CHART, f"{AGENT} dcgm-server", f"{shared} client"]
    assert placement == {
        "rocket g6.xlarge": [f"{AGENT} dcgm-server", f"{shared} client"],
        "rocket g6.2xlarge": [f"{AGENT} dcgm-server", f"{shared} client"],
        "big g6.12xlarge": al2023,
        "big g6.24xlarge": al2023,
        # arm64: the agent's engine is amd64 only, so the exporter embeds its own
        "arm g5g.xlarge": [PLUGIN_CHART, f"{own} engine"],
        "arm g5g.2xlarge": [PLUGIN_CHART, f"{own} engine"],
    }


def managed_twin(cfg: dict[str, Any]) -> dict[str, Any]:
    """The same stack under the Cluster Autoscaler: each pool a managed node group of its first type (the
    autoscaler's template takes one shape), everything else as it is."""
    pools = {
        key: {
            **{k: v for k, v in p.items() if k != "karpenter"},
            "instanceTypes": p["instanceTypes"][:1],
            "minSize": 0,
            "desiredSize": 0,
        }
        for key, p in cfg["eks-gpu:gpuNodeGroups"].items()
    }
    twin = {k: v for k, v in cfg.items() if k not in ("eks-gpu:provisioner", "eks-gpu:karpenter")}
    return {**twin, "eks-gpu:gpuNodeGroups": pools}


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_the_gpu_software_lands_as_on_the_managed_twin(stacks: dict[str, KarpenterStack], label: str) -> None:
    """Each pool's first type: the same DaemonSets on Karpenter's node as on the managed node group's."""
    twin, _ = with_deployer(managed_twin(CONFIGS[label]))
    managed = run(twin)
    on_managed = {}
    for n in gpu_nodes(managed):
        taints = [{**t, "effect": K8S_EFFECT[t["effect"]]} for t in n.taints]
        on_managed[f"{n.pool} {n.instance_type}"] = landing(managed, n.labels, taints)
    karpenter = karpenter_placement(stacks[label])
    assert on_managed and on_managed == {k: v for k, v in karpenter.items() if k in on_managed}
