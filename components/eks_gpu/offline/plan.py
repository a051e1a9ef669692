"""`make plan`: what `pulumi up` would build for a stack, what it costs per hour, whether it breaks policy.

Runs the real program with `Pulumi.<stack>.yaml` under the offline engine (the tests' engine), then
reads the recorded resources. No account, no CLI, no plugins:

    eks-gpu plan [--stack dev] [--json] [--diagram FILE] [--against OLD.json --fail-on replace]

(`python -m eks_gpu.offline.plan` is the same.) IDs and other values AWS computes are placeholders;
`pulumi preview` against an account is the authority.

Exit codes (each its own, for CI; errors go to stderr as one line per problem, never a traceback):

    0  the plan is printed, and nothing below applies
    1  the stack file is wrong: missing (--stack: naming the stacks there), not YAML (file:line:column),
       or the program's own errors (every problem of the file, each naming its key: eks-gpu:...,
       aws:region)
    2  the command line is wrong: an unknown option (argparse), --quota not CODE=VCPUS, an --against
       file that cannot be read or is not a plan, --fail-on without --against, a --diagram file that
       cannot be written
    3  --fail-on replace | rolls-nodes matched a change against --against's plan
    4  a mandatory policy is violated (the plan is still printed): the policy pack would make
       `pulumi preview` and `pulumi up` fail the same way, so a plan that exits 0 must be one that can
       deploy; a job that wants the plan whatever the policy says accepts 4 (`|| [ $? -eq 4 ]`)

When both 3 and 4 apply, 4: the stack could not be deployed at all.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from eks_gpu.config import POOL_LABEL, AmiType, CapacityType, Problem
from eks_gpu.design.karpenter import SPOT_ROLE_COMMAND
from eks_gpu.design.lookup import SPOT_ROLE
from eks_gpu.design.pinning import release_parameter
from eks_gpu.design.quotas import QuotaUse, quota_needs
from eks_gpu.design.tags import NODE_GROUP_TAG
from eks_gpu.facts.quotas import quota_for
from eks_gpu.facts.releases import autoscaler_releases
from eks_gpu.facts.versions import calendar
from eks_gpu.policy.cost import (
    EC2_NODE_CLASS,
    NODE_POOL,
    POINTS,
    catalogue_of,
    complete,
    ebs_price_source,
    line_items,
    monthly,
    node_pool,
    totals,
    unpriced,
)
from eks_gpu.policy.pricing import price_table

from .aws import AwsAccount, AwsError, offline_account
from .deployer import with_deployer
from .diff import ACTIONS, Change, diff, load_plan, render_changes, value_at
from .engine import REPO, ProgramRun, RegisteredResource, load_stack_file, run_program
from .nodepools import (
    NODE_POOL_HEADERS,
    SSM_INVOKE,
    node_pool_ami,
    node_pool_cells,
    node_pool_label,
    node_pool_quota_uses,
    node_pool_row,
    pool_ami_cells,
    pool_zones,
)
from .review import (
    COST_HEADERS,
    collapsed_names,
    completeness,
    cost_cells,
    cost_delta,
    markdown_changes,
    markdown_cost_delta,
    md_table,
)
from .review import cell as md_cell
from .review import code as md_code
from .stand_in import KEY as STAND_IN_KEY
from .stand_in import with_stand_in

NOTICE = (
    "Offline plan: resource IDs, ARNs and other values AWS computes are placeholders, and prices come "
    "from a bundled table; `pulumi preview` against an AWS account is the authority."
)
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"

KEY_PROPERTIES: Mapping[str, Sequence[str]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("availabilityZone", "cidrBlock"),
    "aws:ec2/natGateway:NatGateway": ("subnetId",),
    "aws:ec2/route:Route": ("destinationCidrBlock", "natGatewayId", "gatewayId"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "aws:kms/key:Key": ("enableKeyRotation",),
    "eks:index:Cluster": ("name", "version", "authenticationMode", "endpointPublicAccess", "publicAccessCidrs"),
    "aws:eks/addon:Addon": ("addonName", "addonVersion"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("metadataOptions.httpTokens", "blockDeviceMappings"),
    NODE_GROUP: ("instanceTypes", "amiType", "capacityType", "scalingConfig", "taints"),
    "aws:autoscaling/tag:Tag": ("tag.key", "tag.value"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("namespace", "serviceAccount"),
    "kubernetes:helm.sh/v3:Release": ("chart", "version", "namespace"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
    "kubernetes:core/v1:ResourceQuota": ("spec.hard",),
    "kubernetes:batch/v1:Job": ("spec.template.spec.containers", "spec.template.spec.nodeSelector"),
}
"""What the resource tree shows of each type (dotted paths into the inputs)."""


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        if all("image" in v for v in value):
            return ",".join(str(v["image"]) for v in value)
        if all("ebs" in v for v in value):
            return ",".join(
                f"{v.get('deviceName')}:{_short(v['ebs'].get('volumeSize', 'ami'))}GiB "
                f"{v['ebs'].get('volumeType')} encrypted={v['ebs'].get('encrypted')}"
                for v in value
            )
        if all("effect" in v for v in value):
            return ",".join(f"{v.get('key')}={v.get('value') or ''}:{v['effect']}" for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(_short(v) for v in value)
    return str(value)


def key_properties(resource: RegisteredResource) -> dict[str, str]:
    """The properties the tree shows for ``resource``."""
    out = {}
    for path in KEY_PROPERTIES.get(resource.type, ()):
        value = value_at(resource.inputs, path)
        if value is not None:
            out[path] = _short(value)
    return out


# --- node groups and cost -----------------------------------------------------------------


@dataclass(frozen=True)
class NodeGroupRow:
    """One node group as the plan shows it."""

    key: str
    instance_types: tuple[str, ...]
    ami_type: str
    capacity_type: str
    gpu_model: str | None
    gpus_per_node: int
    vcpus_per_node: int
    memory_gib_per_node: float
    sizes: Mapping[str, int]
    """Cost point -> node count."""
    availability_zones: tuple[str, ...]
    efa_interfaces: int = 0
    """EFA interfaces per node (0: no EFA)."""
    placement_group: bool = False
    allocatable: Mapping[str, str] | None = None
    """What a node offers pods, as the stack output ``gpuNodeGroups.<key>.allocatable`` says (GPU pools)."""
    kubernetes_version: str = ""
    release_version: str | None = None
    """The AMI release the group is sent (``releaseVersion``); None: EKS's latest at creation, kept."""


