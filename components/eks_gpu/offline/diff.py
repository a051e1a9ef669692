"""`make plan ARGS="--against OLD.json"`: what a change does, resource by resource.

Two plans of the same stack (an earlier ``make plan ARGS=--json``, and this one) are compared by
URN, the way the Pulumi engine pairs old and new state. A resource whose inputs changed is
*replaced* when a changed path is one its provider replaces on, else *updated* in place; the rules
are the providers' own (``data/replacement_rules.json``, each rule proven against the source excerpt
it cites by ``tests/test_replacement_rules.py``), not conditionals here. Two effects reach a
resource through another one, as they do in a real preview:

- a replaced resource gets new outputs (id, ARN), so whatever takes them changes too: replaced if
  that input is one it replaces on (a replaced KMS key reaches the cluster's encryption config);
- a launch template change that makes a new version moves its node group's ``launchTemplate.version``:
  EKS rolls every node of the group (``UpdateNodegroupVersion``).

What AWS refuses or what loses work comes first, as warnings in words.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eks_gpu.config import POOL_LABEL

RULES_FILE = Path(__file__).resolve().parent / "data" / "replacement_rules.json"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EKS_CLUSTER = "eks:index:Cluster"
KMS_KEY = "aws:kms/key:Key"

Action = Literal["create", "update", "replace", "delete"]


@dataclass(frozen=True)
class Rules:
    """The providers' replacement and node-rolling rules, by Pulumi type token."""

    replace: Mapping[str, tuple[str, ...]]
    """Type -> input paths whose change replaces the resource (``kubernetes:*``: every Kubernetes kind)."""
    rolls_nodes: tuple[str, ...]
    """Node group input paths whose in-place update replaces every node."""
    new_version: tuple[str, ...]
    """Launch template inputs whose change makes a new template version."""

    def replaces_on(self, type_: str) -> tuple[str, ...]:
        """The replace paths of ``type_``, with the ones every Kubernetes kind shares."""
        shared = self.replace.get("kubernetes:*", ()) if type_.startswith("kubernetes:") else ()
        return (*shared, *self.replace.get(type_, ()))


@functools.cache
def rules() -> Rules:
    """The bundled rules (``data/replacement_rules.json``), read once."""
    types = json.loads(RULES_FILE.read_text())["types"]
    return Rules(
        replace={t: tuple(r["path"] for r in v.get("replace", [])) for t, v in types.items()},
        rolls_nodes=tuple(r["path"] for r in types[NODE_GROUP]["rollsNodes"]),
        new_version=tuple(types[LAUNCH_TEMPLATE]["newVersion"]),
    )


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where ``new`` differs from ``old``: objects compared key by key, anything else
    (lists included: node group ``instanceTypes`` is ordered) as a whole."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            found += changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return found
    return [] if old == new else [prefix]


def matches(path: str, rule: str) -> bool:
    """A change at ``path`` touches ``rule``: the same field, inside it, or a whole block holding it."""
    return path == rule or path.startswith(rule + ".") or rule.startswith(path + ".")


@dataclass
class Change:
    """One resource the change creates, updates, replaces or deletes."""

    name: str
    type: str
    action: Action
    causes: list[str] = field(default_factory=list)
    """The input paths that make it change (for updates and replacements)."""
    rolls_nodes: bool = False
    """Every node of a node group is replaced (the group itself, or a rolling update)."""
    because: list[str] = field(default_factory=list)
    """How a change reached it through another resource."""
    protected: bool = False
    after: list[str] = field(default_factory=list)
    """The nearest other changes it waits for: the engine applies a resource only once everything it
    depends on (inputs, ``depends_on``, its provider) is done, so these come first."""

    def to_json(self) -> dict[str, Any]:
        """The JSON contract: name, type, action, causes, rollsNodes (and because, protected, after)."""
        return {
            "name": self.name,
            "type": self.type,
            "action": self.action,
            "causes": self.causes,
            "rollsNodes": self.rolls_nodes,
            "because": self.because,
            "protected": self.protected,
            "after": self.after,
        }


def _real(resource: Mapping[str, Any]) -> bool:
    """A resource a provider manages (or pulumi-eks's component, whose inputs it turns into one)."""
    return bool(resource.get("custom") or resource.get("remote"))


