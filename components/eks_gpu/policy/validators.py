"""The eks-gpu policies as plain data and functions, run by CrossGuard and by the offline plan.

``policy/__main__.py`` turns each :class:`Policy` of :data:`POLICIES` into a CrossGuard
``ResourceValidationPolicy``; the offline plan calls :func:`evaluate` for every planned resource. This
module imports nothing of ``pulumi_policy``: constructing a ``PolicyPack`` serves the policies over gRPC
and never returns, so the assembly lives in ``__main__.py`` alone.

A check sees a resource as CrossGuard does: its type token, its inputs (``props``, camelCase wire names)
and its URN. Under CrossGuard the inputs are read-only ``Mapping`` and ``Sequence`` proxies that raise
``UnknownValueError`` when a value is not known during preview (CrossGuard then reports that the policy
could not run), so the checks test for ``Mapping`` and ``Sequence``, never ``dict`` and ``list``, and let
that exception through. Offline the inputs are plain JSON values, numbers as floats.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["mandatory", "advisory"]
"""``mandatory`` fails ``pulumi preview`` and ``pulumi up``; ``advisory`` is reported only."""
Props = Mapping[str, Any]
Check = Callable[[str, Props, str, Mapping[str, Any]], list[str]]
"""``(resource_type, props, urn, config) -> violation messages``; ``config`` has every default filled in."""

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EKS_COMPONENT = "eks:index:Cluster"
"""pulumi-eks's cluster component, as the program registers it (and as the offline engine records it)."""
EKS_CLUSTER = "aws:eks/cluster:Cluster"
"""The EKS cluster pulumi-eks creates inside its component: what a real preview judges."""

PRODUCTION_STACK_PREFIX = "prod"
"""Stacks whose name starts with this are production: an open API endpoint is mandatory there."""
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""The label (``"true"``) the program puts on every GPU node group (``eks_gpu.config``)."""
GPU_RESOURCE = "nvidia.com/gpu"
"""The NVIDIA device plugin's extended resource, and the key of the GPU taint."""
REPELLING_TAINT_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE")
"""Taint effects (EKS API spelling) that keep pods without the toleration off a node; PREFER_NO_SCHEDULE does not."""
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
"""A Karpenter NodePool (``eks-gpu:provisioner: karpenter``): a GPU pool without a managed node group."""
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
"""A Karpenter EC2NodeClass: the launch settings (IMDS, volumes) of a NodePool's instances."""
NODE_CLASS_IMDS_DEFAULTS = {"httpTokens": "required", "httpPutResponseHopLimit": 1}
"""What the API server fills in for an unset ``spec.metadataOptions`` field (the ``default`` of each in the
pinned ``karpenter-crd-1.14.1/templates/karpenter.k8s.aws_ec2nodeclasses.yaml``)."""
REPELLING_K8S_EFFECTS = ("NoSchedule", "NoExecute")
"""The same effects in Kubernetes spelling, as a NodePool's ``template.spec.taints`` carry them."""
GPU_REQUIREMENT_PREFIX = "karpenter.k8s.aws/instance-gpu-"
"""NodePool requirement keys on an instance's GPUs (``instance-gpu-count``, ``-name``, ``-manufacturer``)."""
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
"""CIDRs that admit every address."""
SECCOMP_CONFINED = ("RuntimeDefault", "Localhost")
"""Seccomp profile types the Pod Security ``restricted`` level accepts."""
DEFAULT_REQUIRED_TAGS = ("Environment",)
"""Tags every taggable AWS resource must carry unless the ``required-tags`` config says otherwise."""

TAGGABLE_TYPES = frozenset(
    {
        # What the program creates.
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/placementGroup:PlacementGroup",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/addon:Addon",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        # What pulumi-eks creates inside its Cluster component (tagged with the component's tags).
        "aws:eks/cluster:Cluster",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/policy:Policy",
    }
)
"""AWS resource types with a ``tags`` input. tests/test_policy.py checks the list against pulumi-aws for
every AWS type the program sends."""

