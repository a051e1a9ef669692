"""The policy pack (policy/): every policy fires on a violating resource and stays quiet on a good one.

Good resources come from a real offline run of the program; a violating one is a good one with one
input changed, so the checks are tested on the shapes the program really sends. Each case is judged twice:
on plain inputs, as the offline plan passes them, and through CrossGuard's read-only proxies, as
``pulumi preview --policy-pack policy`` passes them.
"""

from __future__ import annotations

import copy
import inspect
import json
import keyword
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pulumi_aws
import pytest
from eks_gpu.config import GPU_PRESENT_LABEL
from eks_gpu.offline import ProgramRun, RegisteredResource
from eks_gpu.policy import validators
from eks_gpu.policy.budget import STACK_POLICIES
from eks_gpu.policy.validators import POLICIES, Violation, evaluate
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from tests.helpers import (
    CLIENT_CIDR,
    CLUSTER,
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    ROOT,
    config,
    problems_of,
    program_scope,
    run,
    run_stack_file,
)

JOB = "kubernetes:batch/v1:Job"
"""The smoke test is a Job; its pod spec is at spec.template.spec."""
POD_SPEC = ("spec", "template", "spec")
GPU_LIMIT = (*POD_SPEC, "containers", 0, "resources", "limits", "nvidia.com/gpu")
CONTAINER_CONTEXT = (*POD_SPEC, "containers", 0, "securityContext")
POD_CONTEXT = (*POD_SPEC, "securityContext")
LEVELS = {
    "gpu-node-group-nvidia-ami-and-taint": "mandatory",
    "launch-template-imdsv2-encrypted-ebs": "mandatory",
    "eks-secrets-encrypted": "mandatory",
    "eks-audit-log-enabled": "mandatory",
    "eks-public-endpoint-restricted-prod": "mandatory",
    "eks-public-endpoint-restricted": "advisory",
    "required-tags": "advisory",
    "iam-no-wildcard-actions": "mandatory",
    "gpu-pod-limits-and-hardening": "mandatory",
    "stack-budget": "mandatory",
    "stack-budget-headroom": "advisory",
}
"""Each policy of the pack and its enforcement level, in the order docs/review.md lists them ("Policy pack")."""
REMOVE = object()
"""An edit's value that deletes the key instead of setting it (a callable value computes the new value from the old)."""

Path = tuple[str | int, ...]
Edit = tuple[Path, Any]


@pytest.fixture(scope=program_scope)
def dev() -> ProgramRun:
    return run_stack_file("dev")


def edited(props: Mapping[str, Any], *edits: Edit) -> dict[str, Any]:
    """A deep copy of ``props`` with each ``(path, value)`` applied."""
    result = copy.deepcopy(dict(props))
    for path, value in edits:
        *parents, last = path
        target: Any = result
        for key in parents:
            target = target[key]
        if value is REMOVE:
            del target[last]
        else:
            target[last] = value(target[last]) if callable(value) else value
    return result


def judged(resource_type: str, props: Mapping[str, Any], urn: str, proxied: bool) -> list[Violation]:
    """``evaluate`` on ``props``, plain or behind CrossGuard's unknown-checking proxies."""
    return evaluate(resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))) if proxied else props, urn)


def iam_document(raw: str, **statement: Any) -> str:
    """The JSON policy document ``raw`` with its first statement's keys replaced by ``statement``."""
    document = json.loads(raw)
    document["Statement"][0] = {**document["Statement"][0], **statement}
    return json.dumps(document)


def eks_cluster_child(component: RegisteredResource) -> tuple[dict[str, Any], str]:
    """Inputs and URN of the ``aws.eks.Cluster`` pulumi-eks 4.4 creates for the component (``createCore`` in
    ``nodejs/eks/cluster/cluster.ts``), reduced to what the policies read. A real preview judges it; the
    offline engine runs the component as one mock and records no children."""
    c = component.inputs
    vpc_config = {
        "subnetIds": [*c["publicSubnetIds"], *c["privateSubnetIds"]],
        "endpointPrivateAccess": c["endpointPrivateAccess"],
        "endpointPublicAccess": c["endpointPublicAccess"],
        **({"publicAccessCidrs": c["publicAccessCidrs"]} if "publicAccessCidrs" in c else {}),
    }
    props = {
        "name": c["name"],
        "version": c["version"],
        "vpcConfig": vpc_config,
        "enabledClusterLogTypes": c["enabledClusterLogTypes"],
        "encryptionConfig": {"provider": {"keyArn": c["encryptionConfigKeyArn"]}, "resources": ["secrets"]},
        "tags": {"Name": f"{component.name}-eksCluster", **c["tags"]},
    }
    parents, _ = component.urn.rsplit("::", 1)
    return props, f"{parents}${validators.EKS_CLUSTER}::{component.name}-eksCluster"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_example_stacks_break_no_policy(stack: str) -> None:
    result = run_stack_file(stack)
    assert [v for r in result.resources for v in evaluate(r.type, r.inputs, r.urn)] == []


