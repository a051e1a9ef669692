"""Issue 20 part 6: GPU workloads as users write them (tests/workloads/corpus), placed on every GPU pool
of the shipped stacks and of ``every_feature()`` as a user would, are admitted, connected, scaled up
from zero and fit the node that arrives. The evaluators are tested against their upstream examples in
``test_workload_evaluators.py``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import kubernetes_validate
import pytest
from eks_gpu.offline import ProgramRun, load_stack_file

from tests.helpers import ROOT, every_feature, program_scope, run, run_stack_file
from tests.workloads import autoscaler, verdict
from tests.workloads.autoscaler import PREFIX, template_node
from tests.workloads.corpus import MARKER, README_REQUIRED, WORKLOADS, Workload, marked_blocks, pods
from tests.workloads.karpenter import daemon_overhead
from tests.workloads.resources import JsonDict, show
from tests.workloads.scheduling import unfit
from tests.workloads.stack import Stack, addon_daemon_specs, addon_daemonsets

CONFIGS = {
    "dev": load_stack_file(ROOT / "Pulumi.dev.yaml"),
    "prod": load_stack_file(ROOT / "Pulumi.prod.yaml"),
    "every-feature": every_feature(),
}
CASES = [
    (label, pool, w.name)
    for label, cfg in CONFIGS.items()
    for pool, spec in cfg["eks-gpu:gpuNodeGroups"].items()
    for w in WORKLOADS
    if spec.get("efa") or not w.efa
]
"""(stack, pool, workload): every workload on every GPU pool, the EFA job on the EFA pools."""
BY_NAME = {w.name: w for w in WORKLOADS}


CHECKS: dict[str, Callable[[verdict.Case], list[str]]] = {
    "admitted": verdict.admitted,
    "connected": verdict.connected,
    "scales-from-zero": verdict.scales_from_zero,
    "fits-real-node": verdict.fits_real_node,
}


@pytest.fixture(scope=program_scope)
def stacks() -> dict[str, Stack]:
    return {
        "dev": Stack("dev", run_stack_file("dev")),
        "prod": Stack("prod", run_stack_file("prod")),
        "every-feature": Stack("every-feature", run(every_feature())),
    }


def case(stacks: dict[str, Stack], label: str, pool: str, workload: str) -> verdict.Case:
    stack = stacks[label]
    return verdict.Case(stack, stack.pools[pool], BY_NAME[workload])


def test_the_cases_cover_every_gpu_pool_of_every_run(stacks: dict[str, Stack]) -> None:
    for label, stack in stacks.items():
        assert set(stack.pools) == set(CONFIGS[label]["eks-gpu:gpuNodeGroups"]), label
    assert {(label, pool) for label, pool, name in CASES if name == "efa"} == {
        ("prod", "training"),
        ("every-feature", "train"),
    }


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize(("label", "pool", "workload"), CASES, ids=["-".join(c) for c in CASES])
def test_workload_runs(stacks: dict[str, Stack], check: str, label: str, pool: str, workload: str) -> None:
    problems = CHECKS[check](case(stacks, label, pool, workload))
    assert not problems, "\n".join(problems)


# ---- the checks bite: each fails on the program's objects with the thing it guards undone ----------


def altered(
    result: ProgramRun, type_token: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> ProgramRun:
    """``result`` with every resource of ``type_token`` passed through ``change`` (``None`` drops it)."""
    resources = []
    for r in result.resources:
        if r.type != type_token:
            resources.append(r)
        elif (inputs := change(r.inputs)) is not None:
            resources.append(dataclasses.replace(r, inputs=inputs))
    return ProgramRun(
        resources=resources,
        outputs=result.outputs,
        secret_outputs=result.secret_outputs,
        invokes=result.invokes,
        warnings=result.warnings,
        errors=result.errors,
        config=result.config,
        account_data=result.account_data,
    )


def test_a_default_memory_limit_below_the_request_is_refused(stacks: dict[str, Stack]) -> None:
    seed = {
        "type": "Container",
        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
        "default": {"cpu": "2", "memory": "4Gi"},
    }
    result = altered(stacks["dev"].run, verdict.LIMIT_RANGE, lambda lr: {**lr, "spec": {"limits": [seed]}})
    problems = verdict.admitted(verdict.Case(Stack("dev", result), stacks["dev"].pools["inference"], BY_NAME["ddp"]))
    assert (
        'ddp on dev/inference: LimitRange: pod ddp-0, container "trainer": memory request 12Gi must be less than or '
        "equal to memory limit 4Gi (the LimitRange's default limit)"
    ) in problems
    assert any("cpu request 3 must be less than or equal to cpu limit 2" in p for p in problems)


def test_a_quota_below_the_job_is_refused(stacks: dict[str, Stack]) -> None:
    result = altered(
        stacks["prod"].run, verdict.QUOTA, lambda q: {**q, "spec": {"hard": {"requests.nvidia.com/gpu": "8"}}}
    )
    problems = verdict.admitted(verdict.Case(Stack("prod", result), stacks["prod"].pools["training"], BY_NAME["efa"]))
    assert problems == [
        "efa on prod/training: ResourceQuota: ResourceQuota gpu-quota: exceeded quota: the workload's 2 pod(s) need "
        "requests.nvidia.com/gpu=16 in all, hard limit requests.nvidia.com/gpu=8"
    ]


def test_a_root_image_is_refused_at_restricted(stacks: dict[str, Stack]) -> None:
    workload = BY_NAME["single-gpu"]
    bare = verdict.Case(stacks["dev"], stacks["dev"].pools["inference"], workload)
    for p in bare.pods:
        del p.spec["securityContext"]["runAsNonRoot"]
    assert any(
        "Pod Security restricted:v1.35: pod train-single-0 violates runAsNonRoot != true" in p
        for p in verdict.admitted(bare)
    )


def test_default_deny_alone_blocks_dns_peers_and_downloads(stacks: dict[str, Stack]) -> None:
    result = altered(
        stacks["dev"].run, verdict.NETWORK_POLICY, lambda p: p if p["metadata"]["name"] == "default-deny" else None
    )
    problems = verdict.connected(verdict.Case(Stack("dev", result), stacks["dev"].pools["inference"], BY_NAME["ddp"]))
    assert (
        "ddp on dev/inference: NetworkPolicy: DNS from gpu-workloads/ddp-0 to kube-system/coredns (UDP/53) is denied: "
        "egress of gpu-workloads/ddp-0 is isolated by NetworkPolicy default-deny and no egress rule allows it"
    ) in problems
    assert any("HTTPS to the internet" in p for p in problems)
    assert any("peer traffic from gpu-workloads/ddp-0 to gpu-workloads/ddp-1 (TCP/29500)" in p for p in problems)


def test_an_open_namespace_is_caught(stacks: dict[str, Stack]) -> None:
    allow_all = {"ingress": [{}], "podSelector": {}, "policyTypes": ["Ingress"]}
    result = altered(stacks["dev"].run, verdict.NETWORK_POLICY, lambda p: {**p, "spec": allow_all})
    problems = verdict.connected(verdict.Case(Stack("dev", result), stacks["dev"].pools["inference"], BY_NAME["vllm"]))
    assert problems == [
        "vllm on dev/inference: NetworkPolicy: ingress from another namespace (default/client to gpu-workloads/vllm-0, "
        "TCP/8000) is allowed; it must be denied"
    ]


def test_without_an_ephemeral_storage_tag_the_pool_never_scales_up(stacks: dict[str, Stack]) -> None:
    pool = stacks["dev"].pools["inference"]
    tags = {k: v for k, v in pool.asg_tags.items() if not k.endswith("/resources/ephemeral-storage")}
    untagged = dataclasses.replace(pool, asg_tags=tags)
    problems = verdict.scales_from_zero(verdict.Case(stacks["dev"], untagged, BY_NAME["vllm"]))
    assert problems == [
        "vllm on dev/inference: Cluster Autoscaler: pod vllm-0 does not fit the template node: Insufficient "
        "ephemeral-storage: the pod requests 40Gi, the node has 0 (no "
        "k8s.io/cluster-autoscaler/node-template/resources/ephemeral-storage tag on the ASG)"
    ]


def test_a_job_larger_than_the_pool_is_caught(stacks: dict[str, Stack]) -> None:
    pool = stacks["prod"].pools["training"]
    disk = {f"{PREFIX}resources/ephemeral-storage": "800Gi"}  # so that only the pool's size is in question
    small = dataclasses.replace(
        pool, asg_tags={**pool.asg_tags, **disk}, node_group={**pool.node_group, "scalingConfig": {"maxSize": 1}}
    )
    problems = verdict.scales_from_zero(verdict.Case(stacks["prod"], small, BY_NAME["efa"]))
    assert problems == ["efa on prod/training: Cluster Autoscaler: the pods fill 2 nodes, the pool's maxSize is 1"]


def test_without_published_allocatable_a_user_cannot_size_a_pod(stacks: dict[str, Stack]) -> None:
    pool = stacks["prod"].pools["inference"]
    bare = dataclasses.replace(pool, outputs={k: v for k, v in pool.outputs.items() if k != "allocatable"})
    assert verdict.fits_real_node(verdict.Case(stacks["prod"], bare, BY_NAME["notebook"])) == [
        "notebook on prod/inference: real node: the stack output gpuNodeGroups.inference.allocatable is missing: "
        "nothing says what a node offers"
    ]
    node = {"cpu": "3920m", "memory": "6Gi", "ephemeral-storage": "80Gi", "pods": "58", "nvidia.com/gpu": "1"}
    smaller = dataclasses.replace(pool, outputs={**pool.outputs, "allocatable": node})
    # the node's DaemonSet pods (Helm releases' and add-ons') take their memory requests first
    taken = daemon_overhead(stacks["prod"].daemon_specs, verdict.real_node(pool, {}))
    assert 0 < taken["memory"] < Decimal(2**30)
    assert verdict.fits_real_node(verdict.Case(stacks["prod"], smaller, BY_NAME["notebook"])) == [
        "notebook on prod/inference: real node: pod notebook does not fit: Insufficient memory: the pod requests 8Gi, "
        f"the node has {show('memory', Decimal(6 * 2**30) - taken['memory'])}"
    ]


# ---- the corpus itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_corpus_file_is_valid_for_the_cluster_version_and_pins_its_images(workload: Workload) -> None:
    assert workload.path.read_text().startswith(f"{MARKER}{workload.name}\n")
    manifests = workload.manifests()
    for m in manifests:
        kubernetes_validate.validate(m, "1.35.0", strict=True)
    workload_pods = pods(manifests)
    assert workload_pods
    for p in workload_pods:
        for c in p.spec["containers"]:
            assert re.fullmatch(r"[^:@]+(:[^:]+)", c["image"]) and not c["image"].endswith(":latest"), c["image"]
            assert "nvidia.com/gpu" in c["resources"]["limits"], c["name"]
    for service in (m for m in manifests if m["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= p.metadata["labels"].items() for p in workload_pods), service["metadata"]["name"]


def readme_problems(markdown: str) -> list[str]:
    """What is wrong with the workload examples of a README: a marked block must be the corpus file of
    its name, byte for byte, and the single-GPU, DDP and EFA examples must be there."""
    problems, shown = [], set()
    for name, block in marked_blocks(markdown):
        if name not in BY_NAME:
            problems.append(f"README shows workload {name!r}, which is not in the corpus")
        elif block != BY_NAME[name].path.read_text():
            problems.append(f"README's {name!r} differs from tests/workloads/corpus/{name}.yaml")
        shown.add(name)
    if missing := [n for n in README_REQUIRED if n not in shown]:
        problems.append(f"README.md and docs/workloads.md show no `{MARKER}<name>` block for {missing}")
    return problems


def test_every_workload_example_in_the_docs_is_a_corpus_file() -> None:
    """README.md and docs/workloads.md (which it links) show workloads in fenced YAML blocks whose
    first line is ``# workload: <name>``."""
    problems = readme_problems("\n".join((ROOT / f).read_text() for f in ("README.md", "docs/workloads.md")))
    assert not problems, "\n".join(problems)


