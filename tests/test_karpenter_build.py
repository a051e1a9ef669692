"""Issue 24, the build layer: with ``provisioner: karpenter`` the program builds Karpenter (its roles, access
entry, interruption queue and rules, both charts) and per GPU pool an EC2NodeClass and a NodePool instead of
a managed node group; without it, none of this exists.

Sources: docs/design-karpenter.md; aws/karpenter-provider-aws ``website/content/en/v1.14/getting-started/
getting-started-with-karpenter/cloudformation.yaml`` (the controller policies, queue, policy and rules); the
pinned ``karpenter-crd`` chart's CRDs (tests/crds.py) and the ``karpenter`` chart (tests/charts.py).
"""

from __future__ import annotations

import base64
import email
import json
from decimal import Decimal
from typing import Any

import pytest
import yaml
from eks_gpu.build.karpenter import BOTTLEROCKET_OS_VOLUME_GIB
from eks_gpu.config import POOL_LABEL
from eks_gpu.offline import AwsAccount, ProgramRun, RegisteredResource, load_stack_file, offline_account, run_program
from eks_gpu.offline.deployer import with_deployer

from tests import aws_data, crds
from tests.charts import chart_dir, render
from tests.helpers import (
    CLUSTER,
    DEV_CLUSTER_ARN,
    NODE_GROUP,
    REGION,
    ROOT,
    config,
    every_feature,
    gpu_pool,
    iam_document,
    integral,
    launch_template,
    pod_identity_trust,
    program_scope,
    run,
)
from tests.test_charts import pod_spec
from tests.workloads.scheduling import Node, unfit

NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
COMPONENT = "eks-gpu:karpenter:Karpenter"
CLUSTER_NAME = "eks-gpu-dev"
NODEADM = "application/node.eks.aws"
"""The MIME type of a nodeadm NodeConfig part."""
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}

KARPENTER_STACK = config(
    {
        "inference": gpu_pool(
            "g6.xlarge",
            "g6.2xlarge",
            amiReleaseVersion="1.35.2-20260304",
            taints=[GPU_TAINT],
            karpenter={"capacityTypes": ["spot", "on-demand"]},
        ),
        "batch": gpu_pool(
            "g5.xlarge",
            amiType="BOTTLEROCKET_x86_64_NVIDIA",
            amiReleaseVersion="1.58.0-c5c37032",
            diskSizeGiB=200,
            volumeThroughputMiBps=250,
            maxSize=3,
            karpenter={
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "expireAfter": "720h",
                "terminationGracePeriod": "24h",
                "disruptionBudget": "10%",
            },
        ),
        "reserved": gpu_pool(
            "g6.xlarge",
            amiReleaseVersion="1.35.2-20260304",
            karpenter={"capacityTypes": ["reserved", "on-demand"], "capacityReservationIds": ["cr-0123456789abcdef0"]},
        ),
    },
    provisioner="karpenter",
    systemNodeGroup={"minSize": 2, "desiredSize": 2, "maxSize": 3},
    gpuPod={"enabled": True, "nodeGroup": "inference"},
)
"""Three pools: AL2023 spot-first and tainted, Bottlerocket with its own disruption settings, and one into a
capacity reservation."""


SPOT_ROLE = AwsAccount.create_spot_service_linked_role
"""An account setup: the account has run spot before (its AWSServiceRoleForEC2Spot exists); a fresh account
refuses a spot pool (tests/test_karpenter_config.py)."""
TEMPLATE = ROOT / "tests" / "data" / "karpenter-v1.14-cloudformation.yaml"
"""Karpenter's documented CloudFormation template, verbatim (its header says where from)."""


@pytest.fixture(scope=program_scope)
def stack() -> ProgramRun:
    return run(KARPENTER_STACK, account_setup=SPOT_ROLE)


def shipped_karpenter_stack() -> ProgramRun:
    """Pulumi.karpenter.yaml with the stand-in deployer, in an account that has the spot role (as ``make plan``
    assumes, saying so)."""
    cfg, _ = with_deployer(load_stack_file(ROOT / "Pulumi.karpenter.yaml"))
    return run_program(cfg, stack="karpenter", account_setup=SPOT_ROLE)


