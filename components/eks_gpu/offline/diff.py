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

Karpenter pools (NodePool and EC2NodeClass custom resources) are updated in place, and Karpenter
then *drifts* the nodes they no longer describe: drains them (at the pace of the pool's disruption
budget) and terminates them once replacements are up. Which changes drift is Karpenter's rule
(aws/karpenter-provider-aws ``website/content/en/v1.14/concepts/disruption.md``, "Drift"): a NodePool's
``spec.template`` and an EC2NodeClass's ``spec`` are hashed, and any change to them drifts every node;
``spec.template.spec.requirements`` is checked node by node instead, so a requirement that only widens
(more allowed values) drifts none; the "behavioral fields" ``spec.weight``, ``spec.limits`` and
``spec.disruption.*`` never drift. Such a change is marked ``rolls_nodes`` and said in a warning.

What AWS refuses or what loses work comes first, as warnings in words.
"""

from __future__ import annotations

import functools
import json
import re
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
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
KARPENTER_TEMPLATE = "spec.template"
"""NodePool inputs whose change drifts its nodes (the NodeClaim template Karpenter hashes)."""
KARPENTER_REQUIREMENTS = "spec.template.spec.requirements"
"""Checked node by node, not hashed: only a node its new values no longer allow drifts."""
RESOLVED_SELECTORS = ("subnetSelectorTerms", "securityGroupSelectorTerms")
"""EC2NodeClass selectors Karpenter resolves and checks node by node (disruption.md, "Special Cases on
Drift"): only a node in a subnet or security group no longer selected drifts. (``amiSelectorTerms`` is one
too, but a new pinned alias resolves to new AMIs: every node drifts.)"""
KARPENTER_BEHAVIORAL = ("spec.weight", "spec.limits", "spec.disruption")
"""NodePool fields that never drift a node (disruption.md, "Behavioral Fields")."""

Action = Literal["create", "update", "replace", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")


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
    component: str = ""
    """The component it belongs to: its ancestor right below the stack's root (``eks-gpu-inference``
    for a node group's resources); "" when the plans do not record parents."""
    component_type: str = ""
    values: list[dict[str, Any]] = field(default_factory=list)
    """Each changed input as ``{"path", "old", "new"}``: leaves, shortened, secrets masked (None: absent)."""
    label: str = ""
    """What the name does not say (an ASG tag's key), for summaries."""

    def to_json(self) -> dict[str, Any]:
        """The JSON contract: name, type, action, causes, rollsNodes (and because, protected, after,
        component, componentType, values, label)."""
        return {
            "name": self.name,
            "type": self.type,
            "action": self.action,
            "causes": self.causes,
            "rollsNodes": self.rolls_nodes,
            "because": self.because,
            "protected": self.protected,
            "after": self.after,
            "component": self.component,
            "componentType": self.component_type,
            "values": self.values,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Change:
        """The change ``to_json`` wrote (fields it lacks take their defaults)."""
        return cls(
            row["name"],
            row["type"],
            row["action"],
            list(row["causes"]),
            row["rollsNodes"],
            list(row.get("because", [])),
            bool(row.get("protected")),
            list(row.get("after", [])),
            str(row.get("component", "")),
            str(row.get("componentType", "")),
            list(row.get("values", [])),
            str(row.get("label", "")),
        )


# --- old -> new, for people ------------------------------------------------------------------

SHORT = 60
"""Characters a value keeps in a review; a longer one is cut around where it differs."""
MAX_LEAVES = 6
"""Leaf changes shown per changed input; the rest are counted."""
MASK = "[secret]"
SECRET_WORDS = frozenset({"password", "passwd", "secret", "token", "credential", "credentials", "apikey"})
"""Words of an input's name (camelCase, snake_case or kebab-case) whose string value is never shown,
even when the program did not mark it secret (``httpTokens`` is not ``token``: it stays)."""
K8S_SECRET = "kubernetes:core/v1:Secret"
ASG_TAG = "aws:autoscaling/tag:Tag"


def _words(key: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z][a-z0-9]*", key)]


def _secret(type_: str, path: str, value: Any, secret_inputs: Iterable[str]) -> bool:
    """``value`` at ``path`` must not be shown: the program marked the input secret (Pulumi's own
    ``secretInputs``), it is a Kubernetes Secret's data, or its name says it is a secret."""
    top = path.split(".", 1)[0].split("[", 1)[0]
    if top in set(secret_inputs):
        return True
    if type_ == K8S_SECRET and top in ("data", "stringData"):
        return True
    leaf = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])
    return isinstance(value, str) and bool(SECRET_WORDS & set(_words(leaf)))