def _pool(resource: Mapping[str, Any]) -> str:
    return str((resource.get("inputs") or {}).get("labels", {}).get(POOL_LABEL) or resource["name"])


def diff(old_plan: Mapping[str, Any], new_plan: Mapping[str, Any]) -> tuple[list[Change], list[str]]:
    """The changes from ``old_plan`` to ``new_plan`` (both ``make plan --json`` documents), in the new
    plan's order (deletions last), and the warnings a reviewer must read first."""
    table = rules()
    old = {r["urn"]: r for r in old_plan["resources"] if _real(r)}
    new = [r for r in new_plan["resources"] if _real(r)]
    by_urn = {r["urn"]: r for r in new}
    replaced: dict[str, str] = {}
    """URN -> name of every resource that is replaced (or created anew), so its outputs change."""
    versioned: dict[str, str] = {}
    """Launch template URN -> what makes its new version."""
    changes: list[Change] = []
    for resource in new:
        urn, type_ = resource["urn"], resource["type"]
        before = old.get(urn)
        if before is None:
            changes.append(Change(resource["name"], type_, "create"))
            replaced[urn] = resource["name"]
            continue
        causes = changed_paths(before.get("inputs", {}), resource.get("inputs", {}))
        because: list[str] = []
        for prop, sources in sorted((resource.get("propertyDependencies") or {}).items()):
            for source in sources:
                if source in replaced and prop not in causes:
                    causes.append(prop)
                    because.append(f"{prop}: {replaced[source]} is replaced, so its outputs change")
                if source in versioned and type_ == NODE_GROUP and prop == "launchTemplate":
                    causes.append("launchTemplate.version")
                    because.append(
                        f"launchTemplate.version: a new version of {by_urn[source]['name']} ({versioned[source]})"
                    )
        if not causes:
            continue
        replace = any(matches(c, r) for c in causes for r in table.replaces_on(type_))
        change = Change(
            resource["name"],
            type_,
            "replace" if replace else "update",
            causes=sorted(set(causes)),
            because=because,
            protected=bool(resource.get("protect") or before.get("protect")),
        )
        if type_ == NODE_GROUP:
            change.rolls_nodes = replace or any(matches(c, r) for c in causes for r in table.rolls_nodes)
        if type_ == LAUNCH_TEMPLATE and not replace:
            made = [c for c in change.causes if any(matches(c, k) for k in table.new_version)]
            if made:
                versioned[urn] = ", ".join(made)
        if replace:
            replaced[urn] = resource["name"]
        changes.append(change)
    current = {r["urn"] for r in new}
    _order(changes, new_plan)
    changes += [
        Change(r["name"], r["type"], "delete", protected=bool(r.get("protect")))
        for urn, r in old.items()
        if urn not in current
    ]
    return changes, warnings_for(changes, old_plan, new_plan, {**old, **by_urn})


def _order(changes: Sequence[Change], plan: Mapping[str, Any]) -> None:
    """Set each change's ``after`` from the new plan's recorded dependencies, followed through
    resources that do not change (a chart waits for the cluster through its unchanged provider)."""
    deps = {r["urn"]: set(r.get("dependencies") or ()) for r in plan["resources"]}
    urns = {(r["name"], r["type"]): r["urn"] for r in plan["resources"]}
    names = {urn: name for (name, _), urn in urns.items()}
    changed = {urns[c.name, c.type] for c in changes if (c.name, c.type) in urns}

    @functools.cache
    def upstream(urn: str) -> frozenset[str]:
        """Every resource ``urn`` waits for, directly or not."""
        seen: set[str] = set()
        todo = list(deps.get(urn, ()))
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo.extend(deps.get(d, ()))
        return frozenset(seen - {urn})

    for c in changes:
        waits = upstream(urns[c.name, c.type]) & changed if (c.name, c.type) in urns else frozenset()
        c.after = sorted(names[w] for w in waits if not any(w in upstream(o) for o in waits - {w}))


