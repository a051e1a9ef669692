"""The plan's AMI-release table and diagram show Karpenter's NodePools: the alias each EC2NodeClass pins, the
latest release AWS publishes for it, what a new one does (drift), and the pool in the architecture diagram.

Expectations come from the run's own resources (the EC2NodeClass and NodePool the program sent), the stack
files and the offline account's AMI snapshot (``offline/data/eks_ami_releases.json``), never from the code
under test. The alias format is Karpenter's CRD description of ``amiSelectorTerms[].alias``
("family@version", e.g. ``al2023@v20240625``, ``bottlerocket@v1.10.0``); the SSM parameter names are the EKS
User Guide's ("retrieve-ami-id", "retrieve-ami-id-bottlerocket").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.offline import nodepools, plan
from eks_gpu.offline.aws import ami_release_parameter, ami_releases

from tests.helpers import ROOT, run_plan

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def _stack(name: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())["config"]
    return config


def _planned(*args: str) -> tuple[dict[str, Any], str, str]:
    """``eks-gpu plan ARGS`` in-process, three ways: the JSON, the text, and the diagram."""
    done = run_plan("--project", str(ROOT), *args, "--json")
    assert done.returncode == 0, done.stderr
    text = run_plan("--project", str(ROOT), *args)
    assert text.returncode == 0, text.stderr
    return json.loads(done.stdout), text.stdout, plan.render_mermaid(json.loads(done.stdout))


def _sent(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in document["resources"] if r["type"] == type_]


def _ami_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Node AMI releases"))
    end = lines.index("", start)
    return lines[start:end]


def _al2023_alias(release: str) -> str:
    """An AL2023 release (``1.35.2-20260304``) as Karpenter's alias: its build date (the CRD's example)."""
    return "al2023@v" + release.rsplit("-", 1)[1]


@pytest.fixture(scope="module")
def karpenter() -> tuple[dict[str, Any], str, str]:
    return _planned("--stack", "karpenter")


def test_the_ami_table_shows_the_alias_the_ec2nodeclass_sent(karpenter: tuple[dict[str, Any], str, str]) -> None:
    document, text, _ = karpenter
    (node_class,) = _sent(document, EC2_NODE_CLASS)
    alias = node_class["spec"]["amiSelectorTerms"][0]["alias"]
    (nodepool,) = _sent(document, NODE_POOL)
    pool = nodepool["spec"]["template"]["metadata"]["labels"]["eks-gpu/node-group"]
    stack = _stack("karpenter")
    # the offline account's latest release for the pool's family and the cluster's Kubernetes version
    latest = ami_releases()["al2023"][stack["eks-gpu:kubernetesVersion"]]["release"]

    (row,) = document["nodePools"]
    assert (row["pool"], row["amiAlias"]) == (pool, alias)
    assert row["latestAmiRelease"] == latest and row["latestAmiAlias"] == _al2023_alias(latest)
    assert row["amiType"] == "AL2023_x86_64_NVIDIA"  # g6 types carry an NVIDIA L4: Karpenter's nvidia variant
    assert row["availabilityZones"] == stack["eks-gpu:vpc"]["availabilityZones"]

    section = _ami_section(text)
    assert "a new release" in section[1]  # the column saying what changing it does
    (line,) = [line for line in section if f"{pool} (NodePool)" in line]
    budget = stack["eks-gpu:gpuNodeGroups"][pool]["karpenter"]["disruptionBudget"]
    assert alias in line and f"{_al2023_alias(latest)} ({latest})" in line
    assert "(newer)" not in line  # the shipped stack pins AWS's latest
    assert "Karpenter drift: every node of the pool replaced" in line
    assert f"at most {budget} at a time (its disruption budget)" in line
    # the node groups keep their rows, now saying how they move
    (system,) = [line for line in section if line.split()[1:2] == ["system"]]
    assert "rolls the group" in system


def test_the_diagram_draws_the_nodepool_on_the_cluster(karpenter: tuple[dict[str, Any], str, str]) -> None:
    document, _, diagram = karpenter
    (node_class,) = _sent(document, EC2_NODE_CLASS)
    alias = node_class["spec"]["amiSelectorTerms"][0]["alias"]
    pool = _stack("karpenter")["eks-gpu:gpuNodeGroups"]["inference"]
    (line,) = [line for line in diagram.splitlines() if "NodePool inference (Karpenter)" in line]
    node = line.split("[", 1)[0].strip()
    assert alias in line and f"up to {pool['maxSize']} nodes" in line
    assert "spot, then on-demand" in line  # Karpenter's order, whatever order the pool lists them in
    assert all(t.split(".")[1] in line for t in pool["instanceTypes"])
    assert line.count('"') == 2  # one quoted label: nothing in it ends it early
    (cluster,) = [r["name"] for r in document["resources"] if r["type"] == "eks:index:Cluster"]
    assert f"  {node} --> n_{cluster.replace('-', '_')}" in diagram.splitlines()
    # attached to the private subnets of its zones, as a GPU node group is
    assert sum(1 for line in diagram.splitlines() if line.startswith(f"  {node} -.- ")) == len(
        _stack("karpenter")["eks-gpu:vpc"]["availabilityZones"]
    )


def test_a_cluster_autoscaler_stack_shows_no_nodepool() -> None:
    document, text, diagram = _planned("--stack", "dev")
    assert document["nodePools"] == []
    section = _ami_section(text)
    assert section[1].split() == ["AMI", "type", "node", "group", "release", "AWS", "latest"]
    assert not any("NodePool" in line for line in section)
    assert "NodePool" not in diagram and "node group inference" in diagram


def test_an_older_bottlerocket_alias_is_shown_behind_awss_latest(tmp_path: Path) -> None:
    """A Bottlerocket pool pinned to an older release: the alias the EC2NodeClass sent, AWS's latest for the
    nvidia variant (the parameter the EKS User Guide names), marked newer."""
    raw = yaml.safe_load((ROOT / "Pulumi.karpenter.yaml").read_text())
    pool = raw["config"]["eks-gpu:gpuNodeGroups"]["inference"]
    older = next(
        entry["release"]
        for entry in ami_releases()["bottlerocket"].values()
        if entry["release"] != ami_releases()["bottlerocket"]["1.35"]["release"]
    )
    pool.update(amiType="BOTTLEROCKET_x86_64_NVIDIA", amiReleaseVersion=older)
    (tmp_path / "Pulumi.karpenter.yaml").write_text(yaml.safe_dump(raw))
    document, text, diagram = _planned("--stack-file", str(tmp_path / "Pulumi.karpenter.yaml"))
    (node_class,) = _sent(document, EC2_NODE_CLASS)
    alias = node_class["spec"]["amiSelectorTerms"][0]["alias"]
    assert alias.startswith("bottlerocket@v")
    latest = ami_release_parameter("/aws/service/bottlerocket/aws-k8s-1.35-nvidia/x86_64/latest/image_version")
    assert latest is not None
    (row,) = document["nodePools"]
    assert (row["amiAlias"], row["latestAmiRelease"]) == (alias, latest)
    assert row["latestAmiAlias"] == "bottlerocket@v" + latest.split("-")[0] != alias
    (line,) = [line for line in _ami_section(text) if "inference (NodePool)" in line]
    assert alias in line and f"{row['latestAmiAlias']} ({latest}) (newer)" in line
    assert alias in diagram


# --- what the rows say when the plan cannot know ------------------------------------------------------------


def _nodepool(types: list[str], arch: list[str] | None = None) -> dict[str, Any]:
    requirements: list[dict[str, Any]] = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types}
    ]
    if arch is not None:
        requirements.append({"key": "kubernetes.io/arch", "operator": "In", "values": arch})
    return {"spec": {"template": {"spec": {"requirements": requirements}}}}


def _record(arch: str, gpus: int) -> dict[str, Any]:
    return {
        "supportedArchitectures": [arch],
        "gpuses": [{"count": 1, "manufacturer": "NVIDIA", "name": "L4"}] if gpus else [],
    }


def _answer(token: str, args: Mapping[str, Any]) -> Any:
    value = ami_release_parameter(args["name"])
    return None if value is None else {"value": value}


def _class(terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"amiSelectorTerms": terms}}


def test_the_latest_release_is_unknown_and_said_why_when_the_pool_does_not_pin_one_variant() -> None:
    records = {"g6.xlarge": _record("x86_64", 1), "m7i.large": _record("x86_64", 0), "g5g.xlarge": _record("arm64", 1)}
    pinned = _class([{"alias": "al2023@v20260304"}])

    def ami(nodepool: dict[str, Any], node_class: dict[str, Any] | None, k8s: str | None = "1.35") -> dict[str, Any]:
        types = next(r["values"] for r in nodepool["spec"]["template"]["spec"]["requirements"])
        return nodepools.node_pool_ami(nodepool, node_class, records, types, k8s, _answer)

    found = ami(_nodepool(["g6.xlarge"], ["amd64"]), pinned)
    assert found["latestAmiRelease"] == ami_releases()["al2023"]["1.35"]["release"] and not found["latestAmiUnknown"]
    # no arch requirement: the types' architecture decides (arm64: the arm64 nvidia variant)
    assert ami(_nodepool(["g5g.xlarge"]), pinned)["amiType"] == "AL2023_ARM_64_NVIDIA"
    cases = {
        "mixes types with and without NVIDIA GPUs": ami(_nodepool(["g6.xlarge", "m7i.large"], ["amd64"]), pinned),
        "several architectures": ami(_nodepool(["g6.xlarge", "g5g.xlarge"]), pinned),
        "not all known": ami(_nodepool(["p5.48xlarge"], ["amd64"]), pinned),
        "by id or tags": ami(_nodepool(["g6.xlarge"]), _class([{"id": "ami-0123456789abcdef0"}])),
        "EC2NodeClass is not among": ami(_nodepool(["g6.xlarge"]), None),
        "releases of al2023 and bottlerocket only": ami(_nodepool(["g6.xlarge"]), _class([{"alias": "al2@v1"}])),
        "Kubernetes version": ami(_nodepool(["g6.xlarge"]), pinned, None),
        "could not be read": ami(_nodepool(["g6.xlarge"]), pinned, "1.20"),  # the snapshot has no 1.20
    }
    for why, row in cases.items():
        assert row["latestAmiRelease"] is None and why in row["latestAmiUnknown"], (why, row)
        cells = nodepools.pool_ami_cells({"pool": "p", "budgets": [], **row})
        assert cells[3].startswith("unknown: ") and why in cells[3]


def test_the_drift_pace_follows_karpenters_budget_rules() -> None:
    """disruption.md (v1.14), "NodePool Disruption Budgets" and "Reasons": no budget is 10%; a budget for
    other reasons does not pace drift; several: the most restrictive."""
    assert nodepools.drift_budget([]) == "at most 10% of them at a time (Karpenter's default budget)"
    assert "not paced" in nodepools.drift_budget([{"nodes": "0", "reasons": ["Underutilized", "Empty"]}])
    assert nodepools.drift_budget([{"nodes": "2", "reasons": ["Drifted"]}, {"nodes": "5", "reasons": ["Empty"]}]) == (
        "at most 2 at a time (its disruption budget)"
    )
    both = nodepools.drift_budget([{"nodes": "20%"}, {"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}])
    assert "least of 20%, 0 (while schedule '0 9 * * 1-5' is active, for 8h)" in both
