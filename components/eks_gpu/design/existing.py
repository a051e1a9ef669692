"""GPU pools on an EKS cluster that exists: what the program reads from it, and how the design uses it.

The cluster is read with ``aws.eks.get_cluster`` (DescribeCluster), its subnets' routes with the
same invokes as a bring-your-own VPC's (:mod:`eks_gpu.design.lookup`), before any resource is
registered. The cluster then stands where the stack's own would: its version is the stack's
``kubernetesVersion``, its VPC and the nodes' subnets are the stack's ``vpc`` (an existing one), and
the design goes on as for any stack. What the cluster runs already (the add-ons the stack would
install) is used as it is: never created, updated or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

import pulumi_aws as aws

from eks_gpu.config import ConfigError, ExistingVpc, ParsedConfig, Problem, key_path
from eks_gpu.design.lookup import _default_route, read_running_addons
from eks_gpu.design.model import ExistingClusterDesign, NodeGroupDesign
from eks_gpu.design.pinning import installed_addons
from eks_gpu.facts import versions
from eks_gpu.facts.karpenter import CHART_VERSION, INTERRUPTION_QUEUE_TAG

NAME_KEY = key_path("existingCluster", "name")
SUBNETS_KEY = key_path("existingCluster", "subnetIds")
_VPC_SUBNETS_KEY = key_path("vpc", "privateSubnetIds")
"""The key the bring-your-own VPC checks name; here the subnets come from ``existingCluster``."""


@dataclass(frozen=True)
class ClusterFacts:
    """An existing EKS cluster as DescribeCluster reports it."""

    name: str
    arn: str
    version: str
    status: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    """The cluster's own subnets (where its control plane's network interfaces are)."""
    security_group_id: str
    endpoint: str
    certificate_authority: str
    authentication_mode: str
    queue_tags: Mapping[str, str] | None = None
    """With Karpenter: the tags of the SQS queue named after the cluster, None when there is none
    (:func:`read_queue_tags`)."""
    queue_error: str | None = None
    """With Karpenter: AWS's message when that queue could not be read."""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_cluster(name: str) -> ClusterFacts:
    """The cluster ``name`` in the stack's region (``aws.eks.get_cluster``); a cluster that is not
    there (or cannot be read) is a :class:`ConfigError` naming ``eks-gpu:existingCluster.name``."""
    try:
        cluster = aws.eks.get_cluster(name=name)
    except Exception as exc:
        raise ConfigError(
            [Problem(NAME_KEY, f"'{name}' is not an EKS cluster this deployer can read ({_first_line(exc)})")]
        ) from None
    access = cluster.access_configs[0] if cluster.access_configs else None
    return ClusterFacts(
        name=cluster.name,
        arn=cluster.arn,
        version=cluster.version,
        status=cluster.status,
        vpc_id=cluster.vpc_config.vpc_id,
        subnet_ids=tuple(cluster.vpc_config.subnet_ids),
        security_group_id=cluster.vpc_config.cluster_security_group_id,
        endpoint=cluster.endpoint,
        certificate_authority=cluster.certificate_authorities[0].data,
        # DescribeCluster leaves accessConfig out for a cluster made before access entries: aws-auth only
        authentication_mode=access.authentication_mode if access else "CONFIG_MAP",
    )


QUEUE_MISSING = ("NonExistentQueue", "QueueDoesNotExist", "does not exist")
"""How SQS's GetQueueUrl says a queue is not there (botocore ``sqs`` model: ``QueueDoesNotExist``, whose
query-protocol code is ``AWS.SimpleQueueService.NonExistentQueue``)."""


def read_queue_tags(name: str) -> tuple[dict[str, str] | None, str | None]:
    """The tags of the SQS queue ``name`` (``aws.sqs.get_queue``): None when there is none; with AWS's
    message when it could not be read."""
    try:
        queue = aws.sqs.get_queue(name=name)
    except Exception as exc:
        message = _first_line(exc)
        return None, None if any(marker in message for marker in QUEUE_MISSING) else message
    return dict(queue.tags or {}), None


