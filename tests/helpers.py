"""Stack configs for the tests and shortcuts over an offline run."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Literal

import eks_gpu
import pytest
from eks_gpu.config import ConfigError
from eks_gpu.offline import ProgramRun, load_stack_file, run_program
from eks_gpu.offline import plan as plan_tool
from eks_gpu.offline.deployer import with_deployer
from moto.core import DEFAULT_ACCOUNT_ID

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(eks_gpu.__file__).resolve().parent
"""The eks_gpu package the tests import: components/eks_gpu, or mutmut's mutated copy under `make mutation`."""
REGION = "us-west-2"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
CLUSTER = "eks:index:Cluster"
CLIENT_CIDR = "198.18.0.20/32"
"""A client address for the public endpoint (RFC 2544 benchmarking space, not a documentation range)."""


def mutmut_is_mapping() -> bool:
    """True while mutmut runs the suite to map tests to the functions they reach (its "stats" pass)."""
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def program_scope(fixture_name: str, config: pytest.Config) -> Literal["function", "module"]:
    """The scope of a fixture that runs the program once for a test file: ``module``, except while
    mutmut collects its stats (``MUTANT_UNDER_TEST=stats``), when each test runs the program itself.

    mutmut maps a function to the tests during which it ran; a module-scoped run happens in the first
    test's setup only, so every later test of the file would be left out of the mutants' test lists.
    """
    del fixture_name, config
    return "function" if mutmut_is_mapping() else "module"


def gpu_pool(*types: str, **overrides: Any) -> dict[str, Any]:
    """A GPU pool config of ``types`` (``g5.xlarge`` when none), sized 0/0/2 unless overridden."""
    return {"instanceTypes": list(types or ("g5.xlarge",)), "minSize": 0, "desiredSize": 0, "maxSize": 2, **overrides}


def config(pools: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    """A stack config with full keys: us-west-2, 1.35, a two-AZ VPC, and ``pools``."""
    base: dict[str, Any] = {
        "aws:region": REGION,
        "eks-gpu:kubernetesVersion": "1.35",
        "eks-gpu:vpc": {"cidr": "10.0.0.0/16", "azCount": 2, "natGateways": "single"},
        "eks-gpu:endpointPublicAccessCidrs": [CLIENT_CIDR],
        "eks-gpu:tags": {"team": "ml-platform"},
        "eks-gpu:gpuNodeGroups": pools if pools is not None else {"inference": gpu_pool()},
    }
    base.update({k if ":" in k else f"eks-gpu:{k}": v for k, v in keys.items()})
    return base


def every_feature() -> dict[str, Any]:
    """A stack with every component the program can build: an EFA training pool with the NCCL test,
    the DCGM exporter, the GPU pod on a second pool (and the autoscaler, on by default)."""
    return config(
        {"train": gpu_pool("p5.48xlarge", efa=True, maxSize=2), "serve": gpu_pool()},
        vpc={"azCount": 3},
        ncclTest={"enabled": True},
        gpuMetrics={"exporter": "dcgm-exporter"},
        gpuPod={"enabled": True, "nodeGroup": "serve"},
    )


_RUNS: dict[str, ProgramRun] = {}
"""Successful runs of the program by (config, stack), for this test process (see :func:`run`)."""


def run(cfg: dict[str, Any], *, stack: str = "dev", **kwargs: Any) -> ProgramRun:
    """Run the real program offline with ``cfg`` as stack ``stack``.

    A run is deterministic (tests/test_engine.py, test_stack.py) and the suite runs on one fixed
    date, so a config and stack the process has run before is not run again: each caller gets its
    own deep copy of the first run (a test may change what it is given). Not while mutmut maps tests
    to functions (each test must run the code it reaches), nor with an account, a setup or stack
    references (``kwargs``), which make a run depend on more than its config.
    """
    if kwargs or mutmut_is_mapping():
        return run_program(cfg, stack=stack, **kwargs)
    key = json.dumps([cfg, stack], sort_keys=True)
    if key not in _RUNS:
        _RUNS[key] = run_program(cfg, stack=stack)  # a failed run raises, and is never kept
    return copy.deepcopy(_RUNS[key])


def run_stack_file(stack: str) -> ProgramRun:
    """Run the real program offline with ``Pulumi.<stack>.yaml`` plus the deployer's one line
    (the stand-in CIDR ``make plan`` uses too: the shipped files name no deployer)."""
    cfg, _ = with_deployer(load_stack_file(ROOT / f"Pulumi.{stack}.yaml"))
    return run(cfg, stack=stack)


def node_group(result: ProgramRun, key: str) -> dict[str, Any]:
    """The inputs of the node group of pool ``key`` (``system`` for the system group)."""
    return result.one(NODE_GROUP, f"-{key}-ng").inputs


def launch_template(result: ProgramRun, key: str) -> dict[str, Any]:
    """The inputs of the launch template of pool ``key``."""
    return result.one(LAUNCH_TEMPLATE, f"-{key}-lt").inputs


def iam_document(document: str) -> dict[str, Any]:
    """An IAM policy document the program sent, parsed, with each statement's ``Action`` list sorted:
    IAM reads a statement's actions as a set (the provider writes them in its own order)."""
    parsed: dict[str, Any] = json.loads(document)
    for statement in parsed.get("Statement", []):
        if isinstance(statement.get("Action"), list):
            statement["Action"] = sorted(statement["Action"])
    return parsed


DEV_CLUSTER_ARN = f"arn:aws:eks:{REGION}:{DEFAULT_ACCOUNT_ID}:cluster/eks-gpu-dev"
"""The ARN of the cluster :func:`config` makes, in the offline account (moto's default account)."""


def pod_identity_trust(cluster_arn: str, namespace: str, service_account: str) -> dict[str, Any]:
    """The trust policy of a role handed out by EKS Pod Identity to one service account of one cluster,
    as :func:`iam_document` reads it (EKS User Guide, "pod-id-role": principal ``pods.eks.amazonaws.com``,
    actions ``sts:AssumeRole`` and ``sts:TagSession``; "Setting Conditions": the session tags EKS sends,
    required as ``aws:RequestTag/<key>``; the tags' names: "pod-id-abac")."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-arn": cluster_arn,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    }
                },
            }
        ],
    }


def problems_of(cfg: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    """Key -> its messages (one per line) of the ConfigError a run with ``cfg`` raises."""
    with pytest.raises(ConfigError) as err:
        run(cfg, **kwargs)
    found: dict[str, list[str]] = {}
    for p in err.value.problems:
        found.setdefault(p.key, []).append(p.message)
    return {k: "\n".join(v) for k, v in found.items()}


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    """``eks-gpu plan ARGS`` (``make plan``), in this process: its exit code, stdout and stderr.

    In-process, on the suite's fixed date (conftest's ``calendar_day``), to spare each call a Python
    start and the imports (2-3 s). That the console script's exit codes and streams reach the shell as
    they are here is tests/test_cli.py's subprocess tests' to show.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = plan_tool.main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["eks-gpu", "plan", *args], code, out.getvalue(), err.getvalue())


def integral(value: Any) -> Any:
    """Undo the mocks' number transport (every number arrives as a float) before schema checks."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value