def _compact(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(v, Mapping | list) for v in value):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def shorten(old: Any, new: Any, limit: int = SHORT) -> tuple[str | None, str | None]:
    """``old`` and ``new`` as short text (None stays None: absent), each cut to ``limit`` characters
    around the first character where they differ, so the difference stays in sight."""
    a, b = (None if v is None else _compact(v) for v in (old, new))
    at = 0
    if a is not None and b is not None:
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    def cut(text: str | None) -> str | None:
        if text is None or len(text) <= limit:
            return text
        start = max(0, min(at - limit // 4, len(text) - limit))
        return ("…" if start else "") + text[start : start + limit] + ("…" if start + limit < len(text) else "")

    return cut(a), cut(b)


def _json_text(value: Any) -> Any:
    """A string holding a JSON object or array (an IAM policy) as that object, to compare inside it."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _leaves(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Where ``old`` and ``new`` differ, as deep as both have the same shape (lists of one length
    element by element, objects key by key, JSON text as its document)."""
    old, new = _json_text(old), _json_text(new)
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            leaf
            for k in sorted(set(old) | set(new))
            for leaf in _leaves(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        ]
    nested = any(isinstance(v, Mapping | list) for v in [*old, *new]) if isinstance(old, list) else False
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and nested:
        return [leaf for i, (x, y) in enumerate(zip(old, new, strict=True)) for leaf in _leaves(x, y, f"{path}[{i}]")]
    return [(path, old, new)]


def value_at(props: Any, path: str) -> Any:
    """``props`` at a dotted ``path`` (``spec.template.spec.requirements``); None where a step is missing."""
    for part in path.split("."):
        if not isinstance(props, Mapping):
            return None
        props = props.get(part)
    return props


def _under(path: str, cause: str) -> bool:
    return path == cause or path.startswith((cause + ".", cause + "["))


def value_changes(before: Mapping[str, Any], after: Mapping[str, Any], causes: Iterable[str]) -> list[dict[str, Any]]:
    """Each of ``causes`` as old -> new leaves (at most ``MAX_LEAVES`` per cause, then a count),
    shortened, secrets masked. Leave out a cause that changes through another resource (its
    ``because`` says why; offline, the value is a placeholder)."""
    secrets = {*before.get("secretInputs", ()), *after.get("secretInputs", ())}
    everything = _leaves(before.get("inputs") or {}, after.get("inputs") or {}, "")
    out: list[dict[str, Any]] = []
    for cause in causes:
        leaves = [leaf for leaf in everything if _under(leaf[0], cause)]
        for path, old, new in leaves[:MAX_LEAVES]:
            if any(_secret(after.get("type", ""), path, v, secrets) for v in (old, new) if v is not None):
                old, new = (None if v is None else MASK for v in (old, new))
            a, b = shorten(old, new)
            out.append({"path": path, "old": a, "new": b})
        if len(leaves) > MAX_LEAVES:
            out.append({"path": f"{cause}: {len(leaves) - MAX_LEAVES} more", "old": None, "new": None})
    return out


def components(plan: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """URN -> (name, type) of the component each resource of ``plan`` belongs to: its ancestor right
    below the stack's root. Parents by URN (``parentUrn``); a plan without it by name among the
    components (two resources may share a name: an add-on and the role component it uses)."""
    resources = plan.get("resources", [])
    by_urn = {r["urn"]: r for r in resources}
    by_name: dict[str, str] = {}
    for r in resources:
        if not r.get("custom"):
            by_name.setdefault(r["name"], r["urn"])

    def parent(r: Mapping[str, Any]) -> str | None:
        return r["parentUrn"] if "parentUrn" in r else by_name.get(r.get("parent") or "")

    out: dict[str, tuple[str, str]] = {}
    for r in resources:
        if "parentUrn" not in r and not r.get("parent"):
            out[r["urn"]] = ("", "")
            continue
        chain = [r]
        while (up := parent(chain[-1])) in by_urn and len(chain) <= len(resources):
            chain.append(by_urn[up])
        top = chain[-2] if len(chain) > 1 else chain[-1]
        out[r["urn"]] = (top["name"], top["type"])
    return out


def _real(resource: Mapping[str, Any]) -> bool:
    """A resource a provider manages (or pulumi-eks's component, whose inputs it turns into one)."""
    return bool(resource.get("custom") or resource.get("remote"))


def _pool(resource: Mapping[str, Any]) -> str:
    return str((resource.get("inputs") or {}).get("labels", {}).get(POOL_LABEL) or resource["name"])


def _widens(old: Any, new: Any) -> bool:
    """Whether ``new`` requirements allow every value ``old`` ones do: the same keys and operators, each
    ``In`` list a superset of the old one, every other requirement unchanged."""

    def by_key(reqs: Any) -> dict[tuple[str, str], list[str]]:
        return {(str(r.get("key")), str(r.get("operator"))): list(r.get("values") or []) for r in reqs or []}

    before, after = by_key(old), by_key(new)
    if set(before) != set(after):
        return False
    return all(
        set(values) <= set(after[key]) if key[1] == "In" else values == after[key] for key, values in before.items()
    )


def karpenter_drift(type_: str, causes: Sequence[str], old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What a change of a NodePool or an EC2NodeClass does to its nodes (module docstring): ``"every"``
    node drifts, only the nodes the new ``requirements`` no longer allow (``"outside"``), or ``""``
    none."""
    spec = [c for c in causes if matches(c, "spec")]
    if type_ == EC2_NODE_CLASS:
        if spec and all(any(matches(c, f"spec.{t}") for t in RESOLVED_SELECTORS) for c in spec):
            return "outside"
        return "every" if spec else ""
    drifting = [c for c in spec if matches(c, KARPENTER_TEMPLATE)]
    if not drifting:
        return ""
    if all(matches(c, KARPENTER_REQUIREMENTS) and c != KARPENTER_TEMPLATE for c in drifting):
        if _widens(value_at(old, KARPENTER_REQUIREMENTS), value_at(new, KARPENTER_REQUIREMENTS)):
            return ""
        return "outside"
    return "every"


def _node_pools_of(resources: Iterable[Mapping[str, Any]], node_class: str) -> list[str]:
    """The pools whose NodePool names the EC2NodeClass ``node_class``."""
    return sorted(
        _karpenter_pool(r)
        for r in resources
        if r.get("type") == NODE_POOL
        and value_at(r.get("inputs"), "spec.template.spec.nodeClassRef.name") == node_class
    )


def _karpenter_pool(resource: Mapping[str, Any]) -> str:
    inputs = resource.get("inputs") or {}
    labels = value_at(inputs, "spec.template.metadata.labels") or {}
    return str(labels.get(POOL_LABEL) or value_at(inputs, "metadata.name") or resource.get("name"))


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
            values=value_changes(before, resource, sorted(set(causes) - {b.split(":", 1)[0] for b in because})),
        )
        if type_ == NODE_GROUP:
            change.rolls_nodes = replace or any(matches(c, r) for c in causes for r in table.rolls_nodes)
        if type_ in (NODE_POOL, EC2_NODE_CLASS):
            change.rolls_nodes = replace or bool(
                karpenter_drift(type_, change.causes, before.get("inputs") or {}, resource.get("inputs") or {})
            )
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
    _place(changes, old_plan, new_plan)
    return changes, warnings_for(changes, old_plan, new_plan, {**old, **by_urn})


def _place(changes: Sequence[Change], old_plan: Mapping[str, Any], new_plan: Mapping[str, Any]) -> None:
    """Set each change's component (from the plan that holds it: the old one for a deletion) and an
    ASG tag's key as its label."""
    placed = {"old": components(old_plan), "new": components(new_plan)}
    urns = {
        side: {(r["name"], r["type"]): r for r in plan.get("resources", [])}
        for side, plan in (("old", old_plan), ("new", new_plan))
    }
    for c in changes:
        side = "old" if c.action == "delete" else "new"
        resource = urns[side].get((c.name, c.type))
        if resource is None:
            continue
        c.component, c.component_type = placed[side].get(resource["urn"], ("", ""))
        if c.type == ASG_TAG:
            c.label = str(value_at(resource.get("inputs"), "tag.key") or "")
            if c.action in ("create", "delete"):  # what the tag says, on the side it exists
                value = shorten(value_at(resource.get("inputs"), "tag.value"), None)[0]
                c.values = [{"path": "tag.value", "old": value, "new": None}]
                if c.action == "create":
                    c.values = [{"path": "tag.value", "old": None, "new": value}]


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
    out += _karpenter_warnings(changes, old_plan, new_plan)
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


DRAINED = "(drained, then terminated, at the pace of its disruption budget)"


def _karpenter_warnings(
    changes: Sequence[Change], old_plan: Mapping[str, Any], new_plan: Mapping[str, Any]
) -> list[str]:
    """What NodePool and EC2NodeClass changes do to running nodes, in Karpenter's terms."""
    sides = {
        side: {(r["name"], r["type"]): r for r in plan.get("resources", [])}
        for side, plan in (("old", old_plan), ("new", new_plan))
    }
    out: list[str] = []
    for c in changes:
        if c.type not in (NODE_POOL, EC2_NODE_CLASS):
            continue
        old = sides["old"].get((c.name, c.type)) or {}
        new = sides["new"].get((c.name, c.type)) or {}
        if c.action in ("replace", "delete"):
            what = "NodePool" if c.type == NODE_POOL else "EC2NodeClass"
            pools = (
                [_karpenter_pool(old or new)]
                if c.type == NODE_POOL
                else _node_pools_of(old_plan.get("resources", []), str(value_at(old.get("inputs"), "metadata.name")))
            )
            out.append(
                f"Karpenter {what} {c.name} is {c.action}d: Karpenter terminates every node it launched for "
                f"pool {', '.join(pools) or '?'}, and GPU jobs running on them die"
            )
            continue
        if c.action != "update":
            continue
        drift = karpenter_drift(c.type, c.causes, old.get("inputs") or {}, new.get("inputs") or {})
        if c.type == NODE_POOL:
            pool = _karpenter_pool(new)
            if drift == "every":
                spec = [x for x in c.causes if matches(x, KARPENTER_TEMPLATE)]
                out.append(
                    f"Karpenter drift: every node of pool {pool} is replaced {DRAINED}: NodePool {c.name} "
                    f"changes its template ({', '.join(spec)}); a GPU job on each node dies unless it is "
                    "annotated karpenter.sh/do-not-disrupt"
                )
            elif drift == "outside":
                out.append(
                    f"Karpenter drift: the nodes of pool {pool} whose instance type, capacity type or zone the new "
                    f"requirements no longer allow are replaced {DRAINED}; nodes they still allow stay"
                )
            else:
                out.append(
                    f"Karpenter NodePool {c.name} (pool {pool}) changes only {', '.join(c.causes)}: no node "
                    "replaced (limits, disruption and weight do not drift nodes; a widened requirement neither)"
                )
        elif drift:
            users = ", ".join(
                _node_pools_of(new_plan.get("resources", []), str(value_at(new.get("inputs"), "metadata.name")))
            )
            changed = ", ".join(x for x in c.causes if matches(x, "spec"))
            if drift == "every":
                out.append(
                    f"Karpenter drift: every node of pool {users or '?'} is replaced {DRAINED}: "
                    f"EC2NodeClass {c.name} changes {changed}"
                )
            else:
                out.append(
                    f"Karpenter drift: the nodes of pool {users or '?'} in a subnet or security group EC2NodeClass "
                    f"{c.name} no longer selects ({changed}) are replaced {DRAINED}; the others stay"
                )
    return out


def load_plan(path: Path) -> dict[str, Any]:
    """An earlier ``make plan ARGS=--json`` document, checked to have what a diff needs: a
    ``resources`` list whose every entry has ``urn``, ``name``, ``type`` and ``inputs``. Anything
    else is a ValueError naming the file and what it lacks (an unreadable file: the OSError)."""
    try:
        plan = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); pass a plan written by `eks-gpu plan --json`") from None
    lacks = ""
    if not isinstance(plan, dict):
        lacks = f"it is a {type(plan).__name__}, not a JSON object"
    elif not isinstance(plan.get("resources"), list):
        lacks = 'it has no "resources" list'
    else:
        for i, r in enumerate(plan["resources"]):
            missing = [k for k in ("urn", "name", "type", "inputs") if not isinstance(r, dict) or k not in r]
            if missing:
                lacks = f"resources[{i}] has no {', '.join(missing)}"
                break
    if lacks:
        raise ValueError(f"{path}: not a plan written by `eks-gpu plan --json` (of this version): {lacks}")
    return plan


def render_changes(changes: Iterable[Change], warnings: Sequence[str], against: str) -> list[str]:
    """The change for people: warnings first, then per component, each input old -> new
    (``review.render_changes``)."""
    from .review import render_changes as render  # review builds on this module

    return render(changes, warnings, against)
