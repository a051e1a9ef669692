"""Review before apply: what a change does to the nodes, the account's quotas and the budget."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.facts.quotas import families_in, quota_for
from eks_gpu.offline import AwsAccount, ProgramRun, plan
from eks_gpu.offline.diff import Change, diff, rules
from eks_gpu.policy.pricing import price_table

from tests import aws_data
from tests.helpers import LAUNCH_TEMPLATE, NODE_GROUP, ROOT, config, gpu_pool, problems_of, program_scope, run, run_plan

TAG = "aws:autoscaling/tag:Tag"


def _templates(result: ProgramRun) -> dict[str, dict[str, object]]:
    """Each launch template's inputs but its own ``tags``: those are the template's, updated in
    place, not part of a version (terraform-provider-aws ``launch_template.go``, Update)."""
    return {t.name: {k: v for k, v in t.inputs.items() if k != "tags"} for t in result.of_type(LAUNCH_TEMPLATE)}


def _instance_tags(result: ProgramRun, key: str) -> dict[str, str]:
    return {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in result.of_type(TAG)
        if t.name.startswith(f"eks-gpu-{key}-asg-") and t.inputs["tag"]["propagateAtLaunch"]
    }


# --- 1. routine edits do not roll GPU nodes ------------------------------------------------


def test_a_tags_only_edit_changes_no_launch_template_and_reaches_new_instances() -> None:
    pools = {"inference": gpu_pool(), "training": gpu_pool("g6.xlarge")}
    before = run(config(pools))
    after = run(config(pools, tags={"team": "vision", "costCenter": "cc-42"}, environment="staging"))
    assert _templates(after) == _templates(before)
    # and so no node group's launch template version moves
    assert len(after.of_type(NODE_GROUP)) == len(pools) + 1  # and the system group
    for ng in after.of_type(NODE_GROUP):
        assert ng.inputs["launchTemplate"] == before.one(NODE_GROUP, ng.name).inputs["launchTemplate"]
    for key in ("inference", "training", "system"):
        assert _instance_tags(before, key) == {"team": "ml-platform", "Environment": "dev"}
        assert _instance_tags(after, key) == {"team": "vision", "costCenter": "cc-42", "Environment": "staging"}


def test_what_should_roll_nodes_still_changes_the_launch_template() -> None:
    before = _templates(run(config()))
    bigger = _templates(run(config({"inference": gpu_pool(diskSizeGiB=200)})))
    (name,) = [n for n in before if n.endswith("-inference-lt")]
    assert before[name]["blockDeviceMappings"] != bigger[name]["blockDeviceMappings"]
    assert {k: v for k, v in before[name].items() if k != "blockDeviceMappings"} == {
        k: v for k, v in bigger[name].items() if k != "blockDeviceMappings"
    }


# --- 3. quota preflight --------------------------------------------------------------------

G_ON_DEMAND, G_SPOT, STANDARD = "L-DB2E81BA", "L-3819A6DF", "L-1216C47A"


def _with_quotas(**quotas: float) -> Callable[[AwsAccount], None]:
    def setup(account: AwsAccount) -> None:
        account.quotas.update({code.replace("_", "-"): value for code, value in quotas.items()})

    return setup


@pytest.mark.parametrize(
    ("name", "families"),
    [
        # Service Quotas' own names for EC2's vCPU quotas (aws service-quotas list-service-quotas --service-code ec2)
        ("Running On-Demand G and VT instances", {"g", "vt"}),
        ("Running On-Demand P instances", {"p"}),
        ("All G and VT Spot Instance Requests", {"g", "vt"}),
        (
            "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
            {"a", "c", "d", "h", "i", "m", "r", "t", "z"},
        ),
    ],
)
def test_a_quota_name_lists_its_instance_families(name: str, families: set[str]) -> None:
    assert families_in(name) == families


def test_every_nvidia_type_in_the_catalogue_counts_against_a_bundled_quota() -> None:
    nvidia = [
        t
        for t, info in aws_data.catalogue().items()
        if info.get("GpuInfo", {}).get("Gpus", [{}])[0].get("Manufacturer") == "NVIDIA"
    ]
    assert len(nvidia) > 20
    for market in ("on-demand", "spot"):
        assert {t for t in nvidia if quota_for(t, market) is None} == set()
    assert {quota_for(t, "on-demand").code for t in nvidia} == {G_ON_DEMAND, "L-417A185B"}  # type: ignore[union-attr]


def test_a_pool_that_must_start_nodes_beyond_its_quota_is_refused() -> None:
    vcpus = aws_data.shape("g5.xlarge")[0]
    found = problems_of(
        config({"inference": gpu_pool(desiredSize=1, minSize=1)}), account_setup=_with_quotas(L_DB2E81BA=0)
    )
    message = found["eks-gpu:gpuNodeGroups.inference.desiredSize"]
    assert f"needs {vcpus} vCPUs of 'Running On-Demand G and VT instances' ({G_ON_DEMAND}" in message
    assert "quota in us-west-2 is 0" in message
    assert f"--quota-code {G_ON_DEMAND} --desired-value {2 * vcpus} --region us-west-2" in message


def test_a_pool_at_zero_beyond_its_quota_at_max_is_a_warning() -> None:
    vcpus = aws_data.shape("g5.xlarge")[0]
    result = run(config({"inference": gpu_pool(maxSize=3)}), account_setup=_with_quotas(L_DB2E81BA=vcpus))
    (warning,) = [w for w in result.warnings if G_ON_DEMAND in w]
    assert warning.startswith("eks-gpu:gpuNodeGroups.inference.maxSize: at maxSize node groups inference need")
    assert f"need {3 * vcpus} vCPUs" in warning and f"quota in us-west-2 is {vcpus}" in warning


def test_the_smoke_test_on_a_pool_at_zero_counts_as_one_node_of_its_quota() -> None:
    vcpus = aws_data.shape("g5.xlarge")[0]
    smoke = config({"inference": gpu_pool()}, gpuPod={"enabled": True})
    found = problems_of(smoke, account_setup=_with_quotas(L_DB2E81BA=vcpus - 1))
    message = found["eks-gpu:gpuPod.enabled"]
    assert message.startswith(
        f"starting 1 g5.xlarge of pool inference for eks-gpu:gpuPod needs {vcpus} vCPUs of "
        f"'Running On-Demand G and VT instances' ({G_ON_DEMAND}; node groups inference), "
        f"but the account's quota in us-west-2 is {vcpus - 1}: a pulumi up that creates or reruns the test would wait"
    )
    assert f"--quota-code {G_ON_DEMAND} --desired-value {2 * vcpus} --region us-west-2" in message
    assert message.endswith("or disable eks-gpu:gpuPod until the quota is raised")
    # one node's worth of quota starts it; without the test a pool at zero needs none
    assert run(smoke, account_setup=_with_quotas(L_DB2E81BA=vcpus)).of_type("kubernetes:batch/v1:Job")
    assert run(config({"inference": gpu_pool()}), account_setup=_with_quotas(L_DB2E81BA=0))


def test_the_nccl_test_counts_as_two_nodes_of_its_efa_pool() -> None:
    vcpus = aws_data.shape("p5.48xlarge")[0]
    cfg = config({"train": gpu_pool("p5.48xlarge", efa=True)}, vpc={"azCount": 3}, ncclTest={"enabled": True})
    found = problems_of(cfg, account_setup=_with_quotas(L_417A185B=2 * vcpus - 1))
    assert (
        f"starting 2 p5.48xlarge of pool train for eks-gpu:ncclTest needs {2 * vcpus} vCPUs"
        in (found["eks-gpu:ncclTest.enabled"])
    )
    assert run(cfg, account_setup=_with_quotas(L_417A185B=2 * vcpus)).of_type("kubernetes:kubeflow.org/v2beta1:MPIJob")


def test_a_pool_already_running_its_tests_nodes_needs_no_more() -> None:
    vcpus = aws_data.shape("g5.xlarge")[0]
    cfg = config({"inference": gpu_pool(minSize=1, desiredSize=1)}, gpuPod={"enabled": True})
    # the smoke test runs on the node the pool starts anyway: one node, not two
    assert run(cfg, account_setup=_with_quotas(L_DB2E81BA=vcpus)).of_type("kubernetes:batch/v1:Job")
    found = problems_of(cfg, account_setup=_with_quotas(L_DB2E81BA=vcpus - 1))
    assert "eks-gpu:gpuNodeGroups.inference.desiredSize" in found


def test_pools_share_a_quota_and_spot_has_its_own() -> None:
    vcpus = aws_data.shape("g5.xlarge")[0]
    pools = {"a": gpu_pool(desiredSize=1, minSize=1), "b": gpu_pool(desiredSize=1, minSize=1)}
    # one node each fits, both together do not
    found = problems_of(config(pools), account_setup=_with_quotas(L_DB2E81BA=vcpus))
    assert f"needs {2 * vcpus} vCPUs" in found["eks-gpu:gpuNodeGroups.a.desiredSize"]
    spot = {"a": gpu_pool(desiredSize=1, minSize=1, capacityType="SPOT")}
    assert run(config(spot), account_setup=_with_quotas(L_DB2E81BA=0)).warnings == []
    assert "eks-gpu:gpuNodeGroups.a.desiredSize" in problems_of(config(spot), account_setup=_with_quotas(L_3819A6DF=0))


def test_the_system_group_draws_on_the_standard_quota() -> None:
    found = problems_of(config(), account_setup=_with_quotas(L_1216C47A=0))
    assert (
        "'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances'"
        in found["eks-gpu:systemNodeGroup.desiredSize"]
    )


def test_a_quota_that_cannot_be_read_is_a_warning_never_a_failure() -> None:
    def denied(account: AwsAccount) -> None:
        account.quota_error = "AccessDeniedException: not authorized to perform servicequotas:GetServiceQuota"

    result = run(config({"inference": gpu_pool(desiredSize=1, minSize=1)}), account_setup=denied)
    found = [w for w in result.warnings if "could not be read" in w]
    assert {w.split()[3] for w in found} == {G_ON_DEMAND, STANDARD}
    assert all("AccessDenied" in w for w in found)
    assert sorted(ng.name for ng in result.of_type(NODE_GROUP)) == ["eks-gpu-inference-ng", "eks-gpu-system-ng"]


# --- 2. the change, resource by resource -----------------------------------------------------


def _plan(tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], stack: str = "dev") -> dict[str, Any]:
    """The plan of ``Pulumi.<stack>.yaml`` after ``edit`` (on its config), as ``make plan --json`` writes it."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    edit(doc["config"])
    folder = tmp_path / name
    folder.mkdir()
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return json.loads(json.dumps(plan.build(path)))


