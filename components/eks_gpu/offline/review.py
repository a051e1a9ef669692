"""The review of a change (`make plan ARGS="--against OLD.json"`), as a reviewer reads it.

`diff.diff` says what changes, resource by resource; this module says it briefly:

- changes grouped per component (the stack's top-level components: ``eks-gpu-network``, a node
  group's ``eks-gpu-inference``), each changed input old -> new beneath its resource;
- a node group's ASG tags (``aws:autoscaling/tag:Tag``, one resource per tag) as one line per group:
  replaced together when the group is (the tag's ``autoscalingGroupName`` is the group's output, a
  replacement path in ``data/replacement_rules.json``), with only the tag values that change;
- updates that change nothing but tags (a ``eks-gpu:tags`` edit reaches most resources) as one line
  per edit, with the components they touch;
- a NodePool or EC2NodeClass change that drifts Karpenter's nodes (``diff.karpenter_drift``) marked as
  such, beside node groups that roll theirs;
- the cost delta: idle, desired and max per hour and per month, old -> new, and the difference.

Text for a terminal (``render_changes``, ``render_cost_delta``) and Markdown for a pull-request
comment (``markdown_changes``, ``markdown_cost_delta``, ``cell``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eks_gpu.policy.cost import POINTS, monthly

from .diff import ACTIONS, ASG_TAG, EC2_NODE_CLASS, EKS_CLUSTER, NODE_GROUP, NODE_POOL, Change

SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}


def _tags_only(c: Change) -> bool:
    """An in-place update of nothing but a resource's own tags (never a replacement trigger)."""
    return (
        c.action == "update"
        and c.type != ASG_TAG
        and not c.rolls_nodes
        and not c.because
        and bool(c.causes)
        and all(x == "tags" or x.startswith("tags.") for x in c.causes)
    )


def _rolls(c: Change) -> str:
    """What replacing a change's nodes is called: Karpenter's drift, or a node group's roll."""
    return "KARPENTER DRIFT: REPLACES NODES" if c.type in (NODE_POOL, EC2_NODE_CLASS) else "ROLLS NODES"


def _value(v: Mapping[str, Any]) -> str:
    """``path: old → new`` (absent on one side: ``(none)``; a count of leaves left out: as it is)."""
    if v["old"] is None and v["new"] is None:
        return str(v["path"])
    old, new = ("(none)" if x is None else x for x in (v["old"], v["new"]))
    return f"{v['path']}: {old} → {new}"


@dataclass
class AsgTags:
    """A node group's ASG tags that change, as one summary."""

    changes: list[Change]

    def headline(self) -> str:
        """``13 ASG tags replaced (they follow the ASG: ...)``, counts per action."""
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in ACTIONS}
        parts = [f"{n} ASG tag{'s' if n > 1 else ''} {PAST[a]}" for a, n in counts.items() if n]
        follow = sorted(
            {b.split(":", 1)[1].strip().split(",", 1)[0] for c in self.changes for b in c.because if ":" in b}
        )
        why = f" (they follow the ASG: {'; '.join(follow)})" if follow else ""
        return ", ".join(parts) + why

    def details(self) -> list[str]:
        """What each tag's value becomes: changed values, created and deleted keys."""
        out = [
            f"{c.label}: {v['old']} → {v['new']}"
            for c in self.changes
            for v in c.values
            if v["path"] == "tag.value" and c.action in ("update", "replace")
        ]
        out += [
            f"{PAST[c.action]}: {c.label}={v['new'] if c.action == 'create' else v['old']}"
            for c in self.changes
            for v in c.values
            if c.action in ("create", "delete")
        ]
        return out

    @property
    def symbol(self) -> str:
        actions = {c.action for c in self.changes}
        return SYMBOL[actions.pop()] if len(actions) == 1 else "±"


@dataclass
class Section:
    """The changes of one component."""

    name: str
    type: str
    items: list[Change | AsgTags] = field(default_factory=list)


@dataclass
class Review:
    """A change as the review shows it."""

    tag_edits: list[tuple[tuple[str, ...], list[Change]]]
    """Updates of nothing but tags, by identical old -> new values."""
    sections: list[Section]


