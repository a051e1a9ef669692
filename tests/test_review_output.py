"""The review a reviewer reads (`make plan ARGS="--against OLD.json"`, `--format markdown`): each
changed input old -> new, the cost delta, changes per component with ASG tag churn on one line per
node group, the tree only on request and grouped by parent URN."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.offline import plan
from eks_gpu.offline.diff import ASG_TAG, MASK, NODE_GROUP, Change, diff, shorten, value_changes
from eks_gpu.offline.review import COST_HEADERS, completeness, cost_delta, render_changes

from tests.helpers import PACKAGE_DIR, ROOT, program_scope, run_plan


def _build(folder: Path, edit: Callable[[dict[str, Any]], None], stack: str = "dev") -> dict[str, Any]:
    """The plan of ``Pulumi.<stack>.yaml`` after ``edit`` (on its config), as ``--json`` writes it."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    edit(doc["config"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return json.loads(json.dumps(plan.build(path)))


def _pool(c: dict[str, Any]) -> dict[str, Any]:
    return c["eks-gpu:gpuNodeGroups"]["inference"]


BIGGER = "g6.2xlarge"


@pytest.fixture(scope=program_scope)
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The dev plan, and after a tag edit, an instance type change, a disk size change."""
    root = tmp_path_factory.mktemp("review")
    return {
        "base": _build(root / "base", lambda c: None),
        "tag": _build(root / "tag", lambda c: c["eks-gpu:tags"].update(team="vision")),
        "type": _build(root / "type", lambda c: _pool(c).update(instanceTypes=[BIGGER])),
        "disk": _build(root / "disk", lambda c: _pool(c).update(diskSizeGiB=321)),
    }


def _reviewed(plans: dict[str, dict[str, Any]], edit: str) -> dict[str, Any]:
    """The new plan with its review against the base plan, by ``plan.review_against``: what ``main``
    runs for ``--against``."""
    new = json.loads(json.dumps(plans[edit]))
    plan.review_against(new, plans["base"], "old.json")
    return new


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in document["resources"] if r["custom"] or r["remote"]}


def _review_lines(text: str) -> list[str]:
    """The change part of the text: from ``Changes against`` to the first blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Changes against "))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


# --- old -> new ------------------------------------------------------------------------------


def test_an_instance_type_change_shows_old_and_new(plans: dict[str, dict[str, Any]]) -> None:
    changes = {c.name: c for c in diff(plans["base"], plans["type"])[0]}
    ng = changes["eks-gpu-inference-ng"]
    before = _by_name(plans["base"])["eks-gpu-inference-ng"]["inputs"]["instanceTypes"]
    expected = {"path": "instanceTypes", "old": f"[{', '.join(before)}]", "new": f"[{BIGGER}]"}
    assert ng.values == [expected]
    text = plan.render_text(_reviewed(plans, "type"))
    assert f"instanceTypes: [{', '.join(before)}] → [{BIGGER}]" in text


def test_a_nested_change_shows_the_leaf_that_changes(plans: dict[str, dict[str, Any]]) -> None:
    lt = {c.name: c for c in diff(plans["base"], plans["disk"])[0]}["eks-gpu-inference-lt"]
    old = _by_name(plans["base"])["eks-gpu-inference-lt"]["inputs"]["blockDeviceMappings"]
    index = next(i for i, m in enumerate(old) if m.get("ebs", {}).get("volumeSize") is not None)
    size = int(old[index]["ebs"]["volumeSize"])
    assert lt.values == [{"path": f"blockDeviceMappings[{index}].ebs.volumeSize", "old": str(size), "new": "321"}]
    # the node group rolls because of the template's new version: said once, no placeholder numbers
    ng = {c.name: c for c in diff(plans["base"], plans["disk"])[0]}["eks-gpu-inference-ng"]
    assert ng.because and not any(v["path"] == "launchTemplate.version" for v in ng.values)


