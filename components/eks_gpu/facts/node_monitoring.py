"""Where the EKS node monitoring agent runs its DCGM host engine, as its chart says.

Source: aws/eks-node-monitoring-agent, ``charts/eks-node-monitoring-agent/values.yaml``, the default
``dcgmAgent.affinity`` of the ``dcgm-server`` DaemonSet (chart v1.7.0): NVIDIA GPU instance types, amd64
only, never on Fargate, Auto Mode, hybrid or HyperPod nodes. ``dcgm-server`` runs ``nv-hostengine``
on host port 5555 (``templates/dcgm-daemonset.yaml``: ``hostPort: 5555``); the agent reads it at
``localhost:5555`` (chart README, "DCGM host engine").

The program sends this affinity back to the add-on (``dcgmAgent.affinity`` is in the add-on's
configuration schema, ``charts/configuration.schema.json``), so the host engine is where this module
says whatever a later add-on version defaults to: the GPU metrics exporter embeds its own DCGM
exactly where this one does not run.
"""

from __future__ import annotations

from typing import Any

CONFIGURATION_SINCE = "v1.6.3"
"""The first add-on version whose configuration schema has ``dcgmAgent.affinity`` (and
``dcgmAgent.tolerations``), both of which the program sends (``charts/configuration.schema.json`` of
aws/eks-node-monitoring-agent at that release): EKS refuses an older add-on's configuration."""
HOST_ENGINE_PORT = 5555
"""``nv-hostengine``'s port, the ``dcgm-server`` pod's ``hostPort`` on every node it runs on."""
ARCH_LABEL = "kubernetes.io/arch"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
DCGM_SERVER_ARCHITECTURES = ("amd64",)
"""``kubernetes.io/arch`` values of the nodes ``dcgm-server`` runs on."""
DCGM_SERVER_INSTANCE_TYPES = (
    *("g3.16xlarge", "g3.4xlarge", "g3.8xlarge", "g3s.xlarge"),
    *("g4dn.12xlarge", "g4dn.16xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.metal", "g4dn.xlarge"),
    *("g5.12xlarge", "g5.16xlarge", "g5.24xlarge", "g5.2xlarge", "g5.48xlarge", "g5.4xlarge", "g5.8xlarge"),
    "g5.xlarge",
    *("g5g.16xlarge", "g5g.2xlarge", "g5g.4xlarge", "g5g.8xlarge", "g5g.metal", "g5g.xlarge"),
    *("g6.12xlarge", "g6.16xlarge", "g6.24xlarge", "g6.2xlarge", "g6.48xlarge", "g6.4xlarge", "g6.8xlarge"),
    "g6.xlarge",
    *("g6e.12xlarge", "g6e.16xlarge", "g6e.24xlarge", "g6e.2xlarge", "g6e.48xlarge", "g6e.4xlarge", "g6e.8xlarge"),
    "g6e.xlarge",
    *("g6f.2xlarge", "g6f.4xlarge", "g6f.large", "g6f.xlarge"),
    *("g7.12xlarge", "g7.24xlarge", "g7.2xlarge", "g7.48xlarge", "g7.4xlarge", "g7.8xlarge"),
    *("g7e.12xlarge", "g7e.24xlarge", "g7e.2xlarge", "g7e.48xlarge", "g7e.4xlarge", "g7e.8xlarge"),
    *("gr6.4xlarge", "gr6.8xlarge", "gr6f.4xlarge"),
    *("p2.16xlarge", "p2.8xlarge", "p2.xlarge", "p3.16xlarge", "p3.2xlarge", "p3.8xlarge", "p3dn.24xlarge"),
    *("p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5.4xlarge", "p5e.48xlarge", "p5en.48xlarge"),
    *("p6-b200.48xlarge", "p6-b300.48xlarge", "p6e-gb200.36xlarge", "p6e-gb300.36xlarge"),
)
"""``node.kubernetes.io/instance-type`` values of the nodes ``dcgm-server`` runs on (g5g is listed, but
arm64, so excluded by the architecture)."""
KUBERNETES_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
"""EC2's architecture names (``ProcessorInfo.SupportedArchitectures``) -> the ``kubernetes.io/arch`` label's."""


def runs_dcgm_server(instance_type: str, architecture: str) -> bool:
    """Whether the agent's ``dcgm-server`` (its DCGM host engine) runs on a node of this type and EC2
    architecture (``x86_64``, ``arm64``)."""
    return instance_type in DCGM_SERVER_INSTANCE_TYPES and KUBERNETES_ARCH[architecture] in DCGM_SERVER_ARCHITECTURES


def dcgm_server_affinity() -> dict[str, Any]:
    """The chart's default ``dcgmAgent.affinity``, as the add-on's configuration value."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(DCGM_SERVER_INSTANCE_TYPES)},
                            {
                                "key": "eks.amazonaws.com/compute-type",
                                "operator": "NotIn",
                                "values": ["fargate", "auto", "hybrid"],
                            },
                            {
                                "key": "sagemaker.amazonaws.com/compute-type",
                                "operator": "NotIn",
                                "values": ["hyperpod"],
                            },
                            {"key": ARCH_LABEL, "operator": "In", "values": list(DCGM_SERVER_ARCHITECTURES)},
                        ]
                    }
                ]
            }
        }
    }
