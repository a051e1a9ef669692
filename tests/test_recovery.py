"""Recoverable by its owner: a deployer whose address changed gets back in with the one command
sequence docs/deploy.md "Recovering access" documents, and a protected stack survives a non-interactive
``pulumi destroy``.

Both are held against the Pulumi engine's own rules, reproduced here from pulumi/pulumi's source
(each function names the file and function it follows) and applied to what the program registers:

- a destroy deletes every resource of the state, in antichains of the dependency graph, dependents
  first; a protected resource's delete step fails when it is reached; the first failure cancels the
  rest (or, with ``--continue-on-error``, skips what the failed resource depends on);
- ``--target`` takes URNs or globs, and an untargeted resource gets no provider call at all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import pytest
import yaml
from eks_gpu.offline import ProgramRun
from eks_gpu.offline.diff import diff
from eks_gpu.offline.engine import STACK_TYPE, RegisteredResource

from tests.helpers import CLUSTER, NODE_GROUP, ROOT, every_feature, program_scope, run, run_stack_file

K8S_PROVIDER = "pulumi:providers:kubernetes"
EKS_CLUSTER_CHILD = "aws:eks/cluster:Cluster"
"""The type of pulumi-eks's child that is the EKS cluster (nodejs/eks/cluster/cluster.ts,
``new aws.eks.Cluster(`${name}-eksCluster`, ..., { parent })``)."""
NEW_ADDRESS = "198.18.0.77/32"
"""The deployer's new address (RFC 2544 benchmarking space, like tests.helpers.CLIENT_CIDR)."""


# --------------------------------------------------------------------------------------------
# The engine's deletion rule.


def provider_urn(reference: str) -> str:
    """The URN in a provider reference ``<urn>::<id>`` (pulumi pkg/resource/deploy/providers/reference.go)."""
    return reference.rsplit("::", 1)[0] if reference else ""