def test_the_readme_check_sees_drift() -> None:
    fence = "```"
    blocks = [f"{fence}yaml\n{BY_NAME[n].path.read_text()}{fence}\n" for n in README_REQUIRED]
    assert readme_problems("Intro\n\n" + "\ntext\n".join(blocks)) == []
    drifted = blocks[0].replace("memory: 12Gi", "memory: 16Gi")
    assert readme_problems("\n".join([drifted, *blocks[1:]])) == [
        "README's 'single-gpu' differs from tests/workloads/corpus/single-gpu.yaml"
    ]
    unknown = f"{fence}yaml\n{MARKER}mystery\nkind: Pod\n{fence}\n"
    assert readme_problems(unknown) == [
        "README shows workload 'mystery', which is not in the corpus",
        "README.md and docs/workloads.md show no `# workload: <name>` block for ['single-gpu', 'ddp', 'efa']",
    ]


# ---- the EKS add-ons' DaemonSets (tests/data/eks_addon_daemonsets.json) ------------------------------


def test_every_addon_daemonset_carries_its_source() -> None:
    """Each DaemonSet entry names an upstream file at a commit; an unknown add-on says what was searched."""
    for name, entry in addon_daemonsets().items():
        if entry.get("unknown"):
            assert entry["searched"] and not entry.get("daemonSets"), name
            continue
        assert entry.get("daemonSets") or entry.get("note"), name
        for ds in entry.get("daemonSets", []):
            assert ds["name"] and ds["podSpec"]["containers"], (name, ds["name"])
            pinned = [s for s in ds["sources"] if re.fullmatch(r"[0-9a-f]{40}", s["commit"])]
            assert pinned and all(s["repo"] and s["path"] and s["what"] for s in pinned), (name, ds["name"])