def review(changes: Iterable[Change]) -> Review:
    """Group ``changes`` (in their order: sections by first appearance) for a reviewer."""
    tag_edits: dict[tuple[str, ...], list[Change]] = {}
    sections: dict[str, Section] = {}
    for c in changes:
        if _tags_only(c):
            tag_edits.setdefault(tuple(_value(v) for v in c.values) or tuple(c.causes), []).append(c)
            continue
        section = sections.setdefault(c.component, Section(c.component, c.component_type))
        if c.type == ASG_TAG:
            tags = next((i for i in section.items if isinstance(i, AsgTags)), None)
            if tags is None:
                section.items.append(AsgTags([c]))
            else:
                tags.changes.append(c)
            continue
        section.items.append(c)
    return Review(list(tag_edits.items()), list(sections.values()))


def collapsed_names(changes: Iterable[Change]) -> list[str]:
    """The names of ``changes`` as the review groups them: a node group's ASG tags (one resource per
    tag) as ``<node group> and its N ASG tags``, or ``N ASG tags of <component>`` without it."""
    shape = review(changes)
    out = [c.name for _, edited in shape.tag_edits for c in edited]
    for section in shape.sections:
        tags = [c for i in section.items if isinstance(i, AsgTags) for c in i.changes]
        counted = f"{len(tags)} ASG tag{'s' if len(tags) != 1 else ''}"
        groups = [c for c in section.items if isinstance(c, Change) and c.type == NODE_GROUP]
        for item in section.items:
            if isinstance(item, Change):
                out.append(item.name + (f" and its {counted}" if tags and item is groups[0] else ""))
        if tags and not groups:
            out.append(f"{counted} of {section.name or 'the stack'}")
    return out


def _components(changes: Sequence[Change]) -> str:
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.component or "other"] = counts.get(c.component or "other", 0) + 1
    return ", ".join(f"{name} ({n})" for name, n in counts.items())


def counts_line(changes: Sequence[Change], against: str) -> str:
    """``Changes against OLD: 1 to create, ...``."""
    counts = {a: sum(1 for c in changes if c.action == a) for a in ACTIONS}
    return f"Changes against {against}: " + ", ".join(f"{n} to {a}" for a, n in counts.items())


def _upgrade(changes: Sequence[Change]) -> bool:
    return any(c.type == EKS_CLUSTER and c.action == "update" and "version" in c.causes for c in changes)


def render_changes(changes: Iterable[Change], warnings: Sequence[str], against: str) -> list[str]:
    """The change for people: warnings first, then tag-only edits, then per component."""
    changes = list(changes)
    out = [counts_line(changes, against)]
    out += [f"  WARNING: {w}" for w in warnings]
    # A Kubernetes upgrade is an order: control plane first, then what waits for it (EKS refuses a
    # node group newer than its control plane).
    upgrade = _upgrade(changes)
    if upgrade:
        out.append("  Kubernetes upgrade: each change waits for the ones named after it (the program's dependencies)")
    shape = review(changes)
    for values, edited in shape.tag_edits:
        out.append(f"   ~ {len(edited)} resource{'s' if len(edited) > 1 else ''} change only their tags, in place: ")
        out[-1] += "; ".join(values)
        out.append(f"             in {_components(edited)}")
    for section in shape.sections:
        out.append(f"  {section.name or 'other'}" + (f"  [{section.type}]" if section.type else ""))
        for item in section.items:
            if isinstance(item, AsgTags):
                out.append(f"    {item.symbol:>2} {item.headline()}")
                out += [f"             {d}" for d in item.details()]
                continue
            causes = f"  ({', '.join(item.causes)})" if item.causes else ""
            rolls = f"  {_rolls(item)}" if item.rolls_nodes else ""
            out.append(f"    {SYMBOL[item.action]:>2} {item.action:<7} {item.name}  [{item.type}]{causes}{rolls}")
            out += [f"             because {b}" for b in item.because]
            if upgrade and item.after:
                out.append(f"             after {', '.join(item.after)}")
            out += [f"             {_value(v)}" for v in item.values]
    return out


# --- cost ----------------------------------------------------------------------------------


