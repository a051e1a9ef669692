"""Render the Helm charts the program installs, offline, at the versions it pins and with the values it registers.

Chart sources are looked up in :data:`CACHE` (``make charts`` fills it from the chart repositories when
online), then in :data:`SHARED`. A chart found in neither is a skip with the reason, and a failure under
``CI=true``: CI must not go green by rendering nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu.offline import RegisteredResource
from helm_python import Chart

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".charts"
"""The repository's own chart cache (gitignored): ``<chart>-<version>/`` folders."""
SHARED = Path(os.environ.get("EKS_GPU_SHARED_CHARTS") or ROOT.parent / "shared" / "charts")
"""The chart sources at their release tags, shared between worktrees (its README names the tags);
``EKS_GPU_SHARED_CHARTS`` points elsewhere (``make mutation`` runs the suite from a copy in ``mutants/``)."""
FOLDER_VERSION_PREFIX = {"aws-efa-k8s-device-plugin": "v"}
"""Charts whose folder spells the version with a ``v`` (the EFA chart's tags do)."""
AUTONAME_SUFFIX = "-0000000"
"""Pulumi auto-names a release without ``name`` as its logical name and a random 7-hex suffix; the
suffix is fixed here so names (and their 63-character truncation) come out as long as the real ones."""


def folder_name(chart: str, version: str) -> str:
    """The folder of ``chart`` at ``version``: ``<chart>-<version>``, with the chart's version spelling."""
    prefix = FOLDER_VERSION_PREFIX.get(chart, "")
    return f"{chart}-{'' if version.startswith(prefix) else prefix}{version}"


def chart_name(chart: str) -> str:
    """The chart's name from how a release spells it: a repository chart's name as is, an OCI reference
    (``oci://public.ecr.aws/karpenter/karpenter``) by its last path segment, the name Helm gives a chart
    pulled from an OCI registry (https://helm.sh/docs/topics/registries/)."""
    return chart.rstrip("/").rsplit("/", 1)[-1] if chart.startswith("oci://") else chart


def chart_dir(chart: str, version: str) -> Path:
    """The source folder of ``chart`` (a name or an ``oci://`` reference) at ``version``: the cache first,
    then the shared sources.

    Skips the calling test when neither has it, or fails it under ``CI=true``."""
    name = folder_name(chart_name(chart), version)
    for base in (CACHE, SHARED):
        if (base / name / "Chart.yaml").is_file():
            return base / name
    reason = f"chart {chart} {version} not found in {CACHE / name} nor {SHARED / name} (run `make charts` online)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def release_name(release: RegisteredResource) -> str:
    """The Helm release name: the one the program sets, else Pulumi's auto-name."""
    name = release.inputs.get("name")
    return str(name) if name else f"{release.name}{AUTONAME_SUFFIX}"


def render(release: RegisteredResource) -> list[dict[str, Any]]:
    """The manifests a recorded ``kubernetes:helm.sh/v3:Release`` installs, parsed, in template order.

    Uses the release's own chart, version, namespace and values, as a first install does."""
    inputs = release.inputs
    return render_chart(
        inputs["chart"],
        inputs["version"],
        inputs.get("values", {}),
        name=release_name(release),
        namespace=inputs["namespace"],
    )


def render_chart(
    chart: str, version: str, values: dict[str, Any], *, name: str, namespace: str
) -> list[dict[str, Any]]:
    """The manifests ``chart`` at ``version`` installs with ``values`` as release ``name`` in ``namespace``
    (a first install), parsed, in template order; ``NOTES.txt`` left out."""
    source = chart_dir(chart, version)
    with Chart.load(source) as loaded:
        assert loaded.version == version, f"{source} holds {chart} {loaded.version}, not {version}"
        rendered = loaded.render(values, name=name, namespace=namespace, is_install=True)
    manifests: list[dict[str, Any]] = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(rendered[template]) if doc)
    return manifests
