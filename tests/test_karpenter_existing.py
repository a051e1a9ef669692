"""Issue 24 on an existing cluster: ``provisioner: karpenter`` with ``eks-gpu:existingCluster``. The cluster
is moto's (tests/test_existing_cluster.py makes it); Karpenter is added beside the program's system and GPU
pools, and the cluster itself is left alone but for one access entry, for Karpenter's own node role."""

from __future__ import annotations

from typing import Any

from eks_gpu.offline.aws import AwsAccount

from tests import crds
from tests.helpers import problems_of, run
from tests.test_existing_cluster import FORBIDDEN, NAME, existing, make_cluster
from tests.test_karpenter_config import PINNED, karpenter_pool

ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
RELEASE = "kubernetes:helm.sh/v3:Release"


def karpenter_on_existing(**keys: Any) -> dict[str, Any]:
    cfg = existing({"inference": karpenter_pool()}, provisioner="karpenter", amiReleaseVersion=PINNED)
    cfg.pop("eks-gpu:autoscaler")  # not read under Karpenter: its keys are refused there
    return {**cfg, "eks-gpu:systemNodeGroup": {"minSize": 2}, **{f"eks-gpu:{k}": v for k, v in keys.items()}}


def test_karpenter_joins_an_existing_cluster_by_one_access_entry_and_changes_nothing_else() -> None:
    ran = run(karpenter_on_existing(), account_setup=make_cluster())
    made = ran.account_data
    (entry,) = ran.of_type(ACCESS_ENTRY)
    assert (entry.inputs["type"], entry.inputs["clusterName"]) == ("EC2_LINUX", NAME)
    (node_role,) = [r for r in ran.of_type("aws:iam/role:Role") if r.name.endswith("-karpenter-node-role")]
    assert entry.inputs["principalArn"] == node_role.outputs["arn"]
    others = [t for t in FORBIDDEN if t != ACCESS_ENTRY]
    assert [r.name for t in others for r in ran.of_type(t)] == []
    assert ran.of_type("aws:ec2/tag:Tag") == []  # the owner's security group keeps its tags
    assert ran.one("aws:sqs/queue:Queue", "-karpenter-queue").inputs["name"] == NAME
    (node_class,) = ran.of_type(NODE_CLASS)
    spec = node_class.inputs["spec"]
    assert spec["securityGroupSelectorTerms"] == [{"id": made["security_group"]}]
    # the pool's AZs are both of the cluster's private subnets' (g6.xlarge is offered in each): all of them
    assert sorted(ran.outputs["gpuNodeGroups"]["inference"]["availabilityZones"]) == ["us-west-2a", "us-west-2b"]
    assert sorted(t["id"] for t in spec["subnetSelectorTerms"]) == sorted(made["vpc"].private_subnet_ids)
    for obj in (node_class, *ran.of_type(NODE_POOL)):
        assert crds.validate(dict(obj.inputs)) == []
    charts = {r.inputs["chart"] for r in ran.of_type(RELEASE)}
    assert {"oci://public.ecr.aws/karpenter/karpenter", "oci://public.ecr.aws/karpenter/karpenter-crd"} <= charts
    assert not [c for c in charts if "cluster-autoscaler" in c]
    assert any("cannot take a second one" in w for w in ran.warnings)


def test_a_configmap_only_cluster_is_refused_for_karpenter() -> None:
    found = problems_of(karpenter_on_existing(), account_setup=make_cluster(mode="CONFIG_MAP"))
    assert list(found) == ["eks-gpu:provisioner"]
    assert "aws eks update-cluster-config --name platform-prod" in found["eks-gpu:provisioner"]


def test_under_karpenter_an_existing_cluster_takes_no_autoscaler() -> None:
    """No ``autoscaler.enabled`` choice is asked for (the first test runs without one); one given is refused."""
    found = problems_of(karpenter_on_existing(autoscaler={"enabled": True}), account_setup=make_cluster())
    assert list(found) == ["eks-gpu:autoscaler.enabled"]


def test_a_karpenter_pools_labels_are_not_counted_against_an_asg_it_does_not_have() -> None:
    """A NodePool has no Auto Scaling group, so the autoscaler's per-ASG tag budget (50 tags) does not apply,
    on an existing cluster as on the stack's own: 38 labels are fine on a Karpenter pool."""
    labels = {f"team.example.com/l{i}": "x" for i in range(38)}
    cfg = karpenter_on_existing()
    cfg["eks-gpu:gpuNodeGroups"] = {"inference": karpenter_pool(labels=labels)}
    (node_pool,) = run(cfg, account_setup=make_cluster()).of_type(NODE_POOL)
    assert labels.items() <= node_pool.inputs["spec"]["template"]["metadata"]["labels"].items()
    managed = existing({"inference": {**karpenter_pool(labels=labels), "minSize": 0}})
    assert "eks-gpu:gpuNodeGroups.inference" in "".join(problems_of(managed, account_setup=make_cluster()))


def with_queue(tags: dict[str, str]) -> Any:
    """:func:`make_cluster`, and an SQS queue named after the cluster with ``tags`` (made as Karpenter's own
    install makes its interruption queue: ``QueueName: ${ClusterName}``)."""
    setup = make_cluster()

    def both(account: AwsAccount) -> Any:
        made = setup(account)
        account._call("sqs", "create_queue", QueueName=NAME, tags=tags)
        return made

    return both


def test_a_cluster_with_another_karpenters_queue_is_refused() -> None:
    found = problems_of(karpenter_on_existing(), account_setup=with_queue({"aws:cloudformation:stack-name": "k"}))
    assert list(found) == ["eks-gpu:existingCluster.name"]
    assert found["eks-gpu:existingCluster.name"].startswith(
        f"'{NAME}' has an SQS queue named '{NAME}' that this stack did not make"
    )


def test_the_stacks_own_queue_from_an_earlier_up_is_no_problem() -> None:
    """The queue this stack made (its Name tag, as the run sends it) is read back on the next preview."""
    first = run(karpenter_on_existing(), account_setup=make_cluster())
    sent = first.one("aws:sqs/queue:Queue", "-karpenter-queue").inputs["tags"]
    again = run(karpenter_on_existing(), account_setup=with_queue(dict(sent)))
    assert ("aws:sqs/getQueue:getQueue", {"name": NAME}) in [
        (token, {k: v for k, v in args.items() if v is not None}) for token, args in again.invokes
    ]
    assert again.one("aws:sqs/queue:Queue", "-karpenter-queue").inputs["name"] == NAME
    assert not any("cannot take a second one" in w for w in again.warnings)  # said before the first up only
