"""Offline engine for the eks-gpu Pulumi program.

Runs the real program under Pulumi's mocks against a fake AWS account (moto), answering every
invoke from AWS's own data shipped in moto and botocore, and records everything the program
sends. Used by the test suite and by the offline plan tool.

    from eks_gpu.offline import run_program
    run = run_program({"aws:region": "us-east-1", "eks-gpu:clusterName": "gpu"})
    run.one("aws:eks/nodeGroup:NodeGroup").inputs["scalingConfig"]
"""

from .aws import (
    AwsAccount,
    AwsError,
    ExistingVpc,
    Partition,
    UnsupportedError,
    offline_account,
    partition_for,
    policy_document,
)
from .engine import (
    AccountMocks,
    ProgramRun,
    RecordingMonitor,
    RegisteredResource,
    ResourceRequest,
    load_stack_file,
    resolve_config,
    run_program,
)

__all__ = [
    "AccountMocks",
    "AwsAccount",
    "AwsError",
    "ExistingVpc",
    "Partition",
    "ProgramRun",
    "RecordingMonitor",
    "RegisteredResource",
    "ResourceRequest",
    "UnsupportedError",
    "load_stack_file",
    "offline_account",
    "partition_for",
    "policy_document",
    "resolve_config",
    "run_program",
]
