"""The README and docs/ stay true to the program: every config key of the models has exactly one row in
docs/configuration.md and every row names a real key, every relative link resolves (file and heading),
and the README stays a five-minute read."""

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from eks_gpu.config.models import StackConfig
from pydantic import BaseModel

from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
REFERENCE = ROOT / "docs" / "configuration.md"

README_LINE_BUDGET = 220
"""The most lines the README may have: what it builds, what it costs, the offline commands, a deploy,
a workload, the design choice, troubleshooting and the package; everything else is in docs/."""

PROVIDER_KEYS = {"aws:region", "aws:profile"}
"""Rows of the reference that are the AWS provider's keys, not the program's models."""


# --------------------------------------------------------------------------------------------
# The config keys the models accept, and the ones the reference documents.


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds (through ``Annotated``, ``X | None`` and unions)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def model_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key a stack file may set under ``model``, as segments of its path by alias. A nested model
    contributes its keys (each member of a union, e.g. a new or an existing VPC); a map of models is a
    key itself and its values' keys under ``*`` (``gpuNodeGroups.*.minSize``); anything else (a scalar,
    a list, even of objects like taints, a map of scalars) is one key."""
    for name, field in model.model_fields.items():
        key = (*prefix, field.alias or name)
        if get_origin(field.annotation) is dict:
            yield key
            for value_model in _models(get_args(field.annotation)[1]):
                yield from model_keys(value_model, (*key, "*"))
        elif nested := _models(field.annotation):
            for member in nested:
                yield from model_keys(member, key)
        else:
            yield key


def config_keys() -> list[tuple[str, ...]]:
    """The keys of the whole stack file, each once."""
    return list(dict.fromkeys(model_keys(StackConfig)))


def reference_rows(text: str) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Each row of the reference's table: its whole line and the keys its first cell names. A cell names
    one key (`` `vpc.cidr` ``) or siblings (`` `systemNodeGroup.minSize` / `desiredSize` ``: the later ones
    replace the first one's last segment); a placeholder segment (``<pool>``, ``<name>``) becomes ``*``."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", cell)
        first = tuple("*" if re.fullmatch(r"<[^>]+>", s) else s for s in names[0].split("."))
        keys = [first] + [(*first[:-1], sibling) for sibling in names[1:]]
        rows.append((line, keys))
    return rows


def matches(row_key: tuple[str, ...], key: tuple[str, ...]) -> bool:
    """Whether a row's key documents a model key: segment by segment, a row's ``*`` stands for any one
    segment (``addons.*.version`` for ``addons.vpc-cni.version``); a model's ``*`` (a map's own keys)
    only for a row's ``*``."""
    return len(row_key) == len(key) and all(r == "*" or r == k for r, k in zip(row_key, key, strict=True))


def reference_problems(text: str, keys: list[tuple[str, ...]]) -> list[str]:
    """What is wrong between the reference's table and the models' keys: a key with no row or with
    several, a row that names no key, and a placeholder row that does not name each key it stands for
    (``addons.<name>.version`` must list ``vpc-cni`` and the rest)."""
    rows = reference_rows(text)
    problems = []
    for key in keys:
        found = [(line, r) for line, row_keys in rows for r in row_keys if matches(r, key)]
        dotted = ".".join(key)
        if not found:
            problems.append(f"{dotted}: no row in docs/configuration.md")
        elif len(found) > 1:
            problems.append(f"{dotted}: {len(found)} rows in docs/configuration.md")
        else:
            line, row_key = found[0]
            named = [k for r, k in zip(row_key, key, strict=True) if r == "*" and k != "*"]
            problems += [f"{dotted}: its row does not name `{k}`" for k in named if f"`{k}`" not in line]
    for row_key in (r for _, row_keys in rows for r in row_keys):
        dotted = ".".join(row_key)
        if dotted not in PROVIDER_KEYS and not any(matches(row_key, k) for k in keys):
            problems.append(f"{dotted}: a row of docs/configuration.md that is no config key")
    return problems


def test_the_walk_sees_every_kind_of_key() -> None:
    keys = [".".join(k) for k in config_keys()]
    # a scalar, a key of each VPC kind, a map of models and its values' keys, a list of objects, fixed
    # names of a model, an optional model
    for key in ("clusterName", "vpc.cidr", "vpc.id", "gpuNodeGroups", "gpuNodeGroups.*.minSize",
                "gpuNodeGroups.*.taints", "addons.vpc-cni.version", "existingCluster.name"):  # fmt: skip
        assert key in keys, key
    assert not [k for k in keys if k.startswith("gpuNodeGroups.*.taints.")]