def _int(value: Any) -> int:
    return int(float(value))


def _templates_by_pool(run: ProgramRun) -> dict[str, Mapping[str, Any]]:
    """Pool key -> its launch template's inputs, found by the identity tag it puts on what it launches."""
    out: dict[str, Mapping[str, Any]] = {}
    for lt in run.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        for spec in lt.inputs.get("tagSpecifications") or []:
            key = (spec.get("tags") or {}).get(NODE_GROUP_TAG)
            if key:
                out[key] = lt.inputs
    return out


def node_groups(run: ProgramRun, facts: Mapping[str, Mapping[str, Any]], azs: Mapping[str, str]) -> list[NodeGroupRow]:
    """The node groups of ``run``; ``facts`` are the instance types' records, ``azs`` subnet -> AZ."""
    templates = _templates_by_pool(run)
    pools = run.outputs.get("gpuNodeGroups") or {}
    rows = []
    for ng in run.of_type(NODE_GROUP):
        i = ng.inputs
        types = tuple(i.get("instanceTypes") or [])
        first = facts[types[0]] if types else {}
        gpus = first.get("gpuses") or []
        scaling = i["scalingConfig"]
        rows.append(
            NodeGroupRow(
                key=i["labels"][POOL_LABEL],
                instance_types=types,
                ami_type=i["amiType"],
                capacity_type=i["capacityType"],
                gpu_model=gpus[0]["name"] if gpus else None,
                gpus_per_node=sum(_int(g["count"]) for g in gpus),
                vcpus_per_node=_int(first.get("defaultVcpus", 0)),
                memory_gib_per_node=float(first.get("memorySize", 0)) / 1024,
                sizes={
                    "idle": _int(scaling["minSize"]),
                    "desired": _int(scaling["desiredSize"]),
                    "max": _int(scaling["maxSize"]),
                },
                availability_zones=tuple(sorted({azs[s] for s in i["subnetIds"] if s in azs})),
                efa_interfaces=sum(
                    1
                    for nic in templates.get(i["labels"][POOL_LABEL], {}).get("networkInterfaces") or []
                    if nic.get("interfaceType") in ("efa", "efa-only")
                ),
                placement_group="placement" in templates.get(i["labels"][POOL_LABEL], {}),
                allocatable=(pools.get(i["labels"][POOL_LABEL]) or {}).get("allocatable"),
                kubernetes_version=str(i.get("version") or ""),
                release_version=i.get("releaseVersion"),
            )
        )
    return sorted(rows, key=lambda r: (r.key != "system", r.key))


ADDON = "aws:eks/addon:Addon"
ADDON_INVOKE = "aws:eks/getAddonVersion:getAddonVersion"
CLUSTER_ADDON_INPUTS = {
    "vpc-cni": ("vpcCniOptions", "addonVersion"),
    "kube-proxy": ("kubeProxyAddonOptions", "version"),
}
"""The add-ons pulumi-eks creates inside the cluster component, and where their version is among its inputs."""


def addon_rows(run: ProgramRun, answer: Callable[[str, Mapping[str, Any]], Any]) -> list[dict[str, Any]]:
    """Every EKS add-on the program installs, with the version it sends and EKS's default for the
    cluster's Kubernetes version (the answer to the program's own ``getAddonVersion`` invoke)."""
    asked = [args for token, args in run.invokes if token == ADDON_INVOKE]
    defaults = {str(args["addonName"]): answer(ADDON_INVOKE, args) for args in asked}
    sent: dict[str, Any] = {str(a.inputs["addonName"]): a.inputs.get("addonVersion") for a in run.of_type(ADDON)}
    # none with eks-gpu:existingCluster: the cluster's own add-ons are not the stack's
    for cluster in (c.inputs for c in run.of_type("eks:index:Cluster")):
        for name, (options, key) in CLUSTER_ADDON_INPUTS.items():
            sent[name] = (cluster.get(options) or {}).get(key)
    return [
        {
            "name": name,
            "version": version,
            "eksDefault": (defaults.get(name) or {}).get("version"),
            "pinned": version is not None and version != (defaults.get(name) or {}).get("version"),
        }
        for name, version in sorted(sent.items())
    ]


def latest_releases(rows: Iterable[NodeGroupRow], answer: Callable[[str, Mapping[str, Any]], Any]) -> dict[str, Any]:
    """Node group key -> the latest AMI release AWS publishes for its AMI type and Kubernetes version."""
    out: dict[str, Any] = {}
    for row in rows:
        name = release_parameter(AmiType(row.ami_type), row.kubernetes_version)
        out[row.key] = (answer(SSM_INVOKE, {"name": name}) or {}).get("value")
    return out


# --- the plan ------------------------------------------------------------------------------


QUOTA_INVOKE = "aws:servicequotas/getServiceQuota:getServiceQuota"
QUOTA_NOTE = (
    "quota values are the offline account's (generous placeholders, or --quota CODE=VALUE); "
    "pulumi preview reads your account's and refuses a stack that cannot start its nodes"
)


