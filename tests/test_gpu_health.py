"""One DCGM host engine per GPU node, and the one the node monitoring agent's health verdicts come from.

Two engines on a node make the agent report ``AcceleratedHardwareReady=False`` and auto-repair replace
healthy nodes (aws/containers-roadmap#2763, #2555). For every node type of every pool (a pool's
labels and taints, one of its instance types, that type's architecture from AWS's catalogue) these
tests work out which DaemonSets land on it, from what the program really sends: the node monitoring
add-on's configuration values (its ``dcgm-server``, ``nv-hostengine`` on host port 5555), the
CloudWatch add-on (its own DCGM exporter, an embedded engine on every NVIDIA node) and the rendered
dcgm-exporter releases (embedded, or a client of the agent's engine with ``-r``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from eks_gpu.facts.node_monitoring import DCGM_SERVER_INSTANCE_TYPES, runs_dcgm_server
from eks_gpu.offline import ProgramRun, RegisteredResource

from tests import aws_data
from tests.charts import render
from tests.helpers import config, every_feature, gpu_pool, problems_of, program_scope, run, run_stack_file
from tests.test_charts import findings, node_taints, pod_spec, runs_on

ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NAMESPACE = "kubernetes:core/v1:Namespace"
AGENT = "eks-node-monitoring-agent"
CLOUDWATCH = "amazon-cloudwatch-observability"
ARCH = {"x86_64": "amd64", "arm64": "arm64"}
TAINTED = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
MIXED = {
    "amd": gpu_pool("g5.xlarge"),
    "arm": gpu_pool("g5g.xlarge", taints=[*TAINTED, {"key": "arch", "value": "arm", "effect": "NO_EXECUTE"}]),
    "train": gpu_pool(
        "p5.48xlarge", taints=[*TAINTED, {"key": "workload", "value": "training", "effect": "NO_SCHEDULE"}]
    ),
}
"""amd64 pools (A10G, H100) and an arm64 one (T4G: g5g.xlarge), each tainted its own way."""
EXPORTER_NEEDS = {
    ("exporter", "runAsNonRoot"): "root for the kubelet's root-owned pod-resources socket (which pod has which GPU)",
    ("exporter", "readOnlyRootFilesystem"): (
        "the exporter writes its runtime files; the chart enables a read-only root only with tmpfs volumes "
        "it does not template"
    ),
    ("pod", "hostPath /var/lib/kubelet/pod-resources"): "the kubelet's pod-resources API: which pod has which GPU",
}
"""What either exporter cannot have, and why (no host network among them); the embedded one adds
``SYS_ADMIN`` for DCGM's profiling metrics, asserted apart."""


@dataclass
class Node:
    """One node type: a pool's node of one instance type, and what lands on it."""

    pool: str
    instance_type: str
    labels: dict[str, str]
    taints: list[dict[str, Any]]
    engines: list[str] = field(default_factory=list)
    """The DaemonSets that run a DCGM host engine here."""
    clients: list[str] = field(default_factory=list)
    """The DaemonSets that read a host engine here (``-r``)."""

    @property
    def group(self) -> dict[str, Any]:
        """What :func:`tests.test_charts.runs_on` reads."""
        return {"labels": self.labels, "taints": self.taints}