Selector = Callable[[ProgramRun], RegisteredResource]


def one(type_token: str, name_suffix: str | None = None) -> Selector:
    return lambda result: result.one(type_token, name_suffix)


def kms_policy(result: ProgramRun) -> RegisteredResource:
    return result.one("aws:iam/rolePolicy:RolePolicy", "-secrets-kms")


CASES: list[tuple[str, Selector, tuple[Edit, ...]]] = [
    # (policy expected to fire, the good resource, the edits that break it)
    (
        "gpu-node-group-nvidia-ami-and-taint",
        one(NODE_GROUP, "-inference-ng"),
        ((("amiType",), "AL2023_x86_64_STANDARD"),),
    ),
    ("gpu-node-group-nvidia-ami-and-taint", one(NODE_GROUP, "-inference-ng"), ((("taints",), []),)),
    (
        "gpu-node-group-nvidia-ami-and-taint",
        one(NODE_GROUP, "-inference-ng"),
        ((("taints", 0, "effect"), "PREFER_NO_SCHEDULE"),),
    ),
    ("gpu-node-group-nvidia-ami-and-taint", one(NODE_GROUP, "-inference-ng"), ((("taints", 0, "key"), "gpu"),)),
    (
        "launch-template-imdsv2-encrypted-ebs",
        one(LAUNCH_TEMPLATE, "-inference-lt"),
        ((("metadataOptions", "httpTokens"), "optional"),),
    ),
    ("launch-template-imdsv2-encrypted-ebs", one(LAUNCH_TEMPLATE, "-inference-lt"), ((("metadataOptions",), REMOVE),)),
    (
        "launch-template-imdsv2-encrypted-ebs",
        one(LAUNCH_TEMPLATE, "-system-lt"),
        ((("blockDeviceMappings", 0, "ebs", "encrypted"), "false"),),
    ),
    ("launch-template-imdsv2-encrypted-ebs", one(LAUNCH_TEMPLATE, "-system-lt"), ((("blockDeviceMappings",), REMOVE),)),
    ("eks-secrets-encrypted", one(CLUSTER), ((("encryptionConfigKeyArn",), REMOVE),)),
    ("eks-audit-log-enabled", one(CLUSTER), ((("enabledClusterLogTypes",), ["api", "authenticator"]),)),
    ("eks-audit-log-enabled", one(CLUSTER), ((("enabledClusterLogTypes",), REMOVE),)),
    # the dev stack: advisory (prod* stacks are the test below)
    (
        "eks-public-endpoint-restricted",
        one(CLUSTER),
        ((("endpointPublicAccess",), True), (("publicAccessCidrs",), [CLIENT_CIDR, "0.0.0.0/0"])),
    ),
    ("eks-public-endpoint-restricted", one(CLUSTER), ((("publicAccessCidrs",), REMOVE),)),
    ("eks-public-endpoint-restricted", one(CLUSTER), ((("publicAccessCidrs",), ["10.0.0.0/8", "0.0.0.0/0"]),)),
    ("required-tags", one("aws:ec2/vpc:Vpc"), ((("tags", "Environment"), REMOVE),)),
    ("required-tags", one(NODE_GROUP, "-system-ng"), ((("tags", "Environment"), ""),)),
    ("required-tags", one("aws:kms/key:Key"), ((("tags",), REMOVE),)),
    ("iam-no-wildcard-actions", kms_policy, ((("policy",), lambda raw: iam_document(raw, Action="*")),)),
    ("gpu-pod-limits-and-hardening", one(JOB), ((GPU_LIMIT, REMOVE),)),
    (
        "gpu-pod-limits-and-hardening",
        one(JOB),
        (((*POD_CONTEXT, "runAsNonRoot"), REMOVE), ((*CONTAINER_CONTEXT, "runAsNonRoot"), REMOVE)),
    ),
    ("gpu-pod-limits-and-hardening", one(JOB), (((*CONTAINER_CONTEXT, "runAsNonRoot"), False),)),
    ("gpu-pod-limits-and-hardening", one(JOB), (((*CONTAINER_CONTEXT, "allowPrivilegeEscalation"), True),)),
    ("gpu-pod-limits-and-hardening", one(JOB), (((*CONTAINER_CONTEXT, "capabilities", "drop"), ["NET_RAW"]),)),
    ("gpu-pod-limits-and-hardening", one(JOB), (((*POD_CONTEXT, "seccompProfile"), {"type": "Unconfined"}),)),
    ("gpu-pod-limits-and-hardening", one(JOB), (((*CONTAINER_CONTEXT, "readOnlyRootFilesystem"), REMOVE),)),
]


