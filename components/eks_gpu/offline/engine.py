"""The offline engine: runs a real Pulumi program under `pulumi.runtime.set_mocks` against a
fake AWS account, and records everything the program sends.

A run is one deployment (`pulumi up`, preview off) of the program with a given stack config:

* config is resolved as the Pulumi CLI does (project defaults from `Pulumi.yaml`, type checks);
* invokes are answered by `AwsAccount` from moto's AWS data;
* resources get the outputs a real deployment would compute (ids, ARNs, auto-names, EKS
  node group ASG names, an EKS cluster's kubeconfig, ...), network resources being created in
  the account;
* every resource registration (inputs and options), invoke, stack export and warning is
  recorded in a `ProgramRun`.

Runs are deterministic: the SDK's calls to the monitor run inline on the event loop thread (no
executor threads touch the loop), every generated identifier is derived from a hash of what it
names, and records are kept in a canonical order.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import contextvars
import functools
import gc
import heapq
import json
import logging
import os
import runpy
import sys
import threading
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar

import grpc
import yaml
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import rpc, set_all_config, settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import Stack, massage, run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await  # as MockMonitor uses them

from eks_gpu.config.parse import TOP_LEVEL_KEYS
from eks_gpu.config.problems import namespace_lookalike

from .aws import AwsAccount, AwsError, JsonDict, UnsupportedError, digest, go_json, offline_account
from .diff import rules

REPO = Path(__file__).resolve().parents[3]
"""The checkout holding this package (components/eks_gpu/offline/): the default program is its
`__main__.py`. Installed from a wheel, there is no such program: pass `program` and `project_file`."""

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
"""Signature value of a serialized resource reference (`rpc._special_resource_sig`)."""
SIG_KEY = "4dabf18193072939515e22adb298388d"
"""Key marking a special serialized value (`rpc._special_sig_key`)."""

P = ParamSpec("P")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Values as recorded: secrets unwrapped, dict keys sorted.


def _plain(value: Any) -> tuple[Any, bool]:
    """`value` with every secret unwrapped and dict keys sorted, and whether it held a secret."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))[0], True
    if isinstance(value, dict):
        secret = False
        items = {}
        for key in sorted(value):
            items[key], inner = _plain(value[key])
            secret = secret or inner
        return items, secret
    if isinstance(value, list):
        parts = [_plain(v) for v in value]
        return [v for v, _ in parts], any(s for _, s in parts)
    return value, False


def _plain_props(props: Mapping[str, Any]) -> tuple[JsonDict, tuple[str, ...]]:
    """A property map as recorded, and the names of the top-level properties holding secrets."""
    plain: JsonDict = {}
    secret: list[str] = []
    for key in sorted(props):
        plain[key], is_secret = _plain(props[key])
        if is_secret:
            secret.append(key)
    return plain, tuple(secret)


# --------------------------------------------------------------------------------------------
# Records.


@dataclass(frozen=True)
class RegisteredResource:
    """One resource registration as the program sent it, and what the mock answered."""

    type: str
    """Type token, e.g. `aws:eks/nodeGroup:NodeGroup` or `eks:index:Cluster`."""
    name: str
    """Logical name given in the program."""
    urn: str
    parent: str
    """URN of the parent resource (the stack, or a component)."""
    custom: bool
    """True for provider-managed resources, False for components."""
    remote: bool
    """True for a component implemented by a provider plugin (e.g. pulumi-eks's Cluster)."""
    provider: str
    """Provider reference (`urn::id`), empty for the default provider."""
    id: str
    """The physical id the mock answered ("" for components)."""
    inputs: JsonDict
    """Inputs with camelCase wire names, secrets unwrapped, keys sorted."""
    outputs: JsonDict
    """The state the mock answered (inputs plus computed outputs), same form as `inputs`."""
    secret_inputs: tuple[str, ...]
    """Top-level inputs that were (or contained) secrets."""
    dependencies: tuple[str, ...]
    """URNs the resource depends on (`depends_on` plus input dependencies), sorted."""
    property_dependencies: dict[str, tuple[str, ...]]
    """Per input property, the URNs its value came from, sorted."""
    ignore_changes: tuple[str, ...]
    protect: bool
    delete_before_replace: bool
    aliases: tuple[JsonDict, ...]
    """Aliases as `{"urn": ...}` or `{"spec": {...}}`."""
    additional_secret_outputs: tuple[str, ...]
    replace_on_changes: tuple[str, ...]
    retain_on_delete: bool
    custom_timeouts: dict[str, str]
    """Set timeouts among `create`, `update`, `delete`."""
    transforms: int = 0
    """How many `transforms` callbacks came with the registration (the engine applies them to
    the resource and, for a component, to its children; they are not run offline)."""
    deleted_with: str = ""
    """URN of the resource whose deletion deletes this one (`deleted_with`), "" for none: the
    engine counts it among the resource's dependencies when it orders deletes."""