@pytest.fixture(scope=program_scope)
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _plan(tmp_path_factory.mktemp("base"), "base", lambda c: None)


def _changes(
    base: dict[str, Any], tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Change], list[str]]:
    changes, warnings = diff(base, _plan(tmp_path, "new", edit))
    return {c.name: c for c in changes}, warnings


def _pool(config: dict[str, Any]) -> dict[str, Any]:
    return config["eks-gpu:gpuNodeGroups"]["inference"]


def test_no_edit_no_change(base: dict[str, Any], tmp_path: Path) -> None:
    assert _changes(base, tmp_path, lambda c: None) == ({}, [])


def test_a_tags_edit_replaces_nothing_and_rolls_no_node(base: dict[str, Any], tmp_path: Path) -> None:
    changes, warnings = _changes(base, tmp_path, lambda c: c["eks-gpu:tags"].update(team="vision"))
    assert changes and warnings == []
    assert {c.action for c in changes.values()} == {"update"}
    assert not any(c.rolls_nodes for c in changes.values())
    lt = changes["eks-gpu-inference-lt"]
    assert lt.causes == ["tags.team"]  # the template's own tags: no new version


def test_an_instance_type_change_replaces_the_node_group(base: dict[str, Any], tmp_path: Path) -> None:
    changes, warnings = _changes(base, tmp_path, lambda c: _pool(c).update(instanceTypes=["g6.2xlarge"]))
    ng = changes["eks-gpu-inference-ng"]
    assert (ng.action, ng.causes, ng.rolls_nodes) == ("replace", ["instanceTypes"], True)
    assert warnings[0].startswith("node group inference (eks-gpu-inference-ng) is replaced (instanceTypes)")