def cost_delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The ``cost`` of two plans side by side: per point, per hour and per month (730 h), old, new
    and the difference (None where a side has no figure); and whether each side is complete (None:
    the old plan predates the flag)."""
    points = []
    for p in POINTS:
        row: dict[str, Any] = {"point": p}
        for unit, digits in (("Hour", 4), ("Month", 2)):
            a, b = (cost.get(f"{p}UsdPer{unit}") for cost in (old, new))
            if unit == "Month":  # a plan from before monthly figures: from its hourly one
                a = a if a is not None or old.get(f"{p}UsdPerHour") is None else monthly(old[f"{p}UsdPerHour"])
            row[f"oldUsdPer{unit}"], row[f"newUsdPer{unit}"] = a, b
            row[f"deltaUsdPer{unit}"] = None if a is None or b is None else round(b - a, digits)
        points.append(row)
    return {
        "points": points,
        "oldComplete": old.get("complete"),
        "newComplete": new.get("complete"),
        "oldUnpriced": list(old.get("unpriced") or []),
        "newUnpriced": list(new.get("unpriced") or []),
    }


def _money(value: float | None, digits: int) -> str:
    return "unknown" if value is None else f"${value:,.{digits}f}"


def _signed(value: float | None, digits: int) -> str:
    if value is None:
        return "unknown"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.{digits}f}"


def cost_cells(row: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """point, per hour old → new, its change, per month old → new, its change."""
    return (
        row["point"],
        f"{_money(row['oldUsdPerHour'], 4)} → {_money(row['newUsdPerHour'], 4)}",
        _signed(row["deltaUsdPerHour"], 4),
        f"{_money(row['oldUsdPerMonth'], 2)} → {_money(row['newUsdPerMonth'], 2)}",
        _signed(row["deltaUsdPerMonth"], 2),
    )


COST_HEADERS = ("point", "per hour, old → new", "change", "per month (730 h), old → new", "change")


def completeness(delta: Mapping[str, Any]) -> list[str]:
    """What makes the delta a floor: a side whose total leaves out items it has no price for."""
    out = []
    for side in ("old", "new"):
        done, missing = delta[f"{side}Complete"], delta[f"{side}Unpriced"]
        if done is None:
            out.append(f"the {side} plan does not say whether its total is complete (a plan from an older version)")
        elif not done:
            out.append(
                f"the {side} total is incomplete (no price for {', '.join(missing) or 'some items'}): "
                "its figures are floors, and the change is not exact"
            )
    return out


# --- Markdown ------------------------------------------------------------------------------


def cell(text: Any) -> str:
    """``text`` safe inside a Markdown table cell: pipes escaped, line breaks as ``<br>``."""
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def code(text: Any) -> str:
    """``text`` as inline code in a table cell (backticks inside it doubled away)."""
    return "`" + cell(str(text).replace("`", "'")) + "`"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A GitHub-flavoured Markdown table; every cell escaped with ``cell`` (pre-formatted cells: as given)."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def markdown_cost_delta(delta: Mapping[str, Any]) -> list[str]:
    """The cost delta as a Markdown table, and what makes it a floor."""
    out = md_table(COST_HEADERS, ([cell(c) for c in cost_cells(r)] for r in delta["points"]))
    return out + [f"\n> {cell(note)}" for note in completeness(delta)]


def markdown_changes(changes: Iterable[Change], warnings: Sequence[str], against: str) -> list[str]:
    """The change as Markdown: warnings, then one table per component (tag-only edits first)."""
    changes = list(changes)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ACTIONS}
    out = [f"### Changes against `{against}`", "", ", ".join(f"**{n}** to {a}" for a, n in counts.items())]
    if warnings:
        out += ["", *(f"- :warning: {cell(w)}" for w in warnings)]
    shape = review(changes)
    if shape.tag_edits:
        out += ["", "#### Tags only (updated in place)", ""]
        out += md_table(
            ("resources", "change", "components"),
            (
                (len(edited), "<br>".join(code(v) for v in values), cell(_components(edited)))
                for values, edited in shape.tag_edits
            ),
        )
    upgrade = _upgrade(changes)
    headers = ("action", "resource", "type", "change")
    for section in shape.sections:
        out += ["", f"#### {cell(section.name or 'other')}" + (f" ({code(section.type)})" if section.type else ""), ""]
        rows = []
        for item in section.items:
            if isinstance(item, AsgTags):
                details = "<br>".join(code(d) for d in item.details())
                rows.append((item.symbol, cell(item.headline()), code(ASG_TAG), details))
                continue
            what = [code(_value(v)) for v in item.values]
            what += [cell(f"because {b}") for b in item.because]
            what += [cell(f"after {', '.join(item.after)}")] if upgrade and item.after else []
            karpenter = item.type in (NODE_POOL, EC2_NODE_CLASS)
            what += (
                ["**Karpenter drift: replaces nodes**" if karpenter else "**rolls every node**"]
                if item.rolls_nodes
                else []
            )
            what += [cell(f"({', '.join(item.causes)})")] if item.causes and not item.values else []
            rows.append((f"{SYMBOL[item.action]} {item.action}", code(item.name), code(item.type), "<br>".join(what)))
        out += md_table(headers, rows)
    return out
