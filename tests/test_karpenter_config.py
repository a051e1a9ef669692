"""Issue 24, the config and design layers: ``provisioner: karpenter``, its keys, their refusals, and the
design of a Karpenter stack (alias, limits, allocatable, quotas), held against moto's catalogue."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from eks_gpu.config import AmiType
from eks_gpu.design.allocatable import eni_max_pods, managed_max_pods, node_allocatable
from eks_gpu.design.karpenter import ami_alias
from eks_gpu.facts.karpenter import CHART_VERSION
from eks_gpu.facts.quotas import Market, quota_for
from eks_gpu.offline import AwsAccount, run_program

from tests import aws_data
from tests.helpers import config, gpu_pool, problems_of, run
from tests.test_allocatable import facts

AL2023_RELEASE = "1.35.2-20260304"
BOTTLEROCKET_RELEASE = "1.58.0-c5c37032"
PINNED = {"al2023": AL2023_RELEASE, "bottlerocket": BOTTLEROCKET_RELEASE}
KARPENTER = {"provisioner": "karpenter", "amiReleaseVersion": PINNED, "systemNodeGroup": {"minSize": 2}}
"""A sound Karpenter stack's stack keys: pinned AMIs, a system node per controller replica."""


def karpenter_config(pools: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    """:func:`config` under Karpenter; pools default to one g6 pool at 0..2 (no desiredSize: refused)."""
    pools = pools if pools is not None else {"inference": karpenter_pool()}
    return config(pools, **{**KARPENTER, **keys})


def karpenter_pool(*types: str, **overrides: Any) -> dict[str, Any]:
    pool = gpu_pool(*(types or ("g6.xlarge",)), **overrides)
    for key in ("minSize", "desiredSize"):
        if key not in overrides:
            pool.pop(key)
    return pool


# --- refusals ------------------------------------------------------------------------------------


def test_karpenter_objects_without_the_provisioner_are_refused() -> None:
    found = problems_of(config({"inference": gpu_pool(karpenter={})}, karpenter={"replicas": 1}))
    assert found == {
        "eks-gpu:karpenter": "applies only with eks-gpu:provisioner: karpenter",
        "eks-gpu:gpuNodeGroups.inference.karpenter": "applies only with eks-gpu:provisioner: karpenter",
    }


def test_every_problem_of_a_karpenter_stack_at_once() -> None:
    pools = {
        "inference": karpenter_pool(
            minSize=1,
            desiredSize=1,
            capacityType="SPOT",
            capacityReservation="cr-0123456789abcdef0",
            karpenter={"capacityTypes": ["reserved", "spot"]},
        ),
        "train": karpenter_pool(
            "p5.48xlarge", efa=True, amiType="BOTTLEROCKET_x86_64_NVIDIA", capacityReservationId="cr-0123456789abcdef0"
        ),
        "batch": karpenter_pool(karpenter={"capacityReservationIds": ["cr-0123456789abcdef0"]}),
    }
    found = problems_of(
        config(
            pools,
            provisioner="karpenter",
            autoscaler={"expander": "priority"},
            amiReleaseVersion={"al2023": AL2023_RELEASE},
        )
    )
    inference, train, batch = ("eks-gpu:gpuNodeGroups." + k for k in ("inference", "train", "batch"))
    assert "Karpenter keeps no minimum" in found[f"{inference}.minSize"]
    assert "Karpenter keeps no minimum" in found[f"{inference}.desiredSize"]
    assert "karpenter.capacityTypes" in found[f"{inference}.capacityType"]
    assert "karpenter.capacityReservationIds" in found[f"{inference}.capacityReservation"]
    assert "karpenter.capacityReservationIds" in found[f"{train}.capacityReservationId"]
    assert found[f"{inference}.karpenter.capacityReservationIds"].startswith(
        "is required when capacityTypes lists reserved"
    )
    assert found[f"{batch}.karpenter.capacityReservationIds"].startswith(
        "only applies when capacityTypes lists reserved"
    )
    assert f"{train}.efa" not in found  # EFA pools are Karpenter's too (tests/test_karpenter_build.py)
    # the Bottlerocket pool has no release of its family: the stack's al2023 one does not serve it
    assert "eks-gpu:amiReleaseVersion.bottlerocket" in found[f"{train}.amiReleaseVersion"]
    assert "1.58.0-c5c37032" in found[f"{train}.amiReleaseVersion"]
    assert "bottlerocket@latest would replace every node" in found[f"{train}.amiReleaseVersion"]
    assert "Cluster Autoscaler, which a karpenter stack does not run" in found["eks-gpu:autoscaler.expander"]
    # default system group (minSize 1) for the default 2 replicas
    assert "each replica needs a system node of its own" in found["eks-gpu:systemNodeGroup.minSize"]
    assert f"{inference}.amiReleaseVersion" not in found  # the stack's al2023 release serves it


def test_an_unpinned_al2023_pool_names_both_keys_and_an_example() -> None:
    found = problems_of(
        config({"inference": karpenter_pool()}, provisioner="karpenter", systemNodeGroup={"minSize": 2})
    )
    assert found == {
        "eks-gpu:gpuNodeGroups.inference.amiReleaseVersion": "is required with Karpenter (or "
        "eks-gpu:amiReleaseVersion.al2023): the EC2NodeClass selects its AMI by an alias that must be pinned, as "
        "al2023@latest would replace every node at every AMI release; set it to a release such as 1.35.2-20260304"
    }


def test_an_existing_clusters_name_too_long_for_the_queue_is_named_by_its_key() -> None:
    """With existingCluster the queue is named after that cluster (tests/test_karpenter_existing.py builds one)."""
    name = "p" * 81
    found = problems_of(
        {
            "aws:region": "us-west-2",
            "eks-gpu:existingCluster": {"name": name},
            "eks-gpu:provisioner": "karpenter",
            "eks-gpu:gpuNodeGroups": {"inference": karpenter_pool(amiReleaseVersion=AL2023_RELEASE)},
        }
    )
    assert found["eks-gpu:existingCluster.name"].startswith("is 81 characters; with Karpenter at most 80")
    assert "eks-gpu:clusterName" not in found


def test_replicas_beyond_the_system_nodes_name_the_set_key() -> None:
    found = problems_of(
        karpenter_config(karpenter={"replicas": 3}, systemNodeGroup={"minSize": 1, "desiredSize": 2, "maxSize": 3})
    )
    assert list(found) == ["eks-gpu:systemNodeGroup.desiredSize"]
    assert "2 system node(s) for 3 Karpenter controller replicas" in found["eks-gpu:systemNodeGroup.desiredSize"]


@pytest.mark.parametrize(
    ("keys", "key", "says"),
    [
        ({"provisioner": "Karpenter"}, "eks-gpu:provisioner", "use one of clusterAutoscaler, karpenter"),
        ({"karpenter": {"replicas": 4}}, "eks-gpu:karpenter.replicas", "less than or equal to 3"),
        ({"clusterName": "k" * 81}, "eks-gpu:clusterName", "SQS names are at most 80 characters"),
    ],
)
def test_stack_keys_are_checked(keys: dict[str, Any], key: str, says: str) -> None:
    assert says in problems_of(karpenter_config(**keys))[key]


@pytest.mark.parametrize(
    ("karpenter", "key", "says"),
    [
        ({"capacityTypes": ["spot", "spot"]}, "capacityTypes", "lists a capacity type twice"),
        ({"capacityTypes": ["Spot"]}, "capacityTypes[0]", "use one of reserved, spot, on-demand"),
        ({"capacityTypes": []}, "capacityTypes", "at least 1 item"),
        ({"consolidationPolicy": "Never"}, "consolidationPolicy", "use one of WhenEmpty, WhenEmptyOrUnderutilized"),
        ({"consolidateAfter": "10 minutes"}, "consolidateAfter", "not a duration such as 10m"),
        ({"disruptionBudget": "1O"}, "disruptionBudget", "not a node count such as 1 or a percentage"),
        ({"expireAfter": "30d"}, "expireAfter", "not a duration"),
        ({"terminationGracePeriod": "Never"}, "terminationGracePeriod", "not a duration"),
        ({"capacityTypes": ["reserved"], "capacityReservationIds": ["cr-XYZ"]}, "capacityReservationIds[0]", "cr-"),
        ({"capacityTypes": ["on-demand", "spot"]}, "capacityTypes", "always tries reserved, then spot, then on-demand"),
        (
            {"capacityTypes": ["spot", "reserved"], "capacityReservationIds": ["cr-0123456789abcdef0"]},
            "capacityTypes",
            "write [reserved, spot]",
        ),
    ],
)
def test_pool_keys_are_checked(karpenter: dict[str, Any], key: str, says: str) -> None:
    found = problems_of(karpenter_config({"inference": karpenter_pool(karpenter=karpenter)}))
    assert says in found[f"eks-gpu:gpuNodeGroups.inference.karpenter.{key}"], found


# --- the design ----------------------------------------------------------------------------------

DESIGN_PROGRAM = textwrap.dedent(
    """
    import dataclasses, json
    import pulumi
    import eks_gpu
    design = eks_gpu.design_stack(pulumi.Config("test").require_object("args"))
    pulumi.export("design", json.dumps(dataclasses.asdict(design), default=str))
    """
)


def design_of(tmp_path: Path, cfg: dict[str, Any], setup: Any = None) -> dict[str, Any]:
    """The StackDesign ``eks_gpu.design_stack`` decides for ``cfg`` under the offline engine, as data
    (the build of a Karpenter stack is another layer's: this stops at the design)."""
    program = tmp_path / "__main__.py"
    program.write_text(DESIGN_PROGRAM)
    args = {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("eks-gpu:")}

    def account(found: AwsAccount) -> None:
        # an account that has run spot before (the spot service-linked role); a fresh one: test_spot_*
        found.create_spot_service_linked_role()
        if setup is not None:
            setup(found)

    ran = run_program(
        {"aws:region": cfg["aws:region"], "test:args": args}, program=program, project_file=None, account_setup=account
    )
    design: dict[str, Any] = json.loads(ran.outputs["design"])
    return design


def catalogue(instance_type: str) -> dict[str, Any]:
    info: dict[str, Any] = aws_data.catalogue()[instance_type]
    return info


def gpus(instance_type: str) -> int:
    return sum(g["Count"] for g in catalogue(instance_type)["GpuInfo"]["Gpus"])


def test_the_design_of_a_karpenter_stack(tmp_path: Path) -> None:
    types = ("g6.xlarge", "g6.4xlarge")  # one GPU model and count, two node sizes: allowed under Karpenter
    pools = {
        "inference": karpenter_pool(
            *types,
            maxSize=3,
            karpenter={
                "capacityTypes": ["reserved", "spot", "on-demand"],
                "capacityReservationIds": ["cr-0123456789abcdef0"],
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "1h",
                "disruptionBudget": "10%",
                "expireAfter": "720h",
                "terminationGracePeriod": "24h",
            },
        ),
        "rocket": karpenter_pool("g5.xlarge", amiType="BOTTLEROCKET_x86_64_NVIDIA"),
    }
    design = design_of(tmp_path, karpenter_config(pools, karpenter={"replicas": 1}, systemNodeGroup={}))
    assert design["autoscaler"] is None
    assert design["karpenter"] == {"chart_version": CHART_VERSION, "replicas": 1, "interruption_queue": "eks-gpu-dev"}
    inference = design["gpu_pools"]["inference"]
    assert (inference["min_size"], inference["desired_size"], inference["max_size"]) == (0, 0, 3)
    assert inference["karpenter"] == {
        "capacity_types": ["reserved", "spot", "on-demand"],
        "capacity_reservation_ids": ["cr-0123456789abcdef0"],
        "ami_alias": "al2023@v20260304",
        "node_limit": 3,
        "gpu_limit": 3 * max(gpus(t) for t in types),
        "cpu_limit": 3 * max(catalogue(t)["VCpuInfo"]["DefaultVCpus"] for t in types),
        "consolidation_policy": "WhenEmptyOrUnderutilized",
        "consolidate_after": "1h",
        "disruption_budget_nodes": "10%",
        "expire_after": "720h",
        "termination_grace_period": "24h",
    }
    rocket = design["gpu_pools"]["rocket"]["karpenter"]
    assert rocket["ami_alias"] == "bottlerocket@v1.58.0"
    # the program's defaults for a pool without its own karpenter object: GPU-safe
    assert (rocket["capacity_types"], rocket["consolidation_policy"], rocket["consolidate_after"]) == (
        ["on-demand"],
        "WhenEmpty",
        "10m",
    )
    assert (rocket["disruption_budget_nodes"], rocket["expire_after"], rocket["termination_grace_period"]) == (
        "1",
        "Never",
        None,
    )
    assert design["system"]["karpenter"] is None
    # allocatable: Karpenter's maxPods, the ENI limit of the smaller type
    expected = node_allocatable([facts(t) for t in types], AmiType.AL2023_x86_64_NVIDIA, 100, gpus=1, karpenter=True)
    assert (
        inference["allocatable"]["pods"]
        == expected.pods
        == min(eni_max_pods(facts(t).default_card_interfaces, facts(t).ipv4_per_interface) for t in types)
    )


def quota_warnings(tmp_path: Path, market: Market) -> tuple[str, list[str]]:
    """The quota code of g6.4xlarge in ``market`` and the warnings of a spot-then-on-demand Karpenter pool
    of 3 such nodes, with every quota of that type at 4 vCPUs."""
    codes = [quota_for("g6.4xlarge", m) for m in ("on-demand", "spot")]

    def setup(account: AwsAccount) -> None:
        for quota in codes:
            assert quota is not None
            account.quotas[quota.code] = 4

    pool = karpenter_pool("g6.4xlarge", maxSize=3, karpenter={"capacityTypes": ["spot", "on-demand"]})
    design = design_of(tmp_path, karpenter_config({"inference": pool}), setup)
    need = 3 * catalogue("g6.4xlarge")["VCpuInfo"]["DefaultVCpus"]
    quota = quota_for("g6.4xlarge", market)
    assert quota is not None
    found = [w for w in design["warnings"] if quota.code in w]
    assert all(w.startswith("eks-gpu:gpuNodeGroups.inference.maxSize") and f"need {need} vCPUs" in w for w in found)
    return quota.code, found


def test_quotas_count_the_node_limit_of_the_largest_type(tmp_path: Path) -> None:
    code, found = quota_warnings(tmp_path, "on-demand")
    assert len(found) == 1, (code, found)


def test_quotas_count_the_spot_market_of_a_pool_that_lists_spot(tmp_path: Path) -> None:
    code, found = quota_warnings(tmp_path, "spot")
    assert len(found) == 1, (code, found)


G6 = "g6.4xlarge"
SMOKE = {"gpuPod": {"enabled": True, "nodeGroup": "inference"}}
"""The smoke test on pool ``inference``: one node of it started while ``pulumi up`` waits."""


def quotas_at(values: dict[Market, int]) -> Any:
    """An account whose vCPU quotas of ``G6`` in each market are ``values``."""

    def setup(account: AwsAccount) -> None:
        for market, value in values.items():
            quota = quota_for(G6, market)
            assert quota is not None
            account.quotas[quota.code] = value

    return setup


def smoke_pool(*capacity: str, **karpenter: Any) -> dict[str, Any]:
    return {"inference": karpenter_pool(G6, karpenter={"capacityTypes": list(capacity), **karpenter})}


def test_a_spot_only_pool_whose_spot_quota_cannot_start_the_smoke_test_is_refused() -> None:
    spot = quota_for(G6, "spot")
    assert spot is not None
    vcpus = catalogue(G6)["VCpuInfo"]["DefaultVCpus"]
    found = problems_of(karpenter_config(smoke_pool("spot"), **SMOKE), account_setup=quotas_at({"spot": vcpus - 1}))
    message = found["eks-gpu:gpuPod.enabled"]
    # the pool, the market, the quota code and the increase command, as for a node group
    assert f"starting 1 {G6} of pool inference as spot for eks-gpu:gpuPod needs {vcpus} vCPUs of '{spot.name}'" in (
        message
    )
    assert (
        f"request an increase: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code "
        f"{spot.code} --desired-value {2 * vcpus} --region us-west-2" in message
    ), message


@pytest.mark.parametrize(
    ("capacity", "extra"),
    [(("spot", "on-demand"), {}), (("reserved", "spot"), {"capacityReservationIds": ["cr-0123456789abcdef0"]})],
)
def test_a_short_spot_quota_is_a_warning_when_the_pool_falls_back(
    tmp_path: Path, capacity: tuple[str, ...], extra: dict[str, Any]
) -> None:
    """Karpenter launches as the next capacity type when EC2 refuses one over its quota
    (karpenter-provider-aws ``pkg/errors/errors.go``): a refusal would stop a stack that deploys."""
    spot = quota_for(G6, "spot")
    assert spot is not None
    vcpus = catalogue(G6)["VCpuInfo"]["DefaultVCpus"]
    setup = quotas_at({"spot": 0, "on-demand": 10 * vcpus})
    design = design_of(tmp_path, karpenter_config(smoke_pool(*capacity, **extra), **SMOKE), setup)
    [warning] = [w for w in design["warnings"] if spot.code in w and "falls back" in w]
    fallback = next(t for t in capacity if t != "spot")
    assert warning.startswith("eks-gpu:gpuNodeGroups.inference.karpenter.capacityTypes: starting 1 ")
    assert f"of pool inference as spot for eks-gpu:gpuPod (it falls back to {fallback})" in warning
    assert f"--quota-code {spot.code} --desired-value {2 * vcpus}" in warning


def test_a_pool_refused_in_every_market_it_lists_is_refused() -> None:
    found = problems_of(
        karpenter_config(smoke_pool("spot", "on-demand"), **SMOKE), account_setup=quotas_at({"spot": 0, "on-demand": 0})
    )
    codes = [q.code for m in ("spot", "on-demand") if (q := quota_for(G6, m)) is not None]
    assert all(code in found["eks-gpu:gpuPod.enabled"] for code in codes), found


@pytest.mark.parametrize(("provisioner", "moves"), [("karpenter", "Karpenter drift"), (None, "one at a time")])
def test_the_ami_release_note_says_how_nodes_move(tmp_path: Path, provisioner: str | None, moves: str) -> None:
    """A managed node group rolls its nodes one at a time; a Karpenter pool's nodes drift, bounded by
    its disruption budget (karpenter-provider-aws v1.14 ``concepts/disruption.md``)."""
    older = "1.35.0-20260115"  # the bundled latest AL2023 release is newer
    pool = karpenter_pool(amiReleaseVersion=older, karpenter={"disruptionBudget": "20%"})
    cfg = (
        karpenter_config({"inference": pool})
        if provisioner
        else config({"inference": gpu_pool(amiReleaseVersion=older)})
    )
    [note] = [
        n
        for n in design_of(tmp_path, cfg)["notes"]
        if n.startswith(f"eks-gpu:gpuNodeGroups.inference: AMI release {older}")
    ]
    assert moves in note, note
    if provisioner:
        assert "at most 20% at a time (eks-gpu:gpuNodeGroups.inference.karpenter.disruptionBudget)" in note
    else:
        assert "drift" not in note


def test_default_stacks_have_no_karpenter(tmp_path: Path) -> None:
    design = design_of(tmp_path, config())
    assert design["karpenter"] is None and design["autoscaler"] is not None
    assert all(pool["karpenter"] is None for pool in design["gpu_pools"].values())
    assert design["gpu_pools"]["inference"]["min_size"] == 0
    # the program itself runs unchanged: no Karpenter key reaches it
    assert not any("karpenter" in json.dumps(r.inputs).lower() for r in run(config()).resources)


# --- the alias and the allocatable model -----------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "ami", "alias"),
    [
        ("1.35.2-20260304", "AL2023_x86_64_NVIDIA", "al2023@v20260304"),
        ("1.34.4-20251120", "AL2023_ARM_64_NVIDIA", "al2023@v20251120"),
        ("1.58.0-c5c37032", "BOTTLEROCKET_x86_64_NVIDIA", "bottlerocket@v1.58.0"),
        ("1.10.0-deadbeef", "BOTTLEROCKET_ARM_64_NVIDIA", "bottlerocket@v1.10.0"),
    ],
)
def test_the_alias_follows_the_crds_examples(release: str, ami: str, alias: str) -> None:
    """karpenter-crd-1.14.1 ``ec2nodeclasses``, ``alias``: "al2023@v20240625" or "bottlerocket@v1.10.0"."""
    assert ami_alias(release, AmiType(ami)) == alias