def test_every_config_key_has_exactly_one_row_and_every_row_is_a_key() -> None:
    assert reference_problems(REFERENCE.read_text(), config_keys()) == []


def test_reference_problems_name_each_kind_of_drift() -> None:
    keys = [("vpc", "cidr"), ("gpuNodeGroups",), ("gpuNodeGroups", "*", "minSize"), ("addons", "coredns", "version")]
    table = "\n".join(
        [
            "| `aws:region` | region |",
            "| `vpc.cidr` | CIDR |",
            "| `vpc.cidr` | again |",
            "| `gpuNodeGroups.<pool>.minSize` / `maxSize` | sizes |",
            "| `addons.<name>.version` | `vpc-cni` only |",
        ]
    )
    assert reference_problems(table, keys) == [
        "vpc.cidr: 2 rows in docs/configuration.md",
        "gpuNodeGroups: no row in docs/configuration.md",
        "addons.coredns.version: its row does not name `coredns`",
        "gpuNodeGroups.*.maxSize: a row of docs/configuration.md that is no config key",
    ]


# --------------------------------------------------------------------------------------------
# Links and length.


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code fences)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def link_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links of a Markdown file whose file does not exist, or whose ``#anchor`` names no
    heading of a Markdown target."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        where = f"{path.relative_to(root)}: ({target})"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no such heading")
    return problems


def test_every_relative_link_resolves() -> None:
    assert [p for path in [README, *DOCS] for p in link_problems(path)] == []


def test_link_problems_catch_a_missing_file_and_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "configuration.md").write_text("# Configuration reference\n")
    page = tmp_path / "docs" / "probe.md"
    page.write_text(
        "# Probe\n\n[a](nowhere.md) [b](configuration.md#nope) [c](#probe) [d](https://x.y/z) "
        "[e](configuration.md#configuration-reference)\n"
    )
    assert link_problems(page, tmp_path) == [
        "docs/probe.md: (nowhere.md): no such file",
        "docs/probe.md: (configuration.md#nope): no such heading",
    ]


def test_anchor_is_githubs() -> None:
    assert anchor('Reviewing a change: `make plan ARGS="--against OLD.json"`') == (
        "reviewing-a-change-make-plan-args--against-oldjson"
    )
    assert anchor("First deploy: `pulumi up`") == "first-deploy-pulumi-up"


def test_readme_stays_a_five_minute_read() -> None:
    assert len(README.read_text().splitlines()) <= README_LINE_BUDGET


def _shown(value: float, like: str) -> float:
    """``value`` rounded as the docs show it: the decimals of ``like`` (``$0.1921``: 4)."""
    return round(value, len(like.split(".")[1]))


def _check_row(line: str, values: list[float]) -> None:
    shown = re.findall(r"\$([\d,]+\.\d+)", line)
    assert len(shown) == len(values), line
    assert [float(s.replace(",", "")) for s in shown] == [_shown(v, s) for v, s in zip(values, shown, strict=True)], (
        line,
        values,
    )


def test_the_cost_figures_in_the_docs_are_what_the_plan_computes() -> None:
    """README.md's dev cost table and docs/review.md's dev/prod table, against ``plan.build`` of the
    shipped stack files (on the suite's date: the calendar's)."""
    from eks_gpu.facts.versions import calendar
    from eks_gpu.offline import plan

    cost = {s: plan.build(ROOT / f"Pulumi.{s}.yaml", today=calendar().updated)["cost"] for s in ("dev", "prod")}
    assert all(c["complete"] for c in cost.values())  # else the docs would have to say "at least"
    readme = (ROOT / "README.md").read_text().splitlines()
    dev = cost["dev"]
    (idle,) = [line for line in readme if line.startswith("| idle (")]
    (top,) = [line for line in readme if line.startswith("| at max (")]
    _check_row(idle, [dev["idleUsdPerHour"], dev["idleUsdPerMonth"]])
    _check_row(top, [dev["maxUsdPerHour"], dev["maxUsdPerMonth"]])
    review = (ROOT / "docs" / "review.md").read_text().splitlines()
    for stack, c in cost.items():
        (row,) = [line for line in review if line.startswith(f"| {stack} (")]
        _check_row(
            row,
            [
                c["idleUsdPerHour"],
                c["idleUsdPerMonth"],
                c["desiredUsdPerHour"],
                c["maxUsdPerHour"],
                c["maxUsdPerMonth"],
            ],
        )