def private_subnets(cluster: ClusterFacts) -> tuple[str, ...]:
    """The cluster's subnets whose default route does not go to an internet gateway: where nodes go
    without public addresses (NAT, Transit Gateway or no default route: the VPC checks warn)."""
    return tuple(
        sid for sid in cluster.subnet_ids if not (_default_route(sid, cluster.vpc_id) or "").startswith("igw-")
    )


def adopt(parsed: ParsedConfig, today: date) -> tuple[ParsedConfig, ClusterFacts | None]:
    """``parsed`` with the existing cluster in place of the cluster settings: its version and VPC, the
    nodes' subnets as the VPC's private subnets. Unchanged (and no cluster) without ``existingCluster``
    or when the config did not parse (its problems are raised later, with the AWS checks')."""
    config = parsed.config
    if config is None or config.existing_cluster is None:
        return parsed, None
    cluster = read_cluster(config.existing_cluster.name)
    if parsed.karpenter:  # Karpenter's interruption queue is named after the cluster: is one there already?
        tags, error = read_queue_tags(cluster.name)
        cluster = replace(cluster, queue_tags=tags, queue_error=error)
    problems = list(parsed.problems)
    warnings = list(parsed.warnings)
    if cluster.status != "ACTIVE":
        why = f"'{cluster.name}' is {cluster.status}: node groups can be added to an ACTIVE cluster only"
        problems.append(Problem(NAME_KEY, why))
    verdict = versions.check_version(cluster.version, today)
    # The cluster's version is its owner's to move: what would refuse a version here only warns.
    for message in filter(None, (verdict.error, verdict.warning)):
        warnings.append(f"{NAME_KEY}: Kubernetes {cluster.version} of '{cluster.name}': {message}")
    subnets = config.existing_cluster.subnet_ids or private_subnets(cluster)
    vpc = ExistingVpc.model_construct(id=cluster.vpc_id, private_subnet_ids=tuple(subnets), public_subnet_ids=())
    adopted = config.model_copy(update={"kubernetes_version": cluster.version, "vpc": vpc})
    unusable = bool(problems)
    # Whether the cluster runs an add-on decides whether the program creates it: a read that fails for
    # another reason than "not there" must not pass for "not running" (creating it next to a running one).
    _, unreadable = read_running_addons(installed_addons(adopted), cluster.name)
    for name, message in sorted(unreadable.items()):
        problems.append(
            Problem(
                NAME_KEY,
                f"cannot tell whether '{cluster.name}' runs the {name} add-on, which the program would otherwise "
                f"install: reading it failed ({message}); the deployer needs eks:DescribeAddon on the cluster",
            )
        )
    return (
        replace(
            parsed,
            config=None if unusable else adopted,
            vpc=vpc,
            problems=tuple(problems),
            warnings=tuple(warnings),
            extended_support=verdict.extended_support,
        ),
        cluster,
    )


def subnet_key(text: str) -> str:
    """A bring-your-own VPC check's message or key, naming ``existingCluster.subnetIds`` instead."""
    return text.replace(_VPC_SUBNETS_KEY, SUBNETS_KEY)


def renamed(problems: list[Problem]) -> list[Problem]:
    """``problems`` with the VPC subnet checks' keys naming ``existingCluster.subnetIds``."""
    return [Problem(subnet_key(p.key), subnet_key(p.message)) for p in problems]


