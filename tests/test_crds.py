"""Karpenter 1.14.1 offline, the ground issue 24 stands on: the CRD validator (``tests/crds.py``) accepts the
design note's EC2NodeClass and NodePool (``docs/design-karpenter.md`` §3), rejects each broken variant of
them for the right reason (schema or CEL), lets through what the CRD does not check (the program's config
checks must), and the ``karpenter`` chart renders the objects the note lists with the note's values."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from eks_gpu.config import POOL_LABEL
from helm_python.errors import HelmRenderError

from tests.charts import render_chart
from tests.crds import check, crd_schemas, validate

SAMPLES = """
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: inference}
spec:
  amiSelectorTerms: [{alias: al2023@v20251120}]
  role: eks-gpu-dev-karpenter-node
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: eks-gpu-dev}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: eks-gpu-dev}}]
  metadataOptions: {httpEndpoint: enabled, httpProtocolIPv6: disabled, httpPutResponseHopLimit: 1, httpTokens: required}
  blockDeviceMappings:
    - {deviceName: /dev/xvda, rootVolume: true, ebs: {volumeSize: 100Gi, volumeType: gp3, iops: 3000, throughput: 125,
       encrypted: true, deleteOnTermination: true}}
  capacityReservationSelectorTerms: [{id: cr-0123456789abcdef0}]
  tags: {team: ml-platform, eks-gpu/node-group: inference}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: inference}
spec:
  weight: 10
  limits: {nvidia.com/gpu: "2", cpu: "8"}
  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 10m, budgets: [{nodes: "1"}]}
  template:
    metadata: {labels: {eks-gpu/node-group: inference, workload: inference}}
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: inference}
      expireAfter: 720h
      terminationGracePeriod: 24h
      taints: [{key: nvidia.com/gpu, value: "true", effect: NoSchedule}]
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [g6, g6e]}
        - {key: karpenter.k8s.aws/instance-gpu-count, operator: Gte, values: ["1"]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [reserved, spot, on-demand]}
        - {key: kubernetes.io/arch, operator: In, values: [amd64]}
"""
"""The design note's sample pool ("inference", dev stack), as issue 24 would have the program build it."""
NODECLASS, NODEPOOL = (doc for doc in yaml.safe_load_all(SAMPLES) if doc)
SAMPLE = {"EC2NodeClass": NODECLASS, "NodePool": NODEPOOL}

Path = tuple[str | int, ...]
Edit = Callable[[dict[str, Any]], None]


def put(path: Path, value: Any) -> Edit:
    """Set ``path`` (keys and list indexes from the object's root) to ``value``."""

    def edit(obj: dict[str, Any]) -> None:
        *parents, last = path
        for part in parents:
            obj = obj[part]  # type: ignore[index]
        obj[last] = value  # type: ignore[index]

    return edit


def drop(path: Path) -> Edit:
    """Remove ``path``."""

    def edit(obj: dict[str, Any]) -> None:
        *parents, last = path
        for part in parents:
            obj = obj[part]  # type: ignore[index]
        del obj[last]  # type: ignore[arg-type]

    return edit


def edited(kind: str, *edits: Edit) -> dict[str, Any]:
    """A copy of the sample of ``kind`` with ``edits`` applied."""
    obj = copy.deepcopy(SAMPLE[kind])
    for edit in edits:
        edit(obj)
    return obj


