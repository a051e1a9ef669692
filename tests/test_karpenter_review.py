"""The review tools read Karpenter pools: cost, budget, the GPU-taint policy, the plan's NodePools table
and quotas, and what a NodePool or EC2NodeClass change does to running nodes (Karpenter's drift).

Unit tests use resources shaped as the offline engine records a ``kubernetes.apiextensions.CustomResource``
(type ``kubernetes:<apiVersion>:<kind>``, inputs apiVersion, kind, metadata, spec), built from the sample
manifests of docs/design-karpenter.md §3; the rest plan the shipped ``Pulumi.karpenter.yaml``.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.facts.quotas import quota_for
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import AwsAccount, load_stack_file, plan, run_program
from eks_gpu.offline.deployer import with_deployer
from eks_gpu.offline.diff import diff
from eks_gpu.offline.review import render_changes
from eks_gpu.policy.budget import evaluate_stack
from eks_gpu.policy.cost import (
    EC2_NODE_CLASS,
    EVENT_RULE,
    NODE_POOL,
    SQS_QUEUE,
    complete,
    line_items,
    node_pool,
    unpriced,
)
from eks_gpu.policy.pricing import price_table
from eks_gpu.policy.validators import evaluate

from tests.helpers import ROOT, problems_of

TODAY = date(2026, 12, 1)
SHAPES = ["g6.xlarge", "g6.2xlarge", "g6.4xlarge"]
URN = "urn:pulumi:dev::eks-gpu::kubernetes:karpenter.sh/v1:NodePool::eks-gpu-karpenter-inference-nodepool"


def nodepool(
    types: list[str] | None = None, *, families: list[str] | None = None, capacity: list[str] | None = None
) -> dict[str, Any]:
    """The NodePool of docs/design-karpenter.md §3, with instance types (or families) and capacity types."""
    requirements: list[dict[str, Any]] = []
    if types is not None:
        requirements.append({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types})
    if families is not None:
        requirements.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": families})
    requirements += [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity or ["spot", "on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    ]
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "inference"},
        "spec": {
            "limits": {"nodes": "2", "nvidia.com/gpu": "2", "cpu": "32"},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m", "budgets": [{"nodes": "1"}]},
            "template": {
                "metadata": {"labels": {"eks-gpu/node-group": "inference", "nvidia.com/gpu.present": "true"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "inference"},
                    "expireAfter": "Never",
                    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                    "requirements": requirements,
                },
            },
        },
    }


def nodeclass(alias: str = "al2023@v20260304") -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "inference"},
        "spec": {
            "amiSelectorTerms": [{"alias": alias}],
            "role": "eks-gpu-dev-karpenter-node",
            "subnetSelectorTerms": [{"id": "subnet-1"}],
            "securityGroupSelectorTerms": [{"id": "sg-1"}],
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {"volumeSize": "100Gi", "volumeType": "gp3"}}
            ],
        },
    }


def _item(items: list[Any], pool: str = "inference") -> Any:
    (found,) = [i for i in items if i.item.startswith(f"GPU pool {pool} nodes (Karpenter")]
    return found


# --- cost and budget -----------------------------------------------------------------------


def test_a_nodepool_costs_nothing_idle_and_its_node_limit_of_the_dearest_type_at_max() -> None:
    prices = price_table()
    items = line_items([(NODE_POOL, nodepool(SHAPES))], "us-east-1", prices, TODAY)
    item = _item(items)
    dearest = max(SHAPES, key=lambda t: prices.on_demand("us-east-1", t) or 0.0)
    assert dearest in item.item
    assert item.unit_usd_per_hour == prices.on_demand("us-east-1", dearest)
    assert dict(item.counts) == {"idle": 0, "desired": 0, "max": 2}
    assert item.estimate and "upper bound" in item.note  # spot is allowed: priced at on-demand
    on_demand_only = _item(
        line_items([(NODE_POOL, nodepool(SHAPES, capacity=["on-demand"]))], "us-east-1", prices, TODAY)
    )
    # limits are eventually consistent (karpenter-provider-aws v1.14 concepts/nodepools.md, "spec.limits"):
    # even on-demand only, max is an estimate at the limit, not a ceiling
    assert on_demand_only.estimate and "not a ceiling" in on_demand_only.note


def test_an_instance_family_is_every_type_of_it_the_table_lists() -> None:
    prices = price_table()
    family = sorted(t for t in prices.on_demand_usd_per_hour["us-east-1"] if t.startswith("g6."))
    assert len(family) > 3
    pool = node_pool(nodepool(families=["g6"]), set(prices.on_demand_usd_per_hour["us-east-1"]))
    assert pool.instance_types == tuple(family)
    item = _item(line_items([(NODE_POOL, nodepool(families=["g6"]))], "us-east-1", prices, TODAY))
    assert item.unit_usd_per_hour == max(prices.on_demand("us-east-1", t) or 0.0 for t in family)
    # both requirements: the types of the list that are of the family
    both = node_pool(nodepool(["g6.xlarge", "g5.xlarge"], families=["g6"]), family)
    assert both.instance_types == ("g6.xlarge",)


def test_an_unpriced_allowed_type_makes_the_total_incomplete() -> None:
    prices = price_table()
    # outside us-east-1 the table prices GPU types only (policy/pricing.py): a CPU type is unpriced there
    region = "eu-west-2"
    cpu_type = next(t for t in sorted(prices.on_demand_usd_per_hour["us-east-1"]) if t.startswith("m6i."))
    assert prices.on_demand(region, cpu_type) is None and prices.on_demand(region, "g6.xlarge") is not None
    items = line_items([(NODE_POOL, nodepool(["g6.xlarge", cpu_type]))], region, prices, TODAY)
    assert not complete(items)
    assert unpriced(items) == [_item(items).item]
    assert cpu_type in _item(items).note


def test_the_interruption_queue_and_rules_are_usage_based_and_node_class_volumes_are_priced() -> None:
    resources = [(NODE_POOL, nodepool(SHAPES)), (EC2_NODE_CLASS, nodeclass()), (SQS_QUEUE, {})]
    resources += [(EVENT_RULE, {}) for _ in range(5)]
    items = line_items(resources, "us-east-1", price_table(), TODAY)
    usage = [i.item for i in items if i.usage_based]
    assert any("SQS" in u for u in usage) and any("EventBridge rules (5)" in u for u in usage)
    (volume,) = [i for i in items if i.item.startswith("GPU pool inference volumes")]
    assert "100 GiB gp3" in volume.item and dict(volume.counts) == {"idle": 0, "desired": 0, "max": 2}
    assert complete(items)


def test_the_budget_policy_reads_nodepools() -> None:
    prices = price_table()
    top = max(prices.on_demand("us-east-1", t) or 0.0 for t in SHAPES)
    stack = ("eks-gpu:stack:EksGpuStack", {"region": "us-east-1", "budgetUsdPerHour": top}, "urn:stack")
    over = evaluate_stack([stack, (NODE_POOL, nodepool(SHAPES), URN)], TODAY)
    assert [v.policy for v in over] == ["stack-budget"]
    roomy = ("eks-gpu:stack:EksGpuStack", {"region": "us-east-1", "budgetUsdPerHour": 3 * top}, "urn:stack")
    assert evaluate_stack([roomy, (NODE_POOL, nodepool(SHAPES), URN)], TODAY) == []


# --- the GPU-taint policy ------------------------------------------------------------------


def _taint_violations(props: dict[str, Any]) -> list[str]:
    return [v.message for v in evaluate(NODE_POOL, props, URN) if v.policy == "gpu-node-group-nvidia-ami-and-taint"]


def test_a_gpu_nodepool_must_carry_the_gpu_taint_in_kubernetes_spelling() -> None:
    assert _taint_violations(nodepool(SHAPES)) == []
    untainted = nodepool(SHAPES)
    del untainted["spec"]["template"]["spec"]["taints"]
    (message,) = _taint_violations(untainted)
    assert "spec.template.spec.taints" in message
    eks_spelling = nodepool(SHAPES)
    eks_spelling["spec"]["template"]["spec"]["taints"][0]["effect"] = "NO_SCHEDULE"  # the EKS API's, not a node's
    assert _taint_violations(eks_spelling)
    prefer = nodepool(SHAPES)
    prefer["spec"]["template"]["spec"]["taints"][0]["effect"] = "PreferNoSchedule"
    assert _taint_violations(prefer)


def test_a_cpu_nodepool_needs_no_gpu_taint() -> None:
    cpu = nodepool(["m6i.large"])
    spec = cpu["spec"]
    del spec["template"]["spec"]["taints"], spec["limits"]["nvidia.com/gpu"]
    del spec["template"]["metadata"]["labels"]["nvidia.com/gpu.present"]
    assert _taint_violations(cpu) == []
    # a GPU requirement alone makes it a GPU pool
    spec["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}
    )
    assert _taint_violations(cpu)


# --- the IMDSv2 / encrypted-EBS policy on EC2NodeClasses -------------------------------------------


def _imds_violations(props: dict[str, Any]) -> list[str]:
    return [
        v.message for v in evaluate(EC2_NODE_CLASS, props, URN) if v.policy == "launch-template-imdsv2-encrypted-ebs"
    ]


def test_a_node_class_must_require_imdsv2_hop_limit_1_and_encrypted_volumes() -> None:
    sound = nodeclass()
    sound["spec"]["blockDeviceMappings"][0]["ebs"]["encrypted"] = True
    assert _imds_violations(sound) == []  # unset metadataOptions: the CRD's defaults, required and 1
    sound["spec"]["metadataOptions"] = {"httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert _imds_violations(sound) == []
    optional = copy.deepcopy(sound)
    optional["spec"]["metadataOptions"]["httpTokens"] = "optional"
    (message,) = _imds_violations(optional)
    assert "httpTokens" in message
    two_hops = copy.deepcopy(sound)
    two_hops["spec"]["metadataOptions"]["httpPutResponseHopLimit"] = 2
    (message,) = _imds_violations(two_hops)
    assert "HopLimit to 2" in message
    (message,) = _imds_violations(nodeclass())  # the sample's volume sets no encryption
    assert "/dev/xvda is not encrypted" in message


# --- drift ---------------------------------------------------------------------------------


def _plan(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resources": [
            {"urn": f"urn:{name}", "name": name, "type": type_, "custom": True, "inputs": inputs}
            for name, type_, inputs in resources
        ]
    }


def _review(old_pool: dict[str, Any], new_pool: dict[str, Any], old_class: Any = None, new_class: Any = None) -> Any:
    old = _plan(("pool", NODE_POOL, old_pool), ("class", EC2_NODE_CLASS, old_class or nodeclass()))
    new = _plan(("pool", NODE_POOL, new_pool), ("class", EC2_NODE_CLASS, new_class or nodeclass()))
    return diff(old, new)


def test_limits_and_disruption_replace_no_node() -> None:
    changed = nodepool(SHAPES)
    changed["spec"]["limits"]["nodes"] = "4"
    changed["spec"]["disruption"]["consolidateAfter"] = "1h"
    changes, warnings = _review(nodepool(SHAPES), changed)
    (change,) = changes
    assert change.action == "update" and not change.rolls_nodes
    assert any("no node replaced" in w for w in warnings)
    assert not any(w.startswith("Karpenter drift:") for w in warnings)


def test_a_template_change_drifts_every_node_of_the_pool() -> None:
    changed = nodepool(SHAPES)
    changed["spec"]["template"]["metadata"]["labels"]["workload"] = "serving"
    changes, warnings = _review(nodepool(SHAPES), changed)
    assert changes[0].rolls_nodes
    assert any(
        w.startswith("Karpenter drift: every node of pool inference is replaced (drained, then terminated")
        for w in warnings
    )
    assert "KARPENTER DRIFT" in "\n".join(render_changes(changes, warnings, "old.json"))


def test_requirements_drift_only_the_nodes_they_no_longer_allow() -> None:
    wider, narrower = nodepool([*SHAPES, "g6.8xlarge"]), nodepool(SHAPES[:1])
    changes, warnings = _review(nodepool(SHAPES), wider)
    assert not changes[0].rolls_nodes and any("no node replaced" in w for w in warnings)
    changes, warnings = _review(nodepool(SHAPES), narrower)
    assert changes[0].rolls_nodes
    assert any("no longer allow are replaced" in w for w in warnings)


def test_a_node_class_change_drifts_the_nodes_of_the_pools_that_use_it() -> None:
    changes, warnings = _review(nodepool(SHAPES), nodepool(SHAPES), new_class=nodeclass("al2023@v20260401"))
    (change,) = changes
    assert change.type == EC2_NODE_CLASS and change.rolls_nodes
    assert any("every node of pool inference is replaced" in w and "amiSelectorTerms" in w for w in warnings)


def test_a_deleted_nodepool_takes_its_nodes() -> None:
    old = _plan(("pool", NODE_POOL, nodepool(SHAPES)))
    changes, warnings = diff(old, _plan())
    assert changes[0].action == "delete"
    assert any("terminates every node it launched for pool inference" in w for w in warnings)


# --- the shipped Karpenter stack ------------------------------------------------------------


@pytest.fixture(scope="module")
def karpenter() -> dict[str, Any]:
    return plan.build(ROOT / "Pulumi.karpenter.yaml", today=calendar().updated)


def test_the_karpenter_stack_plans_cleanly_with_its_nodepool(karpenter: dict[str, Any]) -> None:
    assert karpenter["policy"]["mandatory"] == 0
    assert [g["key"] for g in karpenter["nodeGroups"]] == ["system"]  # no managed group for the GPU pool
    # the offline account is fresh: the plan assumes the spot service-linked role, and says so
    (spot,) = [w for w in karpenter["warnings"] if "AWSServiceRoleForEC2Spot" in w]
    assert spot.startswith("eks-gpu:gpuNodeGroups.inference.karpenter.capacityTypes: planned as if")
    assert "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com" in spot
    stack = yaml.safe_load((ROOT / "Pulumi.karpenter.yaml").read_text())["config"]
    pool = stack["eks-gpu:gpuNodeGroups"]["inference"]
    (row,) = karpenter["nodePools"]
    assert row["pool"] == "inference"
    assert sorted(row["instanceTypes"]) == sorted(pool["instanceTypes"])
    assert row["capacityOrder"] == pool["karpenter"]["capacityTypes"]
    assert row["nodeLimit"] == pool["maxSize"]
    assert row["consolidationPolicy"] == pool["karpenter"]["consolidationPolicy"]
    text = plan.render_text(karpenter)
    assert "NodePools (Karpenter)" in text and "spot > on-demand" in text
    assert "capacity (tried in this order)" in text and "not a ceiling" in text and "limits are hard" not in text
    assert "### NodePools (Karpenter)" in plan.render_markdown(karpenter)


def test_the_karpenter_stack_costs_its_limit_at_max_and_idles_at_dev_cost(karpenter: dict[str, Any]) -> None:
    """Issue 24: it idles at what dev costs plus what Karpenter's queue and rules cost, which is usage
    only: with one controller replica on dev's one system node, exactly dev's idle."""
    prices = price_table()
    cost = karpenter["cost"]
    (item,) = [i for i in cost["lineItems"] if i["item"].startswith("GPU pool inference nodes")]
    top = max(prices.on_demand("us-east-1", t) or 0.0 for t in karpenter["nodePools"][0]["instanceTypes"])
    assert item["unitUsdPerHour"] == top and item["count"] == {"idle": 0, "desired": 0, "max": 2}
    assert cost["complete"]
    dev = plan.build(ROOT / "Pulumi.dev.yaml", today=calendar().updated)
    assert cost["idleUsdPerHour"] == dev["cost"]["idleUsdPerHour"]
    # the same system group as dev's, holding the one replica the stack asks for
    assert karpenter["nodeGroups"] == [g for g in dev["nodeGroups"] if g["key"] == "system"]
    stack = yaml.safe_load((ROOT / "Pulumi.karpenter.yaml").read_text())["config"]
    assert stack["eks-gpu:karpenter"]["replicas"] == karpenter["nodeGroups"][0]["desiredSize"]
    usage = [i["item"] for i in cost["lineItems"] if i["usageBased"]]
    assert any("SQS" in i for i in usage) and any("EventBridge" in i for i in usage)


def test_the_docs_quote_the_karpenter_stacks_idle_cost(karpenter: dict[str, Any]) -> None:
    """docs/karpenter.md's idle figures are the plan's, as ``make plan`` prints them."""
    text = " ".join((ROOT / "docs" / "karpenter.md").read_text().split())
    found = re.search(
        r"costs exactly what dev does \(\$([0-9.]+) per hour in us-east-1, \$([0-9.,]+) per 730-hour", text
    )
    assert found is not None
    idle = karpenter["cost"]["idleUsdPerHour"]
    assert (found[1], found[2]) == (f"{idle:.4f}", f"{idle * 730:,.2f}")


def test_the_karpenter_stack_checks_quotas_from_the_limits(karpenter: dict[str, Any]) -> None:
    row = karpenter["nodePools"][0]
    largest = max(row["vcpusPerNode"].values())
    rows = {q["code"]: q for q in karpenter["quotas"] if "inference" in q["nodeGroups"]}
    for market in ("spot", "on-demand"):
        quota = quota_for(row["instanceTypes"][0], market)
        assert quota is not None
        assert rows[quota.code]["maxVcpus"] == row["nodeLimit"] * largest
        assert rows[quota.code]["desiredVcpus"] == 0


def _variant(tmp_path: Path, edit: Any) -> dict[str, Any]:
    stack = yaml.safe_load((ROOT / "Pulumi.karpenter.yaml").read_text())
    edit(stack["config"]["eks-gpu:gpuNodeGroups"]["inference"])
    path = tmp_path / "Pulumi.karpenter.yaml"
    path.write_text(yaml.safe_dump(stack))
    return plan.build(path, today=calendar().updated)


def test_against_says_which_edits_of_the_karpenter_stack_replace_nodes(
    karpenter: dict[str, Any], tmp_path: Path
) -> None:
    old = copy.deepcopy(karpenter)
    bigger = _variant(tmp_path, lambda pool: pool.update(maxSize=3))
    changes = plan.review_against(bigger, old, "old.json")
    pools = [c for c in changes if c.type == NODE_POOL]
    assert pools and not any(c.rolls_nodes for c in pools)
    assert any("no node replaced" in w for w in bigger["warnings"])
    relabelled = _variant(tmp_path, lambda pool: pool["labels"].update(workload="serving"))
    changes = plan.review_against(relabelled, old, "old.json")
    assert any(c.type == NODE_POOL and c.rolls_nodes for c in changes)
    assert any(w.startswith("Karpenter drift: every node of pool inference") for w in relabelled["warnings"])


def test_against_says_a_tags_only_edit_replaces_every_gpu_node(karpenter: dict[str, Any], tmp_path: Path) -> None:
    """The stack's tags are in the EC2NodeClass (cost allocation on the instances), whose spec Karpenter
    hashes: a tag edit drifts every node of the pool (docs/karpenter.md says so)."""
    stack = yaml.safe_load((ROOT / "Pulumi.karpenter.yaml").read_text())
    stack["config"]["eks-gpu:tags"] = {**stack["config"]["eks-gpu:tags"], "costCenter": "ml-42"}
    path = tmp_path / "Pulumi.karpenter.yaml"
    path.write_text(yaml.safe_dump(stack))
    retagged = plan.build(path, today=calendar().updated)
    changes = plan.review_against(retagged, copy.deepcopy(karpenter), "old.json")
    assert any(c.type == EC2_NODE_CLASS and c.rolls_nodes for c in changes)
    assert any(w.startswith("Karpenter drift: every node of pool inference") for w in retagged["warnings"])


def test_the_karpenter_stack_breaks_no_policy_and_needs_the_deployers_address_and_the_spot_role() -> None:
    # as tests/test_policy.py and tests/test_stack.py check the dev and prod stacks
    shipped = load_stack_file(ROOT / "Pulumi.karpenter.yaml")
    result = run_program(
        with_deployer(shipped)[0], stack="karpenter", account_setup=AwsAccount.create_spot_service_linked_role
    )
    assert [v for r in result.resources for v in evaluate(r.type, r.inputs, r.urn)] == []
    assert len(result.of_type(NODE_POOL)) == len(result.of_type(EC2_NODE_CLASS)) == 1
    # as shipped, in a fresh account: nobody may reach the API, and spot has no service-linked role yet
    assert list(problems_of(shipped)) == [
        "eks-gpu:endpointPublicAccessCidrs",
        "eks-gpu:gpuNodeGroups.inference.karpenter.capacityTypes",
    ]
