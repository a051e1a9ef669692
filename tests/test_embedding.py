"""Issue 22 §2: the Python API (eks_gpu.build_stack, design_stack) and the examples that use it, run
under the offline engine: examples/embedded builds the stack inside a larger program, examples/workload
places a GPU Job on a pool of another stack through a StackReference."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from eks_gpu.config import ConfigError
from eks_gpu.config.python_names import stack_file_form
from eks_gpu.offline import ProgramRun, load_stack_file, run_program

from tests.helpers import ROOT, config, program_scope, run, run_stack_file
from tests.workloads import verdict
from tests.workloads.corpus import Workload
from tests.workloads.stack import Stack

EXAMPLES = ROOT / "examples"
STACK = "eks-gpu:stack:EksGpuStack"
JOB = "kubernetes:batch/v1:Job"


def run_example(name: str, **kwargs: Any) -> ProgramRun:
    folder = EXAMPLES / name
    # The engine's fake account needs a region, which the workload example (no AWS resource) has not.
    return run_program(
        {"aws:region": "us-east-1"} | load_stack_file(folder / "Pulumi.dev.yaml"),
        program=folder / "__main__.py",
        project_file=folder / "Pulumi.yaml",
        project=str(_project(folder)),
        **kwargs,
    )


def _project(folder: Path) -> str:
    first = next(line for line in (folder / "Pulumi.yaml").read_text().splitlines() if line.startswith("name:"))
    return first.split(":", 1)[1].strip()


# --- examples/embedded: the stack inside a larger program ------------------------------------


@pytest.fixture(scope=program_scope)
def embedded() -> ProgramRun:
    return run_example("embedded")


def test_the_embedded_example_builds_the_stack_beside_its_own_resources(embedded: ProgramRun) -> None:
    stack = embedded.one(STACK, "gpu")
    assert stack.parent.endswith("::ml-platform-dev")  # in the program's own stack, not a new one
    pools = embedded.of_type("aws:eks/nodeGroup:NodeGroup")
    train = next(p for p in pools if p.name == "gpu-train-ng")
    assert train.inputs["instanceTypes"] == ["g6.12xlarge"]
    assert embedded.one("eks:index:Cluster").inputs["name"] == "vision-gpu"
    # The program's own resources use the stack's outputs.
    association = embedded.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "dataset-reader")
    assert association.inputs["namespace"] == "gpu-workloads"
    assert association.inputs["clusterName"] == "vision-gpu"
    assert association.inputs["roleArn"] == embedded.one("aws:iam/role:Role", "dataset-reader").outputs["arn"]
    assert "kubeconfig" in embedded.secret_outputs
    assert set(embedded.outputs["gpuNodeGroups"]) == {"train"}


PROGRAM = textwrap.dedent(
    """
    import pulumi

    import eks_gpu

    stack = eks_gpu.build_stack("eks-gpu", pulumi.Config("test").require_object("args"))
    for key, value in stack.outputs().items():
        pulumi.export(key, value)
    """
)
"""A program that builds the stack from a Python mapping, under the name the project's program uses."""

CIDR = "198.18.0.20/32"
IN_PYTHON = {
    "kubernetes_version": "1.35",
    "vpc": {"cidr": "10.0.0.0/16", "az_count": 2, "nat_gateways": "single"},
    "endpoint_public_access_cidrs": [CIDR],
    "tags": {"team": "ml-platform"},
    "gpu_node_groups": {
        "inference": {
            "instance_types": ["g6.xlarge"],
            "max_size": 3,
            "disk_size_gib": 120,
            "volume_throughput_mib_ps": 250,
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        }
    },
    "autoscaler": {"scale_down_unneeded_time": "15m"},
    "gpu_pod": {"enabled": True, "node_group": "inference"},
}
IN_THE_STACK_FILE = config(
    {
        "inference": {
            "instanceTypes": ["g6.xlarge"],
            "maxSize": 3,
            "diskSizeGiB": 120,
            "volumeThroughputMiBps": 250,
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        }
    },
    autoscaler={"scaleDownUnneededTime": "15m"},
    gpuPod={"enabled": True, "nodeGroup": "inference"},
)
"""One config written twice, as a Python program and as a stack file would write it."""