class ProgramRun:
    """Everything one offline run of a program sent, in order."""

    def __init__(
        self,
        *,
        resources: list[RegisteredResource],
        outputs: JsonDict,
        secret_outputs: set[str],
        invokes: list[tuple[str, JsonDict]],
        warnings: list[str],
        errors: list[str],
        config: dict[str, str],
        account_data: Any,
        stack_references: list[str] | None = None,
    ) -> None:
        self.resources = resources
        """Resource registrations in dependency order: each after its parent and everything it
        depends on, ties broken by URN. (The SDK's own registration order depends on the
        process's hash seed; this order is one it could have produced, and the same in every
        process.)"""
        self.outputs = outputs
        """Stack exports, fully resolved, secrets unwrapped."""
        self.secret_outputs = secret_outputs
        """Names of the stack exports that were (or contained) secrets."""
        self.invokes = invokes
        """Every invoke as (token, args), sorted by token then args (call order is the SDK's
        scheduling for invokes made from outputs)."""
        self.warnings = warnings
        """Messages the program logged as warnings (`pulumi.log.warn`)."""
        self.errors = errors
        """Messages the program logged as errors (`pulumi.log.error`)."""
        self.config = config
        """The config the program saw: full keys, values as the CLI passes them."""
        self.account_data = account_data
        """What `account_setup` returned, if one was given."""
        self.stack_references = list(stack_references or [])
        """The stacks the program read through a `StackReference`, by name, in order."""

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        """All resources of `type_token`, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name_suffix: str | None = None) -> RegisteredResource:
        """The single resource of `type_token` (whose logical name ends with `name_suffix`)."""
        found = [r for r in self.of_type(type_token) if name_suffix is None or r.name.endswith(name_suffix)]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_token)]
            raise LookupError(
                f"expected one {type_token} named *{name_suffix or ''}, found {len(found)}; names: {names}"
            )
        return found[0]

    def by_urn(self, urn: str) -> RegisteredResource:
        """The resource with this URN."""
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def children_of(self, urn: str) -> list[RegisteredResource]:
        """Resources whose parent is `urn`, in registration order."""
        return [r for r in self.resources if r.parent == urn]

    def named(self, name: str) -> RegisteredResource:
        """The single resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]


# --------------------------------------------------------------------------------------------
# The mocks: what a real deployment would answer.


class ResourceRequest(MockResourceArgs):
    """`MockResourceArgs` plus the resource's URN (identifiers derive from it) and whether it
    is a remote component."""

    def __init__(self, *, urn: str, remote: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urn = urn
        self.remote = remote


@functools.cache
def _properties(type_token: str) -> frozenset[str]:
    """Python property names of the pulumi-aws class for `type_token` (empty for other
    packages): which outputs (`name`, `arn`, `tags_all`) the type has."""
    import importlib
    import inspect
    import keyword

    package, module, class_name = type_token.split(":")
    if package != "aws":
        return frozenset()
    module = module.split("/")[0]
    module = f"{module}_" if keyword.iskeyword(module) else module
    module_path = "pulumi_aws" if module == "index" else f"pulumi_aws.{module}"
    cls = getattr(importlib.import_module(module_path), class_name)
    return frozenset(n for n, v in inspect.getmembers(cls) if isinstance(v, property))


def autoname(name: str, urn: str) -> str:
    """Pulumi's auto-name for a resource: `<logical name>-<7 hex>`, the hex derived from the URN."""
    return f"{name}-{digest('autoname', urn)[:7]}"


def _prefixed_name(prefix: str, urn: str) -> str:
    """The provider's name for a `name_prefix`: the prefix and 26 digits (here, from the URN)."""
    return prefix + str(int(digest("prefix", urn), 16))[:26]


def _uuid(*parts: str) -> str:
    """A UUID-shaped identifier derived from `parts`."""
    return str(uuid.UUID(hex=digest("uuid", *parts)[:32]))


def _kebab(name: str) -> str:
    """`LaunchTemplate` -> `launch-template` (the resource part of most EC2 ARNs)."""
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str, credentials: Mapping[str, Any]) -> JsonDict:
    """The kubeconfig pulumi-eks generates for a cluster (`generateKubeconfig`): exec auth
    through `aws eks get-token`, with `--role`/`--profile` from `providerCredentialOpts`."""
    args = ["--region", region, "eks", "get-token", "--cluster-name", cluster_name, "--output", "json"]
    if credentials.get("roleArn"):
        args += ["--role", credentials["roleArn"]]
    if credentials.get("profileName"):
        args += ["--profile", credentials["profileName"]]
    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"server": endpoint, "certificate-authority-data": ca_data}, "name": "kubernetes"}],
        "contexts": [{"context": {"cluster": "kubernetes", "user": "aws"}, "name": "aws"}],
        "current-context": "aws",
        "kind": "Config",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": args,
                        "env": [
                            {
                                "name": "KUBERNETES_EXEC_INFO",
                                "value": '{"apiVersion": "client.authentication.k8s.io/v1beta1"}',
                            }
                        ],
                    }
                },
            }
        ],
    }


def _kubernetes_metadata(req: ResourceRequest, metadata: JsonDict) -> JsonDict:
    """A Kubernetes object's metadata as the API server returns it: pulumi-kubernetes auto-names
    an object without ``metadata.name`` (``<logical name>-<suffix>``), and the server adds a uid."""
    return {"name": autoname(req.name, req.urn), "uid": _uuid("uid", req.urn), **metadata}