class _CloudFormation(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (``!Sub``, ``!Ref``, ``!GetAtt``) read as their scalar."""


for _tag in ("!Sub", "!Ref", "!GetAtt"):
    _CloudFormation.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def template() -> dict[str, Any]:
    found: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormation)
    return found["Resources"]


def _as_set(value: Any) -> frozenset[str]:
    return frozenset(value if isinstance(value, list) else [value])


def _normal(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement with its actions, resources and condition values as sets: IAM reads them so."""
    return {
        "Effect": statement.get("Effect", "Allow"),
        "Action": _as_set(statement["Action"]),
        "Resource": _as_set(statement["Resource"]),
        "Condition": {
            test: {key: _as_set(v) for key, v in variables.items()}
            for test, variables in (statement.get("Condition") or {}).items()
        },
    }


def objects(stack: ProgramRun, kind: str) -> dict[str, dict[str, Any]]:
    """Pool key (the object's name) -> the custom resource as sent (numbers as the API gets them)."""
    return {r.inputs["metadata"]["name"]: integral(r.inputs) for r in stack.of_type(kind)}


def one_release(stack: ProgramRun, suffix: str) -> RegisteredResource:
    return stack.one(RELEASE, suffix)


# --- the custom resources --------------------------------------------------------------------


@pytest.mark.parametrize("kind", [NODE_CLASS, NODE_POOL])
def test_every_node_class_and_node_pool_passes_the_pinned_crds(stack: ProgramRun, kind: str) -> None:
    sent = objects(stack, kind)
    assert sorted(sent) == ["batch", "inference", "reserved"]
    for name, obj in sent.items():
        report = crds.check(obj)
        assert report.problems == [], (name, [str(p) for p in report.problems])
        assert len(report.passed) > 20, name  # the CEL rules ran: not a vacuous pass


@pytest.mark.parametrize("kind", [NODE_CLASS, NODE_POOL])
def test_the_shipped_karpenter_stacks_objects_pass_the_pinned_crds(kind: str) -> None:
    """Pulumi.karpenter.yaml, as ``make plan`` and a deploy run it."""
    sent = objects(shipped_karpenter_stack(), kind)
    assert sent
    for name, obj in sent.items():
        assert crds.validate(obj) == [], name


def test_node_pools_carry_the_pools_labels_taints_types_and_limits(stack: ProgramRun) -> None:
    pools = objects(stack, NODE_POOL)
    inference, batch = pools["inference"]["spec"], pools["batch"]["spec"]
    template = inference["template"]
    assert template["metadata"]["labels"][POOL_LABEL] == "inference"
    assert template["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert template["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "inference",
    }
    requirements = {r["key"]: (r["operator"], r["values"]) for r in template["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ("In", ["g6.xlarge", "g6.2xlarge"])
    assert requirements["karpenter.sh/capacity-type"] == ("In", ["spot", "on-demand"])
    assert requirements["kubernetes.io/arch"] == ("In", ["amd64"])
    assert inference["limits"]["nodes"] == "2"
    # g6.2xlarge: 1 GPU, 8 vCPUs (moto's catalogue, through the design): 2 nodes at most
    assert inference["limits"]["nvidia.com/gpu"] == "2" and inference["limits"]["cpu"] == "16"
    assert inference["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "10m",
        "budgets": [{"nodes": "1"}],
    }
    assert template["spec"]["expireAfter"] == "Never" and "terminationGracePeriod" not in template["spec"]
    assert batch["template"]["spec"]["taints"] == template["spec"]["taints"]  # the GPU taint every pool carries
    assert batch["template"]["spec"]["expireAfter"] == "720h"
    assert batch["template"]["spec"]["terminationGracePeriod"] == "24h"
    assert batch["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert batch["disruption"]["budgets"] == [{"nodes": "10%"}]
    assert batch["limits"]["nodes"] == "3"
    reserved = pools["reserved"]["spec"]["template"]["spec"]["requirements"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved", "on-demand"]} in reserved


def test_node_classes_use_the_karpenter_node_role_this_stacks_subnets_and_the_cluster_group(stack: ProgramRun) -> None:
    classes = objects(stack, NODE_CLASS)
    role = stack.one(ROLE, "karpenter-node-role")
    cluster_sg = stack.one(CLUSTER).outputs["clusterSecurityGroupId"]  # EKS's, the managed node groups' group
    private = {s.outputs["id"] for s in stack.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert len(private) == 2
    for name, obj in classes.items():
        spec = obj["spec"]
        assert spec["role"] == role.outputs["name"], name
        assert {t["id"] for t in spec["subnetSelectorTerms"]} == private, name
        assert spec["securityGroupSelectorTerms"] == [{"id": cluster_sg}], name
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert all(m["ebs"]["encrypted"] and m["ebs"]["volumeType"] == "gp3" for m in spec["blockDeviceMappings"])
        assert spec["tags"]["eks-gpu/node-group"] == name and spec["tags"]["team"] == "ml-platform"
    assert classes["inference"]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260304"}]
    assert classes["batch"]["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.58.0"}]
    # Bottlerocket: the OS volume at Karpenter's default size and gp3's baseline, the data volume of the pool's
    os_volume, data = classes["batch"]["spec"]["blockDeviceMappings"]
    assert (
        os_volume["deviceName"] == "/dev/xvda" and os_volume["ebs"]["volumeSize"] == f"{BOTTLEROCKET_OS_VOLUME_GIB}Gi"
    )
    assert "throughput" not in os_volume["ebs"] and "rootVolume" not in os_volume
    assert data["deviceName"] == "/dev/xvdb" and data["rootVolume"] is True
    assert data["ebs"]["volumeSize"] == "200Gi" and data["ebs"]["throughput"] == 250
    assert classes["reserved"]["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert "capacityReservationSelectorTerms" not in classes["inference"]["spec"]


def test_al2023_node_classes_turn_on_fast_image_pull_as_managed_node_groups_do(stack: ProgramRun) -> None:
    """The nodeadm NodeConfig of a managed group's user data, as an EC2NodeClass's ``userData`` (which Karpenter
    merges before its own NodeConfig); Bottlerocket has no nodeadm, and ``fastImagePull: false`` adds none."""
    classes = objects(stack, NODE_CLASS)
    node_config = yaml.safe_load(classes["inference"]["spec"]["userData"])
    assert node_config == {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {"featureGates": {"FastImagePull": True}},
    }
    assert "userData" not in classes["batch"]["spec"]  # Bottlerocket
    # the same NodeConfig a managed node group of the pool carries in its launch template's MIME part
    managed = base64.b64decode(launch_template(run(config()), "inference")["userData"]).decode()
    (part,) = [p for p in email.message_from_string(managed).walk() if p.get_content_type() == NODEADM]
    assert yaml.safe_load(str(part.get_payload())) == node_config
    off = run(
        config(
            {"inference": gpu_pool("g6.xlarge", amiReleaseVersion="1.35.2-20260304", fastImagePull=False)},
            provisioner="karpenter",
            systemNodeGroup={"minSize": 2, "desiredSize": 2, "maxSize": 3},
        )
    )
    assert "userData" not in objects(off, NODE_CLASS)["inference"]["spec"]


def test_destroy_waits_for_karpenter_to_drain_the_pools(stack: ProgramRun) -> None:
    """Karpenter's finalizers hold a NodePool and EC2NodeClass until their nodes are drained and gone."""
    for r in [*stack.of_type(NODE_CLASS), *stack.of_type(NODE_POOL)]:
        assert r.custom_timeouts == {"delete": "60m"}, r.name


def test_the_custom_resources_wait_for_both_charts_and_the_node_access(stack: ProgramRun) -> None:
    crd, controller = one_release(stack, "karpenter-crd-release"), one_release(stack, "karpenter-release")
    entry = stack.one("aws:eks/accessEntry:AccessEntry", "karpenter-node-access")
    for r in [*stack.of_type(NODE_CLASS), *stack.of_type(NODE_POOL)]:
        assert {crd.urn, controller.urn, entry.urn} <= set(r.dependencies), r.name
        assert r.provider.startswith(stack.one("pulumi:providers:kubernetes").urn)
    assert crd.urn in controller.dependencies


# --- AWS: roles, access entry, queue, rules --------------------------------------------------


def controller_policy(stack: ProgramRun) -> dict[str, Any]:
    return iam_document(stack.one("aws:iam/rolePolicy:RolePolicy", "karpenter-iam-karpenter").inputs["policy"])


def test_the_controller_role_is_for_karpenters_service_account_of_this_cluster_only(stack: ProgramRun) -> None:
    role = stack.one(ROLE, "karpenter-iam-role")
    # the trust the EKS User Guide documents, written out in tests/helpers.py (not the program's function)
    expected = pod_identity_trust(DEV_CLUSTER_ARN, "kube-system", "karpenter")
    assert iam_document(role.inputs["assumeRolePolicy"]) == expected
    association = stack.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-identity")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    assert association.inputs["roleArn"] == role.outputs["arn"]


def test_controller_statements_name_this_cluster_its_node_role_and_its_queue(stack: ProgramRun) -> None:
    statements = {s["Sid"]: s for s in controller_policy(stack)["Statement"]}
    node_role = stack.one(ROLE, "karpenter-node-role").outputs["arn"]
    queue = stack.one(QUEUE).outputs["arn"]
    assert statements["AllowPassingInstanceRole"]["Resource"] == node_role
    assert statements["AllowInterruptionQueueActions"]["Resource"] == queue
    assert statements["AllowAPIServerEndpointDiscovery"]["Resource"] == DEV_CLUSTER_ARN
    with_tags = statements["AllowScopedEC2InstanceActionsWithTags"]["Condition"]
    assert with_tags["StringEquals"] == {
        f"aws:RequestTag/kubernetes.io/cluster/{CLUSTER_NAME}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": CLUSTER_NAME,
    }
    assert with_tags["StringLike"] == {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    reads = statements["AllowRegionalReadActions"]
    assert reads["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}
    # "*" only where the documented policy has it: regional reads, pricing, listing instance profiles
    unscoped = {sid for sid, s in statements.items() if s["Resource"] in ("*", ["*"])}
    assert unscoped == {"AllowRegionalReadActions", "AllowPricingReadActions", "AllowUnscopedInstanceProfileListAction"}
    # every write is conditioned on this cluster's tag, and no other cluster's name appears
    for sid, s in statements.items():
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        writes = [a for a in actions if not a.split(":")[1].startswith(("Describe", "Get", "List"))]
        if writes and sid not in (
            "AllowScopedEC2InstanceAccessActions",
            "AllowPassingInstanceRole",
            "AllowInterruptionQueueActions",
        ):
            assert f"kubernetes.io/cluster/{CLUSTER_NAME}" in json.dumps(s["Condition"]), sid
    resources = json.dumps([s["Resource"] for s in statements.values()])
    assert ":us-west-2:" in resources and "us-east-1" not in resources


def test_controller_statements_are_the_documented_ones_action_by_action(stack: ProgramRun) -> None:
    """Every statement of the documented controller policies (the template's NodeLifecycle, IAMIntegration,
    EKSIntegration, Interruption and ResourceDiscovery; not ZonalShift, only for ``settings.enableZonalShift``,
    which the program leaves off), with this stack's names put in, is the program's: same Sid, effect,
    actions, resources and conditions, and no statement more."""
    resources = template()
    node_role = stack.one(ROLE, "karpenter-node-role").outputs["arn"]
    names = {
        "${AWS::Partition}": "aws",
        "${AWS::Region}": "us-west-2",
        "${AWS::AccountId}": DEV_CLUSTER_ARN.split(":")[4],
        "${ClusterName}": CLUSTER_NAME,
        "${KarpenterNodeRole.Arn}": node_role,
        "${KarpenterInterruptionQueue.Arn}": stack.one(QUEUE).outputs["arn"],
    }
    documented: dict[str, dict[str, Any]] = {}
    for policy in (
        "NodeLifecyclePolicy",
        "IAMIntegrationPolicy",
        "EKSIntegrationPolicy",
        "InterruptionPolicy",
        "ResourceDiscoveryPolicy",
    ):
        text = resources[policy]["Properties"]["PolicyDocument"]
        for placeholder, value in names.items():
            text = text.replace(placeholder, value)
        assert "${" not in text, policy
        documented |= {st["Sid"]: _normal(st) for st in json.loads(text)["Statement"]}
    ours = {st["Sid"]: _normal(st) for st in controller_policy(stack)["Statement"]}
    assert sorted(ours) == sorted(documented)
    for sid, statement in documented.items():
        assert ours[sid]["Action"] == statement["Action"], sid
        assert ours[sid] == statement, sid


def test_karpenters_nodes_have_a_role_and_access_entry_of_their_own(stack: ProgramRun) -> None:
    node_role = stack.one(ROLE, "karpenter-node-role")
    trust = iam_document(node_role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("eks-gpu-karpenter-node-")
    }
    assert attached == {
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonSSMManagedInstanceCore",
    }
    entry = stack.one("aws:eks/accessEntry:AccessEntry", "karpenter-node-access")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["principalArn"] == node_role.outputs["arn"]
    managed_node_role = stack.one(ROLE, "eks-gpu-node-role").outputs["arn"]
    principals = [e.inputs["principalArn"] for e in stack.of_type("aws:eks/accessEntry:AccessEntry")]
    assert managed_node_role not in principals  # EKS made that one's entry: a second would conflict


def test_the_interruption_queue_its_policy_and_the_five_rules(stack: ProgramRun) -> None:
    queue = stack.one(QUEUE)
    assert queue.inputs["name"] == CLUSTER_NAME
    assert queue.inputs["messageRetentionSeconds"] == 300
    assert queue.inputs["sqsManagedSseEnabled"] is True
    policy = stack.one("aws:sqs/queuePolicy:QueuePolicy")
    assert policy.inputs["queueUrl"] == queue.outputs["id"]
    allow, deny = json.loads(policy.inputs["policy"])["Statement"]
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", "sqs:SendMessage", queue.outputs["arn"])
    assert sorted(allow["Principal"]["Service"]) == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert (deny["Effect"], deny["Action"], deny["Principal"]) == ("Deny", "sqs:*", "*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # the documented template's rules: each event pattern, each target's id, all to the queue
    documented = [r["Properties"] for r in template().values() if r["Type"] == "AWS::Events::Rule"]
    assert len(documented) == 5
    patterns = sorted(json.dumps(json.loads(r.inputs["eventPattern"]), sort_keys=True) for r in stack.of_type(RULE))
    assert patterns == sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in documented)
    rules = {r.outputs["name"] for r in stack.of_type(RULE)}
    targets = stack.of_type(TARGET)
    assert {t.inputs["rule"] for t in targets} == rules and len(targets) == len(documented)
    assert {t.inputs["targetId"] for t in targets} == {t["Id"] for r in documented for t in r["Targets"]}
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    documented_queue = template()["KarpenterInterruptionQueue"]["Properties"]
    assert queue.inputs["messageRetentionSeconds"] == documented_queue["MessageRetentionPeriod"]


# --- the charts -------------------------------------------------------------------------------


def test_the_crd_chart_renders_the_crds_the_validator_uses(stack: ProgramRun) -> None:
    crd = one_release(stack, "karpenter-crd-release")
    assert crd.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd" and "repositoryOpts" not in crd.inputs
    kinds = {o["spec"]["names"]["kind"] for o in render(crd) if o["kind"] == "CustomResourceDefinition"}
    assert {"EC2NodeClass", "NodePool", "NodeClaim"} <= kinds
    assert crd.inputs["version"] == crds.CRD_VERSION


def test_the_controller_chart_renders_with_the_cluster_queue_and_pod_identity_account(stack: ProgramRun) -> None:
    release = one_release(stack, "karpenter-release")
    assert release.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.inputs["skipCrds"] is True and "repositoryOpts" not in release.inputs
    rendered = render(release)
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    # the chart's crds/ (which Helm would install once and never upgrade) are exactly what the CRD chart's
    # release installs and upgrades: skipping them loses nothing
    skipped = {
        yaml.safe_load(f.read_text())["metadata"]["name"]
        for f in (chart_dir(release.inputs["chart"], release.inputs["version"]) / "crds").glob("*.yaml")
    }
    crd = one_release(stack, "karpenter-crd-release")
    installed = {o["metadata"]["name"] for o in render(crd) if o["kind"] == "CustomResourceDefinition"}
    assert skipped and skipped == installed
    deployment = by_kind[("Deployment", "karpenter")]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == "karpenter" and ("ServiceAccount", "karpenter") in by_kind
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", POOL_LABEL: "system"}
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLUSTER_NAME"] == CLUSTER_NAME
    assert env["AWS_REGION"] == "us-west-2"  # set, not left to the Pod Identity webhook
    assert "NodeRepair=true" in env["FEATURE_GATES"].split(",")
    assert env["INTERRUPTION_QUEUE"] == stack.one(QUEUE).inputs["name"]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert "annotations" not in by_kind[("ServiceAccount", "karpenter")]["metadata"]  # no IRSA: Pod Identity


def test_every_value_given_to_the_controller_chart_is_one_it_reads(stack: ProgramRun) -> None:
    release = one_release(stack, "karpenter-release")
    defaults = yaml.safe_load(
        (chart_dir(release.inputs["chart"], release.inputs["version"]) / "values.yaml").read_text()
    )

    def walk(given: dict[str, Any], known: dict[str, Any], path: str) -> None:
        for key, value in given.items():
            assert key in known, f"{path}{key} is not in the chart's values.yaml"
            if isinstance(value, dict) and known[key] and key not in ("nodeSelector", "resources", "env"):
                walk(value, known[key], f"{path}{key}.")

    walk(release.inputs["values"], defaults, "")


# --- wiring in the stack ----------------------------------------------------------------------


def test_karpenter_pools_get_no_managed_node_group_and_keep_their_outputs(stack: ProgramRun) -> None:
    groups = [r.name for r in stack.of_type(NODE_GROUP)]
    assert groups == ["eks-gpu-system-ng"]
    asg_tags = [r.inputs["tag"]["key"] for r in stack.of_type("aws:autoscaling/tag:Tag")]
    assert asg_tags and not [k for k in asg_tags if k.startswith("k8s.io/cluster-autoscaler")]  # no autoscaler
    pools = stack.outputs["gpuNodeGroups"]
    assert sorted(pools) == ["batch", "inference", "reserved"]
    for key, out in pools.items():
        assert out["nodeGroupName"] == key  # the NodePool's name
        assert out.get("asgName") is None
        assert out["nodeSelector"] == {POOL_LABEL: key}
    assert pools["inference"]["gpusPerNode"] == 1
    assert stack.outputs.get("autoscalerRoleArn") is None
    # the role every EC2NodeClass names, for a team's own node classes; none without Karpenter
    roles = {c["spec"]["role"] for c in objects(stack, NODE_CLASS).values()}
    assert roles == {stack.outputs["karpenterNodeRoleName"]}
    assert "karpenterNodeRoleName" not in run(config()).outputs


def test_the_controller_comes_after_the_system_nodes_and_the_pod_identity_agent(stack: ProgramRun) -> None:
    release = one_release(stack, "karpenter-release")
    system = stack.one(NODE_GROUP, "-system-ng")
    agent = stack.one("aws:eks/addon:Addon", "eks-pod-identity-agent")
    association = stack.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-identity")
    assert {system.urn, agent.urn, association.urn} <= set(release.dependencies)


def test_the_smoke_test_waits_for_its_pools_node_pool(stack: ProgramRun) -> None:
    smoke = stack.one("eks-gpu:smoke:GpuSmokeTest") if stack.of_type("eks-gpu:smoke:GpuSmokeTest") else None
    job = stack.one("kubernetes:batch/v1:Job")
    node_pool = next(r for r in stack.of_type(NODE_POOL) if r.inputs["metadata"]["name"] == "inference")
    waited = set(job.dependencies) | set(smoke.dependencies if smoke else ())
    assert node_pool.urn in waited


@pytest.mark.parametrize("cfg", [config(), every_feature()], ids=["default", "every-feature"])
def test_nothing_of_karpenter_exists_without_it(cfg: dict[str, Any]) -> None:
    ran = run(cfg)
    assert not [r.urn for r in ran.resources if "karpenter" in r.urn.lower() or r.type == COMPONENT]
    assert not ran.of_type(QUEUE) and not ran.of_type(RULE)


# --- EFA pools -------------------------------------------------------------------------------------

NODE_OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
EFA_CHART = "aws-efa-k8s-device-plugin"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
AL2023 = "1.35.2-20260304"
EFA_STACK = config(
    {
        "train": gpu_pool(
            "p5.48xlarge",
            efa=True,
            amiReleaseVersion=AL2023,
            taints=[GPU_TAINT, {"key": "workload", "value": "training", "effect": "NO_EXECUTE"}],
        ),
        "rocket": gpu_pool(
            "p4d.24xlarge", efa=True, amiType="BOTTLEROCKET_x86_64_NVIDIA", amiReleaseVersion="1.58.0-c5c37032"
        ),
        "booked": gpu_pool(
            "p5.48xlarge",
            efa=True,
            amiReleaseVersion=AL2023,
            karpenter={"capacityTypes": ["reserved", "on-demand"], "capacityReservationIds": ["cr-0123456789abcdef0"]},
        ),
    },
    provisioner="karpenter",
    systemNodeGroup={"minSize": 2, "desiredSize": 2, "maxSize": 3},
)
"""EFA pools under Karpenter: AL2023 p5 with a taint of its own, Bottlerocket p4d, and one into a reservation."""


@pytest.fixture(scope=program_scope)
def efa_stack() -> ProgramRun:
    return run(EFA_STACK)


def test_efa_node_classes_select_their_pools_cluster_placement_group_in_one_zone(efa_stack: ProgramRun) -> None:
    classes, pools = objects(efa_stack, NODE_CLASS), objects(efa_stack, NODE_POOL)
    groups = {g.name: g for g in efa_stack.of_type(PLACEMENT_GROUP)}
    # the reserved pool has none: its reservation, not a new group, decides where it launches (as managed pools)
    assert sorted(groups) == ["eks-gpu-karpenter-rocket-placement", "eks-gpu-karpenter-train-placement"]
    assert "placementGroupSelector" not in classes["booked"]["spec"]
    subnets = {s.outputs["id"]: s.outputs["availabilityZone"] for s in efa_stack.of_type("aws:ec2/subnet:Subnet")}
    for key in ("train", "rocket"):
        group = groups[f"eks-gpu-karpenter-{key}-placement"]
        assert group.inputs["strategy"] == "cluster"
        assert classes[key]["spec"]["placementGroupSelector"] == {"name": group.outputs["name"]}
    for key in ("train", "rocket", "booked"):
        zones = [
            r["values"] for r in pools[key]["spec"]["template"]["spec"]["requirements"] if r["key"].endswith("/zone")
        ]
        (selected,) = {subnets[t["id"]] for t in classes[key]["spec"]["subnetSelectorTerms"]}
        assert zones == [[selected]], key  # one zone, the one of its subnet


def test_efa_node_classes_add_a_security_group_open_to_itself(efa_stack: ProgramRun) -> None:
    """As a managed EFA pool's launch template does (build/nodegroups.py): EFA needs all traffic to and from
    its own group, which an existing cluster's security group need not allow; Karpenter puts every selected
    group on every interface."""
    classes = objects(efa_stack, NODE_CLASS)
    groups = {g.name: g for g in efa_stack.of_type("aws:ec2/securityGroup:SecurityGroup")}
    rules = [
        r.inputs
        for t in (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        )
        for r in efa_stack.of_type(t)
    ]
    for key in ("train", "rocket", "booked"):
        group = groups[f"eks-gpu-karpenter-{key}-efa"]
        terms = [t["id"] for t in classes[key]["spec"]["securityGroupSelectorTerms"]]
        assert len(terms) == 2 and terms[1] == group.outputs["id"], key
        own = [r for r in rules if r["securityGroupId"] == group.outputs["id"]]
        assert len(own) == 2 and all(
            (r["referencedSecurityGroupId"], r["ipProtocol"]) == (group.outputs["id"], "-1") for r in own
        ), key


@pytest.mark.parametrize("kind", [NODE_CLASS, NODE_POOL, NODE_OVERLAY])
def test_efa_pools_objects_pass_the_pinned_crds(efa_stack: ProgramRun, kind: str) -> None:
    sent = objects(efa_stack, kind)
    assert sent
    for name, obj in sent.items():
        report = crds.check(obj)
        assert report.problems == [], (name, [str(p) for p in report.problems])
        assert report.passed, name


def test_al2023_efa_pools_give_karpenter_the_huge_pages_their_nodes_have(
    efa_stack: ProgramRun, stack: ProgramRun
) -> None:
    """Karpenter's instance types have no huge pages, so an overlay adds what the EFA driver allocates: the
    same ``hugepages-2Mi`` as the pool's published allocatable. Bottlerocket sizes its own (no source says
    how many: no overlay, as no autoscaler tag on a managed pool). The gate is on only with an overlay."""
    overlays = objects(efa_stack, NODE_OVERLAY)
    assert sorted(overlays) == ["booked", "train"]
    outputs = efa_stack.outputs["gpuNodeGroups"]
    for key, overlay in overlays.items():
        assert overlay["spec"] == {
            "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [key]}],
            "capacity": {"hugepages-2Mi": outputs[key]["allocatable"]["hugepages-2Mi"]},
        }
        pool = efa_stack.one(NODE_POOL, f"karpenter-{key}-nodepool")
        assert efa_stack.one(NODE_OVERLAY, f"karpenter-{key}-overlay").urn in pool.dependencies
    assert "hugepages-2Mi" not in outputs["rocket"]["allocatable"]
    gates = one_release(efa_stack, "karpenter-release").inputs["values"]["settings"]["featureGates"]
    assert gates["nodeOverlay"] is True
    assert "nodeOverlay" not in one_release(stack, "karpenter-release").inputs["values"]["settings"]["featureGates"]
    assert not stack.of_type(NODE_OVERLAY) and not stack.of_type(PLACEMENT_GROUP)


def test_efa_node_classes_user_data_is_the_managed_efa_pools(efa_stack: ProgramRun) -> None:
    """No huge-pages setting on either: the AL2023 AMI's EFA driver allocates them; the FastImagePull NodeConfig
    only, once."""
    managed = base64.b64decode(
        launch_template(run(config({"train": gpu_pool("p5.48xlarge", efa=True)})), "train")["userData"]
    )
    (part,) = [p for p in email.message_from_string(managed.decode()).walk() if p.get_content_type() == NODEADM]
    assert yaml.safe_load(objects(efa_stack, NODE_CLASS)["train"]["spec"]["userData"]) == yaml.safe_load(
        str(part.get_payload())
    )


def test_the_efa_device_plugin_runs_on_every_efa_node_pools_nodes(efa_stack: ProgramRun, stack: ProgramRun) -> None:
    (plugin,) = [r for r in efa_stack.of_type(RELEASE) if r.inputs["chart"] == EFA_CHART]
    (spec,) = [pod_spec(o) for o in render(plugin) if o["kind"] == "DaemonSet"]
    for key, pool in objects(efa_stack, NODE_POOL).items():
        template = pool["spec"]["template"]
        # Karpenter labels the node with its type, which the chart's affinity lists (the types with EFA)
        (types,) = [r["values"] for r in template["spec"]["requirements"] if r["key"] == INSTANCE_TYPE]
        for itype in types:
            labels = {**template["metadata"]["labels"], INSTANCE_TYPE: itype}
            node = Node(labels, template["spec"].get("taints", []), {"pods": Decimal(1)})
            assert unfit(spec, {}, node) == [], (key, itype)
    assert not [r for r in stack.of_type(RELEASE) if r.inputs["chart"] == EFA_CHART]  # no EFA pool, no plugin


# --- discovery tags ------------------------------------------------------------------------------

DISCOVERY = "karpenter.sh/discovery"
SUBNET = "aws:ec2/subnet:Subnet"
EC2_TAG = "aws:ec2/tag:Tag"


def test_private_subnets_and_the_cluster_security_group_carry_the_discovery_tag(stack: ProgramRun) -> None:
    """Karpenter's migration guide tags the node subnets and security group ``karpenter.sh/discovery:
    <cluster>`` (v1.14 ``getting-started/migrating-from-cas``): a team's own EC2NodeClass selects them so. The
    program's node classes select the same subnets and group by id."""
    subnets = stack.of_type(SUBNET)
    private = [s for s in subnets if "-private-" in s.name]
    assert private and len(private) < len(subnets)
    assert all(s.inputs["tags"][DISCOVERY] == CLUSTER_NAME for s in private)
    assert all(DISCOVERY not in s.inputs["tags"] for s in subnets if s not in private)
    (tag,) = stack.of_type(EC2_TAG)
    assert (tag.inputs["key"], tag.inputs["value"]) == (DISCOVERY, CLUSTER_NAME)
    for node_class in objects(stack, NODE_CLASS).values():
        assert node_class["spec"]["securityGroupSelectorTerms"] == [{"id": tag.inputs["resourceId"]}]
        assert {t["id"] for t in node_class["spec"]["subnetSelectorTerms"]} <= {s.outputs["id"] for s in private}


def test_a_cluster_autoscaler_stack_tags_nothing_for_karpenter() -> None:
    ran = run(config())
    assert ran.of_type(EC2_TAG) == []
    assert all(DISCOVERY not in s.inputs["tags"] for s in ran.of_type(SUBNET))


def test_an_existing_vpcs_subnets_are_not_tagged() -> None:
    """Someone else's subnets may be shared with another cluster's Karpenter: CreateTags would overwrite its
    discovery tag and a destroy delete it. Only EKS's cluster security group (the stack's cluster's) is tagged."""
    with offline_account(REGION) as account:
        azs = sorted(aws_data.offerings(REGION)["g6.xlarge"])[:2]
        vpc = account.create_existing_vpc(
            "10.50.0.0/16",
            [("10.50.0.0/20", azs[0], False), ("10.50.16.0/20", azs[1], False), ("10.50.32.0/24", azs[0], True)],
        )
        cfg = {**KARPENTER_STACK, "eks-gpu:vpc": {"id": vpc.vpc_id, "privateSubnetIds": list(vpc.private_subnet_ids)}}
        SPOT_ROLE(account)
        ran = run_program(cfg, account=account)
    (tag,) = ran.of_type(EC2_TAG)
    assert tag.inputs["resourceId"] not in vpc.private_subnet_ids
    (node_class, *_) = objects(ran, NODE_CLASS).values()
    assert node_class["spec"]["securityGroupSelectorTerms"] == [{"id": tag.inputs["resourceId"]}]