def quota_rows(
    rows: Iterable[NodeGroupRow], values: Mapping[str, float], pools: Iterable[QuotaUse] = ()
) -> list[dict[str, Any]]:
    """What the node groups (and Karpenter's NodePools, ``pools``) need of each EC2 vCPU quota, at
    desired and max size, beside its value."""
    uses = [
        QuotaUse(
            key=row.key,
            prefix=(),
            instance_types=row.instance_types,
            capacity_type=CapacityType(row.capacity_type),
            vcpus_per_node=row.vcpus_per_node,
            desired=row.sizes["desired"],
            max=row.sizes["max"],
        )
        for row in rows
    ]
    needs, _ = quota_needs([*uses, *pools])
    return [
        {
            "code": code,
            "name": need.quota.name,
            "value": values[code],
            "desiredVcpus": need.desired_vcpus,
            "maxVcpus": need.max_vcpus,
            "nodeGroups": [u.key for u in need.uses],
        }
        for code, need in sorted(needs.items())
    ]


def _quota_of(use: QuotaUse) -> Any:
    return quota_for(use.instance_types[0], "spot" if use.capacity_type == CapacityType.SPOT else "on-demand")


def bundled_data() -> dict[str, Any]:
    """When the bundled facts the program judges versions by were last checked against their sources."""
    cal, releases = calendar(), autoscaler_releases()
    return {
        "eksVersions": {"updated": cal.updated.isoformat(), "newest": cal.newest(), "source": cal.source},
        "clusterAutoscaler": {
            "updated": releases.updated.isoformat(),
            "newest": releases.newest(),
            "chartVersion": releases.chart_version,
            "source": releases.source,
        },
    }


@dataclass(frozen=True)
class Project:
    """The Pulumi project planned: its ``Pulumi.yaml``, name and Python program."""

    directory: Path
    name: str
    program: Path

    @property
    def file(self) -> Path:
        return self.directory / "Pulumi.yaml"

    @staticmethod
    def of(directory: Path) -> Project:
        """The project in ``directory`` (its ``Pulumi.yaml``: ``name``, and ``main`` if set, else
        ``__main__.py``). ``ValueError`` when there is none or it names no Python program."""
        file = directory / "Pulumi.yaml"
        if not file.is_file():
            raise ValueError(f"no Pulumi.yaml in {directory}: run eks-gpu plan in a Pulumi project, or give --project")
        document = yaml.safe_load(file.read_text()) or {}
        main = directory / str(document.get("main") or ".")
        program = main / "__main__.py" if main.is_dir() else main
        if not program.is_file():
            raise ValueError(f"{file}: no Python program at {program}")
        return Project(directory, str(document.get("name", directory.name)), program)

    @staticmethod
    def around(start: Path) -> Project:
        """The project whose ``Pulumi.yaml`` is in ``start`` or the nearest folder above it."""
        for directory in (start, *start.parents):
            if (directory / "Pulumi.yaml").is_file():
                return Project.of(directory)
        raise ValueError(f"no Pulumi.yaml in {start} or above: run eks-gpu plan in a Pulumi project, or give --project")


def with_spot_role(account: AwsAccount, config: Mapping[str, Any]) -> list[str]:
    """What the plan must say about the spot service-linked role: nothing unless a Karpenter pool lists spot.
    The offline account is fresh, so it has no ``AWSServiceRoleForEC2Spot`` and the program would refuse the
    pool (:func:`eks_gpu.design.karpenter.spot_role_problems`); like the stand-in deployer CIDR, the plan
    assumes the role exists (it is made in ``account``) and says so: ``pulumi preview`` reads the real one."""
    pools = config.get("eks-gpu:gpuNodeGroups")
    if config.get("eks-gpu:provisioner") != "karpenter" or not isinstance(pools, Mapping):
        return []
    spot = [
        str(key)
        for key, pool in pools.items()
        if isinstance(pool, Mapping)
        and isinstance(pool.get("karpenter"), Mapping)
        and "spot" in (pool["karpenter"].get("capacityTypes") or ())
    ]
    if not spot:
        return []
    try:
        account.invoke("aws:iam/getRole:getRole", {"name": SPOT_ROLE})
        return []
    except AwsError:
        account.create_spot_service_linked_role()
    return [
        f"eks-gpu:gpuNodeGroups.{spot[0]}.karpenter.capacityTypes: planned as if the account had the "
        f"{SPOT_ROLE} service-linked role spot launches need (the offline account is fresh and has none); "
        f"pulumi preview refuses the stack without it: create it once per account with: {SPOT_ROLE_COMMAND}"
    ]


