"""`eks-gpu plan`: its exit codes reach the shell, and every user mistake is a message, not a traceback.

Two runs go through the installed console script (a child process each: the code must survive the
script's own exit); the rest call :func:`eks_gpu.cli.run` in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from eks_gpu import cli
from eks_gpu.config import ConfigError, parse_config
from eks_gpu.config.problems import namespace_lookalike
from eks_gpu.design import load
from eks_gpu.facts.registries import addon_registries
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import load_stack_file

from tests import aws_data
from tests.helpers import ROOT, run_plan

SCRIPT = Path(sys.executable).parent / "eks-gpu"
"""The console script ``pip install`` made from ``[project.scripts]``, beside the interpreter."""
REACH = {"endpointPublicAccessCidrs": ["198.18.0.20/32"]}


def stack_file(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """``Pulumi.dev.yaml`` changed by ``change`` (on its ``config:``), as ``<tmp_path>/<name>/Pulumi.dev.yaml``."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    change(document["config"])
    path = tmp_path / name / "Pulumi.dev.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document))
    return path


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``eks-gpu plan ARGS`` in this process: exit code, stdout, stderr."""
    code = cli.run(["plan", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def over_budget(config: dict[str, Any]) -> None:
    # the calendar's newest version: the child process runs on the real date, not the suite's
    config.update({"eks-gpu:budget": {"maxUsdPerHour": 0.01}, "eks-gpu:kubernetesVersion": calendar().newest()})


@pytest.fixture(scope="module")
def over_budget_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The console script on a stack over its budget (a mandatory policy violation), and its JSON."""
    path = stack_file(tmp_path_factory.mktemp("cli"), "budget", over_budget)
    done = script("plan", "--stack-file", str(path), "--json")
    saved = path.parent / "plan.json"
    saved.write_text(done.stdout)
    return done, saved


def test_a_mandatory_policy_violation_exits_4_through_the_console_script(
    over_budget_plan: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _ = over_budget_plan
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stdout)["policy"]["mandatory"] == 1  # the plan is still printed
    assert done.stderr == "error: 1 mandatory policy violation\n"


def test_an_unknown_region_exits_1_through_the_console_script_with_the_regions(tmp_path: Path) -> None:
    path = stack_file(tmp_path, "region", lambda c: c.update({"aws:region": "eu-west-9"}))
    done = script("plan", "--stack-file", str(path))
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "aws:region: 'eu-west-9' is not a region EKS runs in; it runs in " in done.stderr
    assert ", ".join(sorted(addon_registries().registries)) in done.stderr


