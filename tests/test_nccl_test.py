"""The optional NCCL all-reduce test of an EFA pool (``eks-gpu:ncclTest``): an MPIJob of the Kubeflow
MPI Operator over two nodes, taking what each node has, as the instance catalogue (in moto) says."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from eks_gpu.offline import ProgramRun

from tests import aws_data
from tests.helpers import config, gpu_pool, integral, problems_of, program_scope, run

MPIJOB = "kubernetes:kubeflow.org/v2beta1:MPIJob"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
TRAINING = {"key": "workload", "value": "training", "effect": "NO_SCHEDULE"}
GPU = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
AL2023_EFA_HUGEPAGES = f"{5128 * 2}Mi"
"""EKS User Guide, "Machine learning training using Elastic Fabric Adapter": instances with the EFA
driver pre-allocate 5128 huge pages of 2 MiB."""


def efa_interfaces(instance_type: str) -> int:
    return int(aws_data.catalogue()[instance_type]["NetworkInfo"]["EfaInfo"]["MaximumEfaInterfaces"])


def pools(**train: Any) -> dict[str, Any]:
    return {
        "train": gpu_pool("p5.48xlarge", **{"efa": True, "maxSize": 2, "taints": [GPU, TRAINING], **train}),
        "serve": gpu_pool(),
    }


@pytest.fixture(scope=program_scope)
def nccl() -> ProgramRun:
    return run(config(pools(), vpc={"cidr": "10.0.0.0/16", "azCount": 3}, ncclTest={"enabled": True}))


def replica(result: ProgramRun, role: str) -> dict[str, Any]:
    spec: dict[str, Any] = result.one(MPIJOB).inputs["spec"]["mpiReplicaSpecs"][role]
    return spec


def test_each_worker_takes_every_gpu_and_efa_interface_of_its_node(nccl: ProgramRun) -> None:
    gpus, _ = aws_data.gpus("p5.48xlarge")
    worker = replica(nccl, "Worker")
    assert worker["replicas"] == 2
    (container,) = worker["template"]["spec"]["containers"]
    takes = {
        "nvidia.com/gpu": str(gpus),
        "vpc.amazonaws.com/efa": str(efa_interfaces("p5.48xlarge")),
        "hugepages-2Mi": "5120Mi",
        "memory": "32000Mi",
    }
    assert container["resources"] == {"requests": takes, "limits": takes}
    assert "command" not in container and "args" not in container  # the operator runs sshd
    assert nccl.one(MPIJOB).inputs["spec"]["slotsPerWorker"] == gpus


def test_the_huge_pages_a_worker_asks_for_are_what_a_node_not_yet_started_brings(nccl: ProgramRun) -> None:
    """Scale from zero: the autoscaler builds its template node from the ASG tags, so the pool's ASG
    says how many huge pages a node brings, and a worker asks for no more."""
    tags = {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in nccl.of_type("aws:autoscaling/tag:Tag")
        if t.name.startswith("eks-gpu-train-asg-")
    }
    prefix = "k8s.io/cluster-autoscaler/node-template/resources/"
    assert tags[prefix + "hugepages-2Mi"] == AL2023_EFA_HUGEPAGES
    asked = replica(nccl, "Worker")["template"]["spec"]["containers"][0]["resources"]["requests"]["hugepages-2Mi"]
    assert int(asked.removesuffix("Mi")) <= int(AL2023_EFA_HUGEPAGES.removesuffix("Mi"))
    serve_tags = {t.inputs["tag"]["key"] for t in nccl.of_type("aws:autoscaling/tag:Tag") if "-serve-asg-" in t.name}
    assert serve_tags and prefix + "hugepages-2Mi" not in serve_tags


def test_a_bottlerocket_efa_pool_claims_no_huge_pages_no_source_gives() -> None:
    result = run(config({"train": gpu_pool("p5.48xlarge", efa=True, amiType="BOTTLEROCKET_x86_64_NVIDIA")}))
    keys = {t.inputs["tag"]["key"] for t in result.of_type("aws:autoscaling/tag:Tag") if "-train-asg-" in t.name}
    assert "k8s.io/cluster-autoscaler/node-template/resources/vpc.amazonaws.com/efa" in keys
    assert "k8s.io/cluster-autoscaler/node-template/resources/hugepages-2Mi" not in keys


def test_launcher_and_workers_run_on_the_pool_and_tolerate_exactly_its_taints(nccl: ProgramRun) -> None:
    expected = sorted(
        json.dumps({"key": t["key"], "operator": "Equal", "value": t["value"], "effect": "NoSchedule"}, sort_keys=True)
        for t in (GPU, TRAINING)
    )
    for role in ("Launcher", "Worker"):
        spec = replica(nccl, role)["template"]["spec"]
        assert spec["nodeSelector"] == {"eks-gpu/node-group": "train"}, role
        assert sorted(json.dumps(t, sort_keys=True) for t in spec["tolerations"]) == expected, role


def test_the_launcher_runs_one_rank_per_gpu_of_both_nodes_over_efa(nccl: ProgramRun) -> None:
    gpus, _ = aws_data.gpus("p5.48xlarge")
    launcher = replica(nccl, "Launcher")
    assert launcher["replicas"] == 1
    (container,) = launcher["template"]["spec"]["containers"]
    command = container["command"]
    assert command[0] == "mpirun"
    assert command[command.index("-np") + 1] == str(2 * gpus)
    assert command[command.index("-N") + 1] == str(gpus)
    passed = [command[i + 1] for i, arg in enumerate(command) if arg == "-x"]
    # sshd-started ranks do not inherit the image's env (PATH, LD_LIBRARY_PATH); libfabric on EFA, never
    # TCP; NCCL's log names the network it chose; the buffer and chunk sizes of AWS's nccl-tests examples
    assert passed == [
        "PATH",
        "LD_LIBRARY_PATH",
        "FI_PROVIDER=efa",
        "FI_EFA_FORK_SAFE=1",
        "NCCL_DEBUG=INFO",
        "NCCL_BUFFSIZE=8388608",
        "NCCL_P2P_NET_CHUNKSIZE=524288",
    ]
    assert {e["name"] for e in container["env"]} == {"PATH", "LD_LIBRARY_PATH"}
    binary = command.index("/opt/nccl-tests/build/all_reduce_perf")
    assert command[binary + 1 :] == ["-b", "8", "-e", "8G", "-f", "2", "-g", "1", "-c", "1", "-n", "100"]


def test_the_job_waits_for_its_workers_ends_within_an_hour_and_keeps_the_launchers_log(nccl: ProgramRun) -> None:
    job = nccl.one(MPIJOB)
    spec = job.inputs["spec"]
    assert spec["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert spec["runPolicy"] == {"cleanPodPolicy": "Running", "backoffLimit": 3, "activeDeadlineSeconds": 3600}
    assert job.inputs["metadata"]["namespace"] == "nccl-tests"
    assert job.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert job.inputs["metadata"]["labels"] == {
        "app.kubernetes.io/name": "nccl-tests",
        "app.kubernetes.io/part-of": "eks-gpu",
    }
    assert "name" not in job.inputs["metadata"]  # auto-named: a replacement creates before it deletes
    assert job.inputs["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"] == (
        "public.ecr.aws/hpc-cloud/nccl-tests:efa1.43.2-ofiv1.16.3-ncclv2.27.7-1-testsv2.16.9"
    )


def test_the_pod_templates_are_valid_pods_for_the_cluster_version(nccl: ProgramRun) -> None:
    for role in ("Launcher", "Worker"):
        template = integral(replica(nccl, role)["template"])
        pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role.lower()}}
        kubernetes_validate.validate({**pod_template, "template": template}, "1.35.0", strict=True)
    broken = integral(replica(nccl, "Worker")["template"])
    broken["spec"]["containers"][0]["volumeMount"] = []  # a misspelt field: refused
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**pod_template, "template": broken}, "1.35.0", strict=True)


def test_the_operator_is_pinned_and_waits_for_nodes_and_the_job_for_the_operator(nccl: ProgramRun) -> None:
    operator = nccl.one(CONFIG_FILE)
    assert operator.inputs == {
        "file": "https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.6.0/deploy/v2beta1/mpi-operator.yaml"
    }
    assert operator.remote  # the Kubernetes provider reads and applies the manifest
    system = nccl.one("aws:eks/nodeGroup:NodeGroup", "-system-ng")
    assert system.urn in operator.dependencies  # its Deployment becomes ready only on a node
    job = nccl.one(MPIJOB)
    namespace = nccl.named("eks-gpu-nccl-test-ns")
    releases = nccl.of_type("kubernetes:helm.sh/v3:Release")
    plugins = [r.urn for r in releases if r.name.endswith(("-efa-release", "-nvidia-release"))]
    autoscaler = [r.urn for r in releases if r.name == "eks-gpu-autoscaler-release"]
    assert len(plugins) == 2 and len(autoscaler) == 1
    # a dependency on a component is one on each of its resources
    assert {operator.urn, namespace.urn, *autoscaler, *plugins} <= set(job.dependencies)
    assert job.provider.startswith(nccl.one("pulumi:providers:kubernetes").urn)


def test_the_test_namespace_admits_root_sshd_but_nothing_privileged(nccl: ProgramRun) -> None:
    labels = nccl.named("eks-gpu-nccl-test-ns").inputs["metadata"]["labels"]
    assert labels == {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "audit", "warn")
        for suffix, value in (("", "baseline"), ("-version", "v1.35"))
    }
    worker = replica(nccl, "Worker")["template"]["spec"]
    assert worker["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]  # no hostPath


def test_the_stack_outputs_name_the_job_and_its_urn_for_a_rerun(nccl: ProgramRun) -> None:
    job = nccl.one(MPIJOB)
    assert nccl.outputs["ncclTestUrn"] == job.urn
    assert nccl.outputs["ncclTestJob"] == job.outputs["metadata"]["name"]


def test_off_by_default_and_in_the_shipped_stacks() -> None:
    result = run(config(pools()))
    assert result.of_type(MPIJOB) == [] and result.of_type(CONFIG_FILE) == []
    assert result.outputs.get("ncclTestJob") is None and result.outputs.get("ncclTestUrn") is None


def test_the_test_needs_an_efa_pool_and_names_which() -> None:
    none = problems_of(config(ncclTest={"enabled": True}))
    assert "names no EFA pool" in none["eks-gpu:ncclTest.nodeGroup"]
    two = {**pools(), "p4d": gpu_pool("p4d.24xlarge", efa=True, maxSize=2)}
    several = problems_of(config(two, ncclTest={"enabled": True}))
    assert "required with several EFA pools" in several["eks-gpu:ncclTest.nodeGroup"]
    assert "p4d, train" in several["eks-gpu:ncclTest.nodeGroup"]
    wrong = problems_of(config(pools(), ncclTest={"enabled": True, "nodeGroup": "serve"}))
    assert "'serve' is not a pool with efa: true" in wrong["eks-gpu:ncclTest.nodeGroup"]
    assert set(wrong) == {"eks-gpu:ncclTest.nodeGroup"}


def test_the_test_needs_two_nodes_of_its_pool() -> None:
    small = problems_of(config(pools(maxSize=1), ncclTest={"enabled": True}))
    assert set(small) == {"eks-gpu:gpuNodeGroups.train.maxSize"}
    assert "is 1 while eks-gpu:ncclTest needs 2 nodes" in small["eks-gpu:gpuNodeGroups.train.maxSize"]
    manual = problems_of(config(pools(), ncclTest={"enabled": True}, autoscaler={"enabled": False}))
    assert set(manual) == {"eks-gpu:gpuNodeGroups.train.desiredSize"}
    assert "nothing would start them" in manual["eks-gpu:gpuNodeGroups.train.desiredSize"]
    started = run(config(pools(minSize=2, desiredSize=2), ncclTest={"enabled": True}, autoscaler={"enabled": False}))
    assert len(started.of_type(MPIJOB)) == 1


def test_the_test_refuses_a_bottlerocket_pool_whose_huge_pages_are_unknown() -> None:
    bottlerocket = problems_of(
        config(pools(amiType="BOTTLEROCKET_x86_64_NVIDIA"), ncclTest={"enabled": True}),
    )
    assert set(bottlerocket) == {"eks-gpu:gpuNodeGroups.train.amiType"}
    assert "huge pages" in bottlerocket["eks-gpu:gpuNodeGroups.train.amiType"]


def test_the_image_must_be_pinned() -> None:
    found = problems_of(config(pools(), ncclTest={"enabled": True, "image": "public.ecr.aws/hpc-cloud/nccl-tests"}))
    assert "is not pinned" in found["eks-gpu:ncclTest.image"]