def build(
    stack_file: Path,
    *,
    today: date | None = None,
    quotas: Mapping[str, float] | None = None,
    project: Project | None = None,
) -> dict[str, Any]:
    """Run ``project``'s program (default: this checkout's) with ``stack_file`` (``Pulumi.<stack>.yaml``)
    offline; the plan as one JSON-able document. ``quotas`` sets EC2 quota values (code -> vCPUs) the
    offline account answers with."""
    project = project or Project.of(REPO)
    from eks_gpu.policy.budget import evaluate_stack
    from eks_gpu.policy.validators import evaluate

    today = today or date.today()
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    raw = load_stack_file(stack_file)
    # an existing cluster's endpoint is its owner's: no deployer CIDR to stand in (or to refuse); nor
    # in another project, whose program may pass eks-gpu its endpoint keys in code, not in the stack file
    own_keys = STAND_IN_KEY not in raw and project.name == "eks-gpu"
    config, deploy_needs = with_deployer(raw) if own_keys else (dict(raw), None)
    region = str(config.get("aws:region", ""))
    with offline_account(region) as account:
        account.quotas.update(quotas or {})
        config, stand_in = with_stand_in(account, config)
        stand_in += with_spot_role(account, config)
        run = run_program(
            config,
            stack=stack,
            account=account,
            program=project.program,
            project_file=project.file,
            project=project.name,
        )
        types = sorted({t for ng in run.of_type(NODE_GROUP) for t in ng.inputs.get("instanceTypes") or []})
        facts = {t: account.invoke("aws:ec2/getInstanceType:getInstanceType", {"instanceType": t}) for t in types}
        # an existing cluster's (eks-gpu:existingCluster) are read, not built: none among the inputs
        cluster_subnets = [
            s
            for cluster in (c.inputs for c in run.of_type("eks:index:Cluster"))
            for s in [*cluster.get("privateSubnetIds", []), *(cluster.get("publicSubnetIds") or [])]
        ]
        subnet_ids = sorted(
            {s for ng in run.of_type(NODE_GROUP) for s in ng.inputs["subnetIds"]} | set(cluster_subnets)
        )
        azs = {s: account.invoke("aws:ec2/getSubnet:getSubnet", {"id": s})["availabilityZone"] for s in subnet_ids}
        rows = node_groups(run, facts, azs)
        read = sorted({code for token, args in run.invokes if token == QUOTA_INVOKE for code in [args["quotaCode"]]})
        values = {c: float(account.invoke(QUOTA_INVOKE, {"serviceCode": "ec2", "quotaCode": c})["value"]) for c in read}

        def answer(token: str, args: Mapping[str, Any]) -> Any:
            try:
                return account.invoke(token, dict(args))
            except AwsError:
                return None

        addons = addon_rows(run, answer)
        latest = latest_releases(rows, answer)
        catalogue = catalogue_of(price_table(), region)
        pools = sorted((node_pool(r.inputs, catalogue) for r in run.of_type(NODE_POOL)), key=lambda p: p.pool)
        pool_records: dict[str, Mapping[str, Any]] = {}
        for t in sorted({t for p in pools for t in p.instance_types or ()}):
            record = answer("aws:ec2/getInstanceType:getInstanceType", {"instanceType": t})
            if record:
                pool_records[t] = record
        pool_vcpus = {t: _int(r.get("defaultVcpus", 0)) for t, r in pool_records.items()}
        # the cluster's version (an existing cluster's: its node groups', which the program sends it)
        kubernetes = next(
            (str(c.inputs["version"]) for c in run.of_type("eks:index:Cluster") if c.inputs.get("version")),
            next((r.kubernetes_version for r in rows if r.kubernetes_version), None),
        )
        nodepools = {str(value_at(r.inputs, "metadata.name")): r.inputs for r in run.of_type(NODE_POOL)}
        classes = {str(value_at(r.inputs, "metadata.name")): r.inputs for r in run.of_type(EC2_NODE_CLASS)}
        pool_amis = {
            p.name: {
                "availabilityZones": pool_zones(nodepools.get(p.name) or {}),
                **node_pool_ami(
                    nodepools.get(p.name) or {},
                    classes.get(p.node_class),
                    pool_records,
                    p.instance_types,
                    kubernetes,
                    answer,
                ),
            }
            for p in pools
        }
        pool_uses = node_pool_quota_uses(pools, pool_vcpus)
        for code in sorted({q.code for u in pool_uses if (q := _quota_of(u)) is not None} - set(values)):
            values[code] = float(account.invoke(QUOTA_INVOKE, {"serviceCode": "ec2", "quotaCode": code})["value"])
    prices = price_table()
    items = line_items(((r.type, r.inputs) for r in run.resources), region, prices, today)
    total = totals(items)
    violations = [v for r in run.resources for v in evaluate(r.type, r.inputs, r.urn)]
    violations += evaluate_stack([(r.type, r.inputs, r.urn) for r in run.resources], today)
    by_urn = {r.urn: r for r in run.resources}
    return {
        "notice": NOTICE,
        "stack": stack,
        "region": region,
        "bundledData": bundled_data(),
        "warnings": [*stand_in, *run.warnings],
        "deployNeeds": deploy_needs,
        "clusterAvailabilityZones": sorted({azs[s] for s in cluster_subnets}),
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": by_urn[r.parent].name if r.parent in by_urn else None,
                # names repeat (an add-on and the role component it uses): the tree and the review go by URN
                "parentUrn": r.parent if r.parent in by_urn else None,
                "properties": key_properties(r),
                # what `--against` compares: the resource's identity, every input, what they come from
                "urn": r.urn,
                "custom": r.custom,
                "remote": r.remote,
                "protect": r.protect,
                "inputs": r.inputs,
                # inputs the program marked secret: the review shows them masked
                "secretInputs": list(r.secret_inputs),
                "propertyDependencies": {k: list(v) for k, v in r.property_dependencies.items() if v},
                # what the engine waits for before it touches the resource: depends_on, inputs, its provider
                "dependencies": sorted({*r.dependencies, *([r.provider.rsplit("::", 1)[0]] if r.provider else [])}),
            }
            for r in run.resources
        ],
        "nodeGroups": [
            {
                "key": row.key,
                "instanceTypes": list(row.instance_types),
                "amiType": row.ami_type,
                "capacityType": row.capacity_type,
                "gpuModel": row.gpu_model,
                "gpusPerNode": row.gpus_per_node,
                "vcpusPerNode": row.vcpus_per_node,
                "memoryGiBPerNode": row.memory_gib_per_node,
                "minSize": row.sizes["idle"],
                "desiredSize": row.sizes["desired"],
                "maxSize": row.sizes["max"],
                "availabilityZones": list(row.availability_zones),
                "efaInterfaces": row.efa_interfaces,
                "placementGroup": row.placement_group,
                "allocatable": row.allocatable,
                "kubernetesVersion": row.kubernetes_version,
                # None: not sent, EKS's latest at creation, kept; latestAmiRelease: what AWS publishes now
                "amiRelease": row.release_version,
                "latestAmiRelease": latest.get(row.key),
            }
            for row in rows
        ],
        # pool_amis: the pool's zones, its EC2NodeClass's AMI alias and the latest release AWS publishes for it
        "nodePools": [{**node_pool_row(p, region, pool_vcpus), **pool_amis[p.name]} for p in pools],
        "addons": addons,
        "quotas": quota_rows(rows, values, pool_uses),
        "cost": {
            "idleUsdPerHour": total["idle"],
            "desiredUsdPerHour": total["desired"],
            "maxUsdPerHour": total["max"],
            # 730 hours a month; with complete false every total is a floor: the unpriced items are left out
            "idleUsdPerMonth": monthly(total["idle"]),
            "desiredUsdPerMonth": monthly(total["desired"]),
            "maxUsdPerMonth": monthly(total["max"]),
            "complete": complete(items),
            "unpriced": unpriced(items),
            "lineItems": [
                {
                    "item": i.item,
                    "unitUsdPerHour": i.unit_usd_per_hour,
                    "count": dict(i.counts),
                    "usdPerHour": {p: i.usd_per_hour(p) for p in POINTS},
                    "estimate": i.estimate,
                    "usageBased": i.usage_based,
                    "note": i.note,
                }
                for i in items
            ],
            "priceSource": prices.source,
            "priceDate": prices.date,
            "gpuPriceSource": prices.gpu_source,
            "gpuPriceDate": prices.gpu_date,
            "natPriceSource": prices.nat_source,
            "natPriceDate": prices.nat_date,
            "ebsPriceSource": ebs_price_source(),
        },
        "policy": {
            "violations": [
                {"policy": v.policy, "level": v.level, "message": v.message, "resource": by_urn[v.urn].name}
                for v in violations
            ],
            "mandatory": sum(1 for v in violations if v.level == "mandatory"),
            "advisory": sum(1 for v in violations if v.level == "advisory"),
        },
    }