def test_an_alias_of_the_wrong_family_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a Bottlerocket release"):
        ami_alias(AL2023_RELEASE, AmiType.BOTTLEROCKET_x86_64_NVIDIA)


@pytest.mark.parametrize("instance_type", ["g6.xlarge", "g6e.12xlarge", "g5.48xlarge", "p4d.24xlarge", "p5.48xlarge"])
def test_karpenter_max_pods_is_the_uncapped_eni_limit(instance_type: str) -> None:
    """docs/design-karpenter.md §5: Karpenter writes the ENI-limited maxPods, managed node groups cap it at
    110/250. Bottlerocket reserves 11 MiB per pod of maxPods, so the difference is that much memory; AL2023's
    nodeadm reserves for the ENI value either way."""
    info = facts(instance_type)
    eni = eni_max_pods(info.default_card_interfaces, info.ipv4_per_interface)
    capped = managed_max_pods(eni, info.vcpus)
    gpu_count = gpus(instance_type)
    for ami in (AmiType.AL2023_x86_64_NVIDIA, AmiType.BOTTLEROCKET_x86_64_NVIDIA):
        managed = node_allocatable([info], ami, 100, gpus=gpu_count)
        karpenter = node_allocatable([info], ami, 100, gpus=gpu_count, karpenter=True)
        assert (managed.pods, karpenter.pods) == (capped, eni)
        extra = 11 * (eni - capped) if ami.bottlerocket else 0
        assert karpenter.memory_mib == managed.memory_mib - extra
        assert (karpenter.cpu_millicores, karpenter.ephemeral_storage_mib) == (
            managed.cpu_millicores,
            managed.ephemeral_storage_mib,
        )


