"""Renames never replace: every URN the shipped stacks had at 1.0.0 still exists or is an alias.

``tests/data/urns-1.0.0.json`` is the URN of every resource that ``Pulumi.dev.yaml``,
``Pulumi.prod.yaml`` and ``every_feature()`` registered at 1.0.0 under the offline engine. A later
version may rename a resource only with ``aliases`` naming its old identity (docs/contract.md);
otherwise ``pulumi up`` after an upgrade deletes the old resource and creates a new one.

Regenerate the snapshot only when a MAJOR version is cut (a break that the changelog announces):
``.venv/bin/python -m tests.test_urns --regenerate``.

How an alias names a URN follows the Pulumi engine: an alias is a URN or a spec whose empty fields
(name, type, stack, project) default to the resource's own and whose parent defaults to the resource's
current parent unless ``noParent`` (proto/pulumi/alias.proto; sdk/python/lib/pulumi/runtime/resource.py
``create_alias_spec``), and a child inherits its parent's aliases, its name re-prefixed when it starts
with the parent's name (sdk/python/lib/pulumi/utilities ``inherited_child_alias``). URNs are formed as the
offline engine forms them (pulumi/runtime/mocks.py ``MockMonitor.make_urn``: the parent's own type only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import time_machine
from eks_gpu.facts.versions import calendar
from eks_gpu.offline.engine import ProgramRun, RegisteredResource

from tests.helpers import every_feature, program_scope, run, run_stack_file

SNAPSHOT = Path(__file__).parent / "data" / "urns-1.0.0.json"
RUNS: dict[str, Callable[[], ProgramRun]] = {
    "dev": lambda: run_stack_file("dev"),
    "prod": lambda: run_stack_file("prod"),
    "every_feature": lambda: run(every_feature()),
}

# The DCGM exporter's release before issue 21 split it in two (commit c8c5cc0's parent,
# components/build/gpu_metrics.py: `release(name, ...)` under DcgmExporter, i.e. `<name>-release`).
OLD_DCGM_RELEASE = (
    "urn:pulumi:dev::eks-gpu::eks-gpu:gpu_metrics:DcgmExporter$kubernetes:helm.sh/v3:Release"
    "::eks-gpu-dcgm-exporter-release"
)


def make_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the offline engine makes it (``MockMonitor.make_urn``)."""
    if parent:
        type_ = parent.split("::")[2].split("$")[-1] + "$" + type_
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _split(urn: str) -> tuple[str, str, str]:
    """(stack, project, name) of ``urn``."""
    parts = urn.split("::")
    return parts[0].removeprefix("urn:pulumi:"), parts[1], parts[3]


def alias_urns(run_: ProgramRun, resource: RegisteredResource, *, honour_aliases: bool = True) -> set[str]:
    """Every former URN the engine would take ``resource`` to have had (its aliases, resolved)."""
    if not honour_aliases:
        return set()
    stack, project, _ = _split(resource.urn)
    parent = next((r for r in run_.resources if r.urn == resource.parent), None)
    parent_names = {resource.parent} | (alias_urns(run_, parent) if parent else set())
    found: set[str] = set()
    for alias in resource.aliases:
        if "urn" in alias:
            found.add(alias["urn"])
            continue
        spec = alias["spec"]
        parents = {""} if spec.get("noParent") else ({spec["parentUrn"]} if spec.get("parentUrn") else parent_names)
        for parent_urn in parents:
            found.add(
                make_urn(
                    spec.get("stack") or stack,
                    spec.get("project") or project,
                    parent_urn,
                    spec.get("type") or resource.type,
                    spec.get("name") or resource.name,
                )
            )
    if parent:
        for parent_alias in alias_urns(run_, parent) - {resource.parent}:
            name = resource.name
            if name.startswith(parent.name):
                name = _split(parent_alias)[2] + name[len(parent.name) :]
            found.add(make_urn(stack, project, parent_alias, resource.type, name))
    return found


def covered(run_: ProgramRun, *, honour_aliases: bool = True) -> set[str]:
    """URNs that an upgrade to this run keeps: the resources' own and the ones their aliases name."""
    urns = {r.urn for r in run_.resources}
    for resource in run_.resources:
        urns |= alias_urns(run_, resource, honour_aliases=honour_aliases)
    return urns


