"""offline/data/replacement_rules.json, checked against the provider-source excerpts it cites.

The rules are not restated here: each one names the schema keys (or literals) of its excerpt, and the tests prove
both ways that those keys carry the provider's replacement marker and that no marked key lacks a rule.

Go excerpts are gofmt-indented with tabs but have lines cut out (``// [...]``), which often removes closing braces.
Blocks are therefore found by indentation, which survives the cuts, instead of by counting braces: the block that
encloses a line is opened by the nearest line above it that is indented less.
"""

import copy
import json
import re
from typing import Any

import pytest

from tests.helpers import PACKAGE_DIR

DATA = PACKAGE_DIR / "offline" / "data"
RULES: dict[str, Any] = json.loads((DATA / "replacement_rules.json").read_text())
TYPES: dict[str, dict[str, Any]] = RULES["types"]
TERRAFORM = ("terraform-sdk", "terraform-framework")

# A line that opens a schema key's block: `"ami_type": {`, `names.AttrID: {`, `names.AttrNamespace: schema.X{`.
KEY = re.compile(r'("[\w.]+"|[A-Za-z_][\w.]*):\s*(?:schema\.\w+)?\{')
STATIC_MARKER = {
    "terraform-sdk": re.compile(r"ForceNew:\s+true,"),
    "terraform-framework": re.compile(r"RequiresReplace\(\)"),
}
CODE_MARKER = {"terraform-sdk": re.compile(r"ForceNew\w*\("), "terraform-framework": re.compile(r"\.RequiresReplace =")}
# Where in a pulumi-kubernetes excerpt each type's literals live (the anchor opens an indented block).
K8S_SCOPE = {
    "kubernetes:*": "func metadataForceNewProperties(",
    "kubernetes:batch/v1:Job": "var job = append(",
    "kubernetes:core/v1:ResourceQuota": '"ResourceQuota": properties{',
    "kubernetes:helm.sh/v3:Release": "forceNewFields := []string{",
}
PROGRAM_TYPES = {
    "aws:eks/nodeGroup:NodeGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/route:Route",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:kms/key:Key",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:eks/addon:Addon",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:autoscaling/tag:Tag",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/placementGroup:PlacementGroup",
    "aws:eks/cluster:Cluster",
    "eks:index:Cluster",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:*",
    "kubernetes:batch/v1:Job",
    "kubernetes:core/v1:ResourceQuota",
}


def of_kind(*kinds: str) -> list[str]:
    return [token for token, t in TYPES.items() if t["kind"] in kinds]


def excerpt(token: str) -> str:
    return (DATA / "sources" / TYPES[token]["source"]).read_text()


def code_lines(text: str) -> list[tuple[int, str]]:
    """(tab indent, stripped text) of the source lines, leaving out the `#` header notes and `// [...]` cuts."""
    return [
        (len(raw) - len(raw.lstrip("\t")), raw.strip())
        for raw in text.splitlines()
        if raw.strip() and not raw.startswith(("#", "// ["))
    ]


def openers(lines: list[tuple[int, str]], i: int) -> list[str]:
    """The lines opening the blocks that enclose line i, innermost first."""
    found, indent = [], lines[i][0]
    for j in range(i - 1, -1, -1):
        if lines[j][0] < indent:
            indent = lines[j][0]
            found.append(lines[j][1])
    return found


def marked_keys(text: str, kind: str) -> set[tuple[str, ...]]:
    """Key paths (outermost first) of every schema key whose own block carries the static replace marker."""
    lines, paths = code_lines(text), set()
    for i, (_, line) in enumerate(lines):
        if STATIC_MARKER[kind].search(line):
            heads = openers(lines, i)
            if kind == "terraform-framework":  # RequiresReplace() sits in the attribute's PlanModifiers list
                assert heads.pop(0).startswith("PlanModifiers:"), line
            assert KEY.fullmatch(heads[0]), f"{line!r} is not at the top level of a schema key's block"
            paths.add(tuple(m.group(1) for h in reversed(heads) if (m := KEY.fullmatch(h))))
    return paths


def uncovered(token: str, t: dict[str, Any]) -> set[tuple[str, ...]]:
    return marked_keys(excerpt(token), t["kind"]) - {tuple(r["source"]) for r in t["replace"]}


def norm(name: str) -> str:
    return name.replace("_", "").lower()


def key_name(token: str, text: str) -> str:
    """The attribute name a schema key token stands for: "x_y", names.AttrXY, or a const defined in the excerpt."""
    if token.startswith('"'):
        return token.strip('"')
    if token.startswith("names.Attr"):
        return token.removeprefix("names.Attr")
    const = re.search(rf'^\s*{token}\s*=\s*"(\w+)"', text, re.M)
    assert const, f"{token} is not defined in the excerpt"
    return const.group(1)


def indented_block(text: str, anchor: str) -> str:
    """The only line containing anchor, plus the lines after it that are indented deeper."""
    lines = code_lines(text)
    starts = [i for i, (_, line) in enumerate(lines) if anchor in line]
    assert len(starts) == 1, f"{anchor!r} found {len(starts)} times"
    depth, block = lines[starts[0]][0], [lines[starts[0]][1]]
    for indent, line in lines[starts[0] + 1 :]:
        if indent <= depth:
            break
        block.append(line)
    return "\n".join(block)


