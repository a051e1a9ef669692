"""Versions that do not float: every EKS add-on runs an explicit version resolved for the cluster's
Kubernetes version (or pinned), and every node group's AMI release is explicit when set and EKS's
latest-at-creation, kept, when not; a release change is a node roll, one node at a time.

Expected versions come from the offline account's bundled snapshots (``offline/data``), never typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.build.nodegroups import MAX_UNAVAILABLE
from eks_gpu.offline import AwsAccount, plan
from eks_gpu.offline.aws import AwsError, addon_versions, ami_releases, offline_account
from eks_gpu.offline.diff import diff

from tests.helpers import NODE_GROUP, REGION, ROOT, config, gpu_pool, node_group, problems_of, run

ADDON = "aws:eks/addon:Addon"
ADDON_INVOKE = "aws:eks/getAddonVersion:getAddonVersion"


def _default(name: str, kubernetes: str) -> str:
    return str(addon_versions()["addons"][name][kubernetes]["default"])


def _release(family: str, kubernetes: str) -> str:
    return str(ami_releases()[family][kubernetes]["release"])


def _sent(result: Any) -> dict[str, Any]:
    """Add-on name -> the version the program sends, the two pulumi-eks makes included."""
    sent = {a.inputs["addonName"]: a.inputs.get("addonVersion") for a in result.of_type(ADDON)}
    cluster = result.one("eks:index:Cluster").inputs
    sent["vpc-cni"] = cluster["vpcCniOptions"].get("addonVersion")
    sent["kube-proxy"] = cluster["kubeProxyAddonOptions"].get("version")
    return sent


# --- add-ons ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        pytest.param(config(), id="dev-like"),
        pytest.param(config(gpuMetrics={"exporter": "cloudwatch"}, nodeMonitoring={"enabled": False}), id="cloudwatch"),
    ],
)
def test_every_installed_addon_runs_eks_default_for_the_cluster_version(cfg: dict[str, Any]) -> None:
    result = run(cfg)
    sent = _sent(result)
    asked = {args["addonName"] for token, args in result.invokes if token == ADDON_INVOKE}
    assert set(sent) == asked  # one list of installed add-ons: what is looked up is what is built
    assert {"vpc-cni", "kube-proxy", "coredns"} <= set(sent)
    assert sent == {name: _default(name, "1.35") for name in sent}
    assert all(args["mostRecent"] is False for token, args in result.invokes if token == ADDON_INVOKE)


def test_a_kubernetes_upgrade_moves_every_addon_with_the_cluster() -> None:
    before, after = _sent(run(config())), _sent(run(config(kubernetesVersion="1.36")))
    assert after == {name: _default(name, "1.36") for name in after}
    assert before["kube-proxy"] != after["kube-proxy"]


def test_a_pinned_addon_version_is_sent_and_the_others_stay_eks_defaults() -> None:
    pin = _default("coredns", "1.34")
    assert pin != _default("coredns", "1.35")
    sent = _sent(run(config(addons={"coredns": {"version": pin}})))
    assert sent["coredns"] == pin
    assert sent["vpc-cni"] == _default("vpc-cni", "1.35")


def test_an_addon_eks_offers_no_version_of_is_refused_unless_pinned() -> None:
    with offline_account(REGION) as account, pytest.raises(AwsError, match="empty result"):
        account.invoke(ADDON_INVOKE, {"addonName": "coredns", "kubernetesVersion": "1.20", "mostRecent": False})


# --- config rules: one key, its reason ---------------------------------------------------------------

BOTTLEROCKET = "BOTTLEROCKET_x86_64_NVIDIA"


@pytest.mark.parametrize(
    ("cfg", "key", "reason"),
    [
        pytest.param(
            config(addons={"vpc-cni": {"version": "1.19.2"}}),
            "eks-gpu:addons.vpc-cni.version",
            "'1.19.2' is not an EKS add-on version such as v1.19.2-eksbuild.1",
            id="addon-version-format",
        ),
        pytest.param(
            config(addons={"vpc-cnii": {"version": "v1.19.2-eksbuild.1"}}),
            "eks-gpu:addons.vpc-cnii",
            "unknown key; allowed keys: amazon-cloudwatch-observability, aws-ebs-csi-driver, coredns",
            id="addon-name",
        ),
        pytest.param(
            # the add-on's configuration schema takes dcgmAgent.affinity and .tolerations from v1.6.3 on
            config(addons={"eks-node-monitoring-agent": {"version": "v1.5.2-eksbuild.1"}}),
            "eks-gpu:addons.eks-node-monitoring-agent.version",
            "v1.5.2-eksbuild.1 (pinned) is older than v1.6.3, the first version whose configuration takes the "
            "values the program sends",
            id="node-monitoring-version-floor",
        ),
        pytest.param(
            config({"inference": gpu_pool(amiReleaseVersion="latest")}),
            "eks-gpu:gpuNodeGroups.inference.amiReleaseVersion",
            "'latest' is not an EKS AMI release version",
            id="pool-release-format",
        ),
        pytest.param(
            config(systemNodeGroup={"amiReleaseVersion": "1.35.2"}),
            "eks-gpu:systemNodeGroup.amiReleaseVersion",
            "'1.35.2' is not an EKS AMI release version",
            id="system-release-format",
        ),
        pytest.param(
            config({"inference": gpu_pool(amiReleaseVersion=_release("al2023", "1.36"))}),
            "eks-gpu:gpuNodeGroups.inference.amiReleaseVersion",
            "is a release for Kubernetes 1.36, but eks-gpu:kubernetesVersion is 1.35",
            id="pool-release-minor",
        ),
        pytest.param(
            config({"inference": gpu_pool(amiType=BOTTLEROCKET, amiReleaseVersion=_release("al2023", "1.35"))}),
            "eks-gpu:gpuNodeGroups.inference.amiReleaseVersion",
            f"is not a Bottlerocket release ({BOTTLEROCKET})",
            id="pool-release-family",
        ),
        pytest.param(
            config({"inference": gpu_pool(amiReleaseVersion=_release("bottlerocket", "1.35"))}),
            "eks-gpu:gpuNodeGroups.inference.amiReleaseVersion",
            "is not an AL2023 release (AL2023_x86_64_NVIDIA)",
            id="pool-release-family-al2023",
        ),
        pytest.param(
            config(amiReleaseVersion={"al2023": _release("al2023", "1.36")}),
            "eks-gpu:amiReleaseVersion.al2023",
            "is a release for Kubernetes 1.36, but eks-gpu:kubernetesVersion is 1.35",
            id="stack-release-minor",
        ),
        pytest.param(
            config(amiReleaseVersion={"bottlerocket": _release("al2023", "1.35")}),
            "eks-gpu:amiReleaseVersion.bottlerocket",
            "is not a Bottlerocket release version such as 1.58.0-c5c37032",
            id="stack-release-family",
        ),
    ],
)
def test_each_version_rule_names_its_key_and_reason(cfg: dict[str, Any], key: str, reason: str) -> None:
    found = problems_of(cfg)
    assert list(found) == [key]
    assert reason in found[key]


# --- AMI releases -----------------------------------------------------------------------------------


def test_an_addon_running_newer_than_eks_default_is_never_moved_back() -> None:
    # pulumi-eks ran VPC CNI and kube-proxy at their newest build before versions were explicit: an
    # existing cluster's may be newer than EKS's default, and the first update must not roll them back
    snapshot = addon_versions()["addons"]["vpc-cni"]["1.35"]["default"]
    newer = snapshot.replace("-eksbuild.", "-eksbuild.9")  # the same release, a later build

    def existing(account: AwsAccount) -> None:
        account.addons_running.update({"vpc-cni": newer, "coredns": "v1.0.0-eksbuild.1"})

    result = run(config(), account_setup=existing)
    sent = _sent(result)
    assert sent["vpc-cni"] == newer
    # an older one moves up to EKS's default, and nothing that does not run yet is read as running
    assert sent["coredns"] == addon_versions()["addons"]["coredns"]["1.35"]["default"]
    pinned = run(config(addons={"vpc-cni": {"version": snapshot}}), account_setup=existing)
    assert _sent(pinned)["vpc-cni"] == snapshot  # a pin still chooses


def test_the_node_monitoring_floor_holds_for_eks_defaults_and_only_where_the_agent_runs() -> None:
    def stale(account: AwsAccount) -> None:
        # an account whose EKS still defaults to the June 2025 build (aws/eks-node-monitoring-agent PR #11)
        account.addon_defaults["eks-node-monitoring-agent"] = "v1.3.0-eksbuild.2"

    found = problems_of(config(), account_setup=stale)
    assert found["eks-gpu:addons.eks-node-monitoring-agent.version"].startswith(
        "v1.3.0-eksbuild.2 (EKS default for Kubernetes 1.35) is older than v1.6.3"
    )
    assert run(config(nodeMonitoring={"enabled": False}), account_setup=stale)
    pinned = config(addons={"eks-node-monitoring-agent": {"version": "v1.6.3-eksbuild.1"}})
    assert run(pinned, account_setup=stale)


def test_a_release_is_sent_when_set_and_never_otherwise() -> None:
    al2023, bottlerocket = _release("al2023", "1.35"), _release("bottlerocket", "1.35")
    result = run(
        config(
            {"serve": gpu_pool(amiReleaseVersion=al2023), "br": gpu_pool(amiType=BOTTLEROCKET)},
            amiReleaseVersion={"bottlerocket": bottlerocket},
        )
    )
    assert node_group(result, "serve")["releaseVersion"] == al2023
    assert node_group(result, "br")["releaseVersion"] == bottlerocket  # the stack's, for its family
    assert "releaseVersion" not in node_group(result, "system")  # EKS's latest at creation, kept
    assert all(g.inputs["updateConfig"]["maxUnavailable"] == MAX_UNAVAILABLE == 1 for g in result.of_type(NODE_GROUP))


def test_the_latest_release_is_read_from_the_parameters_aws_publishes() -> None:
    result = run(config({"br": gpu_pool(amiType=BOTTLEROCKET)}))
    names = {args["name"] for token, args in result.invokes if token == "aws:ssm/getParameter:getParameter"}
    assert names == {
        "/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/standard/recommended/release_version",
        "/aws/service/bottlerocket/aws-k8s-1.35-nvidia/x86_64/latest/image_version",
    }


def test_a_latest_release_that_cannot_be_read_is_never_a_failure() -> None:
    assert "1.34" not in ami_releases()["al2023"]  # the snapshot has none: the account answers ParameterNotFound
    result = run(config(kubernetesVersion="1.34"))
    assert "releaseVersion" not in node_group(result, "inference")
    assert not any("release" in w.lower() for w in result.warnings)


def _plan(tmp_path: Path, name: str, pool: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["eks-gpu:gpuNodeGroups"]["inference"].update(pool)
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    return json.loads(json.dumps(plan.build(path)))


def test_a_release_change_is_a_rolling_update_one_node_at_a_time(tmp_path: Path) -> None:
    latest = _release("al2023", "1.35")
    before = _plan(tmp_path, "before", {})
    after = _plan(tmp_path, "after", {"amiReleaseVersion": latest})
    changes, warnings = diff(before, after)
    ng = {c.name: c for c in changes}["eks-gpu-inference-ng"]
    assert (ng.action, ng.causes, ng.rolls_nodes) == ("update", ["releaseVersion"], True)
    assert [c.name for c in changes] == ["eks-gpu-inference-ng"]
    assert any(
        w.startswith("node group inference (eks-gpu-inference-ng) rolls its nodes (releaseVersion)") for w in warnings
    )
    # the plan shows each pool's release and each add-on's version
    rows = {g["key"]: g for g in after["nodeGroups"]}
    assert (rows["inference"]["amiRelease"], rows["system"]["amiRelease"]) == (latest, None)
    assert rows["system"]["latestAmiRelease"] == latest
    text = plan.render_text(after)
    assert ["AL2023_x86_64_NVIDIA", "inference", latest, latest] in [line.split() for line in text.splitlines()]
    assert "not set: EKS's latest at creation, kept" in text
    addons = {a["name"]: a for a in after["addons"]}
    assert addons["kube-proxy"] == {
        "name": "kube-proxy",
        "version": _default("kube-proxy", "1.35"),
        "eksDefault": _default("kube-proxy", "1.35"),
        "pinned": False,
    }
    kube_proxy = _default("kube-proxy", "1.35")
    assert ["kube-proxy", kube_proxy, kube_proxy, "EKS", "default"] in [line.split() for line in text.splitlines()]