@pytest.mark.parametrize("proxied", [False, True], ids=["offline", "crossguard"])
@pytest.mark.parametrize(("policy", "select", "edits"), CASES)
def test_policy_fires_on_one_broken_property(
    dev: ProgramRun, policy: str, select: Selector, edits: tuple[Edit, ...], proxied: bool
) -> None:
    good = select(dev)
    bad = edited(good.inputs, *edits)
    assert judged(good.type, good.inputs, good.urn, proxied) == []
    violations = judged(good.type, bad, good.urn, proxied)
    assert {v.policy for v in violations} == {policy}
    assert all(v.level == LEVELS[policy] and v.urn == good.urn for v in violations)
    # whole sentences that say what is expected
    assert all(v.message[0].isupper() and v.message.endswith(".") and ";" in v.message for v in violations)


@pytest.mark.parametrize(
    ("statement", "fires"),
    [
        ({"Action": "*"}, True),
        ({"Action": ["kms:Decrypt", "*"]}, True),
        ({"NotAction": ["iam:*"], "Action": REMOVE}, True),
        ({"Action": "kms:*"}, False),  # a service's wildcard is not every action
        ({"Effect": "Deny", "Action": "*"}, False),  # a Deny takes rights away
    ],
)
def test_iam_documents_of_every_kind_are_judged(dev: ProgramRun, statement: dict[str, Any], fires: bool) -> None:
    inline, trust = kms_policy(dev), dev.one("aws:iam/role:Role", "-node-role")
    keep = {k: v for k, v in statement.items() if v is not REMOVE}

    def without_removed(raw: str) -> str:
        document = json.loads(iam_document(raw, **keep))
        for key in (k for k, v in statement.items() if v is REMOVE):
            del document["Statement"][0][key]
        return json.dumps(document)

    cases = [
        (inline.type, edited(inline.inputs, (("policy",), without_removed(inline.inputs["policy"])))),
        # a managed policy with the same document
        ("aws:iam/policy:Policy", {"policy": without_removed(inline.inputs["policy"]), "tags": trust.inputs["tags"]}),
        (trust.type, edited(trust.inputs, (("assumeRolePolicy",), without_removed(trust.inputs["assumeRolePolicy"])))),
        (
            trust.type,
            {**trust.inputs, "inlinePolicies": [{"name": "x", "policy": without_removed(inline.inputs["policy"])}]},
        ),
    ]
    for resource_type, props in cases:
        violations = evaluate(resource_type, props, inline.urn)
        assert [v.policy for v in violations] == (["iam-no-wildcard-actions"] if fires else []), resource_type


def test_an_iam_document_that_is_not_json_is_a_violation(dev: ProgramRun) -> None:
    inline = kms_policy(dev)
    (violation,) = evaluate(inline.type, {**inline.inputs, "policy": "{not json"}, inline.urn)
    assert violation.policy == "iam-no-wildcard-actions" and "not valid JSON" in violation.message


@pytest.mark.parametrize(
    ("stack", "policy", "level"),
    [
        ("dev", "eks-public-endpoint-restricted", "advisory"),
        ("prod", "eks-public-endpoint-restricted-prod", "mandatory"),
    ],
)
def test_an_endpoint_open_to_the_internet_is_mandatory_only_in_prod(stack: str, policy: str, level: str) -> None:
    # The program refuses 0.0.0.0/0; the policy stands in the way of any other program that sends it.
    assert (
        "admits every address"
        in problems_of(config(endpointPublicAccessCidrs=["0.0.0.0/0"]))["eks-gpu:endpointPublicAccessCidrs[0]"]
    )
    result = run(config(), stack=stack)
    opened = {
        r.urn: edited(r.inputs, (("publicAccessCidrs",), ["0.0.0.0/0"])) if r.type == CLUSTER else r.inputs
        for r in result.resources
    }
    violations = [v for r in result.resources for v in evaluate(r.type, opened[r.urn], r.urn)]
    assert [(v.policy, v.level, v.urn) for v in violations] == [(policy, level, result.one(CLUSTER).urn)]