class DependencyGraph:
    """The dependency graph of a snapshot, as pulumi/pulumi pkg/resource/graph/dependency_graph.go
    builds it: a resource depends on its parent, its provider, its ``dependencies``, its property
    dependencies and its ``deletedWith``; depending on a component also means depending on every
    child of that component that comes earlier in the snapshot (``DependenciesOf``: "for remote
    components, the dependencies will not include the transitive set of children directly").

    The root stack and default providers are not recorded offline; deleting them deletes nothing.
    """

    def __init__(self, resources: Sequence[RegisteredResource]) -> None:
        self.by_urn = {r.urn: r for r in resources}
        self.resources = self._snapshot_order(resources)
        self.index = {r.urn: i for i, r in enumerate(self.resources)}

    def _snapshot_order(self, resources: Sequence[RegisteredResource]) -> list[RegisteredResource]:
        """``resources`` in an order the engine's snapshot could have: each after everything
        :meth:`direct` names, ties by URN. (ProgramRun.resources leaves provider references out: a
        Kubernetes object may come before its provider there, never in a snapshot, since the engine
        registers a resource only once its provider is.)"""
        waiting = {r.urn: self.direct(r) for r in resources}
        ready = sorted(u for u, needs in waiting.items() if not needs)
        ordered: list[RegisteredResource] = []
        while ready:
            urn = ready.pop(0)
            ordered.append(self.by_urn[urn])
            for other, needs in waiting.items():
                if urn in needs:
                    needs.discard(urn)
                    if not needs:
                        ready = sorted([*ready, other])
        assert len(ordered) == len(resources), "the recorded resources depend on each other in a cycle"
        return ordered

    def direct(self, resource: RegisteredResource) -> set[str]:
        """Parent, provider, dependencies, property dependencies and deletedWith, among the known URNs."""
        urns = {
            resource.parent,
            provider_urn(resource.provider),
            resource.deleted_with,
            *resource.dependencies,
            *(u for us in resource.property_dependencies.values() for u in us),
        }
        return {u for u in urns if u in self.by_urn and u != resource.urn}

    @cached_property
    def children(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for r in self.resources:
            found.setdefault(r.parent, []).append(r.urn)
        return found

    def descendants_before(self, urn: str, limit: int) -> set[str]:
        """Every descendant of ``urn`` that comes before position ``limit`` in the snapshot."""
        out: set[str] = set()
        todo = list(self.children.get(urn, []))
        while todo:
            child = todo.pop()
            if self.index[child] < limit and child not in out:
                out.add(child)
                todo += self.children.get(child, [])
        return out

    def dependencies_of(self, resource: RegisteredResource) -> set[str]:
        """``DependenciesOf``: direct dependencies, and the earlier children of a component among them."""
        start = self.index[resource.urn]
        out: set[str] = set()
        for urn in self.direct(resource):
            out.add(urn)
            if not self.by_urn[urn].custom:
                out |= self.descendants_before(urn, start)
        return out

    def transitive_dependencies_of(self, resource: RegisteredResource) -> set[str]:
        """``TransitiveDependenciesOf``: the dependencies' dependencies, and so on."""
        start = self.index[resource.urn]
        seen: set[str] = set()
        todo = list(self.direct(resource))
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            if not self.by_urn[urn].custom:
                seen |= self.descendants_before(urn, start)
            todo += self.direct(self.by_urn[urn])
        return seen

    def schedule_deletes(self, condemned: Iterable[str]) -> list[list[str]]:
        """pulumi/pulumi pkg/resource/deploy/step_generator.go ``ScheduleDeletes``: peel off, round by
        round, the condemned resources none of whose dependencies is still condemned, then reverse the
        rounds, so that every resource is deleted after everything that depends on it."""
        left = set(condemned)
        antichains: list[list[str]] = []
        while left:
            chain = sorted(u for u in left if not self.dependencies_of(self.by_urn[u]) & left)
            if not chain:
                raise AssertionError("the recorded resources depend on each other in a cycle")
            left -= set(chain)
            antichains.append(chain)
        antichains.reverse()
        return antichains


@dataclasses.dataclass(frozen=True)
class Destroy:
    """What a ``pulumi destroy`` does to a stack: the delete steps that ran, and the ones that failed."""

    deleted: tuple[str, ...]
    refused: tuple[str, ...]


def destroy(resources: Sequence[RegisteredResource], *, continue_on_error: bool = False) -> Destroy:
    """``pulumi destroy --yes --skip-preview`` of a stack whose state holds ``resources``.

    - What: every resource (step_generator.go ``GenerateDeletes``: the destroy registers nothing, so
      no resource is "operated on" and each gets a ``DeleteStep``).
    - In which order: ``ScheduleDeletes``'s antichains, one after the other, the steps of one in
      parallel (deployment_executor.go, the loop over ``deleteChains``).
    - Protection: ``DeleteStep.Apply`` (step.go) refuses a protected resource when its step runs,
      "resource ... cannot be deleted because it is protected"; nothing is checked up front.
    - After a failure: ``stepExecutor.cancelDueToError`` (step_executor.go) cancels the executor, so
      no later antichain runs, unless ``--continue-on-error``, when the deployment executor drops from
      later antichains every transitive dependency of a failed resource. Steps of the failing
      antichain run in parallel with the failure: here they all count as run.
    """
    graph = DependencyGraph(resources)
    deleted: list[str] = []
    refused: list[str] = []
    errored_dependencies: set[str] = set()
    for chain in graph.schedule_deletes(graph.by_urn):
        if refused and not continue_on_error:
            break
        for urn in chain:
            if urn in errored_dependencies:
                continue
            (refused if graph.by_urn[urn].protect else deleted).append(urn)
        for urn in refused:
            errored_dependencies |= graph.transitive_dependencies_of(graph.by_urn[urn])
    return Destroy(tuple(deleted), tuple(refused))


# --------------------------------------------------------------------------------------------
# The engine's targets and URNs.


def target_matches(glob: str, urn: str) -> bool:
    """Whether ``--target glob`` takes ``urn`` (pulumi/pulumi pkg/resource/deploy ``UrnTargets.getMatcher``:
    ``**`` is any text, ``*`` any text without ``:``, the rest literal, the whole URN matched)."""
    parts = ["[^:]*".join(re.escape(p) for p in segment.split("*")) for segment in glob.split("**")]
    return re.fullmatch(".*".join(parts), urn) is not None


def engine_urn(resource_urn: str, parents: dict[str, str], stack: str, project: str = "eks-gpu") -> str:
    """The URN the engine gives a resource: its type qualified by every ancestor's type but the root
    stack's (pulumi/pulumi pkg/resource/deploy/deployment.go ``generateURN``). The mock monitor only
    prefixes the parent's own type; ``parents`` maps each URN to its parent's."""
    chain: list[str] = []
    urn = resource_urn
    while urn and urn.split("::")[2].split("$")[-1] != STACK_TYPE:
        chain.append(urn.split("::")[2].split("$")[-1])
        urn = parents.get(urn, "")
    name = resource_urn.split("::", 3)[3]
    return f"urn:pulumi:{stack}::{project}::{'$'.join(reversed(chain))}::{name}"


def eks_cluster_child(result: ProgramRun) -> tuple[str, str]:
    """(URN, parent URN) of pulumi-eks's ``aws:eks/cluster:Cluster`` child: the reference the
    component returns as ``eksCluster``."""
    component = result.one(CLUSTER)
    urn = component.outputs["eksCluster"]["urn"]
    assert urn.split("::")[2].endswith("$" + EKS_CLUSTER_CHILD)
    return urn, component.urn


# --------------------------------------------------------------------------------------------
# What docs/deploy.md and Pulumi.yaml say.


def readme_section(title: str) -> str:
    """The text of the docs/deploy.md section whose heading starts with ``title``, up to the next heading."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}.*?$(.*?)(?=^#+ )", text, re.M | re.S)
    assert match, f"docs/deploy.md has no section {title!r}"
    return match.group(1)


def recovery_commands() -> list[str]:
    """The commands of docs/deploy.md "Recovering access", in order."""
    blocks = re.findall(r"```sh\n(.*?)```", readme_section("Recovering access"), re.S)
    assert len(blocks) == 1, "one command sequence"
    return [line.split("  #")[0].strip() for line in blocks[0].splitlines() if line.startswith("pulumi ")]


# --------------------------------------------------------------------------------------------
# Runs.


@pytest.fixture(scope=program_scope)
def prod() -> ProgramRun:
    return run_stack_file("prod")


@pytest.fixture(scope=program_scope)
def dev() -> ProgramRun:
    return run_stack_file("dev")


def changes_between(old: ProgramRun, new: ProgramRun) -> list[Any]:
    """``make plan --against``'s changes from ``old`` to ``new`` (offline/diff.py)."""

    def document(result: ProgramRun) -> dict[str, Any]:
        return {
            "resources": [
                {
                    "urn": r.urn,
                    "name": r.name,
                    "type": r.type,
                    "custom": r.custom,
                    "remote": r.remote,
                    "protect": r.protect,
                    "inputs": r.inputs,
                    "propertyDependencies": {k: list(v) for k, v in r.property_dependencies.items()},
                }
                for r in result.resources
            ]
        }

    return diff(document(old), document(new))[0]


# --------------------------------------------------------------------------------------------
# A protected stack survives a destroy.


def test_a_protected_stack_loses_nothing_to_a_destroy(prod: ProgramRun) -> None:
    """prod sets eks-gpu:protect: a destroy fails on its first antichain and deletes nothing, with or
    without --continue-on-error."""
    assert yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["eks-gpu:protect"] is True
    for continue_on_error in (False, True):
        outcome = destroy(prod.resources, continue_on_error=continue_on_error)
        assert outcome.deleted == ()
        assert outcome.refused


def test_protect_reaches_every_resource_and_pulumi_eks_children() -> None:
    """Every resource the program registers carries protect, the remote pulumi-eks component included:
    the engine hands it to the component's Construct (pkg/resource/deploy/source_eval.go,
    ``ConstructOptions.Protect``), pulumi's Node.js provider server passes it to the component
    (sdk/nodejs/provider/server.ts, ``protect: req.getProtect()``), and each child inherits its
    parent's (sdk/nodejs/resource.ts, ``opts.protect = opts.parent.__protect``): the EKS cluster
    itself, its add-ons and its own Kubernetes provider."""
    protected = run({**every_feature(), "eks-gpu:protect": True})
    assert [r.name for r in protected.resources if not r.protect] == []
    assert protected.one(CLUSTER).remote and protected.one(CLUSTER).protect
    assert not any(r.protect for r in run(every_feature()).resources)


def test_an_unprotected_stack_is_deleted_whole_dependents_first(dev: ProgramRun) -> None:
    """dev does not protect: the same rule deletes every resource, each after all that depend on it."""
    outcome = destroy(dev.resources)
    assert sorted(outcome.deleted) == sorted(r.urn for r in dev.resources) and outcome.refused == ()
    graph, position = DependencyGraph(dev.resources), {u: i for i, u in enumerate(outcome.deleted)}
    for resource in dev.resources:
        assert all(position[resource.urn] < position[d] for d in graph.dependencies_of(resource))


def test_protecting_the_cluster_alone_lets_a_destroy_take_what_runs_on_it(prod: ProgramRun) -> None:
    """Why the whole stack is protected: with only the cluster and its key protected (as before), the
    destroy deletes the node groups, the add-ons, the charts and every Kubernetes object before it
    reaches the cluster, and stops there."""
    only_cluster = [dataclasses.replace(r, protect=r.type in (CLUSTER, "aws:kms/key:Key")) for r in prod.resources]
    for continue_on_error in (False, True):
        outcome = destroy(only_cluster, continue_on_error=continue_on_error)
        gone = {DependencyGraph(prod.resources).by_urn[u].type for u in outcome.deleted}
        assert {NODE_GROUP, "aws:eks/addon:Addon", "kubernetes:helm.sh/v3:Release", K8S_PROVIDER} <= gone
        assert {r.urn for r in prod.resources if r.type.startswith("kubernetes:")} <= set(outcome.deleted)
        assert prod.one(CLUSTER).urn in outcome.refused
        assert prod.one("aws:ec2/vpc:Vpc").urn not in outcome.deleted  # what the cluster stands on stays


# --------------------------------------------------------------------------------------------
# A changed address: the documented way back in.


def test_refresh_stays_and_the_recovery_overrides_it() -> None:
    """Pulumi.yaml keeps ``refresh: always`` (the node groups' desired size); the recovery's ``up``
    turns it off for itself: an explicit ``--refresh`` wins over the project option (pulumi/pulumi
    pkg/cmd/pulumi/operations/up.go ``getRefreshOption``)."""
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["options"]["refresh"] == "always"
    config_set, up, *after = recovery_commands()
    assert config_set.startswith("pulumi config set --path 'endpointPublicAccessCidrs[")
    assert up.startswith("pulumi up --refresh=false --target '") and up.count("--target") == 1
    assert after == ["pulumi up"]  # back to the routine, refresh included, once the API answers


def test_the_documented_target_is_the_eks_cluster_alone(dev: ProgramRun, prod: ProgramRun) -> None:
    """The recovery's ``--target`` glob takes exactly one URN of the stack: pulumi-eks's EKS cluster,
    whose ``vpcConfig.publicAccessCidrs`` the component's ``publicAccessCidrs`` feeds."""
    (glob,) = re.findall(r"--target '([^']+)'", recovery_commands()[1])
    for result, stack in ((dev, "dev"), (prod, "prod")):
        child, parent = eks_cluster_child(result)
        parents = {r.urn: r.parent for r in result.resources} | {child: parent}
        urns = [engine_urn(u, parents, stack) for u in parents]
        assert [u for u in urns if target_matches(glob, u)] == [engine_urn(child, parents, stack)]


def test_a_new_address_changes_the_cluster_alone() -> None:
    """The recovery's config change, under the offline engine: the cluster's ``publicAccessCidrs`` is
    the one input that moves, an in-place update (not among eks:index:Cluster's replace paths,
    offline/data/replacement_rules.json). No Kubernetes object's inputs change and no Kubernetes
    provider's (so none is replaced or reconfigured), nothing is created or deleted."""
    before = run(every_feature())
    after = run({**every_feature(), "eks-gpu:endpointPublicAccessCidrs": [NEW_ADDRESS]})
    assert [r.urn for r in before.resources] == [r.urn for r in after.resources]
    changes = changes_between(before, after)
    assert [(c.type, c.action, c.causes) for c in changes] == [(CLUSTER, "update", ["publicAccessCidrs"])]
    assert after.one(CLUSTER).inputs["publicAccessCidrs"] == [NEW_ADDRESS]
    kubernetes_side = [r for r in after.resources if r.type.startswith(("kubernetes:", K8S_PROVIDER))]
    assert kubernetes_side and all(before.by_urn(r.urn).inputs == r.inputs for r in kubernetes_side)


def test_the_kubernetes_provider_is_configured_after_the_cluster_update() -> None:
    """Nothing Kubernetes-side runs before the new address is let in: the stack's Kubernetes provider
    takes its kubeconfig from the EKS cluster's outputs, so the SDK registers it (and the engine
    configures it) only once the targeted cluster update is done; every Kubernetes object, the
    NCCL test's ``yaml/v2`` component included, goes through that provider."""
    result = run(every_feature())
    (provider,) = result.of_type(K8S_PROVIDER)
    assert result.one(CLUSTER).urn in provider.property_dependencies["kubeconfig"]
    objects = [r for r in result.resources if r.type.startswith("kubernetes:")]
    assert objects and {provider_urn(r.provider) for r in objects} == {provider.urn}


def test_the_helpers_follow_the_engine() -> None:
    """The reproduced rules on the engine's own examples: URN globs (``*`` stops at ``:``) and URNs."""
    urn = "urn:pulumi:dev::eks-gpu::eks-gpu:stack:EksGpuStack$eks:index:Cluster$aws:eks/cluster:Cluster::c-eksCluster"
    assert target_matches("**::c-eksCluster", urn) and target_matches(urn, urn)
    assert not target_matches("urn:pulumi:dev::*::c-eksCluster", urn)
    assert target_matches("urn:pulumi:dev::eks-gpu::*", "urn:pulumi:dev::eks-gpu::x")
    stack = f"urn:pulumi:dev::eks-gpu::{STACK_TYPE}::eks-gpu-dev"
    top = f"urn:pulumi:dev::eks-gpu::{STACK_TYPE}$eks-gpu:stack:EksGpuStack::eks-gpu"
    child = "urn:pulumi:dev::eks-gpu::eks-gpu:stack:EksGpuStack$eks-gpu:cluster:Cluster::c"
    parents = {top: stack, child: top}
    assert engine_urn(top, parents, "dev") == "urn:pulumi:dev::eks-gpu::eks-gpu:stack:EksGpuStack::eks-gpu"
    assert engine_urn(child, parents, "dev") == (
        "urn:pulumi:dev::eks-gpu::eks-gpu:stack:EksGpuStack$eks-gpu:cluster:Cluster::c"
    )
