"""Who reaches the Kubernetes API and who administers it, checked against the account.

The config layer already refused a stack nobody can reach; here the admins' ARNs meet the account:
they must be of this partition, and a cluster whose creator gives up its bootstrap access must
list the identity running ``pulumi`` among its admins, or the program locks itself out.
"""

from __future__ import annotations

import re

from eks_gpu.config import Problem, StackConfig, key_path
from eks_gpu.config.fields import PRINCIPAL_ARN
from eks_gpu.design.lookup import AwsFacts
from eks_gpu.design.model import ApiAccess


def principal_of(arn: str) -> tuple[str, str, str] | None:
    """(account, ``role``/``user``, name) of an IAM ARN or of an assumed-role session's ARN.

    ``arn:aws:sts::111122223333:assumed-role/Deployer/ci-1234`` -> (``111122223333``, ``role``,
    ``Deployer``): the session's role, without its path, as IAM names it in access entries' owner.
    """
    if ":assumed-role/" in arn:
        match = re.match(r"^arn:[^:]+:sts::(\d{12}):assumed-role/([^/]+)/", arn)
        return (match.group(1), "role", match.group(2)) if match else None
    found = PRINCIPAL_ARN.match(arn)
    return (found["account"], found["kind"], found["name"]) if found else None


def design_access(
    config: StackConfig, facts: AwsFacts, profile: str | None, problems: list[Problem], warnings: list[str]
) -> ApiAccess:
    """The endpoint's reach and the cluster's admins, or problems naming their keys."""
    seen: set[str] = set()
    for i, arn in enumerate(config.cluster_admins):
        found = PRINCIPAL_ARN.match(arn)
        if found and found["partition"] != facts.partition:
            problems.append(
                Problem(
                    key_path("clusterAdmins", i),
                    f"'{arn}' is an ARN of partition {found['partition']}, but {facts.region} is in {facts.partition}",
                )
            )
        if arn in seen:
            problems.append(Problem(key_path("clusterAdmins", i), f"lists '{arn}' twice"))
        seen.add(arn)
    caller = principal_of(facts.caller_arn)
    admins = {principal_of(a) for a in config.cluster_admins}
    if not config.cluster_creator_admin and config.cluster_admins and caller not in admins:
        problems.append(
            Problem(
                key_path("clusterAdmins"),
                f"does not list the identity running pulumi ({facts.caller_arn}), and clusterCreatorAdmin is "
                "false: pulumi could not reach the cluster it creates; add that role or user",
            )
        )
    if config.cluster_creator_admin and caller in admins:
        warnings.append(
            f"{key_path('clusterAdmins')}: lists the identity running pulumi ({facts.caller_arn}); when it creates "
            "the cluster, EKS already gives it an access entry (clusterCreatorAdmin), and creating a second one "
            "fails (ResourceInUseException): on a first deploy drop it from clusterAdmins, or set "
            "clusterCreatorAdmin to false"
        )
    return ApiAccess(
        public_cidrs=config.endpoint_public_access_cidrs,
        private_cidrs=config.endpoint_private_access_cidrs,
        private_security_group_ids=config.endpoint_private_access_security_group_ids,
        admins=config.cluster_admins,
        creator_admin=config.cluster_creator_admin,
        profile=profile,
    )