def snapshot_of(runs: Iterable[tuple[str, ProgramRun]]) -> dict[str, Any]:
    return {"version": "1.0.0", "stacks": {key: sorted(r.urn for r in run_.resources) for key, run_ in runs}}


@pytest.fixture(scope=program_scope)
def runs() -> dict[str, ProgramRun]:
    return {key: make() for key, make in RUNS.items()}


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return data


def test_the_snapshot_is_the_1_0_0_contract_of_every_shipped_stack(snapshot: dict[str, Any]) -> None:
    assert snapshot["version"] == "1.0.0"
    assert set(snapshot["stacks"]) == set(RUNS)
    assert all(len(urns) > 50 for urns in snapshot["stacks"].values())


@pytest.mark.parametrize("key", list(RUNS))
def test_every_1_0_0_urn_still_exists_or_is_aliased(
    key: str, runs: dict[str, ProgramRun], snapshot: dict[str, Any]
) -> None:
    lost = sorted(set(snapshot["stacks"][key]) - covered(runs[key]))
    assert not lost, f"renamed without an alias (an upgrade would replace them): {lost}"


def with_resources(resources: list[RegisteredResource]) -> ProgramRun:
    """A run that registered ``resources`` and nothing else: a rename, made by hand."""
    return ProgramRun(
        resources=resources,
        outputs={},
        secret_outputs=set(),
        invokes=[],
        warnings=[],
        errors=[],
        config={},
        account_data=None,
    )


def test_a_resource_renamed_without_alias_is_caught(runs: dict[str, ProgramRun]) -> None:
    # The check is not vacuous: rename one resource of the run (no alias) and its old URN is lost.
    run_ = runs["dev"]
    victim = next(r for r in run_.resources if r.custom)
    renamed = with_resources([r for r in run_.resources if r is not victim])
    assert victim.urn not in covered(renamed)


def test_the_dcgm_exporter_release_rename_of_issue_21_is_held_by_its_alias(runs: dict[str, ProgramRun]) -> None:
    run_ = runs["every_feature"]
    assert OLD_DCGM_RELEASE not in {r.urn for r in run_.resources}
    assert OLD_DCGM_RELEASE in covered(run_)
    # Without the alias the old release is lost: the upgrade would install a second release.
    assert OLD_DCGM_RELEASE not in covered(run_, honour_aliases=False)


def test_a_child_inherits_its_renamed_parents_alias(runs: dict[str, ProgramRun]) -> None:
    # The engine's rule for the children of a renamed component: a child named <parent>-x had the
    # URN <old parent type>$<type>::<old parent name>-x, and needs no alias of its own.
    run_ = runs["dev"]
    names = {r.urn: r.name for r in run_.resources}
    child = next(r for r in run_.resources if r.custom and r.name.startswith(names.get(r.parent, "\0") + "-"))
    parent = run_.by_urn(child.parent)
    suffix = child.name[len(parent.name) :]
    new_parent = replace(
        parent,
        name="renamed",
        urn=make_urn(*_split(parent.urn)[:2], parent.parent, parent.type, "renamed"),
        aliases=({"spec": {"name": parent.name, "parentUrn": ""}},),
    )
    new_child = replace(
        child,
        name="renamed" + suffix,
        urn=make_urn(*_split(child.urn)[:2], new_parent.urn, child.type, "renamed" + suffix),
        parent=new_parent.urn,
        aliases=(),
    )
    others = [r for r in run_.resources if r.urn not in {parent.urn, child.urn}]
    renamed = with_resources([*others, new_parent, new_child])
    assert {parent.urn, child.urn} <= covered(renamed)
    assert child.urn not in covered(renamed, honour_aliases=False)


def regenerate() -> None:
    """Write the snapshot from the current program (only when cutting a major version)."""
    SNAPSHOT.parent.mkdir(exist_ok=True)
    with time_machine.travel(calendar().updated.isoformat() + "T12:00:00Z", tick=False):  # as conftest.py
        data = snapshot_of([(key, make()) for key, make in RUNS.items()])
    SNAPSHOT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {SNAPSHOT}: {sum(len(v) for v in data['stacks'].values())} URNs")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python -m tests.test_urns --regenerate")
    regenerate()