def test_secret_inputs_are_masked_and_look_alikes_are_not(plans: dict[str, dict[str, Any]]) -> None:
    lt = _by_name(plans["base"])["eks-gpu-inference-lt"]
    marked = {**lt, "secretInputs": ["userData"], "inputs": {**lt["inputs"], "userData": "c2VjcmV0LW9uZQ=="}}
    changed = {**marked, "inputs": {**marked["inputs"], "userData": "c2VjcmV0LXR3bw=="}}
    assert value_changes(marked, changed, ["userData"]) == [{"path": "userData", "old": MASK, "new": MASK}]
    # a password the program forgot to mark is not shown either; httpTokens (IMDS) is no secret
    named = {**changed, "secretInputs": [], "inputs": {**changed["inputs"], "dbPassword": "hunter2"}}
    assert value_changes(changed, named, ["dbPassword"]) == [{"path": "dbPassword", "old": None, "new": MASK}]
    imds = {**lt["inputs"]["metadataOptions"], "httpTokens": "optional"}
    optional = {**lt, "inputs": {**lt["inputs"], "metadataOptions": imds}}
    (tokens,) = value_changes(lt, optional, ["metadataOptions"])
    assert (tokens["path"], tokens["new"]) == ("metadataOptions.httpTokens", "optional")


def test_a_long_value_is_cut_around_its_difference() -> None:
    policy = json.loads((PACKAGE_DIR / "offline/data/replacement_rules.json").read_text())["about"]
    edited = policy[:300] + "X" + policy[301:]
    old, new = shorten(policy, edited, limit=40)
    assert old is not None and new is not None and len(old) <= 42 and len(new) <= 42
    assert "X" in new and policy[300] in old and old != new


# --- cost --------------------------------------------------------------------------------------


def test_the_cost_delta_per_point_per_hour_and_per_month(plans: dict[str, dict[str, Any]]) -> None:
    old, new = plans["base"]["cost"], plans["type"]["cost"]
    delta = cost_delta(old, new)
    rows = {r["point"]: r for r in delta["points"]}
    assert set(rows) == {"idle", "desired", "max"}
    for point, row in rows.items():
        assert row["deltaUsdPerHour"] == round(new[f"{point}UsdPerHour"] - old[f"{point}UsdPerHour"], 4)
        assert row["deltaUsdPerMonth"] == round(new[f"{point}UsdPerMonth"] - old[f"{point}UsdPerMonth"], 2)
    assert rows["max"]["deltaUsdPerHour"] > 0  # a bigger GPU type costs more at max size
    text = plan.render_text(_reviewed(plans, "type"))
    m = rows["max"]
    assert f"${m['oldUsdPerMonth']:,.2f} → ${m['newUsdPerMonth']:,.2f}" in text
    assert f"+${m['deltaUsdPerMonth']:,.2f}" in text and "Cost delta (USD)" in text


def test_the_cost_delta_says_when_a_side_is_incomplete(plans: dict[str, dict[str, Any]]) -> None:
    new = plans["base"]["cost"]
    items = [i["item"] for i in new["lineItems"]][:2]
    old = {**new, "complete": False, "unpriced": items}
    (said,) = completeness(cost_delta(old, new))
    assert said.startswith(f"the old total is incomplete (no price for {', '.join(items)})")
    # a plan from before the monthly figures and the flag: months from its hours, completeness unknown
    older = {k: v for k, v in new.items() if "Month" not in k and k not in ("complete", "unpriced")}
    delta = cost_delta(older, new)
    assert [r["deltaUsdPerMonth"] for r in delta["points"]] == [0.0, 0.0, 0.0]
    assert completeness(delta) == [
        "the old plan does not say whether its total is complete (a plan from an older version)"
    ]


# --- per component, ASG tags collapsed -------------------------------------------------------


