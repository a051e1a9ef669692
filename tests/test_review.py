"""Review before apply: what a change does to the nodes, the account's quotas and the budget."""

from __future__ import annotations

from collections.abc import Callable

from components.facts.quotas import quota_for
from offline import AwsAccount, ProgramRun
from tests import aws_data
from tests.helpers import LAUNCH_TEMPLATE, NODE_GROUP, config, gpu_pool, problems_of, run

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
    assert result.of_type(NODE_GROUP)