# --- the spot service-linked role ----------------------------------------------------------------

SPOT_COMMAND = "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"


def test_spot_on_a_fresh_account_is_refused_with_the_command_that_fixes_it() -> None:
    """EC2 launches spot only with the account's AWSServiceRoleForEC2Spot, which Karpenter's policy cannot
    create; the offline account is fresh, so moto's IAM has no such role (``aws.iam.get_role`` fails)."""
    pools = {
        "spotty": karpenter_pool(karpenter={"capacityTypes": ["spot", "on-demand"]}),
        "steady": karpenter_pool(karpenter={"capacityTypes": ["on-demand"]}),
    }
    found = problems_of(karpenter_config(pools))
    assert list(found) == ["eks-gpu:gpuNodeGroups.spotty.karpenter.capacityTypes"]
    message = found["eks-gpu:gpuNodeGroups.spotty.karpenter.capacityTypes"]
    assert "AWSServiceRoleForEC2Spot" in message and SPOT_COMMAND in message


def test_spot_is_accepted_once_the_account_has_the_role(tmp_path: Path) -> None:
    pool = karpenter_pool(karpenter={"capacityTypes": ["spot", "on-demand"]})
    design = design_of(tmp_path, karpenter_config({"inference": pool}))
    assert design["gpu_pools"]["inference"]["karpenter"]["capacity_types"] == ["spot", "on-demand"]
    assert not [w for w in design["warnings"] if "AWSServiceRoleForEC2Spot" in w]


def test_without_spot_the_role_is_not_read() -> None:
    ran = run(karpenter_config())
    assert not [t for t, _ in ran.invokes if t == "aws:iam/getRole:getRole"]