def test_every_addon_a_run_installs_is_described(stacks: dict[str, Stack]) -> None:
    """The runs install vpc-cni and kube-proxy (through pulumi-eks) and their Addon resources; each has an
    entry, none unknown, so the daemon overhead misses none of their DaemonSets."""
    entries = addon_daemonsets()
    for label, stack in stacks.items():
        installed = set(stack.addons)
        assert {"vpc-cni", "kube-proxy", "coredns"} <= installed, label
        assert installed <= set(entries), (label, installed - set(entries))
        assert not [n for n in installed if entries[n].get("unknown")], label


def test_a_gpu_node_runs_the_addon_daemonsets_that_tolerate_its_taint(stacks: dict[str, Stack]) -> None:
    """On dev's tainted g6.xlarge template node: kube-proxy (``operator: Exists``) lands; the node monitoring
    agent's dcgm-server at its chart's defaults (no toleration) does not, with the values the program sends
    it does; the EBS CSI node at its chart's tolerations (NoExecute only) does not, with tolerateAllTaints it
    does."""
    pool = stacks["dev"].pools["inference"]
    node = template_node(pool.instance, pool.asg_tags, pool.region, pool.outputs["availabilityZones"][0])
    assert node.taints == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    untolerated = ["untolerated taint nvidia.com/gpu=true:NoSchedule"]
    (proxy,) = addon_daemon_specs({"kube-proxy": {}})
    assert proxy["tolerations"] == [{"operator": "Exists"}] and unfit(proxy, {}, node) == []
    _, dcgm = addon_daemon_specs({"eks-node-monitoring-agent": {}})
    assert unfit(dcgm, {}, node) == untolerated
    sent = stacks["dev"].addons["eks-node-monitoring-agent"]
    _, dcgm = addon_daemon_specs({"eks-node-monitoring-agent": sent})
    assert unfit(dcgm, {}, node) == []
    (ebs,) = addon_daemon_specs({"aws-ebs-csi-driver": {}})
    assert unfit(ebs, {}, node) == untolerated
    (ebs,) = addon_daemon_specs({"aws-ebs-csi-driver": stacks["dev"].addons["aws-ebs-csi-driver"]})
    assert unfit(ebs, {}, node) == []