def test_the_program_types_are_covered() -> None:
    assert set(TYPES) == PROGRAM_TYPES


@pytest.mark.parametrize("token", TYPES)
def test_source_excerpt_names_repository_path_and_commit(token: str) -> None:
    assert re.fullmatch(r"# [\w.-]+/[\w.-]+ \S+ [0-9a-f]{40}", excerpt(token).splitlines()[0])
    assert TYPES[token]["source"].startswith("replacement/")


@pytest.mark.parametrize("token", of_kind(*TERRAFORM))
def test_every_terraform_rule_is_a_marked_key(token: str) -> None:
    t, text = TYPES[token], excerpt(token)
    marked = marked_keys(text, t["kind"])
    for rule in t["replace"]:
        assert tuple(rule["source"]) in marked, rule
        names = [key_name(k, text) for k in rule["source"]]
        assert [norm(n) for n in names] == [norm(p) for p in rule["path"].split(".")], rule


@pytest.mark.parametrize("token", of_kind(*TERRAFORM))
def test_no_marked_terraform_key_is_missed(token: str) -> None:
    assert uncovered(token, TYPES[token]) == set()


@pytest.mark.parametrize("token", of_kind(*TERRAFORM))
def test_replacements_made_in_code_are_listed(token: str) -> None:
    t, text = TYPES[token], excerpt(token)
    sources = [c["source"] for c in t.get("customizeDiff", [])]
    assert all(source in text for source in sources)
    calls = [line for _, line in code_lines(text) if CODE_MARKER[t["kind"]].search(line)]
    assert all(any(source in line for source in sources) for line in calls), calls


@pytest.mark.parametrize(
    ("token", "index"), [(k, i) for k in of_kind(*TERRAFORM) for i in range(len(TYPES[k]["replace"]))]
)
def test_dropping_a_rule_is_caught(token: str, index: int) -> None:
    t = copy.deepcopy(TYPES[token])
    dropped = t["replace"].pop(index)
    assert uncovered(token, t) == {tuple(dropped["source"])}


def test_launch_template_new_version_keys_are_the_update_keys() -> None:
    token = "aws:ec2/launchTemplate:LaunchTemplate"
    block = re.search(r"updateKeys := \[\]string\{(.*?)\}", excerpt(token), re.S)
    assert block
    sent_as = {"license_specification": "licenseSpecifications"}  # the plural name pulumi-aws gives the block
    camel = [sent_as.get(k, re.sub(r"_(\w)", lambda m: m[1].upper(), k)) for k in re.findall(r'"(\w+)"', block[1])]
    assert TYPES[token]["newVersion"] == camel
    assert [t for t, v in TYPES.items() if "newVersion" in v] == [token]


def test_node_group_rolls_nodes_on_the_version_update() -> None:
    token = "aws:eks/nodeGroup:NodeGroup"
    text, t = excerpt(token), TYPES[token]
    call = re.search(r"if d\.HasChanges\(([^)]*)\) \{\n\s*input := &eks\.UpdateNodegroupVersionInput\{", text)
    assert call
    assert [r["source"] for r in t["rollsNodes"]] == call[1].split(", ")
    for rule in t["rollsNodes"]:
        assert norm(key_name(rule["source"], text)) == norm(rule["path"].split(".")[0]), rule
    # Of the watched launch_template block, everything but version replaces instead.
    assert {r["path"] for r in t["replace"]} >= {"launchTemplate.id", "launchTemplate.name"}
    assert [t for t, v in TYPES.items() if "rollsNodes" in v] == [token]


@pytest.mark.parametrize("token", of_kind("pulumi-kubernetes", "pulumi-helm"))
def test_kubernetes_rules_are_the_force_new_literals(token: str) -> None:
    text, rules = excerpt(token), TYPES[token]["replace"]
    scope = indented_block(text, K8S_SCOPE[token])
    for rule in rules:
        assert all(part in text for part in rule["source"]), rule
        assert rule["source"][-1] in scope, rule
        literal = "".join(m for part in rule["source"] for m in re.findall(r'"(\.[\w.]+)"', part))
        assert literal == "." + rule["path"], rule
    literals = set(re.findall(r'"(\.[\w.]+)"', scope))
    assert {re.findall(r'"(\.[\w.]+)"', r["source"][-1])[-1] for r in rules} >= literals


def test_eks_component_inputs_reach_force_new_child_fields() -> None:
    text, t, child = excerpt("eks:index:Cluster"), TYPES["eks:index:Cluster"], TYPES["aws:eks/cluster:Cluster"]
    for key in ("replace", "customizeDiff"):
        child_paths = {r["path"] for r in child[key]}
        for rule in t[key]:
            assert f"args.{rule['path']}" in text, rule
            assert re.search(rf"\b{rule['source']}[:,]", text), rule
            assert rule["child"] in child_paths, rule