def test_fail_on_replace_exits_3_and_a_plan_with_nothing_to_fail_on_0(
    over_budget_plan: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, old = over_budget_plan

    def bigger(config: dict[str, Any]) -> None:
        over_budget(config)
        config["eks-gpu:budget"]["maxUsdPerHour"] = 1000
        config["eks-gpu:gpuNodeGroups"]["inference"]["instanceTypes"] = ["g6.2xlarge"]

    new = str(stack_file(tmp_path, "new", bigger))
    code, _, err = plan(capsys, "--stack-file", new, "--against", str(old), "--fail-on", "replace")
    changes = json.loads(plan(capsys, "--stack-file", new, "--against", str(old), "--json")[1])["changes"]
    replaced = [c for c in changes if c["action"] == "replace"]
    (group,) = [c["name"] for c in replaced if c["type"] == "aws:eks/nodeGroup:NodeGroup"]
    tags = [c for c in replaced if c["type"] == "aws:autoscaling/tag:Tag"]
    assert len(replaced) == 1 + len(tags) and len(tags) > 1
    # one per ASG tag would bury the node group: collapsed as the review shows them
    assert (code, err) == (3, f"error: --fail-on replace: {group} and its {len(tags)} ASG tags\n")
    assert plan(capsys, "--stack-file", new, "--against", str(old))[0] == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan(capsys, "--quota", "L-1216C47A") == (
        2,
        "",
        "error: --quota takes CODE=VCPUS, e.g. L-DB2E81BA=64, not ['L-1216C47A']\n",
    )
    with pytest.raises(SystemExit) as exit_:
        cli.run(["plan", "--bogus"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        cli.run(["nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope' (choose from 'plan')" in capsys.readouterr().err


def test_a_yaml_error_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n  eks-gpu:tags:\n    team: [ml\n")
    code, out, err = plan(capsys, "--stack-file", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {path}:5:1: not valid YAML: while parsing a flow sequence")


def test_a_missing_stack_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, "--stack-file", str(tmp_path / "Pulumi.gone.yaml"))
    assert code == 1 and "No such file or directory" in err


def test_the_programs_errors_come_together_with_what_was_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def mistaken(config: dict[str, Any]) -> None:
        config["eks_gpu:tags"] = config.pop("eks-gpu:tags")
        config["eks-gpu:gpuNodeGroups"]["inference"]["instanceTypes"] = ["g6.xlarg"]
        config["eks-gpu:systemNodeGroup"]["instanceTypes"] = "t3.medium"

    code, out, err = plan(capsys, "--stack-file", str(stack_file(tmp_path, "bad", mistaken)))
    assert (code, out) == (1, "")
    assert aws_data.catalogue().get("g6.xlarg") is None and "g6.xlarge" in aws_data.catalogue()
    problems = [line.removeprefix("  - ") for line in err.splitlines()[1:]]
    assert sorted(problems) == [
        "eks-gpu:gpuNodeGroups.inference.instanceTypes[0]: 'g6.xlarg' is not offered in any available AZ of "
        "us-east-1 (or does not exist); did you mean g6.xlarge?",
        "eks-gpu:systemNodeGroup.instanceTypes: must be a list, e.g. [t3.medium] (got 't3.medium')",
        "eks_gpu:tags: is not read: the program reads the eks-gpu namespace only; did you mean eks-gpu:tags?",
    ]


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("eks_gpu:tags", "eks-gpu:tags"),
        ("eksgpu:tags", "eks-gpu:tags"),
        ("EKS-GPU:tags", "eks-gpu:tags"),
        ("eks-gp:tags", "eks-gpu:tags"),
        ("eks-gpu-tags", "eks-gpu:tags"),
        ("eks-gpu.gpuNodeGroup", "eks-gpu:gpuNodeGroups"),
        ("eks-gpu:tags", None),
        ("aws:region", None),
        ("kubernetes:context", None),
        ("eks:tags", None),
        ("my-gpus:tags", None),
    ],
)
def test_a_key_outside_the_namespace_that_looks_like_ours(key: str, meant: str | None) -> None:
    from eks_gpu.config.parse import TOP_LEVEL_KEYS

    assert namespace_lookalike(key, TOP_LEVEL_KEYS) == meant


def test_the_programs_config_error_says_which_key_was_meant() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35", "eksgpu:tags": {"a": "b"}}, "dev", date(2026, 12, 1))
    assert [str(p) for p in parsed.problems] == [
        "eksgpu:tags: is not read: the program reads the eks-gpu namespace only; did you mean eks-gpu:tags?"
    ]
    assert parsed.config is None


def test_a_key_without_namespace_in_the_stack_file_says_which_was_meant(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n  eks-gpu-tags:\n    team: ml\n")
    with pytest.raises(
        ValueError,
        match=r"config key 'eks-gpu-tags' must be of the form <namespace>:<name> \(did you mean eks-gpu:tags\?\)",
    ):
        load_stack_file(path)


def test_the_program_refuses_an_unknown_region_before_asking_aws() -> None:
    with pytest.raises(ConfigError) as err:
        load({**REACH, "kubernetesVersion": "1.35"}, "dev", "us-east1", date(2026, 12, 1))
    (problem,) = err.value.problems
    assert problem.key == "aws:region"
    assert problem.message.startswith("'us-east1' is not a region EKS runs in (did you mean us-east-1?); it runs in ")


@pytest.mark.parametrize(
    ("content", "lacks"),
    [
        ("{}", 'it has no "resources" list'),
        ("[]", "it is a list, not a JSON object"),
        ('{"resources": [{"urn": "u", "inputs": {}}]}', "resources[0] has no name, type"),
        ("plan:", "not JSON"),
    ],
)
def test_an_against_file_that_is_not_a_plan_is_a_usage_error_naming_what_it_lacks(
    content: str, lacks: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.json"
    old.write_text(content)
    code, _, err = plan(capsys, "--against", str(old))
    assert code == 2 and err.startswith(f"error: --against: {old}: ") and lacks in err, err


@pytest.mark.parametrize("fail_on", ["replace", "rolls-nodes"])
def test_fail_on_without_against_is_a_usage_error(fail_on: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan(capsys, "--fail-on", fail_on) == (
        2,
        "",
        f"error: --fail-on {fail_on} needs --against OLD.json: without an earlier plan there is no change to fail on\n",
    )


def test_a_diagram_that_cannot_be_written_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "no-such-dir" / "arch.md"
    code, _, err = plan(capsys, "--diagram", str(where))
    assert (code, err) == (2, f"error: --diagram {where}: cannot write it (No such file or directory)\n")


def test_an_unknown_stack_names_the_stack_files_there(capsys: pytest.CaptureFixture[str]) -> None:
    stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
    assert {"dev", "prod"} <= set(stacks)
    assert plan(capsys, "--stack", "nope") == (
        1,
        "",
        f"error: no stack file Pulumi.nope.yaml in {ROOT}; stacks here: {', '.join(stacks)}\n",
    )


def test_an_unknown_region_comes_with_the_files_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def mistaken(config: dict[str, Any]) -> None:
        config["aws:region"] = "us-east-9"
        config["eks_gpu:tags"] = config.pop("eks-gpu:tags")
        config["eks-gpu:systemNodeGroup"]["instanceTypes"] = "t3.medium"

    code, out, err = plan(capsys, "--stack-file", str(stack_file(tmp_path, "bad", mistaken)))
    assert (code, out) == (1, "")
    problems = [line.removeprefix("  - ") for line in err.splitlines()[1:]]
    assert problems[:2] == [
        "eks_gpu:tags: is not read: the program reads the eks-gpu namespace only; did you mean eks-gpu:tags?",
        "eks-gpu:systemNodeGroup.instanceTypes: must be a list, e.g. [t3.medium] (got 't3.medium')",
    ]
    assert len(problems) == 3 and problems[2].startswith("aws:region: 'us-east-9' is not a region EKS runs in")


def test_a_real_type_the_region_does_not_offer_is_named_so_without_a_lookalike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region, wanted = "eu-west-1", "p5.48xlarge"
    assert wanted in aws_data.catalogue() and wanted not in aws_data.offerings(region)  # moto's catalogue says so

    def elsewhere(config: dict[str, Any]) -> None:
        config["aws:region"] = region
        del config["eks-gpu:vpc"]["availabilityZones"]
        config["eks-gpu:gpuNodeGroups"]["inference"]["instanceTypes"] = [wanted]

    code, out, err = plan(capsys, "--stack-file", str(stack_file(tmp_path, "p5", elsewhere)))
    assert (code, out) == (1, "")
    assert err.splitlines()[1:] == [
        f"  - eks-gpu:gpuNodeGroups.inference.instanceTypes[0]: '{wanted}' exists but is not offered in any "
        f"available AZ of {region}; choose a type the region offers, or another aws:region"
    ]


def test_plan_plans_the_pulumi_project_it_is_run_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform team's own program that builds eks-gpu (examples/embedded) is planned like this one:
    the project is the folder's (or --project's) Pulumi.yaml and Python program."""
    monkeypatch.chdir(ROOT / "examples" / "embedded")
    done = run_plan("--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    names = {r["name"] for r in plan["resources"]}
    assert {"datasets", "dataset-reader", "gpu", "gpu-train-ng"} <= names
    assert not any("nobody may reach" in w for w in plan.get("warnings", [])), "no deployer stand-in here"
    by_flag = run_plan("--project", str(ROOT / "examples" / "embedded"), "--json")
    assert by_flag.returncode == 0 and json.loads(by_flag.stdout)["resources"] == plan["resources"]


def test_plan_outside_a_pulumi_project_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = run_plan()
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"error: no Pulumi.yaml in {tmp_path} or above: run eks-gpu plan in a Pulumi project, or give --project"
    )