@pytest.mark.parametrize(
    ("stack", "production"),
    [("prod", True), ("prod-eu", True), ("production", True), ("dev", False), ("staging", False), ("preprod", False)],
)
def test_production_is_a_stack_name_that_starts_with_prod(dev: ProgramRun, stack: str, production: bool) -> None:
    cluster = dev.one(CLUSTER)
    urn = cluster.urn.replace("urn:pulumi:dev::", f"urn:pulumi:{stack}::", 1)
    props = edited(cluster.inputs, (("publicAccessCidrs",), REMOVE))
    (violation,) = evaluate(cluster.type, props, urn)
    assert validators.stack_of(urn) == stack
    assert violation.level == ("mandatory" if production else "advisory")


def test_the_cluster_pulumi_eks_creates_is_judged_and_its_empty_component_is_not(dev: ProgramRun) -> None:
    component = dev.one(CLUSTER)
    props, urn = eks_cluster_child(component)
    assert evaluate(validators.EKS_CLUSTER, props, urn) == []
    # Under `pulumi preview` the component arrives with no inputs: the child above speaks for it.
    assert evaluate(CLUSTER, {}, component.urn) == []
    prod_urn = urn.replace("urn:pulumi:dev::", "urn:pulumi:prod::", 1)
    broken = {
        "eks-secrets-encrypted": edited(props, (("encryptionConfig",), REMOVE)),
        "eks-audit-log-enabled": edited(props, (("enabledClusterLogTypes",), ["api"])),
        "eks-public-endpoint-restricted-prod": edited(props, (("vpcConfig", "publicAccessCidrs"), REMOVE)),
    }
    for policy, bad in broken.items():
        assert [v.policy for v in evaluate(validators.EKS_CLUSTER, bad, prod_urn)] == [policy]


def test_an_unknown_key_arn_in_preview_stops_only_the_secrets_policy(dev: ProgramRun) -> None:
    # CrossGuard reports "can't run policy during preview" for the policy that raised; the others still judge.
    props, urn = eks_cluster_child(dev.one(CLUSTER))
    previewed = edited(props, (("encryptionConfig",), UNKNOWN_STRING_VALUE))
    for policy in POLICIES:
        if policy is validators.SECRETS_ENCRYPTED:
            with pytest.raises(UnknownValueError):
                policy.violations(validators.EKS_CLUSTER, unknown_checking_proxy(previewed), urn)
        else:
            assert policy.violations(validators.EKS_CLUSTER, unknown_checking_proxy(previewed), urn) == []


def test_required_tags_come_from_the_policy_config(dev: ProgramRun) -> None:
    vpc = dev.one("aws:ec2/vpc:Vpc")
    assert evaluate(vpc.type, vpc.inputs, vpc.urn, {"required-tags": {"requiredTags": ["Environment", "team"]}}) == []
    (violation,) = evaluate(vpc.type, vpc.inputs, vpc.urn, {"required-tags": {"requiredTags": ["CostCenter"]}})
    assert violation.policy == "required-tags" and "CostCenter" in violation.message
    assert validators.REQUIRED_TAGS.config() == {"requiredTags": ["Environment"]}  # docs/review.md's default


def _pulumi_aws_class(type_token: str) -> Any:
    _, module, name = type_token.split(":")
    module = module.split("/")[0]
    return getattr(getattr(pulumi_aws, f"{module}_" if keyword.iskeyword(module) else module), name)


def _taggable(type_token: str) -> bool:
    return "tags" in inspect.signature(_pulumi_aws_class(type_token)._internal_init).parameters


def test_taggable_types_are_those_pulumi_aws_tags(dev: ProgramRun) -> None:
    sent = {r.type for r in dev.resources if r.type.startswith("aws:")}
    assert {t for t in sent if _taggable(t)} == sent & validators.TAGGABLE_TYPES
    assert all(_taggable(t) for t in validators.TAGGABLE_TYPES)


def test_the_policies_speak_the_programs_language(dev: ProgramRun) -> None:
    # the label NVIDIA's GPU feature discovery sets, and the one the program puts on GPU nodes
    assert validators.GPU_PRESENT_LABEL == GPU_PRESENT_LABEL == "nvidia.com/gpu.present"
    # the taint the program's GPU node groups carry is one the policy counts as keeping other pods off
    (gpu_taint,) = dev.one(NODE_GROUP, "-inference-ng").inputs["taints"]
    assert (gpu_taint["key"], gpu_taint["effect"]) == ("nvidia.com/gpu", "NO_SCHEDULE")
    assert validators.GPU_RESOURCE == "nvidia.com/gpu"
    assert sorted(validators.REPELLING_TAINT_EFFECTS) == ["NO_EXECUTE", "NO_SCHEDULE"]
    assert [*(p.name for p in POLICIES), *(p.name for p in STACK_POLICIES)] == list(LEVELS)


