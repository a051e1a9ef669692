"""Multi-node training pools: EFA interfaces from the instance catalogue, one AZ, a placement group."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eks_gpu.config import GpuPool
from eks_gpu.design.efa import efa_design
from eks_gpu.design.lookup import InstanceFacts
from eks_gpu.offline import ProgramRun

from tests import aws_data, test_charts
from tests.charts import render
from tests.helpers import REGION, config, gpu_pool, launch_template, node_group, problems_of, program_scope, run

TRAINING = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
JOBS = {"key": "workload", "value": "training", "effect": "NO_EXECUTE"}


def catalogue_layout(instance_type: str) -> tuple[int, list[list[str]]]:
    """EFA interfaces and each network card's interface types, as AWS's catalogue (in moto) has them."""
    net = aws_data.catalogue()[instance_type]["NetworkInfo"]
    cards = sorted(net["NetworkCards"], key=lambda c: c["NetworkCardIndex"])
    return net["EfaInfo"]["MaximumEfaInterfaces"], [c["InterfaceTypes"] for c in cards]


@pytest.fixture(scope=program_scope)
def efa() -> ProgramRun:
    pools = {
        "train": gpu_pool("p5.48xlarge", efa=True, maxSize=2, taints=[TRAINING, JOBS]),
        "p4d": gpu_pool("p4d.24xlarge", efa=True, maxSize=2),
        "serve": gpu_pool(),
    }
    return run(config(pools, vpc={"cidr": "10.0.0.0/16", "azCount": 3}))


@pytest.mark.parametrize(("key", "instance_type"), [("train", "p5.48xlarge"), ("p4d", "p4d.24xlarge")])
def test_one_efa_interface_per_network_card_as_the_catalogue_has_them(
    efa: ProgramRun, key: str, instance_type: str
) -> None:
    count, cards = catalogue_layout(instance_type)
    interfaces = launch_template(efa, key)["networkInterfaces"]
    assert len(interfaces) == count == len(cards) > 1
    for i, (nic, supported) in enumerate(zip(interfaces, cards, strict=True)):
        assert (nic["networkCardIndex"], nic["deviceIndex"]) == (i, 0 if i == 0 else 1)
        assert nic["interfaceType"] == ("efa" if i == 0 else "efa-only")
        assert nic["interfaceType"] in supported  # AWS lists the type for that card
        assert "subnetId" not in nic  # EKS sets the subnet


def test_every_catalogue_type_this_layout_takes_supports_it_on_every_card() -> None:
    """The layout rule (card 0 EFA, the others EFA-only) holds for every EFA type whose EFA interfaces
    equal its network cards; the program refuses the others."""
    taken = 0
    for itype, info in aws_data.catalogue().items():
        net = info.get("NetworkInfo", {})
        if not net.get("EfaSupported") or net["EfaInfo"]["MaximumEfaInterfaces"] != net["MaximumNetworkCards"]:
            continue
        taken += 1
        cards = sorted(net["NetworkCards"], key=lambda c: c["NetworkCardIndex"])
        assert "efa" in cards[0]["InterfaceTypes"], itype
        assert all("efa-only" in c["InterfaceTypes"] for c in cards[1:]), itype
    assert taken > 100


def test_the_interfaces_are_in_the_cluster_group_and_a_group_open_to_itself(efa: ProgramRun) -> None:
    (group,) = [g for g in efa.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-train-efa")]
    # the console shows a group by its Name tag: the pool's nodes' name with -efa
    assert group.inputs["tags"]["Name"] == f"{launch_template(efa, 'train')['tags']['Name']}-efa"
    cluster_group = efa.one("eks:index:Cluster").outputs["clusterSecurityGroupId"]
    nics = launch_template(efa, "train")["networkInterfaces"]
    assert len(nics) == catalogue_layout("p5.48xlarge")[0]
    for nic in nics:
        assert nic["securityGroups"] == [cluster_group, group.id]
    for kind in ("Ingress", "Egress"):
        (rule,) = [
            r
            for r in efa.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule")
            if r.inputs["securityGroupId"] == group.id
        ]
        assert rule.inputs["referencedSecurityGroupId"] == group.id and rule.inputs["ipProtocol"] == "-1"


def test_an_efa_pool_is_in_one_az_and_a_cluster_placement_group(efa: ProgramRun) -> None:
    subnets = {s.id: s.inputs["availabilityZone"] for s in efa.of_type("aws:ec2/subnet:Subnet")}
    for key in ("train", "p4d"):
        assert len({subnets[s] for s in node_group(efa, key)["subnetIds"]}) == 1, key
        (placement,) = [p for p in efa.of_type("aws:ec2/placementGroup:PlacementGroup") if f"-{key}-" in p.name]
        assert placement.inputs["strategy"] == "cluster"
        assert launch_template(efa, key)["placement"] == {"groupName": placement.outputs["name"]}
    assert len({subnets[s] for s in node_group(efa, "serve")["subnetIds"]}) > 1  # the others stay spread
    assert "networkInterfaces" not in launch_template(efa, "serve")


def test_a_capacity_block_efa_pool_gets_no_forced_placement_group() -> None:
    az = sorted(aws_data.offerings(REGION)["p5.48xlarge"])[0]
    block = gpu_pool(
        "p5.48xlarge",
        efa=True,
        capacityType="CAPACITY_BLOCK",
        capacityReservationId="cr-0123456789abcdef0",
        availabilityZone=az,
    )
    result = run(
        config(
            {"cb": block},
            vpc={
                "cidr": "10.0.0.0/16",
                "availabilityZones": [az, sorted(aws_data.offerings(REGION)["g5.xlarge"] - {az})[0]],
            },
        )
    )
    assert result.of_type("aws:ec2/placementGroup:PlacementGroup") == []
    assert len(launch_template(result, "cb")["networkInterfaces"]) == catalogue_layout("p5.48xlarge")[0]


def test_the_autoscaler_knows_a_node_brings_its_efa_interfaces(efa: ProgramRun) -> None:
    tags = {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in efa.of_type("aws:autoscaling/tag:Tag")
        if t.name.startswith("eks-gpu-train-asg-")
    }
    key = "k8s.io/cluster-autoscaler/node-template/resources/vpc.amazonaws.com/efa"
    assert tags[key] == str(catalogue_layout("p5.48xlarge")[0])
    assert node_group(efa, "train")["labels"]["eks-gpu/efa"] == "true"
    assert "eks-gpu/efa" not in node_group(efa, "serve")["labels"]


def test_the_efa_device_plugin_runs_on_efa_nodes_and_tolerates_their_taints(efa: ProgramRun) -> None:
    (release,) = [
        r for r in efa.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "aws-efa-k8s-device-plugin"
    ]
    assert release.inputs["version"] == "v0.5.30"
    assert release.inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    (daemon,) = [o for o in render(release) if o["kind"] == "DaemonSet"]
    spec = daemon["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"eks-gpu/efa": "true"}
    tolerations = [t for t in spec["tolerations"] if t.get("key") != "CriticalAddonsOnly"]
    expected = [
        {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": e}
        for t, e in ((TRAINING, "NoSchedule"), (JOBS, "NoExecute"))
    ]
    assert sorted(json.dumps(t, sort_keys=True) for t in tolerations) == sorted(
        json.dumps(t, sort_keys=True) for t in expected
    )
    (container,) = spec["containers"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_no_efa_plugin_without_efa_pools() -> None:
    assert "aws-efa-k8s-device-plugin" not in [
        r.inputs["chart"] for r in run(config()).of_type("kubernetes:helm.sh/v3:Release")
    ]


def test_efa_on_a_type_without_it_is_refused() -> None:
    assert not aws_data.catalogue()["g6.xlarge"]["NetworkInfo"]["EfaSupported"]
    found = problems_of(config({"p": gpu_pool("g6.xlarge", efa=True)}))
    assert "'g6.xlarge' has no EFA" in found["eks-gpu:gpuNodeGroups.p.instanceTypes[0]"]


def test_a_type_whose_first_card_has_no_efa_is_refused_not_guessed() -> None:
    count, cards = catalogue_layout("p6-b300.48xlarge")
    assert count == len(cards) - 1 and "efa" not in cards[0]
    found = problems_of(config({"p": gpu_pool("p6-b300.48xlarge", efa=True)}))
    assert (
        f"takes {count} EFA interfaces on {len(cards)} network cards" in found["eks-gpu:gpuNodeGroups.p.instanceTypes"]
    )


def _facts(instance_type: str) -> InstanceFacts:
    net = aws_data.catalogue()[instance_type]["NetworkInfo"]
    vcpus, memory, model, gpus = aws_data.shape(instance_type)
    return InstanceFacts(
        instance_type,
        (),
        gpus,
        aws_data.catalogue()[instance_type]["GpuInfo"]["Gpus"][0]["Manufacturer"],
        model,
        vcpus,
        memory,
        efa_supported=net["EfaSupported"],
        efa_max_interfaces=net["EfaInfo"]["MaximumEfaInterfaces"],
        network_cards=net["MaximumNetworkCards"],
    )


def test_types_of_different_efa_layouts_are_refused_in_one_pool() -> None:
    problems: list[Any] = []
    pool = GpuPool.model_validate({"instanceTypes": ["p5.48xlarge", "p5en.48xlarge"], "efa": True})
    assert efa_design(("gpuNodeGroups", "p"), pool, [_facts("p5.48xlarge"), _facts("p5en.48xlarge")], problems) is None
    (problem,) = problems
    assert problem.key == "eks-gpu:gpuNodeGroups.p.instanceTypes" and "mixes EFA layouts" in problem.message


EFA_PLUGIN_NEEDS = {
    **{
        ("aws-efa-k8s-device-plugin", check): (
            "the chart runs it privileged: it opens the EFA devices under /dev/infiniband, which a container "
            "reaches only with the device cgroup privileged mode opens (the chart's own default, kept)"
        )
        for check in (
            "not privileged",
            "allowPrivilegeEscalation false",
            "capabilities drop ALL",
            "seccompProfile RuntimeDefault",
            "runAsNonRoot",
            "readOnlyRootFilesystem",
        )
    },
    ("pod", "hostNetwork"): "the chart's template: the plugin enumerates the node's EFA interfaces",
    ("pod", "hostPath /dev/infiniband/"): "the EFA devices it advertises",
    ("pod", "hostPath /var/lib/kubelet/device-plugins"): "the kubelet's device-plugin registration folder",
    (
        "pod",
        "hostPath /opt/aws/neuron/",
    ): "templated unconditionally (Neuron tools on Trainium nodes); no value removes it",
}
"""What the EFA device plugin cannot have, and why."""


def test_the_efa_chart_validates_and_is_hardened_as_far_as_it_allows(efa: ProgramRun) -> None:
    charts = ["aws-efa-k8s-device-plugin", "cluster-autoscaler", "dcgm-exporter", "nvidia-device-plugin"]
    test_charts.renders_and_validates(efa, charts)  # dcgm-exporter: the default GPU metrics
    releases = efa.of_type("kubernetes:helm.sh/v3:Release")
    (release,) = [r for r in releases if r.inputs["chart"] == "aws-efa-k8s-device-plugin"]
    (daemon,) = [o for o in render(release) if o["kind"] == "DaemonSet"]
    assert test_charts.findings(daemon["spec"]["template"]["spec"]) == set(EFA_PLUGIN_NEEDS)


# --- capacity reservations -----------------------------------------------------------------

ODCR = "cr-0123456789abcdef0"
GROUP = "arn:aws:resource-groups:us-west-2:111122223333:group/training-reservations"


@pytest.mark.parametrize(
    ("target", "field"),
    [(ODCR, "capacityReservationId"), (GROUP, "capacityReservationResourceGroupArn")],
)
def test_an_on_demand_pool_launches_into_its_reservation_in_its_az_without_a_forced_placement_group(
    target: str, field: str
) -> None:
    az = sorted(aws_data.offerings(REGION)["p5.48xlarge"])[0]
    other = sorted(aws_data.offerings(REGION)["g5.xlarge"] - {az})[0]
    pool = gpu_pool("p5.48xlarge", efa=True, capacityReservation=target, availabilityZone=az)
    result = run(config({"r": pool}, vpc={"cidr": "10.0.0.0/16", "availabilityZones": [az, other]}))
    lt = launch_template(result, "r")
    assert lt["capacityReservationSpecification"] == {"capacityReservationTarget": {field: target}}
    assert result.of_type("aws:ec2/placementGroup:PlacementGroup") == []  # the reservation places them
    subnets = {s.id: s.inputs["availabilityZone"] for s in result.of_type("aws:ec2/subnet:Subnet")}
    assert {subnets[s] for s in node_group(result, "r")["subnetIds"]} == {az}
    assert node_group(result, "r")["capacityType"] == "ON_DEMAND"


def test_a_reservation_needs_on_demand_one_type_and_its_az() -> None:
    spot = gpu_pool("p4d.24xlarge", "p4de.24xlarge", capacityType="SPOT", capacityReservation=ODCR)
    found = problems_of(config({"r": spot}))
    assert "capacityType must be ON_DEMAND, not SPOT" in found["eks-gpu:gpuNodeGroups.r.capacityReservation"]
    assert "exactly one instance type" in found["eks-gpu:gpuNodeGroups.r.instanceTypes"]
    assert "is required with capacityReservation" in found["eks-gpu:gpuNodeGroups.r.availabilityZone"]
    assert (
        "string should match pattern"
        in problems_of(config({"r": gpu_pool(capacityReservation="odcr-1")}))[
            "eks-gpu:gpuNodeGroups.r.capacityReservation"
        ]
    )
