"""Refresh the offline account's version snapshots from a real account's answers (run it online).

    # add-ons: one describe-addon-versions answer per add-on and Kubernetes version
    for v in 1.32 1.33 1.34 1.35 1.36; do for a in vpc-cni kube-proxy coredns eks-pod-identity-agent \\
        eks-node-monitoring-agent aws-ebs-csi-driver amazon-cloudwatch-observability; do
      aws eks describe-addon-versions --addon-name $a --kubernetes-version $v > answers/$a@$v.json; done; done
    python -m eks_gpu.offline.data.refresh_versions addons answers/ "aws eks describe-addon-versions, <account>, <date>"

    # AMI releases: one get-parameter answer per family and Kubernetes version
    # (the names: eks_gpu.design.pinning.release_parameter)
    aws ssm get-parameter --name "$(release_parameter AL2023_x86_64_STANDARD 1.35)" > amis/al2023@1.35.json
    aws ssm get-parameter --name "$(release_parameter BOTTLEROCKET_x86_64 1.35)" > amis/bottlerocket@1.35.json
    python -m eks_gpu.offline.data.refresh_versions amis amis/ "aws ssm get-parameter, <date>"

Each writes its JSON file here with the given source and today's date, replacing the entries it read.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _answers(folder: Path) -> list[tuple[str, str, Any]]:
    """(name, Kubernetes version, parsed answer) of every ``<name>@<version>.json`` in ``folder``."""
    out = []
    for path in sorted(folder.glob("*@*.json")):
        name, _, version = path.stem.rpartition("@")
        out.append((name, version, json.loads(path.read_text())))
    return out


def addon_entry(answer: Any, kubernetes: str) -> dict[str, str]:
    """The default and the newest version of one DescribeAddonVersions answer for ``kubernetes``."""
    versions = [v for addon in answer["addons"] for v in addon["addonVersions"]]
    default = next(
        v["addonVersion"]
        for v in versions
        for c in v["compatibilities"]
        if c["clusterVersion"] == kubernetes and c.get("defaultVersion")
    )
    return {"default": default, "latest": versions[0]["addonVersion"]}  # EKS lists the newest first


def main(argv: list[str]) -> int:
    kind, folder, source = argv
    target = HERE / ("eks_addon_versions.json" if kind == "addons" else "eks_ami_releases.json")
    data = json.loads(target.read_text())
    for name, kubernetes, answer in _answers(Path(folder)):
        if kind == "addons":
            data["addons"].setdefault(name, {})[kubernetes] = addon_entry(answer, kubernetes)
        else:
            value = answer["Parameter"]["Value"]
            data[name].setdefault(kubernetes, {}).update(release=value, source=f"{answer['Parameter']['Name']}")
    if kind == "addons":
        data["source"] = source
    data["updated"] = date.today().isoformat()
    target.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