def test_changes_are_grouped_by_their_component(plans: dict[str, dict[str, Any]]) -> None:
    changes, warnings = diff(plans["base"], plans["disk"])
    urns = {r["urn"]: r for r in plans["disk"]["resources"]}
    for c in changes:
        (resource,) = [r for r in plans["disk"]["resources"] if (r["name"], r["type"]) == (c.name, c.type)]
        chain = [resource]
        while chain[-1]["parentUrn"] is not None:
            chain.append(urns[chain[-1]["parentUrn"]])
        assert (c.component, c.component_type) == (chain[-2]["name"], chain[-2]["type"]), c.name
    lines = render_changes(changes, warnings, "old.json")
    header = next(i for i, line in enumerate(lines) if line.startswith("  eks-gpu-inference  ["))
    assert lines[header] == "  eks-gpu-inference  [eks-gpu:nodegroups:NodeGroup]"
    assert " eks-gpu-inference-lt  [" in lines[header + 1] and "volumeSize" in lines[header + 2]


def test_asg_tag_churn_is_one_line_per_node_group(plans: dict[str, dict[str, Any]]) -> None:
    changes, warnings = diff(plans["base"], plans["type"])
    tags = [
        r for r in plans["base"]["resources"] if r["type"] == ASG_TAG and r["name"].startswith("eks-gpu-inference-")
    ]
    assert len([c for c in changes if c.type == ASG_TAG and c.action == "replace"]) == len(tags) > 1
    lines = render_changes(changes, warnings, "old.json")
    (line,) = [line for line in lines if "ASG tag" in line]
    assert line.strip() == f"+- {len(tags)} ASG tags replaced (they follow the ASG: eks-gpu-inference-ng is replaced)"
    assert not any(t["name"] in "\n".join(lines) for t in tags)
    # the tag values that do change are named, old -> new
    new_tags = {r["name"]: r for r in plans["type"]["resources"] if r["type"] == ASG_TAG}
    moved = [t for t in tags if t["inputs"]["tag"]["value"] != new_tags[t["name"]]["inputs"]["tag"]["value"]]
    assert moved
    for t in moved:
        key, old, new = (
            t["inputs"]["tag"]["key"],
            t["inputs"]["tag"]["value"],
            new_tags[t["name"]]["inputs"]["tag"]["value"],
        )
        assert f"             {key}: {old} → {new}" in lines
    # the instance type change: one warning, the node group, one line of tags, its values
    assert len(lines) == 1 + len(warnings) + 1 + 2 + 1 + len(moved)


def test_a_tag_edit_is_a_few_lines(plans: dict[str, dict[str, Any]]) -> None:
    changes, _ = diff(plans["base"], plans["tag"])
    before = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["eks-gpu:tags"]["team"]
    assert len(changes) > 20  # every tagged resource changes
    lines = _review_lines(plan.render_text(_reviewed(plans, "tag")))
    assert len(lines) <= 10, "\n".join(lines)
    (edit,) = [line for line in lines if "change only their tags" in line]
    assert edit.endswith(f"in place: tags.team: {before} → vision")
    assert sum(1 for line in lines if f"team: {before} → vision" in line) == 1 + len(plans["base"]["nodeGroups"])


# --- the tree ----------------------------------------------------------------------------------


def test_a_review_leaves_the_tree_out_unless_asked(plans: dict[str, dict[str, Any]]) -> None:
    reviewed = _reviewed(plans, "type")
    text = plan.render_text(reviewed)
    assert "the tree is left out of a review (--tree shows it)" in text
    assert "  eks-gpu  [eks-gpu:stack:EksGpuStack]" not in text
    assert "  eks-gpu  [eks-gpu:stack:EksGpuStack]" in plan.render_text(reviewed, tree=True)
    assert "  eks-gpu  [eks-gpu:stack:EksGpuStack]" in plan.render_text(plans["type"])


def test_the_tree_shows_each_resource_once_under_its_parent(plans: dict[str, dict[str, Any]]) -> None:
    resources = plans["base"]["resources"]
    names = Counter(r["name"] for r in resources)
    parents = Counter(r["parentUrn"] for r in resources)
    # two resources share a name, and one of them has children (the EBS CSI add-on and its role component)
    shared = [r for r in resources if names[r["name"]] > 1 and parents[r["urn"]]]
    assert shared
    tree = plan.render_tree(plans["base"])
    assert len(tree) == len(resources)
    for parent in shared:
        children = [r for r in resources if r["parentUrn"] == parent["urn"]]
        for child in children:
            assert sum(1 for line in tree if line.strip().startswith(f"{child['name']}  [{child['type']}]")) == 1


