"""The GPU smoke test: a Job whose one pod runs ``nvidia-smi`` on a node of one pool and completes.

``restartPolicy: Never`` lets it finish and free its GPU; pulumi-kubernetes waits for the Job to
complete, so ``pulumi up`` ends once it ran (and fails if it failed). A Job left failed or timed out
would fail every later update; ``pulumi.com/replaceUnready`` makes the next ``pulumi up`` replace it
(run it again) instead. ``pulumi up --replace "$(pulumi stack output gpuSmokeTestUrn)"`` reruns a
passed one. The pod is hardened for the ``restricted`` Pod Security level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from eks_gpu.build.scheduling import pool_selector, tolerations
from eks_gpu.config import Taint
from eks_gpu.design import GpuPodDesign

RUN_AS = 10001
"""A high UID and GID of no user of the image (nvidia-smi needs no privileges)."""
RESOURCES = {"cpu": "100m", "memory": "128Mi"}
"""nvidia-smi is small: requests and limits alike, so the pod is Guaranteed apart from its GPUs."""
NO_PROBES = (
    "none: a one-shot pod that runs its command once and exits (restartPolicy Never); "
    "liveness and readiness probes are for long-running containers"
)
REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}
"""pulumi-kubernetes: an update that finds this Job failed or unfinished replaces it rather than failing."""
CREATE_TIMEOUT = "20m"
"""A GPU node may have to boot, join and pull the image first."""


@dataclass(frozen=True)
class GpuSmokeTestArgs:
    """What the pod runs, where, and what it waits for."""

    pod: GpuPodDesign
    taints: Sequence[Taint]
    """The taints of the pod's pool: it tolerates exactly these."""
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource]
    """The device plugin (or the pool, with Bottlerocket) and the namespace's objects."""


def pod_spec(args: GpuSmokeTestArgs) -> dict[str, Any]:
    """The pod's spec."""
    gpus = str(args.pod.gpus)
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "nodeSelector": pool_selector(args.pod.pool),
        "tolerations": tolerations(args.taints),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "cuda",
                "image": args.pod.image,
                "imagePullPolicy": "IfNotPresent",
                "command": list(args.pod.command),
                "resources": {
                    "requests": {**RESOURCES, "nvidia.com/gpu": gpus},
                    "limits": {**RESOURCES, "nvidia.com/gpu": gpus},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


class GpuSmokeTest(pulumi.ComponentResource):
    """The smoke test: a Job of one pod, so its result outlives the pod.

    A completed pod is garbage-collected once the autoscaler removes its idle node; a plain Pod
    would then vanish from the cluster, and every ``pulumi up`` (which refreshes) would create it
    again and boot a GPU node for it. The Job stays, Complete.
    """

    job: k8s.batch.v1.Job
    job_name: pulumi.Output[str]
    job_urn: pulumi.Output[str]
    """What ``pulumi up --replace`` takes to run the test again."""

    def __init__(self, name: str, args: GpuSmokeTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:smoke_test:GpuSmokeTest", name, None, opts)
        # Manifests are written as Kubernetes spells them (camelCase), as kubectl would take them.
        labels = {"app.kubernetes.io/name": "gpu-smoke-test", "app.kubernetes.io/part-of": "eks-gpu"}
        metadata: Any = {"namespace": args.namespace, "labels": labels, "annotations": dict(REPLACE_UNREADY)}
        spec: Any = {
            # One attempt: a failure is an answer (and fails `pulumi up`), not something to retry on GPUs.
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": {"eks-gpu/probes": NO_PROBES}},
                "spec": pod_spec(args),
            },
        }
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=metadata,
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=list(args.depends_on),
                custom_timeouts=pulumi.CustomTimeouts(create=CREATE_TIMEOUT),
            ),
        )
        self.job_name = self.job.metadata.apply(lambda m: m.name or "")
        self.job_urn = self.job.urn
        self.register_outputs({"jobName": self.job_name})