NC, NP = "EC2NodeClass", "NodePool"
EBS = ("spec", "blockDeviceMappings", 0, "ebs")
POD = ("spec", "template", "spec")
REQUIREMENTS = (*POD, "requirements")
DISRUPTION = ("spec", "disruption")
LABELS = ("spec", "template", "metadata", "labels")
GTE = next(i for i, r in enumerate(NODEPOOL["spec"]["template"]["spec"]["requirements"]) if r["operator"] == "Gte")
NEGATIVES: list[tuple[str, str, Edit, str, str]] = [
    # (id, kind, edit, layer that rejects it, fragment of its message)
    ("role+instanceProfile", NC, put(("spec", "instanceProfile"), "x"), "CEL", "exactly one of"),
    ("neither-role-nor-profile", NC, drop(("spec", "role")), "CEL", "exactly one of"),
    ("alias-family-al2024", NC, put(("spec", "amiSelectorTerms"), [{"alias": "al2024@v1"}]), "CEL", "not supported"),
    ("alias+amiFamily-bottlerocket", NC, put(("spec", "amiFamily"), "Bottlerocket"), "CEL", "amiFamily must be"),
    ("alias+id", NC, put(("spec", "amiSelectorTerms", 0, "id"), "ami-0123456789abcdef0"), "CEL", "mutually exclusive"),
    ("hop-limit-0", NC, put(("spec", "metadataOptions", "httpPutResponseHopLimit"), 0), "schema", "minimum of 1"),
    ("volume-100GB", NC, put((*EBS, "volumeSize"), "100GB"), "schema", "does not match"),
    ("tag-kubernetes.io/cluster", NC, put(("spec", "tags", "kubernetes.io/cluster/x"), "owned"), "CEL", "restricted"),
    ("reservation-id+tags", NC, put(("spec", "capacityReservationSelectorTerms", 0, "tags"), {"a": "b"}), "CEL", "id"),
    ("reservation-cr-XYZ", NC, put(("spec", "capacityReservationSelectorTerms", 0, "id"), "cr-XYZ"), "schema", "match"),
    ("no-subnet-terms", NC, put(("spec", "subnetSelectorTerms"), []), "CEL", "cannot be empty"),
    ("policy-Never", NP, put(("spec", "disruption", "consolidationPolicy"), "Never"), "schema", "is not one of"),
    ("consolidateAfter-10-minutes", NP, put((*DISRUPTION, "consolidateAfter"), "10 minutes"), "schema", "match"),
    ("budget-1O", NP, put(("spec", "disruption", "budgets", 0, "nodes"), "1O"), "schema", "does not match"),
    ("schedule-no-duration", NP, put(("spec", "disruption", "budgets", 0, "schedule"), "@daily"), "CEL", "duration"),
    ("weight-0", NP, put(("spec", "weight"), 0), "schema", "minimum of 1"),
    ("Gte-two-values", NP, put((*REQUIREMENTS, GTE, "values"), ["1", "2"]), "CEL", "single positive integer"),
    ("key-karpenter.sh/nodepool", NP, put((*REQUIREMENTS, 0, "key"), "karpenter.sh/nodepool"), "CEL", "restricted"),
    ("key-instance-gpus", NP, put((*REQUIREMENTS, 0, "key"), "karpenter.k8s.aws/instance-gpus"), "CEL", "restricted"),
    ("label-karpenter.sh/foo", NP, put((*LABELS, "karpenter.sh/foo"), "x"), "CEL", "domain"),
    ("effect-NO_SCHEDULE", NP, put((*POD, "taints", 0, "effect"), "NO_SCHEDULE"), "schema", "not one of"),
    ("limit-2-GPUs", NP, put(("spec", "limits", "nvidia.com/gpu"), "2 GPUs"), "schema", "does not match"),
    ("expireAfter-30d", NP, put((*POD, "expireAfter"), "30d"), "schema", "does not match"),
    ("In-no-values", NP, put((*REQUIREMENTS, 0, "values"), []), "CEL", "must have a value"),
]  # fmt: skip
"""The note's 24 variants, each one small edit away from the valid sample."""


@pytest.fixture(scope="module", autouse=True)
def schemas() -> None:
    """Render the CRD chart once for the module (skips, or fails under CI, without the chart)."""
    crd_schemas()


@pytest.mark.parametrize("kind", [NC, NP])
def test_the_note_samples_validate_clean_with_every_cel_rule_evaluated(kind: str) -> None:
    report = check(SAMPLE[kind])
    assert report.problems == []
    assert report.passed, "no CEL rule reached: the walk did not descend into the object"
    assert all("oldSelf" in rule for _, rule in report.skipped)
    assert all("oldSelf" not in rule for _, rule in report.passed)


def test_transition_rules_are_skipped_not_passed() -> None:
    """A transition rule (``oldSelf``) needs the stored object: it is listed as skipped (the NodePool has them)."""
    skipped = check(NODEPOOL).skipped
    assert skipped and {rule for _, rule in skipped}.isdisjoint(rule for _, rule in check(NODEPOOL).passed)


def test_defaults_are_applied_before_the_rules_as_the_api_server_does() -> None:
    """Without ``budgets`` the CRD's default (``nodes: 10%``) is put in and the rule on the list runs on it;
    the object given is not changed."""
    nodepool = edited(NP, drop(("spec", "disruption", "budgets")))
    before = copy.deepcopy(nodepool)
    report = check(nodepool)
    assert report.problems == [] and nodepool == before
    assert "spec.disruption.budgets" in {path for path, _ in report.passed}


@pytest.mark.parametrize(
    ("kind", "edit", "layer", "fragment"), [n[1:] for n in NEGATIVES], ids=[n[0] for n in NEGATIVES]
)
def test_each_broken_variant_is_rejected_for_its_reason(kind: str, edit: Edit, layer: str, fragment: str) -> None:
    problems = validate(edited(kind, edit))
    assert problems, "accepted"
    assert {p.layer for p in problems} == {layer}, [str(p) for p in problems]
    assert any(fragment in p.message for p in problems), [str(p) for p in problems]
    assert not any("not evaluated" in p.message for p in problems), [str(p) for p in problems]


def test_paths_name_the_field_and_map_keys_in_brackets() -> None:
    (problem,) = validate(edited(NP, put(("spec", "limits", "nvidia.com/gpu"), "2 GPUs")))
    assert problem.path == "spec.limits[nvidia.com/gpu]"
    (problem,) = validate(edited(NC, put((*EBS, "volumeSize"), "100GB")))
    assert problem.path == "spec.blockDeviceMappings[0].ebs.volumeSize"


