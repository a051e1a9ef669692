"""Fill the chart cache (``.charts/<chart>-<version>/``) from the chart repositories: ``make charts``, online.

Each chart at the version the program pins, from the repository it installs it from; the archive is checked
against the digest in the repository's ``index.yaml``. Charts already in the cache are left alone.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import yaml
from eks_gpu.build import autoscaler, device_plugin
from eks_gpu.config import DEVICE_PLUGIN_CHART_VERSION
from eks_gpu.facts.releases import autoscaler_releases

from tests.charts import CACHE, folder_name

TIMEOUT = 60
"""Seconds per download."""


def pinned() -> list[tuple[str, str, str]]:
    """(chart, version, repository) of every chart the program installs by default."""
    return [
        (autoscaler.CHART, autoscaler_releases().chart_version, autoscaler.REPOSITORY),
        (device_plugin.CHART, DEVICE_PLUGIN_CHART_VERSION, device_plugin.REPOSITORY),
    ]


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        data: bytes = response.read()
    return data


def fetch(chart: str, version: str, repository: str, cache: Path = CACHE) -> Path:
    """Put ``chart`` at ``version`` into ``cache``; return its folder."""
    target = cache / folder_name(chart, version)
    if (target / "Chart.yaml").is_file():
        return target
    base = repository.rstrip("/") + "/"
    index = yaml.safe_load(download(urljoin(base, "index.yaml")))
    entries = [e for e in index["entries"].get(chart, []) if e["version"] == version]
    if not entries:
        raise SystemExit(f"{repository} has no {chart} {version}")
    entry = entries[0]
    archive = download(urljoin(base, entry["urls"][0]))
    digest = hashlib.sha256(archive).hexdigest()
    if entry.get("digest") and entry["digest"] != digest:
        raise SystemExit(f"{chart} {version}: sha256 {digest} is not the index's {entry['digest']}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp, tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
        # A chart archive holds one folder named after the chart.
        (Path(tmp) / chart).rename(target)
    return target


def main() -> None:
    for chart, version, repository in pinned():
        print(fetch(chart, version, repository))


if __name__ == "__main__":
    main()
