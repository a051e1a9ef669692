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
    repository: str,
    namespace: str,
    values: Mapping[str, Any],
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    aliases: Sequence[pulumi.Alias] = (),
) -> k8s.helm.v3.Release:
    """``<name>-release``: ``chart`` at ``version`` from ``repository``, rolled back if an install fails;
    ``aliases`` name what it was called before, so a rename updates it rather than replacing it."""
    return k8s.helm.v3.Release(
        f"{name}-release",
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repository),
        namespace=namespace,
        values=dict(values),
        cleanup_on_fail=True,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=provider, depends_on=list(depends_on), aliases=list(aliases) or None
        ),
    )