def test_list_sets_and_maps_reject_duplicates() -> None:
    """``budgets[].reasons`` is a ``set``; ``status.conditions`` a ``map`` keyed by ``type``."""
    reasons = put((*DISRUPTION, "budgets", 0, "reasons"), ["Empty", "Drifted", "Empty"])
    assert [p.path for p in validate(edited(NP, reasons))] == ["spec.disruption.budgets[0].reasons"]
    assert validate(edited(NP, put((*DISRUPTION, "budgets", 0, "reasons"), ["Empty", "Drifted"]))) == []
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    (problem,) = validate(edited(NP, put(("status",), {"conditions": [ready, ready]})))
    assert (problem.path, problem.layer) == ("status.conditions", "schema")


def test_a_rule_that_cannot_be_evaluated_is_a_problem_not_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the Kubernetes ``find`` function the rules calling it fail to evaluate, and say so."""
    from tests import crds

    monkeypatch.setattr(crds, "KUBERNETES_FUNCTIONS", {"split": crds.KUBERNETES_FUNCTIONS["split"]})
    monkeypatch.setattr(crds, "_program", crds._program.__wrapped__)
    problems = validate(NODEPOOL)
    assert problems and all(p.layer == "CEL" and "not evaluated" in p.message for p in problems)


@pytest.mark.parametrize(
    ("kind", "edit"),
    [
        (NP, put((*REQUIREMENTS, 2, "values"), ["Reserved", "spott"])),
        (NC, put(("spec", "kubelet"), {"maxPodz": 110})),
        (NP, put((*POD, "nodeClassRef", "name"), "no-such-nodeclass")),
    ],
    ids=["capacity-type-Reserved-spott", "kubelet-typo", "nodeClassRef-to-nothing"],
)
def test_what_the_crd_does_not_catch_passes_so_the_program_must(kind: str, edit: Edit) -> None:
    """Requirement values (the ``pattern`` sits on the array, which applies to strings only), ``kubelet``
    (free-form in 1.14.1, checked by the controller) and references: the program's config checks must reject
    these, each with its ``eks-gpu:`` key; the API server will not."""
    assert validate(edited(kind, edit)) == []


# --- the controller chart -----------------------------------------------------------------------------------

CHART = "oci://public.ecr.aws/karpenter/karpenter"
VERSION = "1.14.1"
VALUES = {
    "settings": {"clusterName": "eks-gpu-dev", "interruptionQueue": "eks-gpu-dev"},
    "serviceAccount": {"name": "karpenter"},
    "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
    "nodeSelector": {"kubernetes.io/os": "linux", POOL_LABEL: "system"},
    "replicas": 2,
}
"""The note's values (§1): cluster, interruption queue, service account, docs' resources, system group."""


@pytest.fixture(scope="module")
def controller() -> list[dict[str, Any]]:
    return render_chart(CHART, VERSION, VALUES, name="karpenter", namespace="kube-system")


def test_the_controller_chart_renders_the_thirteen_objects_the_note_lists(controller: list[dict[str, Any]]) -> None:
    ns = "kube-system"
    assert sorted((o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in controller) == sorted(
        [
            *(("ClusterRole", n, None) for n in ("karpenter-admin", "karpenter-core", "karpenter")),
            *(("ClusterRoleBinding", n, None) for n in ("karpenter-core", "karpenter")),
            *((k, "karpenter", ns) for k in ("Deployment", "PodDisruptionBudget", "Service", "ServiceAccount")),
            *((k, n, ns) for k in ("Role", "RoleBinding") for n in ("karpenter", "karpenter-dns")),
        ]
    )


def test_the_controller_runs_with_the_values_given(controller: list[dict[str, Any]]) -> None:
    (deployment,) = (o for o in controller if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert deployment["spec"]["replicas"] == VALUES["replicas"]
    assert pod["nodeSelector"] == VALUES["nodeSelector"]
    assert pod["serviceAccountName"] == VALUES["serviceAccount"]["name"]  # type: ignore[index]
    assert container["resources"] == VALUES["controller"]["resources"]  # type: ignore[index]
    assert env["CLUSTER_NAME"] == "eks-gpu-dev" and env["INTERRUPTION_QUEUE"] == "eks-gpu-dev"


def test_the_controller_chart_ships_no_crds_in_its_templates(controller: list[dict[str, Any]]) -> None:
    """The CRDs come from the ``karpenter-crd`` chart (its own release), not from this one's templates."""
    assert not any(o["kind"] == "CustomResourceDefinition" for o in controller)


def test_the_controller_chart_refuses_to_render_without_a_cluster_name() -> None:
    values = {k: v for k, v in VALUES.items() if k != "settings"}
    with pytest.raises(HelmRenderError, match=r"Chart cannot be installed without a valid settings\.clusterName!"):
        render_chart(CHART, VERSION, values, name="karpenter", namespace="kube-system")