class AccountMocks(Mocks):
    """Pulumi mocks backed by an `AwsAccount`: invokes are answered from the account, and each
    resource gets the state a real deployment would produce (inputs plus computed outputs)."""

    def __init__(self, account: AwsAccount) -> None:
        self.account = account
        self._states: dict[tuple[str, str], JsonDict] = {}
        """State of each custom resource by (type, id), secrets unwrapped."""
        self._eks_clusters: dict[str, JsonDict] = {}
        """State of each EKS cluster by cluster name."""

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """Answer a provider function call from the account."""
        plain, _ = _plain(args.args)
        return self.account.invoke(args.token, plain), []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        """The (id, state) of a registered resource. `args` must be a `ResourceRequest`
        (`RecordingMonitor` sends them): auto-names and ids derive from the URN."""
        if not isinstance(args, ResourceRequest):
            raise TypeError("AccountMocks needs a ResourceRequest (use it with RecordingMonitor)")
        if args.resource_id:
            raise UnsupportedError(f"offline: importing {args.typ} {args.resource_id!r} is not supported")
        if args.typ == "eks:index:Cluster" and args.remote:
            return self._eks_component(args)
        if not args.custom:
            return "", dict(args.inputs)
        return self._custom(args)

    # ---- custom resources

    def _custom(self, req: ResourceRequest) -> tuple[str, JsonDict]:
        plain, _ = _plain(req.inputs)
        token = req.typ
        props = _properties(token)
        computed: JsonDict = {}
        resource_id = ""
        if self.account.creates(token):
            resource_id, computed = self.account.create(token, req.urn, plain)
        if "name" in props and not plain.get("name"):
            prefix = plain.get("namePrefix")
            computed["name"] = _prefixed_name(prefix, req.urn) if prefix else autoname(req.name, req.urn)
        if token.startswith("kubernetes:") and "metadata" in plain:
            computed["metadata"] = _kubernetes_metadata(req, plain["metadata"])
        special = self._SPECIAL.get(token)
        if special is not None:
            computed.update(special(self, req, {**plain, **computed}))
        resource_id = computed.pop("id", None) or resource_id or f"{req.name}-{digest('id', req.urn)[:8]}"
        if "arn" in props and "arn" not in computed:
            computed["arn"] = self._generic_arn(token, resource_id)
        if "tags_all" in props:
            computed.setdefault("tagsAll", plain.get("tags") or {})
        state = {**req.inputs, **computed, "id": resource_id}
        self._states[(token, resource_id)] = {**plain, **computed, "id": resource_id}
        return resource_id, state

    def _generic_arn(self, token: str, resource_id: str) -> str:
        service = token.split(":")[1].split("/")[0]
        return self.account.arn(service, f"{_kebab(token.split(':')[2])}/{resource_id}", regional=service != "iam")

    def _iam_named(self, kind: str, values: JsonDict, prefix: str) -> JsonDict:
        path = values.get("path") or "/"
        name = values["name"]
        return {
            "arn": self.account.arn("iam", f"{kind}{path}{name}", regional=False),
            "uniqueId": prefix + digest("unique", kind, name)[:17].upper(),
        }

    def _role(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        return {**self._iam_named("role", values, "AROA"), "id": values["name"]}

    def _policy(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        named = self._iam_named("policy", values, "ANPA")
        return {"arn": named["arn"], "policyId": named["uniqueId"], "id": named["arn"]}

    def _instance_profile(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        return {**self._iam_named("instance-profile", values, "AIPA"), "id": values["name"]}

    def _oidc_provider(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        host = str(values.get("url", "")).removeprefix("https://")
        arn = self.account.arn("iam", f"oidc-provider/{host}", regional=False)
        return {"arn": arn, "id": arn}

    def _node_group(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        cluster = values["clusterName"]
        prefix = values.get("nodeGroupNamePrefix")
        name = values.get("nodeGroupName") or (
            _prefixed_name(prefix, req.urn) if prefix else autoname(req.name, req.urn)
        )
        group_uuid = _uuid(cluster, name)
        computed: JsonDict = {
            "id": f"{cluster}:{name}",
            "nodeGroupName": name,
            "arn": self.account.arn("eks", f"nodegroup/{cluster}/{name}/{group_uuid}"),
            "status": "ACTIVE",
            # EKS names a managed node group's Auto Scaling group eks-<node group>-<uuid>.
            "resources": [
                {"autoscalingGroups": [{"name": f"eks-{name}-{group_uuid}"}], "remoteAccessSecurityGroupId": ""}
            ],
        }
        version = self._eks_clusters.get(cluster, {}).get("version")
        if not values.get("version") and version:
            computed["version"] = version
        return computed

    def _addon(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        cluster, addon = values["clusterName"], values["addonName"]
        return {
            "id": f"{cluster}:{addon}",
            "arn": self.account.arn("eks", f"addon/{cluster}/{addon}/{_uuid(cluster, addon)}"),
        }

    def _launch_template(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        # EC2 numbers a template's versions from 1 (CreateLaunchTemplate) and adds one for each
        # CreateLaunchTemplateVersion (botocore's ec2 examples-1.json: LatestVersionNumber 1 for a new
        # template, 2 for "my-template" after one more version). An offline run has no history, so the
        # number stands for one: made up from the inputs that make a new version (rules().new_version),
        # it moves when they change and stays put on a tags-only edit, and a node group that named a
        # literal version instead of the template's own would not match it.
        versioned = {k: values[k] for k in rules().new_version if k in values}
        number = 1 + int(digest("version", json.dumps(versioned, sort_keys=True, default=str)), 16) % 97
        return {"id": "lt-" + digest("id", req.urn)[:17], "latestVersion": number, "defaultVersion": number}

    def _security_group(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        return {"id": "sg-" + digest("id", req.urn)[:17], "ownerId": self.account.account_id}

    def _kms_key(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        key_id = _uuid(req.urn)
        return {"id": key_id, "keyId": key_id, "arn": self.account.arn("kms", f"key/{key_id}")}

    def _eks_cluster_resource(self, req: ResourceRequest, values: JsonDict) -> JsonDict:
        vpc_config = dict(values.get("vpcConfig") or {})
        subnets = list(vpc_config.get("subnetIds") or [])
        vpc_id = next((v for v in map(self.account.subnet_vpc_id, subnets) if v), None)
        return self._eks_cluster_state(values["name"], values, vpc_config, vpc_id, values.get("roleArn"))

    _SPECIAL: ClassVar[dict[str, Callable[[AccountMocks, ResourceRequest, JsonDict], JsonDict]]] = {
        "aws:iam/role:Role": _role,
        "aws:iam/policy:Policy": _policy,
        "aws:iam/instanceProfile:InstanceProfile": _instance_profile,
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
        "aws:eks/nodeGroup:NodeGroup": _node_group,
        "aws:eks/addon:Addon": _addon,
        "aws:eks/cluster:Cluster": _eks_cluster_resource,
        "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
        "aws:ec2/securityGroup:SecurityGroup": _security_group,
        "aws:kms/key:Key": _kms_key,
    }
    """Outputs computed per resource type, beyond the generic id, name, arn and tagsAll."""

    # ---- EKS

    def _eks_cluster_state(
        self,
        name: str,
        values: JsonDict,
        vpc_config: JsonDict,
        vpc_id: str | None,
        role_arn: str | None,
    ) -> JsonDict:
        """The outputs of an `aws:eks/cluster:Cluster` named `name`."""
        account = self.account
        region, suffix = account.region, account.partition.dns_suffix
        key = digest("eks", account.account_id, region, name)
        endpoint_id = key[:32].upper()
        certificate = f"-----BEGIN CERTIFICATE-----\nOFFLINE{key}\n-----END CERTIFICATE-----\n"
        state: JsonDict = {
            "id": name,
            "name": name,
            "arn": account.arn("eks", f"cluster/{name}"),
            "endpoint": f"https://{endpoint_id}.gr7.{region}.eks.{suffix}",
            "certificateAuthority": {"data": base64.b64encode(certificate.encode()).decode()},
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.{suffix}/id/{endpoint_id}"}]}],
            "status": "ACTIVE",
            "vpcConfig": {
                "endpointPrivateAccess": False,
                "endpointPublicAccess": True,
                "publicAccessCidrs": ["0.0.0.0/0"],
                "securityGroupIds": [],
                **vpc_config,
                "clusterSecurityGroupId": "sg-" + key[32:49],
                "vpcId": vpc_id,
            },
            "tags": values.get("tags") or {},
            "tagsAll": values.get("tags") or {},
        }
        if role_arn:
            state["roleArn"] = role_arn
        if values.get("version"):
            state["version"] = values["version"]
        self._eks_clusters[name] = state
        return state

    def _eks_component(self, req: ResourceRequest) -> tuple[str, JsonDict]:
        """pulumi-eks's `Cluster` component: its outputs, and its `eksCluster` child registered
        in the monitor so that the resource reference it returns can be rehydrated."""
        plain, _ = _plain(req.inputs)
        monitor = settings.get_monitor()
        if not isinstance(monitor, MockMonitor):
            raise RuntimeError("the eks:index:Cluster mock needs the mock monitor")
        child_name = f"{req.name}-eksCluster"
        child_urn = monitor.make_urn(req.urn, "aws:eks/cluster:Cluster", child_name)
        name = plain.get("name") or autoname(child_name, child_urn)
        role = plain.get("serviceRole")
        role_arn = (
            self._states.get(("aws:iam/role:Role", role), {}).get("arn")
            if role
            else self.account.arn("iam", f"role/{autoname(f'{req.name}-eksRole-role', child_urn)}", regional=False)
        )
        subnets = plain.get("subnetIds") or [
            *(plain.get("privateSubnetIds") or []),
            *(plain.get("publicSubnetIds") or []),
        ]
        vpc_config: JsonDict = {"subnetIds": subnets}
        for key in ("endpointPrivateAccess", "endpointPublicAccess", "publicAccessCidrs"):
            if key in plain:
                vpc_config[key] = plain[key]
        cluster = self._eks_cluster_state(name, plain, vpc_config, plain.get("vpcId"), role_arn)
        monitor.resources[child_urn] = MockMonitor.ResourceRegistration(child_urn, name, cluster)
        config = kubeconfig(
            name,
            cluster["endpoint"],
            cluster["certificateAuthority"]["data"],
            self.account.region,
            # pulumi-eks exports the kubeconfig without the profile (kubeconfigWithoutProfile, cluster.ts):
            # it is meant to be shared; only its internal provider's copy carries `--profile`.
            {k: v for k, v in (plain.get("providerCredentialOpts") or {}).items() if k != "profileName"},
        )
        issuer = cluster["identities"][0]["oidcs"][0]["issuer"]
        oidc_url = issuer.removeprefix("https://")
        outputs: JsonDict = {
            "kubeconfig": config,
            "kubeconfigJson": json.dumps(config, separators=(",", ":")),
            "clusterSecurityGroupId": cluster["vpcConfig"]["clusterSecurityGroupId"],
            "oidcIssuer": issuer,
            "oidcProviderUrl": oidc_url,
            "oidcProviderArn": self.account.arn("iam", f"oidc-provider/{oidc_url}", regional=False),
            "eksCluster": {SIG_KEY: RESOURCE_REF_SIG, "urn": child_urn, "id": name},
        }
        if not plain.get("skipDefaultSecurityGroups"):
            # pulumi-eks makes its cluster and node security groups only when not told to skip them
            # (its v3 migration guide, "Default Security Groups can now be disabled"; nodejs/eks/cluster.ts
            # `else if (!args.skipDefaultSecurityGroups)`): a program that skips them gets no node group id.
            outputs["nodeSecurityGroupId"] = "sg-" + digest("node-sg", child_urn)[:17]
        return "", {**req.inputs, **outputs}


# --------------------------------------------------------------------------------------------
# The monitor: records what the program sends.


class InvokeFailed(grpc.RpcError, grpc.Call):
    """An AWS error answering an invoke, as a provider reports it: a gRPC error, which the SDK
    hands to the program as an exception it may catch (a failed read the program handles)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._message


class RecordingMonitor(MockMonitor):
    """A mock resource monitor that records every registration, invoke and stack export.

    It does not advertise resource references (nor output values): with them, passing a
    `Resource` into a remote component makes the stock mock monitor race its own event loop
    ("attached to a different loop"). Resources passed as inputs arrive as their ids/URNs."""

    def __init__(self, mocks: AccountMocks) -> None:
        super().__init__(mocks)
        self.records: list[RegisteredResource] = []
        """Resource registrations, in order."""
        self.invokes: list[tuple[str, JsonDict]] = []
        """Invokes as (token, args), in order."""
        self.stack_outputs: JsonDict | None = None
        """The stack's exports as last registered (raw, secrets still wrapped)."""
        self.stack_references: Mapping[str, ProgramRun] = {}
        """Other stacks' offline runs by fully qualified name, for `StackReference` reads."""
        self.references: list[str] = []
        """The stacks read through a `StackReference`, in order."""
        self._lock = threading.RLock()

    def SupportsFeature(self, request: Any) -> Any:
        """Answer "no" for resource references and output values."""
        has_support = request.id not in ("resourceReferences", "outputValues")
        return type("SupportsFeatureResponse", (object,), {"hasSupport": has_support})

    def GetDeploymentInfo(self, request: Any) -> resource_pb2.DeploymentInfo:
        """The stock features minus resource references."""
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def Invoke(self, request: Any) -> Any:
        """Record the invoke, then answer it (the SDK's own `getResource`, or the mocks)."""
        _ensure_event_loop()
        args, _ = _plain(rpc.deserialize_properties(request.args))
        with self._lock:
            self.invokes.append((request.tok, args))
        try:
            return super().Invoke(request)
        except AwsError as exc:
            raise InvokeFailed(str(exc)) from exc

    def ReadResource(self, request: Any) -> Any:
        """A `StackReference` reads the outputs of another stack's offline run (`run_program`'s
        `stack_references`), as the Pulumi service would: its ``outputs`` and ``secretOutputNames``
        (pulumi sdk/python/lib/pulumi/stack_reference.py). A stack the run was not given fails as an
        unknown stack does. Reading any other resource (`Resource.get`) is not simulated: fail loudly."""
        if request.type != STACK_REFERENCE_TYPE:
            raise UnsupportedError(f"offline: reading {request.type} {request.id!r} (Resource.get) is not supported")
        referenced = self.stack_references.get(request.id)
        if referenced is None:
            known = ", ".join(sorted(self.stack_references)) or "none"
            raise InvokeFailed(f"unknown stack {request.id!r} (offline runs given: {known})")
        state = {
            "name": request.id,
            "outputs": referenced.outputs,
            "secretOutputNames": sorted(referenced.secret_outputs),
        }
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, request.id, state)
            self.references.append(request.id)
        props = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.ReadResourceResponse(urn=urn, properties=props)

    def RegisterResource(self, request: Any) -> Any:
        """Ask the mocks for the resource's state and record the registration."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        args = ResourceRequest(
            urn=urn,
            remote=request.remote,
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom,
        )
        with self._lock:
            resource_id, state = self.mocks.new_resource(args)
            resource_id = resource_id or ""
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
            self.records.append(self._record(request, urn, resource_id, inputs, state))
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj_proto)

    @staticmethod
    def _record(request: Any, urn: str, resource_id: str, inputs: JsonDict, state: JsonDict) -> RegisteredResource:
        plain_inputs, secret_inputs = _plain_props(inputs)
        plain_state, _ = _plain_props(state)
        aliases = [MessageToDict(a) for a in request.aliases] + [{"urn": u} for u in request.aliasURNs]
        return RegisteredResource(
            type=request.type,
            name=request.name,
            urn=urn,
            parent=request.parent,
            custom=request.custom,
            remote=request.remote,
            provider=request.provider,
            id=resource_id,
            inputs=plain_inputs,
            outputs=plain_state,
            secret_inputs=secret_inputs,
            dependencies=tuple(sorted(request.dependencies)),
            property_dependencies={
                key: tuple(sorted(request.propertyDependencies[key].urns))
                for key in sorted(request.propertyDependencies)
            },
            ignore_changes=tuple(request.ignoreChanges),
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
            aliases=tuple(aliases),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
            replace_on_changes=tuple(request.replaceOnChanges),
            retain_on_delete=bool(request.retainOnDelete),
            custom_timeouts=MessageToDict(request.customTimeouts) if request.HasField("customTimeouts") else {},
            transforms=len(request.transforms),
            deleted_with=request.deletedWith,
        )

    def RegisterResourceOutputs(self, request: Any) -> empty_pb2.Empty:
        """Record the stack's exports."""
        if request.urn.split("::")[2] == STACK_TYPE:
            outputs = rpc.deserialize_properties(request.outputs)
            with self._lock:
                self.stack_outputs = outputs
        return empty_pb2.Empty()


# --------------------------------------------------------------------------------------------
# Config, resolved as the Pulumi CLI does.

_CONFIG_TYPES = ("string", "integer", "boolean", "array", "object")


@dataclass(frozen=True)
class _ConfigValue:
    """A config value as the CLI holds it: its text, and whether the text is an object's JSON."""

    text: str
    is_object: bool = False


def _config_value(value: Any) -> _ConfigValue:
    """A native value (as in a stack YAML file) as the CLI passes it to the program: strings
    as is, scalars as their text (`true`, `3`), lists and maps as Go-encoded JSON."""
    if isinstance(value, str):
        return _ConfigValue(value)
    if isinstance(value, bool | int | float):
        return _ConfigValue(json.dumps(value))
    if value is None:
        return _ConfigValue("")
    return _ConfigValue(go_json(value, sort_keys=True), is_object=True)


def _default_value(value: Any) -> _ConfigValue:
    """A `Pulumi.yaml` default or value as the CLI turns it into config (`createConfigValue`):
    strings, integers and booleans as text, anything else as JSON."""
    if isinstance(value, str):
        return _ConfigValue(value)
    if isinstance(value, bool):
        return _ConfigValue("true" if value else "false")
    if isinstance(value, int):
        return _ConfigValue(str(value))
    return _ConfigValue(go_json(value, sort_keys=True), is_object=True)


def _valid_config(type_name: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    """Whether `value` is of the project config type (`workspace.ValidateConfigValue`)."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        if isinstance(value, str):
            digits = value[1:] if value[:1] in "+-" else value
            return digits.isascii() and digits.isdigit()
        return False
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_valid_config(items.get("type", ""), items.get("items"), v) for v in value)


def _full_type_name(type_name: str, items: Mapping[str, Any] | None) -> str:
    if items is not None:
        return f"array<{_full_type_name(items.get('type', ''), items.get('items'))}>"
    return type_name


def _project_config(project_file: Path, project: str) -> dict[str, JsonDict]:
    """The `config:` block of a `Pulumi.yaml`, shorthands expanded and checked as the CLI does
    (`RewriteShorthandConfigValues`, `Project.Validate`)."""
    document = yaml.safe_load(project_file.read_text()) or {}
    if document.get("name") != project:
        raise ValueError(f"{project_file} is project {document.get('name')!r}, not {project!r}")
    declared = document.get("config") or {}
    if isinstance(declared, str):  # the legacy spelling of stackConfigDir
        return {}
    result: dict[str, JsonDict] = {}
    for key, decl in declared.items():
        by_project = ":" not in key or key.startswith(f"{project}:")
        if isinstance(decl, str | int | bool | list):
            decl = {"default": decl} if by_project else {"value": decl}
        if not isinstance(decl, dict):
            raise ValueError(f"{project_file}: config {key!r} must be a value or a type declaration")
        if decl.get("default") is not None and decl.get("value") is not None:
            raise ValueError(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        type_name = decl.get("type")
        if by_project:
            if type_name is not None and type_name not in _CONFIG_TYPES:
                raise ValueError(f"{project_file}: config {key!r} has unknown type {type_name!r}")
            if type_name == "array" and decl.get("items") is None:
                raise ValueError(
                    f"The configuration key '{key}' declares an array "
                    "but does not specify the underlying type via the 'items' attribute"
                )
            default = decl.get("default")
            if (
                type_name is not None
                and default is not None
                and not _valid_config(type_name, decl.get("items"), default)
            ):
                raise ValueError(
                    f"The default value specified for configuration key '{key}' is not of the expected type "
                    f"'{_full_type_name(type_name, decl.get('items'))}'"
                )
        elif type_name is not None:
            raise ValueError(f"Configuration key '{key}' is not namespaced by the project and should not define a type")
        elif decl.get("default") is not None:
            raise ValueError(
                f"Configuration key '{key}' is not namespaced by the project and should not define a default value. "
                "Did you mean to use the 'value' attribute instead of 'default'?"
            )
        elif decl.get("value") is None:
            raise ValueError(f"Configuration key '{key}' is namespaced and must provide an attribute 'value'")
        result[key] = decl
    return result


def resolve_config(config: Mapping[str, Any], *, stack: str, project: str, project_file: Path | None) -> dict[str, str]:
    """The config a program sees for a stack whose config is `config` (full keys, native
    values): values converted as the CLI passes them, `Pulumi.yaml` defaults and values applied
    to keys the stack does not set, stack values checked against declared types. Errors carry
    the CLI's messages."""
    values: dict[str, _ConfigValue] = {}
    for key, value in config.items():
        if key.count(":") != 1:
            raise ValueError(f"config key {key!r} must be of the form <namespace>:<name>")
        values[key] = _config_value(value)
    declared = _project_config(project_file, project) if project_file is not None else {}
    missing = []
    for key in sorted(declared):
        decl = declared[key]
        full = key if ":" in key else f"{project}:{key}"
        if full in values:
            continue
        if decl.get("default") is not None:
            values[full] = _default_value(decl["default"])
        elif decl.get("value") is not None:
            values[full] = _default_value(decl["value"])
        elif full.split(":")[0] == project:
            missing.append(key)
    if missing:
        names = [f"'{k}'" for k in missing]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        plural = "value" if len(names) == 1 else "values"
        raise ValueError(f"Stack '{stack}' is missing configuration {plural} {listed}")
    for key in sorted(declared):
        decl = declared[key]
        type_name = decl.get("type")
        if type_name is None:
            continue
        if decl.get("secret"):
            raise ValueError(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
        value = values[key if ":" in key else f"{project}:{key}"]
        content = json.loads(value.text) if value.is_object else value.text
        if not _valid_config(type_name, decl.get("items"), content):
            raise ValueError(
                f"Stack '{stack}' with configuration key '{key}' must be of type "
                f"'{_full_type_name(type_name, decl.get('items'))}'"
            )
    return {key: values[key].text for key in sorted(values)}


def load_stack_file(path: str | Path) -> dict[str, Any]:
    """The `config:` of a `Pulumi.<stack>.yaml`: full keys, native values. Encrypted
    (`secure:`) values cannot be decrypted offline and are refused. A file that is not YAML, or
    not a mapping with a `config:` mapping, is a ValueError naming the file (and line)."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        reason = ", ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ValueError(f"{where}: not valid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise ValueError(f"{path}: a stack file is a mapping whose config: is a mapping of <namespace>:<name> keys")
    config: dict[str, Any] = document.get("config") or {}

    def check(key: str, value: Any) -> None:
        if isinstance(value, dict):
            if "secure" in value:
                raise ValueError(f"{path}: {key} is encrypted (secure:); offline runs take plaintext config only")
            for inner in value.values():
                check(key, inner)
        elif isinstance(value, list):
            for inner in value:
                check(key, inner)

    for key, value in config.items():
        if key.count(":") != 1:
            meant = namespace_lookalike(key, TOP_LEVEL_KEYS)
            hint = f" (did you mean {meant}?)" if meant else ""
            raise ValueError(f"{path}: config key {key!r} must be of the form <namespace>:<name>{hint}")
        check(key, value)
    return config


# --------------------------------------------------------------------------------------------
# Running a program.


class _MonitorThread(concurrent.futures.ThreadPoolExecutor):
    """The event loop's default executor for a run: one worker thread, so every call the SDK
    sends "to a thread" (every monitor RPC) runs in order of submission, one at a time.

    One thread, not inline on the loop: the mock monitor pumps an event loop while it serializes
    (``_sync_await``), and on the program's own loop that nests registrations inside each other
    until a few hundred resources overflow the stack. In its own thread it pumps its own loop,
    which ``close`` closes with the thread. Resource references are off (see ``RecordingMonitor``),
    which is what made a monitor thread race the loop; and records are put in a canonical order
    after the run, so thread timing never shows in them."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="offline-monitor")

    def close(self) -> None:
        """Close the worker's event loop, if the monitor made one, and stop the worker."""

        def close_loop() -> None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_event_loop_policy().get_event_loop()
                if not loop.is_running():
                    loop.close()

        self.submit(close_loop).result()
        self.shutdown(wait=True)


class _LogCapture(logging.Handler):
    """Collects the warnings and errors the program logs through the engine."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        (self.errors if record.levelno >= logging.ERROR else self.warnings).append(record.getMessage())


@dataclass
class _Recording:
    monitor: RecordingMonitor
    log: _LogCapture = field(default_factory=_LogCapture)


def _ignore_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed run's loop exception handler: drops "exception was never retrieved" reports."""
    if "never retrieved" not in str(context.get("message", "")):
        loop.default_exception_handler(context)


def _imported_from(module: Any, directory: Path) -> bool:
    """Whether `module` was found through `directory` on `sys.path` (a module or package at
    its top level, such as an example's own modules), not merely stored somewhere below it
    (a virtualenv inside the project is below it too)."""
    module_file = getattr(module, "__file__", None)
    if not module_file:
        return False
    top = directory / module.__name__.split(".")[0]
    return Path(module_file) == top.with_suffix(".py") or Path(module_file).is_relative_to(top)


def _forget_aborted_run(exc: BaseException) -> None:
    """Free what a failed run left behind, now rather than in some later test.

    The SDK's settings (``SETTINGS.outputs``: every output not yet resolved) and the traceback's
    frames (the program's globals) hold the outputs of the run and the coroutines the SDK made for
    them and never ran: the run stopped first. Released (the frames and line numbers stay), they are
    garbage; collected here, their "never awaited" warnings, which belong to the aborted run as they
    would die with a real `pulumi up` process, are dropped instead of surfacing in whichever later
    test the collector happens to run."""
    pending = bool(settings.SETTINGS.outputs)
    settings.SETTINGS.outputs.clear()
    traceback.clear_frames(exc.__traceback__)
    if pending:  # a full collection takes 0.2 s: only when the run left outputs behind
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gc.collect()


def _execute(
    program: Path,
    config: dict[str, str],
    *,
    project: str,
    stack: str,
    account: AwsAccount,
    stack_references: Mapping[str, ProgramRun],
) -> _Recording:
    """Run `program` once under mocks and return what it sent."""
    recording = _Recording(RecordingMonitor(AccountMocks(account)))
    recording.monitor.stack_references = stack_references
    logger = logging.Logger(f"offline.{project}.{stack}", logging.WARNING)
    logger.addHandler(recording.log)
    program_dir = str(program.parent)
    saved_path, saved_cwd, saved_modules = list(sys.path), os.getcwd(), set(sys.modules)

    def body() -> None:
        runpy.run_path(str(program), run_name="__main__")
        root = settings.get_root_resource()
        if not isinstance(root, Stack):
            raise RuntimeError("the program ran without a root stack")
        # set_mocks registered the stack's (then empty) outputs already; register the exports
        # now, as the CLI's entry point does once the program's top level has run.
        root.register_outputs(massage(root.outputs, []))

    try:
        with asyncio.Runner() as runner:
            monitor_thread = _MonitorThread()
            runner.get_loop().set_default_executor(monitor_thread)
            settings.ROOT.set(None)
            settings.SETTINGS.outputs.clear()
            set_mocks(
                recording.monitor.mocks,
                project=project,
                stack=stack,
                preview=False,
                logger=logger,
                monitor=recording.monitor,
            )
            set_all_config(config)
            sys.path.insert(0, program_dir)
            os.chdir(program_dir)
            try:
                runner.run(run_pulumi_func(body), context=contextvars.copy_context())
            except BaseException as exc:
                # The error propagates; the SDK's futures that hold copies of it are not reported
                # again as "never retrieved" when they are garbage collected.
                runner.get_loop().set_exception_handler(_ignore_unretrieved)
                # What the program had registered when it failed, for tests of "errors before any
                # resource": read it as `exc.registered`.
                exc.registered = tuple(recording.monitor.records)  # type: ignore[attr-defined]
                raise
            finally:
                monitor_thread.close()
                sys.path[:] = saved_path
                os.chdir(saved_cwd)
                set_all_config({})
                settings.ROOT.set(None)
                # Forget the program's own modules (those beside it), as a fresh `pulumi up`
                # process would: nothing a module holds leaks into the next run.
                for name in set(sys.modules) - saved_modules:
                    if _imported_from(sys.modules[name], program.parent):
                        del sys.modules[name]
    except BaseException as exc:
        _forget_aborted_run(exc)
        raise
    return recording


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "dev",
    project: str = "eks-gpu",
    program: Path = REPO / "__main__.py",
    project_file: Path | None = REPO / "Pulumi.yaml",
    account_setup: Callable[[AwsAccount], Any] | None = None,
    account: AwsAccount | None = None,
    stack_references: Mapping[str, ProgramRun] | None = None,
) -> ProgramRun:
    """Run the Pulumi `program` once, offline, as `pulumi up` of `stack` with `config`.

    `config` has full keys (`aws:region`, `eks-gpu:vpc`) and native values; `aws:region` is
    required. Without `account`, the run gets a fresh fake account in that region, alive for
    the run only; `account_setup(account)` runs first (to pre-create things), and what it
    returns is `ProgramRun.account_data`. With `account` (a running `AwsAccount`, e.g. from
    `offline_account`), the run uses it as it is. An exception raised by the program (or an
    AWS error it caused) propagates, after the mock account is stopped. `stack_references` maps a
    stack's fully qualified name (``org/project/stack``) to its offline run: what a
    `pulumi.StackReference` of that name reads."""
    refs = dict(stack_references or {})
    resolved = resolve_config(config, stack=stack, project=project, project_file=project_file)
    region = resolved.get("aws:region")
    if not region:
        raise ValueError("config 'aws:region' is required for an offline run")
    program = Path(program).resolve()
    if account is None:
        with offline_account(region) as fresh:
            return _run(program, resolved, project=project, stack=stack, account=fresh, setup=account_setup, refs=refs)
    if not account.running:
        raise ValueError("the account passed to run_program is not running")
    if account.region != region:
        raise ValueError(f"the account is in {account.region!r} but config aws:region is {region!r}")
    return _run(program, resolved, project=project, stack=stack, account=account, setup=account_setup, refs=refs)


def _dependency_order(records: list[RegisteredResource]) -> list[RegisteredResource]:
    """`records` topologically sorted (parent and dependencies first), ties broken by URN."""
    by_urn = {r.urn: r for r in records}
    waiting: dict[str, set[str]] = {}
    dependents: dict[str, list[str]] = {urn: [] for urn in by_urn}
    for r in records:
        needs = {r.parent, *r.dependencies, *(u for us in r.property_dependencies.values() for u in us)}
        waiting[r.urn] = {u for u in needs if u in by_urn and u != r.urn}
        for urn in waiting[r.urn]:
            dependents[urn].append(r.urn)
    ready = [urn for urn, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[RegisteredResource] = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for dependent in dependents[urn]:
            waiting[dependent].discard(urn)
            if not waiting[dependent]:
                heapq.heappush(ready, dependent)
    if len(ordered) != len(records):
        raise RuntimeError("the recorded resources depend on each other in a cycle")
    return ordered


def _run(
    program: Path,
    config: dict[str, str],
    *,
    project: str,
    stack: str,
    account: AwsAccount,
    setup: Callable[[AwsAccount], Any] | None,
    refs: Mapping[str, ProgramRun],
) -> ProgramRun:
    account_data = setup(account) if setup is not None else None
    recording = _execute(program, config, project=project, stack=stack, account=account, stack_references=refs)
    monitor = recording.monitor
    outputs, secret = _plain_props(monitor.stack_outputs or {})
    return ProgramRun(
        resources=_dependency_order(monitor.records),
        outputs=outputs,
        secret_outputs=set(secret),
        invokes=sorted(monitor.invokes, key=lambda i: (i[0], json.dumps(i[1], sort_keys=True, default=str))),
        warnings=list(recording.log.warnings),
        errors=list(recording.log.errors),
        config=config,
        account_data=account_data,
        stack_references=list(monitor.references),
    )