# --- rendering -----------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    cells = [list(map(str, headers)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _gib(quantity: str) -> str:
    """``14162Mi`` as ``13.8Gi``, rounded down: the plan never shows more than a node offers."""
    return f"{math.floor(int(quantity.removesuffix('Mi')) / 1024 * 10) / 10:g}Gi"


def allocatable_summary(allocatable: Mapping[str, str] | None) -> str:
    """A pool's allocatable per node for the table: ``3920m / 13.8Gi / 1 GPU / 85Gi disk``."""
    if not allocatable:
        return "-"
    parts = [allocatable["cpu"], _gib(allocatable["memory"])]
    if "nvidia.com/gpu" in allocatable:
        parts.append(f"{allocatable['nvidia.com/gpu']} GPU")
    if "hugepages-2Mi" in allocatable:
        parts.append(f"{_gib(allocatable['hugepages-2Mi'])} hugepages")
    parts.append(f"{int(allocatable['ephemeral-storage'].removesuffix('Mi')) // 1024}Gi disk")
    return " / ".join(parts)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def render_tree(plan: Mapping[str, Any]) -> list[str]:
    """The resources as a tree, each under its parent (by URN: names repeat), with its key properties."""
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for r in plan["resources"]:
        children.setdefault(r.get("parentUrn"), []).append(r)
    out: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            props = " ".join(f"{k}={v}" for k, v in r["properties"].items())
            out.append(f"{'  ' * depth}{r['name']}  [{r['type']}]{'  ' + props if props else ''}")
            walk(r["urn"], depth + 1)

    walk(None, 1)
    return out


