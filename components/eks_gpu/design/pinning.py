"""Versions that must not float: the EKS add-ons' versions and the node groups' AMI releases.

**Add-ons.** Every EKS add-on the stack installs gets an explicit ``addon_version``: the pin in
``addons.<name>.version``, else EKS's *default* version for the cluster's Kubernetes version
(``aws.eks.get_addon_version(most_recent=False)``, DescribeAddonVersions' ``defaultVersion``), read at
every run. So a preview shows a change when EKS moves its default, and a Kubernetes upgrade moves the
add-ons with the cluster. pulumi-eks alone would do neither: it sends VPC CNI at the *most recent*
build on every run (``nodejs/eks/addons/cni-addon.ts``: ``getAddonVersionOutput({mostRecent: true})``
unless ``addonVersion`` is given; ``cluster.ts`` likewise for kube-proxy). Since those ran newer than
EKS's default, a version the cluster already runs is never moved back unless pinned.

**AMI releases.** A node group's ``releaseVersion`` is the pool's ``amiReleaseVersion``, else the
stack's ``amiReleaseVersion.<family>``, else not sent. Not sending it is the default on purpose: the
AWS provider's ``release_version`` is Optional+Computed (terraform-provider-aws
``internal/service/eks/node_group.go``), so EKS takes its latest release at creation, and at every
Kubernetes upgrade (``UpdateNodegroupVersion`` with only the version), and no later run sees a
difference: a weekly AMI never rolls GPU nodes on an unrelated ``pulumi up``. Resolving "latest" into
the input instead would float (every run a new value, every new value a node roll); resolving it and
adding ``ignore_changes`` would freeze the creation-time release in the stored inputs, and after a
Kubernetes upgrade (EKS moves the release, refresh records it) the stale input would ask EKS to go
back to the old minor's release. A set release is sent, and changing it is ``UpdateNodegroupVersion``:
a rolling replacement of every node that honours ``update_config`` (one at a time here). The latest
release AWS publishes (SSM, :func:`release_parameter`) is read at every run and offered in notes and
in ``make plan``; reading it needs ``ssm:GetParameter`` and a failure only loses the offer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from eks_gpu.config import AmiType, Problem, StackConfig, key_path
from eks_gpu.config.models import AL2023_RELEASE, is_bottlerocket_release
from eks_gpu.design.model import AddonVersionDesign
from eks_gpu.facts import node_monitoring

MINIMUM_VERSIONS = {"eks-node-monitoring-agent": node_monitoring.CONFIGURATION_SINCE}
"""Add-on -> the oldest version that takes the configuration values the program sends it."""
CLUSTER_ADDONS = ("vpc-cni", "kube-proxy", "coredns")
"""The add-ons every cluster gets (the first two through pulumi-eks, CoreDNS once the system nodes run)."""


def installed_addons(config: StackConfig) -> tuple[str, ...]:
    """The EKS add-ons the stack installs, by EKS name: the one place that decides it (the build installs
    exactly those with a version; the Pod Identity agent whenever something uses Pod Identity;
    CloudWatch only with GPU pools to watch)."""
    cloudwatch = config.gpu_metrics.exporter == "cloudwatch" and bool(config.gpu_node_groups)
    ebs = config.storage.ebs_csi_driver
    optional = {
        # Pod Identity users: the EBS CSI driver, the autoscaler or Karpenter's controller, CloudWatch's agent
        "eks-pod-identity-agent": ebs or config.autoscaler.enabled or config.provisioner == "karpenter" or cloudwatch,
        "eks-node-monitoring-agent": config.node_monitoring.enabled,
        "aws-ebs-csi-driver": ebs,
        "amazon-cloudwatch-observability": cloudwatch,
    }
    # An existing cluster runs its own (eks-gpu:existingCluster): the program never installs them there.
    own = () if config.existing_cluster is not None else CLUSTER_ADDONS
    return own + tuple(name for name, on in optional.items() if on)


def design_addon_versions(
    config: StackConfig,
    defaults: Mapping[str, str],
    errors: Mapping[str, str],
    problems: list[Problem],
    warnings: list[str],
    notes: list[str],
    running: Mapping[str, str] | None = None,
) -> dict[str, AddonVersionDesign]:
    """The version of each installed add-on: its pin, else EKS's default (``defaults``, read by
    :func:`eks_gpu.design.lookup.lookup`), but never older than what the cluster runs (``running``):
    an add-on is not moved back by the program (before explicit versions pulumi-eks ran VPC CNI and
    kube-proxy at their newest build, newer than EKS's default); a pin still can. An add-on EKS gave
    no default for, and that is not pinned, is a problem: EKS would refuse to create it for this
    Kubernetes version."""
    running = running or {}
    pins = config.addons.pins()
    out: dict[str, AddonVersionDesign] = {}
    for name in installed_addons(config):
        default = defaults.get(name)
        pin = pins.get(name)
        if pin is None and default is None:
            problems.append(
                Problem(
                    key_path("addons", name, "version"),
                    f"EKS offers no default version of {name} for Kubernetes {config.kubernetes_version} "
                    f"({errors.get(name, 'not read')}): pin one that `aws eks describe-addon-versions --addon-name "
                    f"{name} --kubernetes-version {config.kubernetes_version}` lists",
                )
            )
            continue
        if pin is not None and default is None and name in errors:
            warnings.append(
                f"{key_path('addons', name, 'version')}: EKS's default version of {name} could not be read "
                f"({errors[name]}); using the pin {pin}"
            )
        version = pin or str(default)
        now = running.get(name)
        if pin is None and now is not None and _release(now) > _release(version):
            notes.append(
                f"{key_path('addons', name, 'version')}: {name} stays at {now}, which the cluster runs, newer "
                f"than EKS's default {version} for Kubernetes {config.kubernetes_version}: the program never moves "
                "an add-on back; pin a version to choose one"
            )
            version = now
        floor = MINIMUM_VERSIONS.get(name)
        if floor is not None and _release(version) < _release(floor):
            problems.append(
                Problem(
                    key_path("addons", name, "version"),
                    f"{version} ({'pinned' if pin else 'EKS default for Kubernetes ' + config.kubernetes_version}) is "
                    f"older than {floor}, the first version whose configuration takes the values the program sends "
                    f"(the DCGM host engine's tolerations and placement); pin {floor} or a later one that `aws eks "
                    f"describe-addon-versions --addon-name {name} --kubernetes-version {config.kubernetes_version}` "
                    "lists",
                )
            )
        out[name] = AddonVersionDesign(name=name, version=version, eks_default=default, pinned=bool(pin))
    return out


def _release(version: str) -> tuple[int, ...]:
    """``v1.6.3-eksbuild.1`` -> ``(1, 6, 3, 1)``: add-on versions in the order EKS releases them."""
    numbers = [int(n) for n in re.findall(r"\d+", version)]
    return tuple(numbers)


# --- AMI releases -----------------------------------------------------------------------------------


def release_parameter(ami_type: AmiType, kubernetes_version: str) -> str:
    """The SSM parameter AWS publishes with the latest release of ``ami_type`` for a Kubernetes version
    (EKS User Guide, "retrieve-ami-id" and "retrieve-ami-id-bottlerocket")."""
    arch = ami_type.architecture.value
    if ami_type.bottlerocket:
        flavor = ("-nvidia" if ami_type.nvidia else "") + ("-fips" if ami_type.value.endswith("_FIPS") else "")
        return f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}{flavor}/{arch}/latest/image_version"
    flavor = "nvidia" if ami_type.nvidia else "standard"
    return (
        f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/{arch}/{flavor}"
        "/recommended/release_version"
    )


def family(ami_type: AmiType) -> str:
    """The AMI family whose releases a node group takes: ``al2023`` or ``bottlerocket``."""
    return "bottlerocket" if ami_type.bottlerocket else "al2023"


def release_problem(release: str, ami_type: AmiType, kubernetes_version: str) -> str | None:
    """Why ``release`` cannot be a node group's release for ``ami_type`` on ``kubernetes_version``, or None."""
    al2023 = AL2023_RELEASE.match(release)
    if ami_type.bottlerocket and not is_bottlerocket_release(release):
        return f"'{release}' is not a Bottlerocket release ({ami_type.value}); use one such as 1.58.0-c5c37032"
    if not ami_type.bottlerocket:
        if not al2023:
            return f"'{release}' is not an AL2023 release ({ami_type.value}); use one such as 1.35.2-20260304"
        if al2023["minor"] != kubernetes_version:
            return (
                f"'{release}' is a release for Kubernetes {al2023['minor']}, but eks-gpu:kubernetesVersion is "
                f"{kubernetes_version}: EKS refuses a release of another minor version; upgrade both together "
                "or unset it (EKS then takes its latest for the new version)"
            )
    return None


def stack_release_problems(config: StackConfig) -> list[Problem]:
    """The stack-level AL2023 release must be one of the cluster's Kubernetes minor version."""
    release = config.ami_release_version.al2023
    match = AL2023_RELEASE.match(release or "")
    if release is None or match is None or match["minor"] == config.kubernetes_version:
        return []
    return [
        Problem(
            key_path("amiReleaseVersion", "al2023"),
            release_problem(release, AmiType.AL2023_x86_64_STANDARD, config.kubernetes_version) or "",
        )
    ]