def warnings_for(
    changes: Sequence[Change], old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], resources: Mapping[str, Any]
) -> list[str]:
    """What AWS will refuse or what loses work, most serious first."""
    by_name = {r["name"]: r for r in resources.values()}
    table = rules()

    def triggers(c: Change, paths: Iterable[str]) -> str:
        """The causes of ``c`` that match ``paths`` (what replaces it, or rolls its nodes)."""
        return ", ".join(x for x in c.causes if any(matches(x, r) for r in paths))

    out: list[str] = []
    for c in changes:
        if c.protected and c.action in ("replace", "delete"):
            out.append(f"{c.name} is protected: pulumi up refuses to {c.action} it (unset eks-gpu:protect first)")
    for c in changes:
        if c.type == EKS_CLUSTER and c.action in ("replace", "delete"):
            out.append(
                f"the EKS cluster {c.name} is {c.action}d ({triggers(c, table.replaces_on(c.type)) or 'removed'}): "
                "a new, empty control "
                "plane; every workload, secret and access entry in the old one is lost"
            )
        if (
            c.type == EKS_CLUSTER
            and c.action == "update"
            and any(matches(x, "encryptionConfigKeyArn") for x in c.causes)
        ):
            out.append(
                f"the EKS cluster {c.name} gets another secrets key ARN: EKS cannot change a cluster's key, and the "
                "AWS provider does not try (it only adds encryption to a cluster without it); the cluster keeps "
                "the old key"
            )
        if c.type == KMS_KEY and c.action in ("replace", "delete"):
            out.append(
                f"the KMS key {c.name} is {c.action}d: the cluster's secrets are encrypted with it, and a cluster "
                "cannot change its key; the old key is scheduled for deletion while the cluster still needs it"
            )
        if c.type == NODE_GROUP and c.action in ("replace", "delete"):
            pool = _pool(by_name.get(c.name, {"name": c.name}))
            why = triggers(c, table.replaces_on(c.type))
            out.append(
                f"node group {pool} ({c.name}) is {c.action}d"
                + (f" ({why})" if why else "")
                + ": all its nodes go, and GPU jobs running on them die"
            )
        elif c.type == NODE_GROUP and c.rolls_nodes:
            out.append(
                f"node group {_pool(by_name.get(c.name, {'name': c.name}))} ({c.name}) rolls its nodes "
                f"({triggers(c, table.rolls_nodes)}): EKS replaces every node, one at a time; a GPU job on each dies"
            )
    before, after = (
        set(old_plan.get("clusterAvailabilityZones") or []),
        set(new_plan.get("clusterAvailabilityZones") or []),
    )
    if before and after and before != after:
        added, removed = sorted(after - before), sorted(before - after)
        if added:
            out.append(
                f"the cluster's subnets move into AZs {', '.join(added)}: EKS only accepts subnets in the AZs the "
                f"cluster was created with ({', '.join(sorted(before))}), so this update fails on AWS"
            )
        if removed:
            out.append(
                f"the cluster leaves AZs {', '.join(removed)}: EKS allows it, but it can never come back to them "
                "without a new cluster"
            )
    return out


def load_plan(path: Path) -> dict[str, Any]:
    """An earlier ``make plan ARGS=--json`` document, checked to have what a diff needs."""
    plan = json.loads(path.read_text())
    if not isinstance(plan, dict) or not all("urn" in r and "inputs" in r for r in plan.get("resources", [])):
        raise ValueError(f"{path}: not a plan written by `make plan ARGS=--json` (of this version)")
    return plan


def render_changes(changes: Iterable[Change], warnings: Sequence[str], against: str) -> list[str]:
    """The change for people: warnings first, then one line per resource."""
    changes = list(changes)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "replace", "delete")}
    out = [f"Changes against {against}: " + ", ".join(f"{n} to {a}" for a, n in counts.items())]
    out += [f"  WARNING: {w}" for w in warnings]
    # A Kubernetes upgrade is an order: control plane first, then what waits for it (EKS refuses a
    # node group newer than its control plane). Other changes keep the plain list.
    upgrade = any(c.type == EKS_CLUSTER and c.action == "update" and "version" in c.causes for c in changes)
    if upgrade:
        out.append("  Kubernetes upgrade: each change waits for the ones named after it (the program's dependencies)")
    symbol = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
    for c in changes:
        causes = f"  ({', '.join(c.causes)})" if c.causes else ""
        rolls = "  ROLLS NODES" if c.rolls_nodes else ""
        out.append(f"  {symbol[c.action]:>2} {c.action:<7} {c.name}  [{c.type}]{causes}{rolls}")
        out += [f"             because {b}" for b in c.because]
        if upgrade and c.after:
            out.append(f"             after {', '.join(c.after)}")
    return out
