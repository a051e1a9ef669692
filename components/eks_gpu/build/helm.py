"""One way to install a pinned chart: the Helm releases of every component go through :func:`release`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def release(
    name: str,
    *,
    chart: str,
    version: str,
    repository: str | None,
    namespace: str,
    values: Mapping[str, Any],
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    aliases: Sequence[pulumi.Alias] = (),
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """``<name>-release``: ``chart`` at ``version`` from ``repository``, rolled back if an install fails;
    ``aliases`` name what it was called before, so a rename updates it rather than replacing it.

    An OCI chart is named in full by ``chart`` (``oci://public.ecr.aws/karpenter/karpenter``) with
    ``repository=None``: Helm pulls it from the registry, with no repository to add (OCI support of
    ``helm.v3.Release``: pulumi/pulumi-kubernetes#1892). ``skip_crds`` leaves the
    chart's ``crds/`` out (another release installs them); default False."""
    return k8s.helm.v3.Release(
        f"{name}-release",
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repository) if repository is not None else None,
        skip_crds=skip_crds or None,
        namespace=namespace,
        values=dict(values),
        cleanup_on_fail=True,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=provider, depends_on=list(depends_on), aliases=list(aliases) or None
        ),
    )