def test_a_max_size_change_is_an_update_in_place(base: dict[str, Any], tmp_path: Path) -> None:
    changes, warnings = _changes(base, tmp_path, lambda c: _pool(c).update(maxSize=5))
    ng = changes["eks-gpu-inference-ng"]
    assert (ng.action, ng.causes, ng.rolls_nodes) == ("update", ["scalingConfig.maxSize"], False)
    assert not any(c.action == "replace" for c in changes.values())
    assert warnings == []


def test_a_disk_size_change_is_a_new_template_version_that_rolls_the_nodes(
    base: dict[str, Any], tmp_path: Path
) -> None:
    changes, warnings = _changes(base, tmp_path, lambda c: _pool(c).update(diskSizeGiB=200))
    assert changes["eks-gpu-inference-lt"].causes == ["blockDeviceMappings"]
    ng = changes["eks-gpu-inference-ng"]
    assert (ng.action, ng.causes, ng.rolls_nodes) == ("update", ["launchTemplate.version"], True)
    assert "a new version of eks-gpu-inference-lt (blockDeviceMappings)" in ng.because[0]
    assert any(w.startswith("node group inference (eks-gpu-inference-ng) rolls its nodes") for w in warnings)


def test_an_added_az_is_flagged_for_the_cluster(base: dict[str, Any], tmp_path: Path) -> None:
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    region, azs = stack["aws:region"], stack["eks-gpu:vpc"]["availabilityZones"]
    # the first other AZ that offers the pool's and the system group's types and can host the control plane
    # (not use1-az3: EKS User Guide, "network-reqs")
    pool, system = stack["eks-gpu:gpuNodeGroups"]["inference"], stack["eks-gpu:systemNodeGroup"]
    types = [*pool["instanceTypes"], *system["instanceTypes"]]
    offered = frozenset.intersection(*(aws_data.offerings(region)[t] for t in types))
    added = sorted(offered - set(azs) - {aws_data.az_of_zone_id(region, "use1-az3")})[0]
    changes, warnings = _changes(base, tmp_path, lambda c: c["eks-gpu:vpc"].update(availabilityZones=[*azs, added]))
    assert changes["eks-gpu-cluster-eks"].action == "update"
    assert "privateSubnetIds" in changes["eks-gpu-cluster-eks"].causes
    (az,) = [w for w in warnings if "AZs" in w]
    assert az.startswith(f"the cluster's subnets move into AZs {added}: EKS only accepts subnets in the AZs")


