"""The NCCL test: a two-node all-reduce over EFA, as an MPIJob of the Kubeflow MPI Operator.

The operator comes from its release manifest, pinned by tag; it runs on the system nodes. The job has
one MPI worker per node of the EFA pool, each taking every GPU and EFA interface of its node and the
huge pages libfabric's EFA provider uses, and a launcher on the same pool that runs ``mpirun`` over
SSH into the workers (the operator makes the keys, the hostfile and the workers' ``sshd``). Workers
start only once their nodes are up (the autoscaler starts them: the pool's ASG tags say a node brings
those resources); the launcher starts once the workers are Ready (``WaitForWorkersReady``).

``pulumi up`` does not wait for the result (``pulumi.com/skipAwait``): it is read from the launcher's
log (docs/operations.md, "Training across nodes"). When the job ends the operator deletes the workers, the nodes
fall idle and the autoscaler removes them; the launcher pod stays, Completed, with its log.
``activeDeadlineSeconds`` bounds what a stuck test costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from eks_gpu.build.scheduling import pool_selector, tolerations
from eks_gpu.build.workloads import psa_labels
from eks_gpu.config import Taint
from eks_gpu.design import NcclTestDesign
from eks_gpu.design.autoscaler import EFA_RESOURCE, HUGEPAGES_RESOURCE

MPI_OPERATOR_VERSION = "v0.6.0"
MPI_OPERATOR_MANIFEST = (
    f"https://raw.githubusercontent.com/kubeflow/mpi-operator/{MPI_OPERATOR_VERSION}/deploy/v2beta1/mpi-operator.yaml"
)
"""The operator's release manifest (CRD ``mpijobs.kubeflow.org`` v2beta1, its namespace, RBAC and
Deployment), as the operator's README installs it. pulumi-kubernetes 4 applies it server-side, which
its CRD (too large for ``kubectl apply``'s client-side annotation) needs."""
NAMESPACE = "nccl-tests"
PSA_LEVEL = "baseline"
"""Pod Security level of the test's namespace: the workers run ``sshd`` as root, which ``restricted``
forbids; ``baseline`` still forbids privileged pods, host namespaces and host paths."""
HUGEPAGES_REQUEST = "5120Mi"
"""Huge pages each worker takes (of the 10256Mi an AL2023 EFA node pre-allocates), as AWS's NCCL test
manifests ask (aws-samples/awsome-distributed-training, ``micro-benchmarks/nccl-tests/kubernetes``)."""
WORKER_MEMORY = "32000Mi"
"""Memory each worker takes (the same manifests): the test's host buffers, far below any EFA type's."""
SHM_LIMIT = "8Gi"
"""``/dev/shm`` of a worker: NCCL's shared-memory transport; a container's default 64 MiB is too small."""
LAUNCHER_RESOURCES = {"cpu": "1", "memory": "2Gi"}
"""``mpirun`` alone: requests and limits alike."""
ACTIVE_DEADLINE_SECONDS = 3600
"""The test ends, and its nodes go idle, within an hour whatever happens: two p5.48xlarge nodes start
(some 10 minutes), pull the image (about 9 GB) and run (a few minutes)."""
BACKOFF_LIMIT = 3
"""Launcher restarts before the MPIJob fails (a worker's sshd may come up late)."""
MAX_BYTES = "8G"
"""The largest all-reduce: send and receive buffers of 8 GiB each fit every EFA GPU's memory."""
PATH = "/opt/amazon/openmpi/bin:/opt/amazon/efa/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LD_LIBRARY_PATH = (
    "/opt/amazon/openmpi/lib:/opt/nccl/build/lib:/opt/amazon/efa/lib:/opt/aws-ofi-nccl/install/lib:"
    "/usr/local/cuda/lib64:/usr/local/nvidia/lib64"
)
"""Where the image keeps OpenMPI, NCCL, libfabric and aws-ofi-nccl: processes started over SSH do not
inherit the image's environment, so ``mpirun`` passes these on (``-x``)."""


@dataclass(frozen=True)
class NcclTestArgs:
    """Which pool, what it tolerates, what must exist first."""

    design: NcclTestDesign
    taints: Sequence[Taint]
    """The taints of the test's pool: its pods tolerate exactly these."""
    kubernetes_version: str
    """Pins the namespace's Pod Security standard."""
    provider: k8s.Provider
    operator_depends_on: Sequence[pulumi.Resource]
    """What the operator's Deployment needs to become ready: the system nodes."""
    job_depends_on: Sequence[pulumi.Resource]
    """What the job's pods need to be scheduled: the device plugins and the autoscaler."""