def render_node_pools(pools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Karpenter NodePools (none: nothing), beside the node groups."""
    if not pools:
        return []
    out = [
        "",
        "NodePools (Karpenter): nodes start for pending pods only; limits are eventually consistent (a fast "
        "scale-out can overrun them), so cost at max is an estimate at the limit, not a ceiling",
    ]
    return out + _table(NODE_POOL_HEADERS, (node_pool_cells(p) for p in pools))


def render_ami_releases(groups: Sequence[Mapping[str, Any]], pools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The AMI-release table: each node group's release and AWS's latest; with Karpenter NodePools, their
    EC2NodeClasses' aliases too, and a column saying what a new release does to each."""

    def group_cells(g: Mapping[str, Any]) -> tuple[str, ...]:
        return (
            g["amiType"],
            g["key"],
            g["amiRelease"] or "not set: EKS's latest at creation, kept",
            (g["latestAmiRelease"] or "unknown")
            + (" (newer)" if g["amiRelease"] and g["latestAmiRelease"] not in (None, g["amiRelease"]) else ""),
        )

    if not pools:
        out = ["", "Node AMI releases: a new release replaces every node of its group, one at a time"]
        return out + _table(("AMI type", "node group", "release", "AWS latest"), (group_cells(g) for g in groups))
    out = [
        "",
        "Node AMI releases: a new release replaces every node of its node group (one at a time) or Karpenter "
        "NodePool (drift, at the pace of its disruption budget)",
    ]
    rows = [*((*group_cells(g), "rolls the group: every node replaced, one at a time") for g in groups)]
    rows += [pool_ami_cells(p) for p in pools]
    return out + _table(("AMI type", "node group", "release", "AWS latest", "a new release"), rows)


def render_cost_delta(delta: Mapping[str, Any]) -> list[str]:
    """The cost delta of a change, per point, per hour and per month."""
    out = ["Cost delta (USD): idle = every group at minSize, desired = at desiredSize, max = at maxSize"]
    return out + _table(COST_HEADERS, (cost_cells(r) for r in delta["points"])) + completeness(delta)


def render_text(plan: Mapping[str, Any], *, tree: bool | None = None) -> str:
    """The plan for people. ``tree``: show the resource tree (default: unless the plan is a review
    of a change, ``--against``, where it would repeat what did not change)."""
    tree = "changes" not in plan if tree is None else tree
    out = [plan["notice"], "", f"Stack {plan['stack']} in {plan['region']}"]
    eks, ca = plan["bundledData"]["eksVersions"], plan["bundledData"]["clusterAutoscaler"]
    out.append(
        f"Bundled data: EKS version calendar checked {eks['updated']} (newest {eks['newest']}), Cluster "
        f"Autoscaler releases checked {ca['updated']} (newest {ca['newest']}, chart {ca['chartVersion']})"
    )
    if plan.get("deployNeeds"):
        out += ["", f"NOTE: {plan['deployNeeds']}"]
    shown = plan.get("changeWarnings", 0)
    if "changes" in plan:
        out += ["", *render_changes(_changes(plan["changes"]), plan["warnings"][:shown], plan["against"])]
    if "costDelta" in plan:
        out += ["", *render_cost_delta(plan["costDelta"])]
    out += [f"warning: {w}" for w in plan["warnings"][shown:]]
    if tree:
        out += ["", f"Resources ({len(plan['resources'])})", *render_tree(plan)]
    else:
        out += ["", f"Resources ({len(plan['resources'])}): the tree is left out of a review (--tree shows it)"]
    out += ["", "Node groups"]
    out += _table(
        (
            "group",
            "instance types",
            "GPU",
            "GPUs/node",
            "vCPUs/node",
            "allocatable/node",
            "min/desired/max",
            "capacity",
            "EFA",
            "AZs",
        ),
        (
            (
                g["key"],
                ",".join(g["instanceTypes"]),
                g["gpuModel"] or "-",
                g["gpusPerNode"],
                g["vcpusPerNode"],
                allocatable_summary(g.get("allocatable")),
                f"{g['minSize']}/{g['desiredSize']}/{g['maxSize']}",
                g["capacityType"],
                f"{g['efaInterfaces']}{' + cluster PG' if g['placementGroup'] else ''}" if g["efaInterfaces"] else "-",
                ",".join(g["availabilityZones"]) + (" (one AZ)" if len(g["availabilityZones"]) == 1 else ""),
            )
            for g in plan["nodeGroups"]
        ),
    )
    out += render_node_pools(plan.get("nodePools") or [])
    out += render_ami_releases(plan["nodeGroups"], plan.get("nodePools") or [])
    out += ["", "EKS add-ons: the version each one runs (pinned in eks-gpu:addons, else EKS's default)"]
    out += _table(
        ("add-on", "version", "EKS default", "source"),
        (
            (a["name"], a["version"] or "-", a["eksDefault"] or "unknown", "pinned" if a["pinned"] else "EKS default")
            for a in plan["addons"]
        ),
    )
    out += ["", "EC2 vCPU quotas: what the node groups need at desired and at max size"]
    out += _table(
        ("quota", "code", "node groups", "desired", "max", "value"),
        (
            (q["name"], q["code"], ",".join(q["nodeGroups"]), q["desiredVcpus"], q["maxVcpus"], f"{q['value']:g}")
            for q in plan["quotas"]
        ),
    )
    out.append(QUOTA_NOTE)
    cost = plan["cost"]
    out += ["", "Cost per hour (USD): idle = every group at minSize, desired = at desiredSize, max = at maxSize"]
    out += _table(
        ("item", "unit", "idle", "desired", "max", "note"),
        (
            (
                i["item"] + (" (estimate)" if i["estimate"] else ""),
                "usage-based" if i.get("usageBased") else _usd(i["unitUsdPerHour"]),
                *(
                    "usage-based" if i.get("usageBased") else f"{i['count'][p]} = {_usd(i['usdPerHour'][p])}"
                    for p in POINTS
                ),
                i["note"],
            )
            for i in cost["lineItems"]
        ),
    )
    floor = "" if cost["complete"] else "at least "
    out.append(
        f"total: idle {floor}{_usd(cost['idleUsdPerHour'])}, desired {floor}{_usd(cost['desiredUsdPerHour'])}, "
        f"max {floor}{_usd(cost['maxUsdPerHour'])} per hour; per month (730 h): idle {floor}"
        f"${cost['idleUsdPerMonth']:,.2f}, desired {floor}${cost['desiredUsdPerMonth']:,.2f}, "
        f"max {floor}${cost['maxUsdPerMonth']:,.2f}"
    )
    if not cost["complete"]:
        out.append(
            f"incomplete: no price for {', '.join(cost['unpriced'])} in {plan['region']}: "
            "the totals leave them out, and no budget can be shown to hold"
        )
    out.append(f"prices: on-demand Linux from {cost['priceSource']} ({cost['priceDate']})")
    out.append(f"        GPU types elsewhere from {cost['gpuPriceSource']} ({cost['gpuPriceDate']})")
    out.append(f"        NAT gateways from {cost['natPriceSource']} ({cost['natPriceDate']})")
    out.append(f"        EBS gp3 from {cost['ebsPriceSource']}")
    policy = plan["policy"]
    out += ["", f"Policy: {policy['mandatory']} mandatory, {policy['advisory']} advisory violations"]
    out += [f"  [{v['level']}] {v['policy']} on {v['resource']}: {v['message']}" for v in policy["violations"]]
    return "\n".join(out) + "\n"


def _changes(rows: Iterable[Mapping[str, Any]]) -> list[Change]:
    return [Change.from_json(r) for r in rows]


def render_markdown(plan: Mapping[str, Any]) -> str:
    """The plan as a pull-request comment: a summary line, the cost (delta with ``--against``), the
    changes per component, policy violations, and the resource tree folded in ``<details>``."""
    cost, policy = plan["cost"], plan["policy"]
    floor = "" if cost["complete"] else "at least "
    summary = [f"**eks-gpu plan** `{plan['stack']}` in `{plan['region']}`"]
    if "changes" in plan:
        counts = {a: sum(1 for c in plan["changes"] if c["action"] == a) for a in ACTIONS}
        summary.append(", ".join(f"{n} to {a}" for a, n in counts.items()))
    else:
        summary.append(f"{len(plan['resources'])} resources")
    month = {p: f"{floor}${cost[f'{p}UsdPerMonth']:,.2f}/month" for p in ("idle", "max")}
    if "costDelta" in plan:
        idle, _, top = plan["costDelta"]["points"]
        summary.append(f"idle {month['idle']} ({cost_cells(idle)[4]}), max {month['max']} ({cost_cells(top)[4]})")
    else:
        summary.append(f"idle {month['idle']}, max {month['max']}")
    summary.append(f"policy: {policy['mandatory']} mandatory, {policy['advisory']} advisory")
    out = [" · ".join(summary), "", f"<sub>{md_cell(plan['notice'])}</sub>"]
    shown = plan.get("changeWarnings", 0)
    if "changes" in plan:
        out += ["", *markdown_changes(_changes(plan["changes"]), plan["warnings"][:shown], plan["against"])]
    if plan.get("nodePools"):
        out += ["", "### NodePools (Karpenter)", ""]
        out += md_table(NODE_POOL_HEADERS, ([md_cell(c) for c in node_pool_cells(p)] for p in plan["nodePools"]))
    out += ["", "### Cost (USD)", ""]
    if "costDelta" in plan:
        out += markdown_cost_delta(plan["costDelta"])
    else:
        out += md_table(
            ("point", "per hour", "per month (730 h)"),
            ((p, f"{floor}${cost[f'{p}UsdPerHour']:,.4f}", f"{floor}${cost[f'{p}UsdPerMonth']:,.2f}") for p in POINTS),
        )
        if not cost["complete"]:
            out += ["", f"> incomplete: no price for {md_cell(', '.join(cost['unpriced']))}: the totals leave them out"]
    if plan["warnings"][shown:]:
        out += ["", "### Warnings", "", *(f"- {md_cell(w)}" for w in plan["warnings"][shown:])]
    out += ["", f"### Policy: {policy['mandatory']} mandatory, {policy['advisory']} advisory violations"]
    if policy["violations"]:
        rows = (
            (md_cell(v["level"]), md_code(v["policy"]), md_code(v["resource"]), md_cell(v["message"]))
            for v in policy["violations"]
        )
        out += ["", *md_table(("level", "policy", "resource", "message"), rows)]
    fence = "`" * 3
    tree = [line.replace(fence, "'" * 3) for line in render_tree(plan)]
    out += ["", f"<details><summary>Resources ({len(plan['resources'])})</summary>", "", f"{fence}text", *tree, fence]
    return "\n".join([*out, "", "</details>"]) + "\n"


def render_mermaid(plan: Mapping[str, Any]) -> str:
    """A Mermaid flowchart of the stack's architecture."""
    resources = plan["resources"]

    def of(type_: str) -> list[Mapping[str, Any]]:
        return [r for r in resources if r["type"] == type_]

    def node_id(name: str) -> str:
        return "n_" + "".join(c if c.isalnum() else "_" for c in name)

    lines = ["flowchart TB"]
    azs = sorted({r["properties"].get("availabilityZone", "") for r in of("aws:ec2/subnet:Subnet")} - {""})
    if azs:
        lines.append(f'  subgraph VPC["VPC {of("aws:ec2/vpc:Vpc")[0]["properties"].get("cidrBlock", "")}"]')
        for az in azs:
            lines.append(f'    subgraph {node_id(az)}["{az}"]')
            for s in of("aws:ec2/subnet:Subnet"):
                if s["properties"].get("availabilityZone") == az:
                    lines.append(f'      {node_id(s["name"])}["{s["name"]}<br/>{s["properties"]["cidrBlock"]}"]')
            lines.append("    end")
        lines.append("  end")
    built = of("eks:index:Cluster")
    # an existing cluster (eks-gpu:existingCluster) is read, not built: drawn without its settings
    cluster: Mapping[str, Any] = built[0] if built else {"name": "existing-cluster", "properties": {}}
    props = cluster["properties"]
    label = f"EKS {props.get('name')} {props.get('version')}" if built else "existing EKS cluster"
    lines.append(f'  {node_id(cluster["name"])}["{label}"]')
    for g in plan["nodeGroups"]:
        gid = node_id("ng_" + g["key"])
        gpu = f"<br/>{g['gpusPerNode']}x {g['gpuModel']}" if g["gpuModel"] else ""
        types = ",".join(g["instanceTypes"])
        lines.append(f'  {gid}["node group {g["key"]}<br/>{types}{gpu}<br/>{g["minSize"]}..{g["maxSize"]}"]')
        lines.append(f"  {gid} --> {node_id(cluster['name'])}")
        for s in of("aws:ec2/subnet:Subnet"):
            if "-private-" in s["name"] and s["properties"].get("availabilityZone") in g["availabilityZones"]:
                lines.append(f"  {gid} -.- {node_id(s['name'])}")
    for pool in plan.get("nodePools") or []:
        pid = node_id("np_" + pool["pool"])
        lines.append(f'  {pid}["{node_pool_label(pool)}"]')
        lines.append(f"  {pid} --> {node_id(cluster['name'])}")
        # a pool without a zone requirement may start nodes in any subnet its EC2NodeClass selects: every private one
        zones = pool.get("availabilityZones") or azs
        for s in of("aws:ec2/subnet:Subnet"):
            if "-private-" in s["name"] and s["properties"].get("availabilityZone") in zones:
                lines.append(f"  {pid} -.- {node_id(s['name'])}")
    for release in of("kubernetes:helm.sh/v3:Release"):
        chart = release["properties"]
        lines.append(f'  {node_id(release["name"])}(["helm {chart.get("chart")} {chart.get("version")}"])')
        lines.append(f"  {node_id(cluster['name'])} --- {node_id(release['name'])}")
    for job in of("kubernetes:batch/v1:Job"):
        lines.append(f'  {node_id(job["name"])}(["job {job["name"]}"])')
        lines.append(f"  {node_id(cluster['name'])} --- {node_id(job['name'])}")
    return "\n".join(lines) + "\n"


def review_against(plan: dict[str, Any], old: Mapping[str, Any], against: str) -> list[Change]:
    """Add to ``plan`` its review against ``old`` (an earlier ``--json`` plan, read from ``against``):
    ``changes``, ``costDelta``, ``changeWarnings`` and ``against``, the change's warnings first among
    ``warnings``. Returns the changes (for ``--fail-on``)."""
    changes, change_warnings = diff(old, plan)
    plan["costDelta"] = cost_delta(old.get("cost") or {}, plan["cost"])
    plan["changes"] = [c.to_json() for c in changes]
    plan["warnings"] = [*change_warnings, *plan["warnings"]]
    plan["changeWarnings"] = len(change_warnings)
    plan["against"] = against
    return changes


def parse_problems(raw: Mapping[str, Any], stack_file: Path) -> list[Problem]:
    """The problems of a stack file's ``config:`` (``raw``, full keys) that need no AWS: what the
    program's parser finds in its ``eks-gpu`` keys and in keys that look like a misspelt ``eks-gpu``
    (as :func:`eks_gpu.config.read_pulumi_config` passes them), with this plan's stand-in deployer."""
    from eks_gpu.config import NAMESPACE, parse_config
    from eks_gpu.config.parse import TOP_LEVEL_KEYS
    from eks_gpu.config.problems import namespace_lookalike

    config = dict(raw) if STAND_IN_KEY in raw else with_deployer(raw)[0]
    keys: dict[str, Any] = {}
    for full_key, value in config.items():
        ns, _, key = full_key.partition(":")
        if ns == NAMESPACE:
            keys[key] = value
        elif namespace_lookalike(full_key, TOP_LEVEL_KEYS) is not None:
            keys[full_key] = value
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return list(parse_config(keys, stack, date.today()).problems)


CONFIG_ERROR, USAGE_ERROR, FAIL_ON_MATCHED, POLICY_VIOLATED = 1, 2, 3, 4
"""The exit codes (module docstring); 0 is a plan with nothing to fail on."""


def main(argv: Sequence[str] | None = None, prog: str = "eks-gpu plan") -> int:
    """The command line: print the plan (text or ``--json``), optionally write a Mermaid diagram;
    the exit code is the module docstring's."""
    from eks_gpu.config import ConfigError
    from eks_gpu.design.resolve import region_problem

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="the Pulumi project to plan (its Pulumi.yaml and Python program; default: the one the current "
        "folder is in)",
    )
    parser.add_argument("--stack", default="dev", help="the stack whose Pulumi.<stack>.yaml to plan (default dev)")
    parser.add_argument("--stack-file", type=Path, help="a stack file elsewhere (its name gives the stack's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    parser.add_argument("--diagram", metavar="FILE", help="also write a Mermaid diagram of the architecture to FILE")
    parser.add_argument("--against", type=Path, metavar="OLD.json", help="an earlier --json plan: show what changes")
    parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text (default) or markdown: a pull-request comment (--json wins over both)",
    )
    parser.add_argument("--tree", action="store_true", help="with --against: print the resource tree too")
    parser.add_argument(
        "--fail-on",
        choices=("replace", "rolls-nodes"),
        action="append",
        default=[],
        help="with --against: exit 3 when anything would be replaced (or any node group rolls its nodes); "
        "a mandatory policy violation exits 4 always",
    )
    parser.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="CODE=VCPUS",
        help="an EC2 vCPU quota's value in your account (e.g. L-DB2E81BA=0), as the offline account's answer",
    )
    args = parser.parse_args(argv)
    try:
        quotas = {code: float(value) for code, _, value in (q.partition("=") for q in args.quota)}
    except ValueError:
        print(f"error: --quota takes CODE=VCPUS, e.g. L-DB2E81BA=64, not {args.quota}", file=sys.stderr)
        return USAGE_ERROR
    if args.fail_on and not args.against:
        print(
            f"error: --fail-on {','.join(args.fail_on)} needs --against OLD.json: without an earlier plan "
            "there is no change to fail on",
            file=sys.stderr,
        )
        return USAGE_ERROR
    try:
        project = Project.of(args.project) if args.project else Project.around(Path.cwd())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    stack_file = args.stack_file or project.directory / f"Pulumi.{args.stack}.yaml"
    if args.stack_file is None and not stack_file.is_file():
        found = project.directory.glob("Pulumi.*.yaml")
        stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in found)
        print(
            f"error: no stack file {stack_file.name} in {project.directory}; "
            f"stacks here: {', '.join(stacks) or 'none'}",
            file=sys.stderr,
        )
        return CONFIG_ERROR
    try:
        # the offline account exists only in a real region: a missing or unknown one is refused
        # before it, with the program's own problem beside the problems the file has without AWS
        raw = load_stack_file(stack_file)
        wrong_region = region_problem(str(raw.get("aws:region") or ""))
        if wrong_region is not None:
            raise ConfigError([*parse_problems(raw, stack_file), wrong_region])
        plan = build(stack_file, quotas=quotas, project=project)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    changes: list[Change] = []
    if args.against:
        try:
            changes = review_against(plan, load_plan(args.against), str(args.against))
        except (OSError, ValueError) as exc:
            print(f"error: --against: {exc}", file=sys.stderr)
            return USAGE_ERROR
    if args.diagram:
        try:
            Path(args.diagram).write_text(render_mermaid(plan))
        except OSError as exc:
            print(f"error: --diagram {args.diagram}: cannot write it ({exc.strerror or exc})", file=sys.stderr)
            return USAGE_ERROR
    if args.json:
        sys.stdout.write(json.dumps(plan, indent=2) + "\n")
    else:
        markdown = args.format == "markdown"
        sys.stdout.write(render_markdown(plan) if markdown else render_text(plan, tree=args.tree or None))
    failing = [
        c
        for c in changes
        if ("replace" in args.fail_on and c.action == "replace") or ("rolls-nodes" in args.fail_on and c.rolls_nodes)
    ]
    if failing:
        print(f"error: --fail-on {','.join(args.fail_on)}: {', '.join(collapsed_names(failing))}", file=sys.stderr)
    mandatory = plan["policy"]["mandatory"]
    if mandatory:
        print(f"error: {mandatory} mandatory policy violation{'s' if mandatory != 1 else ''}", file=sys.stderr)
        return POLICY_VIOLATED
    return FAIL_ON_MATCHED if failing else 0


if __name__ == "__main__":
    # A one-shot command: the collector would walk the SDKs' module graphs again and again while
    # they import (a third of the run), and tearing them down at exit takes as long as the plan.
    # Nothing here needs either: collect nothing, flush, and leave.
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