def test_renaming_a_protected_cluster_is_flagged_first(tmp_path: Path) -> None:
    before = _plan(tmp_path, "old", lambda c: None, stack="prod")
    changes, warnings = diff(
        before, _plan(tmp_path, "new", lambda c: c.update({"eks-gpu:clusterName": "gpu-prod-2"}), "prod")
    )
    cluster = next(c for c in changes if c.type == "eks:index:Cluster")
    assert cluster.action == "replace" and "name" in cluster.causes and cluster.protected
    # prod protects every resource: what the rename replaces (the log group, the node groups, ...) is flagged too
    protected = [w for w in warnings if " is protected: pulumi up refuses to " in w]
    assert warnings[: len(protected)] == protected
    assert f"{cluster.name} is protected: pulumi up refuses to replace it (unset eks-gpu:protect first)" in protected
    assert any(w.startswith(f"the EKS cluster {cluster.name} is replaced") for w in warnings)


def test_fail_on_replace_exits_non_zero_for_ci(base: dict[str, Any], tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps(base))
    _plan(tmp_path, "new", lambda c: _pool(c).update(instanceTypes=["g6.2xlarge"]))

    def plan_of(stack_file: Path, *more: str) -> subprocess.CompletedProcess[str]:
        args = ["--stack-file", str(stack_file), "--against", str(old), "--fail-on", "replace", *more]
        return run_plan(*args)

    done = plan_of(tmp_path / "new" / "Pulumi.dev.yaml", "--json")
    assert done.returncode == 3 and "eks-gpu-inference-ng" in done.stderr
    document = json.loads(done.stdout)
    assert {"name", "type", "action", "causes", "rollsNodes"} <= set(document["changes"][0])
    assert document["warnings"][0].startswith("node group inference")
    same = plan_of(ROOT / "Pulumi.dev.yaml")
    assert same.returncode == 0 and "0 to create, 0 to update, 0 to replace, 0 to delete" in same.stdout


def test_every_type_the_program_creates_has_its_providers_rules(base: dict[str, Any], tmp_path: Path) -> None:
    prod = _plan(tmp_path, "prod", lambda c: None, stack="prod")
    made = {r["type"] for p in (base, prod) for r in p["resources"] if r["custom"] or r["remote"]}
    known = rules().replace
    missing = {
        t for t in made if t not in known and not t.startswith("pulumi:providers:") and not t.startswith("kubernetes:")
    }
    assert missing == set()
    assert {t for t in made if t.startswith("kubernetes:")} and "kubernetes:*" in known