def mpirun(design: NcclTestDesign) -> list[str]:
    """The launcher's command: one rank per GPU on every worker, NCCL over libfabric's EFA provider."""
    ranks = design.workers * design.gpus_per_worker
    env = {
        "PATH": None,
        "LD_LIBRARY_PATH": None,
        "FI_PROVIDER": "efa",  # libfabric: EFA, never TCP sockets
        "FI_EFA_FORK_SAFE": "1",
        "NCCL_DEBUG": "INFO",  # the log says which network NCCL chose ("NET/OFI Selected provider is efa")
        "NCCL_BUFFSIZE": "8388608",
        "NCCL_P2P_NET_CHUNKSIZE": "524288",
    }
    passed = [arg for key, value in env.items() for arg in ("-x", key if value is None else f"{key}={value}")]
    return [
        "mpirun",
        "--allow-run-as-root",
        "--tag-output",
        *("-np", str(ranks), "-N", str(design.gpus_per_worker), "--bind-to", "none"),
        *passed,
        # OpenMPI's own traffic (start-up, not NCCL's) over TCP on the pod's interface
        *("--mca", "pml", "^ucx", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_exclude", "lo,docker0"),
        "/opt/nccl-tests/build/all_reduce_perf",
        *("-b", "8", "-e", MAX_BYTES, "-f", "2", "-g", "1", "-c", "1", "-n", "100"),
    ]


def _on_pool(args: NcclTestArgs) -> dict[str, Any]:
    return {"nodeSelector": pool_selector(args.design.pool), "tolerations": tolerations(args.taints)}


def worker_spec(args: NcclTestArgs) -> dict[str, Any]:
    """A worker pod: a whole node's GPUs and EFA interfaces. No command: the operator runs ``sshd``."""
    design = args.design
    takes = {
        "nvidia.com/gpu": str(design.gpus_per_worker),
        EFA_RESOURCE: str(design.efa_per_worker),
        HUGEPAGES_RESOURCE: HUGEPAGES_REQUEST,
        "memory": WORKER_MEMORY,
    }
    return {
        **_on_pool(args),
        "containers": [
            {
                "name": "worker",
                "image": design.image,
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": takes, "limits": takes},
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
            }
        ],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_LIMIT}}],
    }


def launcher_spec(args: NcclTestArgs) -> dict[str, Any]:
    """The launcher pod: ``mpirun``, on a node of the pool (which has the image already)."""
    return {
        **_on_pool(args),
        "containers": [
            {
                "name": "launcher",
                "image": args.design.image,
                "imagePullPolicy": "IfNotPresent",
                "command": mpirun(args.design),
                "env": [{"name": "PATH", "value": PATH}, {"name": "LD_LIBRARY_PATH", "value": LD_LIBRARY_PATH}],
                "resources": {"requests": LAUNCHER_RESOURCES, "limits": LAUNCHER_RESOURCES},
            }
        ],
    }


def mpijob_spec(args: NcclTestArgs) -> dict[str, Any]:
    """The MPIJob's spec (``kubeflow.org/v2beta1``)."""
    return {
        "slotsPerWorker": args.design.gpus_per_worker,
        "launcherCreationPolicy": "WaitForWorkersReady",
        "runPolicy": {
            # the workers go when the job ends (their nodes fall idle); the launcher stays with its log
            "cleanPodPolicy": "Running",
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
        },
        "mpiReplicaSpecs": {
            "Launcher": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": launcher_spec(args)}},
            "Worker": {"replicas": args.design.workers, "template": {"spec": worker_spec(args)}},
        },
    }


class NcclTest(pulumi.ComponentResource):
    """The MPI Operator, the test's namespace and the MPIJob."""

    operator: k8s.yaml.v2.ConfigFile
    namespace: k8s.core.v1.Namespace
    job: k8s.apiextensions.CustomResource
    job_name: pulumi.Output[str]
    job_urn: pulumi.Output[str]
    """What ``pulumi up --replace`` takes to run the test again."""

    def __init__(self, name: str, args: NcclTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:nccl_test:NcclTest", name, None, opts)
        self.operator = k8s.yaml.v2.ConfigFile(
            f"{name}-mpi-operator",
            file=MPI_OPERATOR_MANIFEST,
            # its Deployment becomes ready only on a node (pulumi-kubernetes waits for it)
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.operator_depends_on)),
        )
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": psa_labels(PSA_LEVEL, args.kubernetes_version)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        labels = {"app.kubernetes.io/name": "nccl-tests", "app.kubernetes.io/part-of": "eks-gpu"}
        self.job = k8s.apiextensions.CustomResource(
            f"{name}-job",
            api_version="kubeflow.org/v2beta1",
            kind="MPIJob",
            metadata={
                "namespace": NAMESPACE,
                "labels": labels,
                # the result is read from the launcher's log, not awaited by `pulumi up`
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec=mpijob_spec(args),
            # the MPIJob kind exists once the operator's CRD does; the namespace first
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[self.operator, self.namespace, *args.job_depends_on],
            ),
        )
        # a CustomResource's outputs are untyped attributes set at run time: its metadata is a dict
        self.job_name = cast(Any, self.job).metadata.apply(lambda m: str(m["name"]))
        self.job_urn = self.job.urn
        self.register_outputs({"jobName": self.job_name})