def test_a_pod_filling_the_bare_template_node_no_longer_fits_after_the_daemons(stacks: dict[str, Stack]) -> None:
    """A pod asking for all the CPU of dev's g6.xlarge template node (its ASG's ``resources/cpu`` tag) fits
    the bare template node, but not the node with the add-ons' DaemonSet pods on it: the check bites."""
    stack = stacks["dev"]
    pool = stack.pools["inference"]
    assert pool.instance["InstanceType"] == "g6.xlarge"
    spec: JsonDict = {"tolerations": pool.outputs["tolerations"], "nodeSelector": pool.outputs["nodeSelector"]}
    bare = template_node(pool.instance, pool.asg_tags, pool.region, pool.outputs["availabilityZones"][0])
    requests = {"cpu": bare.allocatable["cpu"], "nvidia.com/gpu": Decimal(1)}
    assert unfit(spec, requests, bare) == []
    zone = pool.outputs["availabilityZones"][0]
    node = autoscaler.template_node_info(pool.instance, pool.asg_tags, pool.region, zone, stack.addon_daemon_specs)
    # the add-ons' 190m: aws-node 25m + 25m (its init container's 25m runs before them), kube-proxy 100m,
    # ebs-csi-node 3 x 10m, eks-node-monitoring-agent 10m, the rest none
    left = show("cpu", bare.allocatable["cpu"] - Decimal("0.190"))
    assert unfit(spec, requests, node) == [
        f"Insufficient cpu: the pod requests {show('cpu', bare.allocatable['cpu'])}, the node has {left}"
    ]
