"""Project files agree with the code: Pulumi.yaml's declared defaults are the model's defaults."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from eks_gpu.config import DEFAULT_KUBERNETES_VERSION, StackConfig, parse_config
from eks_gpu.facts.versions import calendar, check_version

from tests.helpers import ROOT


def project() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_project_name_is_the_config_namespace() -> None:
    assert project()["name"] == "eks-gpu"


def test_declared_keys_are_model_fields_with_the_same_defaults() -> None:
    declared = project()["config"]
    fields = {f.alias: f for f in StackConfig.model_fields.values()}
    parsed = parse_config({}, "dev", date(2026, 12, 1))
    # every scalar key the model has is declared, and nothing else
    scalar = {
        "clusterName",
        "kubernetesVersion",
        "environment",
        "endpointPublicAccessCidrs",
        "endpointPrivateAccessCidrs",
        "endpointPrivateAccessSecurityGroupIds",
        "clusterAdmins",
        "clusterCreatorAdmin",
        "logRetentionDays",
        "protect",
    }
    assert set(declared) == scalar and scalar <= set(fields)
    # the declared defaults alone make a valid (GPU-less) stack but for the deployer's own address
    assert [p.key for p in parsed.problems] == ["eks-gpu:endpointPublicAccessCidrs"]
    defaults = {k: v["default"] for k, v in declared.items()}
    reach = {"endpointPrivateAccessCidrs": ["10.20.0.0/16"]}
    cfg = parse_config(defaults | reach, "dev", date(2026, 12, 1)).config
    assert cfg is not None
    assert cfg.kubernetes_version == declared["kubernetesVersion"]["default"]
    assert list(cfg.endpoint_public_access_cidrs) == declared["endpointPublicAccessCidrs"]["default"]
    assert cfg.cluster_name == "eks-gpu-dev" and cfg.environment == "dev"
    assert cfg.protect is declared["protect"]["default"]
    compared = [k for k in fields if k in scalar and k not in reach and k not in ("clusterName", "environment")]
    assert len(compared) == len(scalar) - len(reach) - 2
    for key in compared:
        field = fields[key]
        assert declared[key]["default"] == (
            list(field.default) if isinstance(field.default, tuple) else field.default
        ), key
    # ... and they are docs/configuration.md's
    assert {k: declared[k]["default"] for k in ("kubernetesVersion", "protect", "clusterCreatorAdmin")} == {
        "kubernetesVersion": "1.35",
        "protect": False,
        "clusterCreatorAdmin": True,
    }
    assert declared["logRetentionDays"]["default"] == 90


def test_default_version_is_in_standard_support_when_the_calendar_was_written() -> None:
    cal = calendar()
    # the default docs/configuration.md gives
    assert project()["config"]["kubernetesVersion"]["default"] == DEFAULT_KUBERNETES_VERSION == "1.35"
    verdict = check_version(DEFAULT_KUBERNETES_VERSION, cal.updated)
    assert (verdict.error, verdict.warning) == (None, None)


def test_stack_files_exist() -> None:
    assert Path(ROOT / "Pulumi.dev.yaml").is_file()