def addon(result: ProgramRun, name: str) -> RegisteredResource | None:
    found = [a for a in result.of_type(ADDON) if a.inputs["addonName"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def addon_values(result: ProgramRun, name: str) -> dict[str, Any]:
    found = addon(result, name)
    assert found is not None, name
    raw = found.inputs.get("configurationValues")
    return json.loads(raw) if raw else {}


def exporters(result: ProgramRun) -> dict[str, tuple[RegisteredResource, dict[str, Any]]]:
    """dcgm-exporter release name -> (release, its DaemonSet's pod spec as rendered)."""
    out = {}
    for release in result.of_type(RELEASE):
        if release.inputs["chart"] == "dcgm-exporter":
            (ds,) = [o for o in render(release) if o["kind"] == "DaemonSet"]
            out[release.name] = (release, pod_spec(ds))
    return out


def gpu_nodes(result: ProgramRun) -> list[Node]:
    """Every GPU node type of the stack, and the DCGM engines and clients that land on it."""
    nodes = []
    for ng in result.of_type(NODE_GROUP):
        labels, pool = ng.inputs["labels"], ng.inputs["labels"]["eks-gpu/node-group"]
        if labels.get("nvidia.com/gpu.present") != "true":
            continue
        for itype in ng.inputs["instanceTypes"]:
            (arch,) = aws_data.catalogue()[itype]["ProcessorInfo"]["SupportedArchitectures"]
            node_labels = {
                **labels,
                "node.kubernetes.io/instance-type": itype,
                "kubernetes.io/arch": ARCH[arch],
                "kubernetes.io/os": "linux",
            }
            nodes.append(Node(pool, itype, node_labels, ng.inputs.get("taints") or []))
    agent = addon(result, AGENT)
    if agent is not None:
        dcgm = addon_values(result, AGENT)["dcgmAgent"]
        # templates/dcgm-daemonset.yaml: its affinity and tolerations from these values, kubernetes.io/os=linux
        server = {
            "affinity": dcgm["affinity"],
            "tolerations": dcgm["tolerations"],
            "nodeSelector": {"kubernetes.io/os": "linux"},
        }
        for node in nodes:
            if runs_on(server, node.group):
                node.engines.append(f"{AGENT} dcgm-server")
    if addon(result, CLOUDWATCH) is not None and addon_values(result, CLOUDWATCH).get("dcgmExporter") != {
        "enabled": False
    }:
        # aws-observability/helm-charts amazon-cloudwatch-observability: its DcgmExporter on every NVIDIA
        # instance type of its gpuInstances list, tolerating everything; dcgm-exporter's default is embedded
        for node in nodes:
            node.engines.append(f"{CLOUDWATCH} dcgm-exporter")
    for name, (_, spec) in exporters(result).items():
        args = spec["containers"][0]["args"]
        for node in nodes:
            if runs_on(spec, node.group):
                (node.clients if "-r" in args else node.engines).append(name)
    return nodes


def assert_one_engine_per_node(result: ProgramRun) -> list[Node]:
    """No node gets two engines; every client reads the agent's engine on its own node; an exporter
    (when there is one) runs on every GPU node, once."""
    nodes, releases = gpu_nodes(result), set(exporters(result))
    assert nodes
    for node in nodes:
        where = f"{node.pool} {node.instance_type}: engines {node.engines}, clients {node.clients}"
        assert len(node.engines) <= 1, where
        if node.clients:
            assert node.engines == [f"{AGENT} dcgm-server"], where
        if releases:
            assert len([e for e in node.engines if e in releases]) + len(node.clients) == 1, where
    return nodes


def placement(nodes: list[Node]) -> dict[str, list[str]]:
    """``pool instance-type`` -> every DCGM DaemonSet there (engines, then clients), as release suffixes."""
    return {f"{n.pool} {n.instance_type}": [*n.engines, *n.clients] for n in nodes}


@pytest.fixture(scope=program_scope)
def mixed() -> ProgramRun:
    return run(config(MIXED, gpuMetrics={"exporter": "dcgm-exporter"}))


@pytest.fixture(scope=program_scope)
def prod() -> ProgramRun:
    return run_stack_file("prod")


def test_dev_prod_and_every_feature_run_one_dcgm_engine_per_node(prod: ProgramRun) -> None:
    dev = run_stack_file("dev")
    for result in (dev, prod, run(every_feature())):
        for node in assert_one_engine_per_node(result):
            # every pool of these stacks is amd64 of a type the agent's chart lists: its engine everywhere
            assert node.engines == [f"{AGENT} dcgm-server"], (node.pool, node.instance_type)
    assert exporters(dev) == {}  # the dev stack turns GPU metrics off
    # production's default: NVIDIA's exporter reading the agent's engine, not the CloudWatch add-on
    assert addon(prod, CLOUDWATCH) is None
    assert [name.split("-dcgm-exporter-")[1] for name in exporters(prod)] == ["shared-release"]


def test_arm64_and_amd64_pools_each_get_one_engine(mixed: ProgramRun) -> None:
    nodes = assert_one_engine_per_node(mixed)
    shared, own = "eks-gpu-dcgm-exporter-shared-release", "eks-gpu-dcgm-exporter-own-release"
    assert placement(nodes) == {
        # amd64, listed in the agent's chart: its dcgm-server; the exporter reads it
        "amd g5.xlarge": [f"{AGENT} dcgm-server", shared],
        "train p5.48xlarge": [f"{AGENT} dcgm-server", shared],
        # arm64 (g5g is on the chart's list, but its dcgm-server is amd64 only): the exporter embeds its own
        "arm g5g.xlarge": [own],
    }


def test_without_the_agent_every_exporter_embeds_its_engine() -> None:
    alone = run(config(MIXED, gpuMetrics={"exporter": "dcgm-exporter"}, nodeMonitoring={"enabled": False}))
    nodes = assert_one_engine_per_node(alone)
    assert {n.pool: n.engines for n in nodes} == {p: ["eks-gpu-dcgm-exporter-own-release"] for p in MIXED}
    assert [n for n in nodes if n.clients] == []


def test_cloudwatch_is_one_engine_only_without_the_agent() -> None:
    result = run(config(MIXED, gpuMetrics={"exporter": "cloudwatch"}, nodeMonitoring={"enabled": False}))
    nodes = assert_one_engine_per_node(result)
    assert {n.pool: n.engines for n in nodes} == {p: [f"{CLOUDWATCH} dcgm-exporter"] for p in MIXED}
    assert addon(result, AGENT) is None and exporters(result) == {}


def test_cloudwatch_beside_the_agents_engine_is_refused_naming_both_keys() -> None:
    for pools, where in ((None, "inference: g5.xlarge"), (MIXED, "amd: g5.xlarge; train: p5.48xlarge")):
        problems = problems_of(config(pools, gpuMetrics={"exporter": "cloudwatch"}))
        assert list(problems) == ["eks-gpu:gpuMetrics.exporter"]
        message = problems["eks-gpu:gpuMetrics.exporter"]
        for words in ("'cloudwatch'", "eks-gpu:nodeMonitoring.enabled", "dcgm-exporter", "none", where):
            assert words in message
    # nothing to measure, nothing refused
    run(config({}, gpuMetrics={"exporter": "cloudwatch"}))


def test_cloudwatch_beside_the_agent_is_accepted_where_the_agent_runs_no_engine() -> None:
    result = run(config({"arm": MIXED["arm"]}, gpuMetrics={"exporter": "cloudwatch"}))
    nodes = assert_one_engine_per_node(result)
    assert [(n.instance_type, n.engines) for n in nodes] == [("g5g.xlarge", [f"{CLOUDWATCH} dcgm-exporter"])]
    assert addon(result, AGENT) is not None


def test_the_agents_engine_placement_is_pinned_and_only_schema_keys_are_sent(mixed: ProgramRun) -> None:
    values = addon_values(mixed, AGENT)
    # charts/configuration.schema.json (the add-on's schema, additionalProperties false): DCGMAgent has
    # affinity and tolerations; dcgmAgent.enabled and nodeAgent.dcgmAddress exist only from v1.7.1
    assert list(values) == ["dcgmAgent"] and sorted(values["dcgmAgent"]) == ["affinity", "tolerations"]
    (term,) = values["dcgmAgent"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    expressions = {e["key"]: (e["operator"], e["values"]) for e in term["matchExpressions"]}
    # the chart's default dcgmAgent.affinity (values.yaml, v1.7.0): amd64 nodes of its NVIDIA types
    assert expressions["kubernetes.io/arch"] == ("In", ["amd64"])
    operator, types = expressions["node.kubernetes.io/instance-type"]
    assert operator == "In" and {"g5.xlarge", "g5g.xlarge", "p5.48xlarge", "g6.xlarge"} <= set(types)
    assert expressions["eks.amazonaws.com/compute-type"] == ("NotIn", ["fargate", "auto", "hybrid"])
    assert addon(mixed, CLOUDWATCH) is None


def test_each_exporter_has_only_the_privileges_its_mode_needs(mixed: ProgramRun) -> None:
    found = exporters(mixed)
    _, shared = found["eks-gpu-dcgm-exporter-shared-release"]
    _, own = found["eks-gpu-dcgm-exporter-own-release"]
    for spec, caps in ((shared, []), (own, ["SYS_ADMIN"])):
        (container,) = spec["containers"]
        assert findings(spec) == set(EXPORTER_NEEDS)  # no hostNetwork, hostPID or hostIPC among them
        assert container["securityContext"]["capabilities"].get("add", []) == caps
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        # the metrics port is the pod's own (9400), never a port of the node
        assert [(p["containerPort"], p.get("hostPort")) for p in container["ports"]] == [(9400, None)]
    # the client reads the agent's hostPort 5555 on its node's IP: no host network for it
    (container,) = shared["containers"]
    assert container["args"][-2:] == ["-r", "$(NODE_IP):5555"]
    assert {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}} in container["env"]
    assert "-r" not in own["containers"][0]["args"]
    assert all(EXPORTER_NEEDS.values())


def test_each_release_tolerates_exactly_its_pools_taints(mixed: ProgramRun) -> None:
    groups = {ng.inputs["labels"]["eks-gpu/node-group"]: ng.inputs for ng in mixed.of_type(NODE_GROUP)}
    for name, pools in (("shared", ["amd", "train"]), ("own", ["arm"])):
        _, spec = exporters(mixed)[f"eks-gpu-dcgm-exporter-{name}-release"]
        wanted: list[dict[str, str]] = []
        for pool in pools:
            wanted.extend(
                {**t, "operator": "Equal"}
                for t in node_taints(groups[pool])
                if {**t, "operator": "Equal"} not in wanted
            )
        assert sorted(map(sorted, (t.items() for t in spec["tolerations"]))) == sorted(
            map(sorted, (t.items() for t in wanted))
        ), name


def test_the_releases_wait_for_their_engine_and_namespace(mixed: ProgramRun) -> None:
    found = exporters(mixed)
    shared, _ = found["eks-gpu-dcgm-exporter-shared-release"]
    own, _ = found["eks-gpu-dcgm-exporter-own-release"]
    agent = addon(mixed, AGENT)
    assert agent is not None and agent.urn in shared.dependencies
    assert shared.inputs["namespace"] == "kube-system"
    # the chart names its metrics ConfigMap and Role without the release name: one namespace each
    namespace = mixed.one(NAMESPACE, "-dcgm-exporter-namespace")
    assert namespace.inputs["metadata"]["name"] == own.inputs["namespace"] != shared.inputs["namespace"]
    assert namespace.urn in own.dependencies
    assert namespace.inputs["metadata"]["labels"] == {"pod-security.kubernetes.io/enforce": "privileged"}


def test_the_catalogues_nvidia_types_get_the_agents_engine_exactly_on_amd64() -> None:
    for itype, info in aws_data.catalogue().items():
        gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
        if gpus and gpus[0]["Manufacturer"] == "NVIDIA":
            (arch,) = info["ProcessorInfo"]["SupportedArchitectures"]
            assert itype in DCGM_SERVER_INSTANCE_TYPES, itype
            assert runs_dcgm_server(itype, arch) == (arch == "x86_64"), itype


def test_the_shared_release_keeps_the_old_single_releases_identity(mixed: ProgramRun) -> None:
    # Before the split the one release, in kube-system reading the agent's engine, was
    # <exporter>-release: a new release beside it would claim the chart's fixed-name ConfigMap and Role
    # (templates/metrics-configmap.yaml, role.yaml) and Helm would refuse it; the alias makes it an update.
    releases = {r.name: r for r in mixed.of_type("kubernetes:helm.sh/v3:Release") if "dcgm-exporter" in r.name}
    assert releases["eks-gpu-dcgm-exporter-shared-release"].aliases == (
        {"spec": {"name": "eks-gpu-dcgm-exporter-release", "parentUrn": ""}},
    )
    assert releases["eks-gpu-dcgm-exporter-own-release"].aliases == ()