def existing_design(
    cluster: ClusterFacts,
    running: Mapping[str, str],
    pins: Mapping[str, str],
    pools: Mapping[str, NodeGroupDesign],
    problems: list[Problem],
    warnings: list[str],
    notes: list[str],
    karpenter: bool = False,
) -> ExistingClusterDesign:
    """The cluster as the build uses it; a pin of an add-on it runs is refused (the program would not
    apply it), and what the program cannot set on a running add-on is said. With ``karpenter``
    (``provisioner: karpenter``), a cluster whose nodes can join only through the aws-auth ConfigMap is
    refused: Karpenter's nodes join through an access entry for its node role, which the program adds; so
    is one with an SQS queue named after it that this stack did not make (``cluster.queue_tags``): another
    Karpenter's interruption queue."""
    queue_tags, queue_error = cluster.queue_tags, cluster.queue_error
    own_queue_name = f"{cluster.name}-{INTERRUPTION_QUEUE_TAG}"
    for name, version in sorted(running.items()):
        if name in pins:
            problems.append(
                Problem(
                    key_path("addons", name, "version"),
                    f"cannot be set: '{cluster.name}' runs {name} {version} already, which the program uses as it is "
                    "and never changes; remove the pin (or update the add-on where the cluster is managed)",
                )
            )
        notes.append(f"{NAME_KEY}: '{cluster.name}' runs {name} {version}: used as it is, not managed by this stack")
    tainted = sorted(key for key, pool in pools.items() if pool.taints)
    if "eks-node-monitoring-agent" in running and tainted:
        warnings.append(
            f"{NAME_KEY}: the cluster's own eks-node-monitoring-agent runs its DCGM server only on nodes whose taints "
            f"it tolerates (none by default): give its configuration values dcgmAgent.tolerations for the taints of "
            f"{', '.join(tainted)}, or the pools' GPU faults reach neither node auto-repair nor dcgm-exporter"
        )
    if karpenter and cluster.authentication_mode == "CONFIG_MAP":
        problems.append(
            Problem(
                key_path("provisioner"),
                f"karpenter needs '{cluster.name}' to take access entries (authentication mode API or "
                "API_AND_CONFIG_MAP): Karpenter's nodes join through an EC2_LINUX access entry for its node role, and "
                "this cluster authenticates through the aws-auth ConfigMap only, which the program does not edit; "
                f"switch it with aws eks update-cluster-config --name {cluster.name} --access-config "
                "authenticationMode=API_AND_CONFIG_MAP, or use clusterAutoscaler",
            )
        )
    elif karpenter and queue_error is not None:
        problems.append(
            Problem(
                NAME_KEY,
                f"cannot tell whether '{cluster.name}' runs a Karpenter already: reading the SQS queue "
                f"'{cluster.name}' (where Karpenter's interruption queue would be) failed ({queue_error}); "
                "the deployer needs sqs:GetQueueUrl, sqs:GetQueueAttributes and sqs:ListQueueTags",
            )
        )
    elif karpenter and queue_tags is not None and queue_tags.get("Name") != own_queue_name:
        problems.append(
            Problem(
                NAME_KEY,
                f"'{cluster.name}' has an SQS queue named '{cluster.name}' that this stack did not make (its Name tag "
                f"is not {own_queue_name}): the interruption queue of a Karpenter the cluster runs already, by "
                "Karpenter's own install. Creating it again would take that queue over, and a destroy delete it; "
                "give this stack's pools to that Karpenter (your own NodePools), or use clusterAutoscaler",
            )
        )
    elif karpenter and queue_tags is None:  # once this stack's queue exists, its Karpenter is the one there
        warnings.append(
            f"{NAME_KEY}: the program installs Karpenter {CHART_VERSION} on '{cluster.name}' (its CRDs, controller, "
            f"an interruption queue named '{cluster.name}'): a cluster that runs a Karpenter already cannot take a "
            "second one (the CRDs belong to its Helm release, and both would act on the same NodePools); "
            "give this stack's pools to that one instead"
        )
    if cluster.authentication_mode == "CONFIG_MAP":
        notes.append(
            f"{NAME_KEY}: '{cluster.name}' authenticates through the aws-auth ConfigMap only: EKS adds the node role "
            "there for managed node groups; the deployer must be mapped there too to create the Kubernetes objects"
        )
    return ExistingClusterDesign(
        name=cluster.name,
        arn=cluster.arn,
        version=cluster.version,
        endpoint=cluster.endpoint,
        certificate_authority=cluster.certificate_authority,
        security_group_id=cluster.security_group_id,
        authentication_mode=cluster.authentication_mode,
        addons_running=dict(running),
    )