# --- 4. budget as policy -------------------------------------------------------------------


def _budget_violations(tmp_path: Path, budget: float, region: str | None = None) -> list[dict[str, Any]]:
    def edit(c: dict[str, Any]) -> None:
        c["eks-gpu:budget"] = {"maxUsdPerHour": budget}
        if region:
            c["aws:region"] = region
            c["eks-gpu:vpc"].pop("availabilityZones")

    done = _plan(tmp_path, f"b{budget}{region}", edit)
    return [v for v in done["policy"]["violations"] if v["policy"].startswith("stack-budget")]


def test_a_stack_over_its_budget_is_a_mandatory_violation(base: dict[str, Any], tmp_path: Path) -> None:
    top = base["cost"]["maxUsdPerHour"]
    (over,) = _budget_violations(tmp_path, round(top / 2, 2))
    assert (over["policy"], over["level"], over["resource"]) == ("stack-budget", "mandatory", "eks-gpu")
    assert f"costs ${top:.2f} per hour, over eks-gpu:budget.maxUsdPerHour ${top / 2:.2f}" in over["message"]
    (near,) = _budget_violations(tmp_path, round(top / 0.9, 2))
    assert (near["policy"], near["level"]) == ("stack-budget-headroom", "advisory")
    assert "90% of eks-gpu:budget.maxUsdPerHour" in near["message"]
    assert _budget_violations(tmp_path, round(top * 2, 2)) == []
    assert [v for v in base["policy"]["violations"] if v["policy"].startswith("stack-budget")] == []


def test_a_budget_the_prices_cannot_check_is_a_mandatory_violation(tmp_path: Path) -> None:
    """An unpriced item makes the total a floor: a budget cannot be shown to hold, however large."""
    said, lacks = _budget_violations(tmp_path, 1000.0, region="us-west-2")
    assert (said["policy"], said["level"]) == ("stack-budget", "mandatory")
    assert (lacks["policy"], lacks["level"]) == ("stack-budget-headroom", "advisory")
    assert lacks["message"].startswith("the plan's totals are floors: the bundled prices have none for system nodes")
    assert said["message"].startswith("eks-gpu:budget.maxUsdPerHour $1000.00 cannot be shown to hold: the bundled ")
    assert "prices have none for system nodes" in said["message"] and "in us-west-2" in said["message"]


def test_two_p4d_and_four_spot_gpu_nodes_in_eu_west_1_break_a_50_dollar_budget(tmp_path: Path) -> None:
    """Issue 23's case: every unpriced item used to count as zero and a $50 budget passed."""

    def edit(c: dict[str, Any]) -> None:
        c["aws:region"] = "eu-west-1"
        c["eks-gpu:vpc"].pop("availabilityZones")
        c["eks-gpu:budget"] = {"maxUsdPerHour": 50}
        pools = c["eks-gpu:gpuNodeGroups"]
        pools["inference"] |= {"instanceTypes": ["g5.xlarge"], "capacityType": "SPOT", "maxSize": 4}
        pools["training"] = {"instanceTypes": ["p4d.24xlarge"], "minSize": 0, "desiredSize": 0, "maxSize": 2}

    done = _plan(tmp_path, "p4d", edit)
    prices, cost = price_table(), done["cost"]
    p4d, g5 = prices.on_demand("eu-west-1", "p4d.24xlarge"), prices.on_demand("eu-west-1", "g5.xlarge")
    assert p4d is not None and g5 is not None
    assert cost["maxUsdPerHour"] >= 2 * p4d + 4 * g5 > 50
    assert cost["complete"] is False and any(u.startswith("system nodes") for u in cost["unpriced"])
    (spot,) = [i for i in cost["lineItems"] if i["item"].startswith("GPU pool inference nodes")]
    assert spot["estimate"] and "on-demand price shown is the upper bound" in spot["note"]
    over, _lacks = [v for v in done["policy"]["violations"] if v["policy"].startswith("stack-budget")]
    assert (over["policy"], over["level"]) == ("stack-budget", "mandatory")
    floor = f"costs at least ${cost['maxUsdPerHour']:.2f} per hour"
    assert f"{floor}, over eks-gpu:budget.maxUsdPerHour $50.00" in over["message"]