def run_python_args(tmp_path: Path, args: Any) -> ProgramRun:
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)
    cfg = {"aws:region": IN_THE_STACK_FILE["aws:region"], "test:args": args}
    return run_program(cfg, program=program, project_file=None)


def test_python_names_build_exactly_what_the_stack_file_keys_build(tmp_path: Path) -> None:
    from_python = run_python_args(tmp_path, IN_PYTHON)
    from_file = run(IN_THE_STACK_FILE)
    assert [(r.urn, r.inputs) for r in from_python.resources] == [(r.urn, r.inputs) for r in from_file.resources]
    assert from_python.outputs == from_file.outputs
    in_file = {key.split(":", 1)[1]: value for key, value in IN_THE_STACK_FILE.items() if key != "aws:region"}
    assert stack_file_form(IN_PYTHON) == in_file


def problems_raised(call: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        call()
    return [str(p) for p in raised.value.problems]


def test_mistakes_in_python_names_get_the_stack_files_messages(tmp_path: Path) -> None:
    """The same mistakes, made in Python and in a stack file: the same problems, all at once, each
    naming the stack file's key; nothing is registered."""
    bad_pool = {"instance_types": ["g6.xlarg"], "max_size": -1, "disk_size_gib": 5}
    bad_python = {**IN_PYTHON, "gpu_node_groups": {"inference": bad_pool}, "nccl_tset": {}}
    bad_file = IN_THE_STACK_FILE | {
        "eks-gpu:gpuNodeGroups": {"inference": {"instanceTypes": ["g6.xlarg"], "maxSize": -1, "diskSizeGiB": 5}},
        "eks-gpu:ncclTset": {},
    }
    from_python = problems_raised(lambda: run_python_args(tmp_path, bad_python))
    from_file = problems_raised(lambda: run(bad_file))
    # an unknown key is named as it was written
    assert from_python == [p.replace("eks-gpu:ncclTset:", "eks-gpu:nccl_tset:") for p in from_file]
    for key in ("gpuNodeGroups.inference.maxSize", "gpuNodeGroups.inference.diskSizeGiB", "nccl_tset"):
        assert any(p.startswith(f"eks-gpu:{key}: ") for p in from_python), (key, from_python)


# --- examples/workload: a Job on a pool of another stack, through a StackReference ---------------


@pytest.fixture(scope=program_scope)
def dev() -> ProgramRun:
    return run_stack_file("dev")


@pytest.fixture(scope=program_scope)
def workload(dev: ProgramRun) -> ProgramRun:
    return run_example("workload", stack_references={"my-org/eks-gpu/dev": dev})


@dataclass(frozen=True)
class SentJob(verdict.Case):
    """The example's Job as the evaluators of tests/workloads see a corpus workload, but as the example
    sent it: its own node selector, tolerations and GPU count, not the corpus placement."""

    job: Any = None

    @cached_property
    def manifests(self) -> list[dict]:
        return [{"apiVersion": "batch/v1", "kind": "Job", **self.job}]


def test_the_workload_example_reads_the_stack_and_copies_its_placement(dev: ProgramRun, workload: ProgramRun) -> None:
    assert workload.stack_references == ["my-org/eks-gpu/dev"]
    job = workload.one(JOB).inputs
    pool = dev.outputs["gpuNodeGroups"]["inference"]
    spec = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == dev.outputs["gpuNamespace"]
    assert spec["nodeSelector"] == pool["nodeSelector"]
    assert spec["tolerations"] == pool["tolerations"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == str(pool["gpusPerNode"])
    provider = workload.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == dev.outputs["kubeconfig"]
    assert "kubeconfig" in provider.secret_inputs  # the secret output stays a secret


def test_the_workload_example_is_admitted_and_lands_on_its_pool(dev: ProgramRun, workload: ProgramRun) -> None:
    """The namespace admits the Job's pod (Pod Security, LimitRange, quota), the autoscaler's template
    node for the pool fits it and so does the real node: the checks every corpus workload passes."""
    stack = Stack("dev", dev)
    job = workload.one(JOB).outputs  # with the name the provider gave it
    case = SentJob(stack, stack.pools["inference"], Workload("example-job"), job=job)
    assert case.pods, "the Job has a pod"
    assert verdict.admitted(case) == []
    assert verdict.scales_from_zero(case) == []
    assert verdict.fits_real_node(case) == []


def test_the_workload_example_says_which_pools_exist(dev: ProgramRun) -> None:
    folder = EXAMPLES / "workload"
    cfg = load_stack_file(folder / "Pulumi.dev.yaml") | {"gpu-job:pool": "training", "aws:region": "us-east-1"}
    with pytest.raises(
        Exception, match=r"gpu-job:pool: 'training' is not a GPU pool of the stack; its pools: \['inference'\]"
    ):
        run_program(
            cfg,
            program=folder / "__main__.py",
            project_file=folder / "Pulumi.yaml",
            project="gpu-job",
            stack_references={"my-org/eks-gpu/dev": dev},
        )


def test_a_stack_reference_to_a_stack_that_was_not_run_fails(dev: ProgramRun) -> None:
    with pytest.raises(Exception, match="unknown stack 'my-org/eks-gpu/dev'"):
        run_example("workload", stack_references={"my-org/eks-gpu/prod": dev})


def test_the_readmes_python_example_runs_as_written(tmp_path: Path) -> None:
    """README "Using it from your own program": its block, run as a program, builds the stack."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Using it from your own program") :]
    block = section[section.index("```python\n") + len("```python\n") :]
    program = tmp_path / "__main__.py"
    program.write_text(block[: block.index("```")])
    cfg = {"aws:region": "us-east-1", "platform:myAddress": CIDR}
    ran = run_program(cfg, program=program, project_file=None, project="platform")
    pool = ran.one("aws:eks/nodeGroup:NodeGroup", "gpu-train-ng")
    assert pool.inputs["instanceTypes"] == ["g6.12xlarge"]
    assert pool.inputs["scalingConfig"]["maxSize"] == 2
    assert "kubeconfig" in ran.secret_outputs


PROTECTED = textwrap.dedent(
    """
    import pulumi

    import eks_gpu

    eks_gpu.build_stack(
        "eks-gpu",
        pulumi.Config("test").require_object("args"),
        opts=pulumi.ResourceOptions(protect=True),
    )
    """
)


def test_protect_given_by_the_caller_reaches_every_resource(tmp_path: Path) -> None:
    """``protect`` on the component (a caller's, or the component package consumer's) is inherited by
    every resource, although the stack's own ``protect`` key is false."""
    program = tmp_path / "__main__.py"
    program.write_text(PROTECTED)
    ran = run_program({"aws:region": "us-west-2", "test:args": IN_PYTHON}, program=program, project_file=None)
    assert ran.resources and all(r.protect for r in ran.resources), [r.name for r in ran.resources if not r.protect]


def test_a_key_given_both_ways_is_refused(tmp_path: Path) -> None:
    twice = {**IN_PYTHON, "gpuNodeGroups": {"other": {"instanceTypes": ["g6.xlarge"]}}}
    problems = problems_raised(lambda: run_python_args(tmp_path, twice))
    assert problems == ["eks-gpu:gpuNodeGroups: is given twice, as 'gpuNodeGroups' and 'gpu_node_groups': keep one"]


def test_providers_in_opts_are_refused(tmp_path: Path) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(
        PROTECTED.replace("opts=pulumi.ResourceOptions(protect=True)", "opts=pulumi.ResourceOptions(providers=[])")
        .replace("import eks_gpu\n", "import eks_gpu\nimport pulumi_aws as aws\n")
        .replace("providers=[]", 'providers=[aws.Provider("elsewhere", region="eu-west-1")]')
    )
    with pytest.raises(Exception, match="opts must not name providers"):
        run_program({"aws:region": "us-west-2", "test:args": IN_PYTHON}, program=program, project_file=None)