# --- Markdown ----------------------------------------------------------------------------------


def _tables(markdown: str) -> list[list[list[str]]]:
    """Each table of ``markdown`` as rows of cells (split on pipes not escaped)."""
    tables: list[list[list[str]]] = []
    previous = False
    for line in markdown.splitlines():
        row = line.startswith("|")
        if row and not previous:
            tables.append([])
        if row:
            tables[-1].append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        previous = row
    return tables


def _check_tables(markdown: str) -> list[list[list[str]]]:
    tables = _tables(markdown)
    for table in tables:
        assert len(table) >= 2 and all(set(c) <= set("-:") and c for c in table[1]), table[:2]
        assert {len(row) for row in table} == {len(table[0])}, table
    return tables


def test_markdown_of_a_change_has_the_facts_in_valid_tables(plans: dict[str, dict[str, Any]]) -> None:
    reviewed = _reviewed(plans, "type")
    markdown = plan.render_markdown(reviewed)
    tables = _check_tables(markdown)
    first = markdown.splitlines()[0]
    cost = reviewed["cost"]
    assert first.startswith("**eks-gpu plan** `dev` in `us-east-1` · ")
    assert f"{len(reviewed['changes'])} to replace" in first and f"${cost['maxUsdPerMonth']:,.2f}/month" in first
    assert reviewed["warnings"][0] in markdown
    headers = [t[0] for t in tables]
    # one component changes (the pool's), so one changes table, then the cost delta; no tag-only table
    assert headers == [["action", "resource", "type", "change"], list(COST_HEADERS)]
    (changes,) = [t for t in tables if t[0] == ["action", "resource", "type", "change"]]
    assert [row[0] for row in changes[2:]] == ["+- replace", "+-"]  # the node group, its ASG tags
    assert "#### eks-gpu-inference (`eks-gpu:nodegroups:NodeGroup`)" in markdown
    (costs,) = [t for t in tables if t[0][0] == "point"]
    assert [row[0] for row in costs[2:]] == ["idle", "desired", "max"]
    assert "<details><summary>Resources (" in markdown and markdown.rstrip().endswith("</details>")


def test_markdown_lists_policy_violations_and_escapes_pipes(tmp_path: Path) -> None:
    over = _build(tmp_path / "over", lambda c: c.update({"eks-gpu:budget": {"maxUsdPerHour": 0.01}}))
    violations = over["policy"]["violations"]
    assert violations
    over["policy"]["violations"] = [{**violations[0], "message": "a | b"}, *violations[1:]]
    markdown = plan.render_markdown(over)
    (table,) = [t for t in _check_tables(markdown) if t[0] == ["level", "policy", "resource", "message"]]
    assert len(table) == 2 + len(violations) and table[2][3] == "a \\| b"
    assert f"### Policy: {over['policy']['mandatory']} mandatory" in markdown


def test_format_markdown_on_the_command_line(plans: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps(plans["base"]))
    stack = tmp_path / "type" / "Pulumi.dev.yaml"
    _build(stack.parent, lambda c: _pool(c).update(instanceTypes=[BIGGER]))
    done = run_plan("--stack-file", str(stack), "--against", str(old), "--format", "markdown", "--tree")
    assert done.stdout.startswith("**eks-gpu plan** `dev`"), done.stderr
    _check_tables(done.stdout)
    text = run_plan("--stack-file", str(stack), "--against", str(old), "--tree")
    assert "Cost delta (USD)" in text.stdout and "  eks-gpu  [eks-gpu:stack:EksGpuStack]" in text.stdout


def test_a_change_written_to_json_reads_back_the_same(plans: dict[str, dict[str, Any]]) -> None:
    changes, _ = diff(plans["base"], plans["type"])
    assert [Change.from_json(json.loads(json.dumps(c.to_json()))) for c in changes] == changes
    assert any(c.type == NODE_GROUP and c.values for c in changes)