def test_validators_import_nothing_of_the_policy_sdk() -> None:
    code = "import sys, eks_gpu.policy.validators; sys.exit('pulumi_policy' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


ASSEMBLY = """
import json, runpy, sys
import pulumi_policy
from pulumi_policy.proxy import unknown_checking_proxy

packs = []
pulumi_policy.PolicyPack = lambda **kwargs: packs.append(kwargs)  # instead of serving over gRPC forever
runpy.run_path(sys.argv[1], run_name="__main__")  # as `python -m pulumi.policy` runs the pack folder
(pack,) = packs
given = json.load(sys.stdin)
samples, stack = given["samples"], given["stack"]
policies = []
for policy in pack["policies"]:
    reported = []
    if isinstance(policy, pulumi_policy.StackValidationPolicy):
        resources = [
            pulumi_policy.PolicyResource(
                r["type"], unknown_checking_proxy(r["props"]), r["urn"], "", None, None, None, [], {}
            )
            for r in stack
        ]
        args = pulumi_policy.StackValidationArgs(resources)
        policy.validate(args, lambda message, urn: reported.append([urn, message]))
        policies.append([policy.name, policy.description, policy.enforcement_level.value, None, reported])
        continue
    for s in samples:
        args = pulumi_policy.ResourceValidationArgs(
            s["type"], unknown_checking_proxy(s["props"]), s["urn"], "", None, None, s["config"].get(policy.name)
        )
        policy.validate(args, lambda message, urn, s=s: reported.append([s["urn"], message]))
    schema = policy.config_schema.properties if policy.config_schema else None
    policies.append([policy.name, policy.description, policy.enforcement_level.value, schema, reported])
print(json.dumps({"name": pack["name"], "policies": policies}))
"""


def test_the_pack_assembles_every_policy_without_serving(dev: ProgramRun) -> None:
    samples: list[dict[str, Any]] = []
    for _, select, edits in CASES:
        good = select(dev)
        samples.append({"type": good.type, "props": edited(good.inputs, *edits), "urn": good.urn, "config": {}})
    vpc, cluster = dev.one("aws:ec2/vpc:Vpc"), dev.one(CLUSTER)
    tags_config = {"required-tags": {"requiredTags": ["Environment", "CostCenter"]}}
    samples.append({"type": vpc.type, "props": vpc.inputs, "urn": vpc.urn, "config": tags_config})
    open_in_prod = edited(cluster.inputs, (("publicAccessCidrs",), REMOVE))
    prod_urn = cluster.urn.replace("urn:pulumi:dev::", "urn:pulumi:prod::", 1)
    samples.append({"type": cluster.type, "props": open_in_prod, "urn": prod_urn, "config": {}})
    # the whole stack, with a budget its max cost breaks, for the stack policies
    over = run(config() | {"eks-gpu:budget": {"maxUsdPerHour": 0.05}})
    stack = [{"type": r.type, "props": r.inputs, "urn": r.urn} for r in over.resources]
    # A subprocess, so that a pack that does start serving fails the test on the timeout instead of hanging it.
    child = subprocess.run(
        [sys.executable, "-c", ASSEMBLY, str(ROOT / "policy")],
        cwd=ROOT,
        input=json.dumps({"samples": samples, "stack": stack}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pack = json.loads(child.stdout)
    assert pack["name"] == "eks-gpu"
    expected = [
        [
            p.name,
            p.description,
            LEVELS[p.name],
            dict(p.config_schema) or None,
            [
                [s["urn"], m]
                for s in samples
                for m in p.violations(s["type"], s["props"], s["urn"], s["config"].get(p.name))
            ],
        ]
        for p in POLICIES
    ]
    triples = [(r.type, r.inputs, r.urn) for r in over.resources]
    expected += [
        [p.name, p.description, LEVELS[p.name], None, [[u, m] for m, u in p.check(triples, date.today())]]
        for p in STACK_POLICIES
    ]
    assert pack["policies"] == expected
    assert expected[-2][-1] and expected[-2][0] == "stack-budget"  # the budget policy reported through CrossGuard
    assert all(reported for *_, reported in expected)  # every policy reported something through CrossGuard