IAM_DOCUMENTS = {
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
}
"""Per IAM resource type, the inputs that hold a policy document (a role's trust policy included)."""

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Per workload kind, where its pod spec is."""


@dataclass(frozen=True)
class Violation:
    """One policy violated by one resource."""

    policy: str
    level: Level
    message: str
    urn: str


@dataclass(frozen=True)
class Policy:
    """A CrossGuard resource policy: what it requires, how hard, of which resource types."""

    name: str
    """Unique id, as ``pulumi preview`` prints it and ``--policy-pack-config`` keys it."""
    description: str
    enforcement_level: Level
    resource_types: frozenset[str]
    """The policy judges these types and ignores every other."""
    check: Check
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON-schema properties of the policy's config, each with a ``default``. Empty: no config."""

    def config(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The policy's config: each property's default, overridden by ``given``."""
        return {**{key: schema["default"] for key, schema in self.config_schema.items()}, **(given or {})}

    def violations(
        self, resource_type: str, props: Props, urn: str, config: Mapping[str, Any] | None = None
    ) -> list[str]:
        """What is wrong with the resource, one whole sentence each; empty if it complies or is not judged."""
        if resource_type not in self.resource_types:
            return []
        return self.check(resource_type, props, urn, self.config(config))


# --- helpers ------------------------------------------------------------------------------------


def _mapping(value: Any) -> Props:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Sequence[Any]:
    """A list input as a sequence; a single value (IAM's ``"Action": "x"``) as a one-item sequence."""
    if value is None:
        return ()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value
    return (value,)


def _at(props: Props, path: Sequence[str]) -> Props:
    for key in path:
        props = _mapping(props.get(key))
    return props


def stack_of(urn: str) -> str:
    """The stack name in a URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def is_production(urn: str) -> bool:
    """Whether the resource belongs to a production stack (its name starts with ``prod``)."""
    return stack_of(urn).startswith(PRODUCTION_STACK_PREFIX)


# --- GPU node groups ----------------------------------------------------------------------------


def _gpu_node_group(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    ami_type = str(props.get("amiType") or "")
    gpu = _mapping(props.get("labels")).get(GPU_PRESENT_LABEL) == "true" or ami_type.endswith("_GPU")
    if not gpu and "_NVIDIA" not in ami_type:
        return []
    problems = []
    if "_NVIDIA" not in ami_type:
        found = f"AMI type {ami_type}" if ami_type else "no AMI type"
        problems.append(
            f"The GPU node group has {found}; a GPU pool needs an EKS NVIDIA AMI type (AL2023_x86_64_NVIDIA, "
            "AL2023_ARM_64_NVIDIA, BOTTLEROCKET_x86_64_NVIDIA or BOTTLEROCKET_ARM_64_NVIDIA), which carries the "
            "NVIDIA driver."
        )
    taints = [_mapping(t) for t in _items(props.get("taints"))]
    if not any(t.get("key") == GPU_RESOURCE and t.get("effect") in REPELLING_TAINT_EFFECTS for t in taints):
        problems.append(
            f"The GPU node group has no '{GPU_RESOURCE}' taint with effect NO_SCHEDULE or NO_EXECUTE; without it "
            "pods that need no GPU land on GPU nodes and keep them from scaling down."
        )
    return problems


def _gpu_node_pool(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    """A NodePool is a GPU pool when its nodes are labelled ``nvidia.com/gpu.present``, a requirement asks
    for GPUs, or it limits ``nvidia.com/gpu``; then its template must carry the repelling GPU taint. (Its
    AMI is the EC2NodeClass's: an AL2023 or Bottlerocket alias picks the NVIDIA variant by instance type.)"""
    spec = _mapping(props.get("spec"))
    template = _mapping(spec.get("template"))
    labels = _mapping(_mapping(template.get("metadata")).get("labels"))
    tspec = _mapping(template.get("spec"))
    requirements = [_mapping(r) for r in _items(tspec.get("requirements"))]
    gpu = (
        labels.get(GPU_PRESENT_LABEL) == "true"
        or GPU_RESOURCE in _mapping(spec.get("limits"))
        or any(str(r.get("key") or "").startswith(GPU_REQUIREMENT_PREFIX) for r in requirements)
    )
    if not gpu:
        return []
    taints = [_mapping(t) for t in _items(tspec.get("taints"))]
    if any(t.get("key") == GPU_RESOURCE and t.get("effect") in REPELLING_K8S_EFFECTS for t in taints):
        return []
    return [
        f"The GPU NodePool has no '{GPU_RESOURCE}' taint with effect NoSchedule or NoExecute in "
        "spec.template.spec.taints; without it pods that need no GPU land on GPU nodes and keep Karpenter "
        "from removing them."
    ]


def _gpu_pool(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    if resource_type == NODE_POOL:
        return _gpu_node_pool(resource_type, props, urn, config)
    return _gpu_node_group(resource_type, props, urn, config)


# --- node launch templates ----------------------------------------------------------------------


def _node_class(props: Props) -> list[str]:
    """An EC2NodeClass's IMDS and volumes: IMDSv2 only, hop limit 1 (no pod reaches the node's credentials),
    every EBS volume it maps encrypted. An unset IMDS field is the CRD's default (:data:`NODE_CLASS_IMDS_DEFAULTS`);
    without mappings Karpenter maps its own default volumes, which it encrypts (``v1.14/concepts/nodeclasses.md``,
    "spec.blockDeviceMappings")."""
    spec = _mapping(props.get("spec"))
    imds = {**NODE_CLASS_IMDS_DEFAULTS, **_mapping(spec.get("metadataOptions"))}
    problems = []
    if imds["httpTokens"] != "required":
        problems.append(
            f"The EC2NodeClass sets metadataOptions.httpTokens to {imds['httpTokens']}; set it to 'required' so that "
            "nodes serve instance metadata over IMDSv2 only."
        )
    hops = imds["httpPutResponseHopLimit"]
    if not isinstance(hops, (int, float)) or isinstance(hops, bool) or hops > 1:
        problems.append(
            f"The EC2NodeClass sets metadataOptions.httpPutResponseHopLimit to {hops}; set it to 1 so that pods "
            "cannot reach the node's instance metadata (and its role's credentials)."
        )
    mappings = [_mapping(m) for m in _items(spec.get("blockDeviceMappings"))]
    problems += [
        f"The EC2NodeClass's EBS volume {m.get('deviceName') or f'#{i}'} is not encrypted; set its ebs.encrypted to "
        "true."
        for i, m in enumerate(mappings)
        if _mapping(m.get("ebs")).get("encrypted") not in ("true", True)
    ]
    return problems


def _launch_template(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    if resource_type == EC2_NODE_CLASS:
        return _node_class(props)
    problems = []
    tokens = _mapping(props.get("metadataOptions")).get("httpTokens")
    if tokens != "required":
        found = f"sets metadataOptions.httpTokens to {tokens}" if tokens else "leaves metadataOptions.httpTokens unset"
        problems.append(
            f"The launch template {found}; set it to 'required' so that nodes serve instance metadata over IMDSv2 only."
        )
    mappings = [_mapping(m) for m in _items(props.get("blockDeviceMappings"))]
    volumes = [(m.get("deviceName") or f"#{i}", _mapping(m.get("ebs"))) for i, m in enumerate(mappings) if "ebs" in m]
    if not volumes:
        problems.append(
            "The launch template maps no EBS volume, so the root volume takes the AMI's default, unencrypted unless "
            "the account encrypts EBS by default; map the root device with ebs.encrypted 'true'."
        )
    problems += [
        f"The launch template's EBS volume {device} is not encrypted; set its ebs.encrypted to 'true'."
        for device, ebs in volumes
        if ebs.get("encrypted") not in ("true", True)
    ]
    return problems


# --- the EKS cluster ----------------------------------------------------------------------------


def _carries_cluster_settings(resource_type: str, props: Props) -> bool:
    """Whether ``props`` hold a cluster's settings.

    pulumi-eks's provider registers its Cluster component from Node.js, where a component registers with
    no inputs: under ``pulumi preview`` the ``eks:index:Cluster`` arrives empty and its
    ``aws:eks/cluster:Cluster`` child carries the settings. Offline it is the other way round: the
    component carries the program's inputs and the engine records no children of it.
    """
    return resource_type == EKS_CLUSTER or bool(props)


def _secrets_key_arn(resource_type: str, props: Props) -> str:
    if resource_type == EKS_COMPONENT:
        return str(props.get("encryptionConfigKeyArn") or "")
    config = _mapping(props.get("encryptionConfig"))
    if "secrets" not in _items(config.get("resources")):
        return ""
    return str(_mapping(config.get("provider")).get("keyArn") or "")


def _secrets_encrypted(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    if not _carries_cluster_settings(resource_type, props) or _secrets_key_arn(resource_type, props):
        return []
    return [
        "The EKS cluster does not encrypt Kubernetes secrets with a KMS key; give it a key "
        "(encryptionConfigKeyArn on pulumi-eks's Cluster, encryptionConfig on aws.eks.Cluster)."
    ]


def _audit_logs(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    if not _carries_cluster_settings(resource_type, props) or "audit" in _items(props.get("enabledClusterLogTypes")):
        return []
    return [
        "The EKS cluster does not send the 'audit' control-plane log to CloudWatch; add 'audit' to "
        "enabledClusterLogTypes so that every change made through the Kubernetes API is recorded."
    ]


def _open_endpoint(resource_type: str, props: Props) -> list[str]:
    if not _carries_cluster_settings(resource_type, props):
        return []
    endpoint = props if resource_type == EKS_COMPONENT else _mapping(props.get("vpcConfig"))
    # EKS (and pulumi-eks) turn the public endpoint on unless told otherwise.
    if endpoint.get("endpointPublicAccess") is False:
        return []
    cidrs = [str(c) for c in _items(endpoint.get("publicAccessCidrs"))]
    if not cidrs:
        return [
            "The EKS cluster's public API endpoint is on with no publicAccessCidrs, which EKS opens to 0.0.0.0/0; "
            "list the clients' CIDRs in eks-gpu:endpointPublicAccessCidrs, or leave it empty for a private endpoint."
        ]
    return [
        f"The EKS cluster's public API endpoint admits {cidr}, every address on the internet; list only the "
        "clients' CIDRs in eks-gpu:endpointPublicAccessCidrs."
        for cidr in cidrs
        if cidr in OPEN_CIDRS
    ]


def _open_endpoint_in_production(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    return _open_endpoint(resource_type, props) if is_production(urn) else []


def _open_endpoint_elsewhere(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    return [] if is_production(urn) else _open_endpoint(resource_type, props)


# --- tags ---------------------------------------------------------------------------------------


def _required_tags(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    tags = _mapping(props.get("tags"))
    missing = [key for key in config["requiredTags"] if not tags.get(key)]
    if not missing:
        return []
    return [
        f"The resource lacks the required tag(s) {', '.join(missing)}; every taggable AWS resource must carry "
        f"{', '.join(config['requiredTags'])} with a value (policy config requiredTags)."
    ]


# --- IAM ----------------------------------------------------------------------------------------


def _documents(resource_type: str, props: Props) -> Iterator[tuple[str, Any]]:
    """``(input path, policy document)`` of every policy document among the inputs."""
    for key in IAM_DOCUMENTS[resource_type]:
        yield key, props.get(key)
    if resource_type == "aws:iam/role:Role":
        for i, inline in enumerate(_items(props.get("inlinePolicies"))):
            yield f"inlinePolicies[{i}].policy", _mapping(inline).get("policy")


def _wildcard_actions(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, raw in _documents(resource_type, props):
        if raw is None:
            continue
        try:
            document = _mapping(json.loads(raw) if isinstance(raw, str) else raw)
        except json.JSONDecodeError:
            problems.append(
                f"The IAM policy document in {path} is not valid JSON, so it cannot be checked for wildcards."
            )
            continue
        for i, statement in enumerate(_mapping(s) for s in _items(document.get("Statement"))):
            # A Deny of "*" takes rights away; only an Allow grants them.
            if statement.get("Effect") != "Allow":
                continue
            where = f"Statement {statement.get('Sid') or i} of the IAM policy document in {path}"
            if "*" in _items(statement.get("Action")):
                problems.append(f"{where} allows Action '*', every AWS action; list the actions it needs instead.")
            if "NotAction" in statement:
                problems.append(
                    f"{where} allows NotAction, every AWS action but those listed; list the actions it needs with "
                    "Action instead."
                )
    return problems


# --- GPU pods -----------------------------------------------------------------------------------


def _resources(container: Props, kind: str) -> Props:
    return _mapping(_mapping(container.get("resources")).get(kind))


def _hardening(container: Props, pod_context: Props) -> list[str]:
    """What a container of a GPU pod lacks of the Pod Security ``restricted`` level (and a read-only root)."""
    name = container.get("name")
    context = _mapping(container.get("securityContext"))

    def effective(key: str) -> Any:
        return context[key] if key in context else pod_context.get(key)

    problems = []
    if effective("runAsNonRoot") is not True:
        problems.append(
            f"Container '{name}' of a GPU pod may run as root; set securityContext.runAsNonRoot to true "
            "(on the pod or the container)."
        )
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(
            f"Container '{name}' of a GPU pod allows privilege escalation; set its "
            "securityContext.allowPrivilegeEscalation to false."
        )
    if "ALL" not in _items(_mapping(context.get("capabilities")).get("drop")):
        problems.append(
            f"Container '{name}' of a GPU pod keeps its Linux capabilities; set its "
            "securityContext.capabilities.drop to ['ALL']."
        )
    if _mapping(effective("seccompProfile")).get("type") not in SECCOMP_CONFINED:
        problems.append(
            f"Container '{name}' of a GPU pod runs without a seccomp profile; set securityContext.seccompProfile.type "
            "to RuntimeDefault (on the pod or the container)."
        )
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(
            f"Container '{name}' of a GPU pod can write to its root filesystem; set its "
            "securityContext.readOnlyRootFilesystem to true."
        )
    return problems


def _gpu_pod(resource_type: str, props: Props, urn: str, config: Mapping[str, Any]) -> list[str]:
    spec = _at(props, POD_SPEC_PATHS[resource_type])
    containers = [_mapping(c) for key in ("initContainers", "containers") for c in _items(spec.get(key))]
    gpu_containers = [
        c for c in containers if GPU_RESOURCE in _resources(c, "requests") or GPU_RESOURCE in _resources(c, "limits")
    ]
    if not gpu_containers:
        return []
    problems = [
        f"Container '{c.get('name')}' requests {GPU_RESOURCE} without a limit; set "
        f"resources.limits['{GPU_RESOURCE}'], which is how Kubernetes counts extended resources."
        for c in gpu_containers
        if GPU_RESOURCE not in _resources(c, "limits")
    ]
    pod_context = _mapping(spec.get("securityContext"))
    for container in containers:
        problems += _hardening(container, pod_context)
    return problems


# --- the policies -------------------------------------------------------------------------------

CLUSTER_TYPES = frozenset({EKS_COMPONENT, EKS_CLUSTER})

GPU_NODE_GROUPS = Policy(
    name="gpu-node-group-nvidia-ami-and-taint",
    description="GPU node groups use an EKS NVIDIA AMI type and carry an nvidia.com/gpu NO_SCHEDULE or "
    "NO_EXECUTE taint; GPU Karpenter NodePools carry it too (NoSchedule or NoExecute).",
    enforcement_level="mandatory",
    resource_types=frozenset({NODE_GROUP, NODE_POOL}),
    check=_gpu_pool,
)
LAUNCH_TEMPLATES = Policy(
    name="launch-template-imdsv2-encrypted-ebs",
    description="Node launch templates and Karpenter EC2NodeClasses require IMDSv2 (httpTokens 'required'; an "
    "EC2NodeClass also hop limit 1) and encrypt every EBS volume.",
    enforcement_level="mandatory",
    resource_types=frozenset({LAUNCH_TEMPLATE, EC2_NODE_CLASS}),
    check=_launch_template,
)
SECRETS_ENCRYPTED = Policy(
    name="eks-secrets-encrypted",
    description="The EKS cluster encrypts Kubernetes secrets with a KMS key.",
    enforcement_level="mandatory",
    resource_types=CLUSTER_TYPES,
    check=_secrets_encrypted,
)
AUDIT_LOGS = Policy(
    name="eks-audit-log-enabled",
    description="The EKS cluster sends the 'audit' control-plane log to CloudWatch.",
    enforcement_level="mandatory",
    resource_types=CLUSTER_TYPES,
    check=_audit_logs,
)
ENDPOINT_PRODUCTION = Policy(
    name="eks-public-endpoint-restricted-prod",
    description="In stacks named prod*, the EKS public API endpoint is not open to 0.0.0.0/0.",
    enforcement_level="mandatory",
    resource_types=CLUSTER_TYPES,
    check=_open_endpoint_in_production,
)
ENDPOINT_ELSEWHERE = Policy(
    name="eks-public-endpoint-restricted",
    description="In stacks not named prod*, the EKS public API endpoint should not be open to 0.0.0.0/0.",
    enforcement_level="advisory",
    resource_types=CLUSTER_TYPES,
    check=_open_endpoint_elsewhere,
)
REQUIRED_TAGS = Policy(
    name="required-tags",
    description="Every taggable AWS resource carries the required tags (config requiredTags, default Environment).",
    enforcement_level="advisory",
    resource_types=TAGGABLE_TYPES,
    check=_required_tags,
    config_schema={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "default": list(DEFAULT_REQUIRED_TAGS),
            "description": "Tag keys every taggable AWS resource must carry with a non-empty value.",
        }
    },
)
IAM_NO_WILDCARD_ACTIONS = Policy(
    name="iam-no-wildcard-actions",
    description="No IAM policy document (inline, managed or trust) allows Action '*' or uses NotAction in an Allow.",
    enforcement_level="mandatory",
    resource_types=frozenset(IAM_DOCUMENTS),
    check=_wildcard_actions,
)
GPU_PODS = Policy(
    name="gpu-pod-limits-and-hardening",
    description="Pods that use nvidia.com/gpu set it as a limit and run with a restricted security context.",
    enforcement_level="mandatory",
    resource_types=frozenset(POD_SPEC_PATHS),
    check=_gpu_pod,
)

POLICIES: tuple[Policy, ...] = (
    GPU_NODE_GROUPS,
    LAUNCH_TEMPLATES,
    SECRETS_ENCRYPTED,
    AUDIT_LOGS,
    ENDPOINT_PRODUCTION,
    ENDPOINT_ELSEWHERE,
    REQUIRED_TAGS,
    IAM_NO_WILDCARD_ACTIONS,
    GPU_PODS,
)
"""Every policy of the pack, in the order ``pulumi preview`` lists them."""


def evaluate(
    resource_type: str, props: Props, urn: str, config: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Violation]:
    """Every violation of one resource, as the pack would report it.

    ``config`` maps a policy name to its config (``{"required-tags": {"requiredTags": [...]}}``), as
    ``--policy-pack-config`` does; a policy not named there gets its defaults.
    """
    given = config or {}
    return [
        Violation(policy.name, policy.enforcement_level, message, urn)
        for policy in POLICIES
        for message in policy.violations(resource_type, props, urn, given.get(policy.name))
    ]
