"""Upgrading Kubernetes, rehearsed offline: ``make plan --against`` from the dev stack one minor back.

What EKS requires, and what the engine guarantees:

- a managed node group may not be newer than its control plane, and the cluster moves only when every
  node group matches it (botocore's EKS model, ``UpdateClusterVersion``); so the control plane goes
  first, and everything else after it;
- a node group's ``version`` change is an in-place ``UpdateNodegroupVersion`` (terraform-provider-aws
  ``internal/service/eks/node_group.go``, "Do any version update first"): EKS replaces the nodes,
  ``updateConfig.maxUnavailable`` at a time;
- the engine touches a resource only once what it depends on is done, so the order is read from the
  dependencies the program recorded, not from a list of names here (add-ons and node groups may
  change for more reasons than the version: whatever changes must wait for the control plane).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.facts.releases import autoscaler_releases
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import plan
from eks_gpu.offline.diff import EKS_CLUSTER, NODE_GROUP, Change, diff, render_changes

from tests.helpers import ROOT, program_scope

Plans = tuple[dict[str, Any], dict[str, Any], list[Change], list[str]]


def _versions() -> tuple[str, str]:
    """The newest version with both a calendar entry and an autoscaler release, and the one before it."""
    newest = min(
        int(calendar().newest().split(".")[1]),
        int(autoscaler_releases().newest().split(".")[1]),
    )
    return f"1.{newest - 1}", f"1.{newest}"


def _plan(folder: Path, version: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["eks-gpu:kubernetesVersion"] = version
    folder.mkdir()
    (folder / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return json.loads(json.dumps(plan.build(folder / "Pulumi.dev.yaml")))


@pytest.fixture(scope=program_scope)
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    old_version, new_version = _versions()
    folder = tmp_path_factory.mktemp("upgrade")
    old, new = _plan(folder / old_version, old_version), _plan(folder / new_version, new_version)
    changes, warnings = diff(old, new)
    return old, new, changes, warnings


def _upstream(resources: list[Mapping[str, Any]], urn: str) -> set[str]:
    """Every URN ``urn`` waits for, directly or through others, as the program recorded it."""
    deps = {r["urn"]: r["dependencies"] for r in resources}
    seen: set[str] = set()
    todo = list(deps[urn])
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo += deps.get(d, [])
    return seen


def _by_name(new: Mapping[str, Any], change: Change) -> Mapping[str, Any]:
    (resource,) = [r for r in new["resources"] if (r["name"], r["type"]) == (change.name, change.type)]
    return resource


def test_the_upgrade_replaces_nothing_and_updates_the_control_plane_in_place(upgrade: Plans) -> None:
    old, new, changes, _ = upgrade
    assert {c.action for c in changes} == {"update"}  # nothing created, replaced or deleted
    (cluster,) = [c for c in changes if c.type == EKS_CLUSTER]
    assert "version" in cluster.causes and not cluster.after
    assert (_cluster(old)["inputs"]["version"], _cluster(new)["inputs"]["version"]) == _versions()


def _cluster(p: Mapping[str, Any]) -> Mapping[str, Any]:
    (cluster,) = [r for r in p["resources"] if r["type"] == EKS_CLUSTER]
    return cluster


def test_every_node_group_rolls_one_node_at_a_time_at_the_control_planes_version(upgrade: Plans) -> None:
    _, new, changes, warnings = upgrade
    cluster = _cluster(new)
    groups = [r for r in new["resources"] if r["type"] == NODE_GROUP]
    rolled = {c.name: c for c in changes if c.type == NODE_GROUP}
    assert groups and set(rolled) == {g["name"] for g in groups}
    for group in groups:
        change = rolled[group["name"]]
        assert (change.action, change.rolls_nodes) == ("update", True) and "version" in change.causes
        assert group["inputs"]["version"] == cluster["inputs"]["version"]  # never newer than the control plane
        # EKS User Guide, "managed-node-update-behavior": updateConfig says how many nodes go at once
        assert {k: int(v) for k, v in group["inputs"]["updateConfig"].items()} == {"maxUnavailable": 1}
        assert any(w.startswith("node group ") and f"({group['name']}) rolls its nodes" in w for w in warnings)


def test_everything_that_changes_waits_for_the_control_plane(upgrade: Plans) -> None:
    _, new, changes, _ = upgrade
    cluster = _cluster(new)["urn"]
    others = [c for c in changes if c.type != EKS_CLUSTER]
    assert others
    for change in others:
        resource = _by_name(new, change)
        assert cluster in _upstream(new["resources"], resource["urn"]), change.name
        assert change.after, change.name  # and the diff says what it waits for


def test_the_review_text_shows_the_order(upgrade: Plans) -> None:
    _, _, changes, warnings = upgrade
    lines = render_changes(changes, warnings, "old.json")
    assert lines[0].endswith("0 to create, " + f"{len(changes)} to update, 0 to replace, 0 to delete")
    assert "Kubernetes upgrade: each change waits for the ones named after it" in "\n".join(lines)
    (cluster,) = [c for c in changes if c.type == EKS_CLUSTER]
    first = next(i for i, line in enumerate(lines) if f" {cluster.name}  [" in line)
    for change in (c for c in changes if c.type == NODE_GROUP):
        at = next(i for i, line in enumerate(lines) if f" {change.name}  [" in line)
        assert at > first and lines[at + 1].strip() == f"after {', '.join(change.after)}"
        assert cluster.name in change.after
