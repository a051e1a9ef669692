"""Review before apply: what a change does to the nodes, the account's quotas and the budget."""

from __future__ import annotations

from offline import ProgramRun
from tests.helpers import LAUNCH_TEMPLATE, NODE_GROUP, config, gpu_pool, run

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
