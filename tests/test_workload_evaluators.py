"""The reproductions in tests/workloads, held against the examples of their upstream docs: the Pod
Security tutorials and standards, the LimitRange and ResourceQuota docs and tasks, the NetworkPolicy
docs, and the Cluster Autoscaler's AWS README (its node-template tags)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests import aws_data
from tests.workloads import admission, psa
from tests.workloads.autoscaler import template_node
from tests.workloads.netpol import Address, Cluster, Endpoint, Pod
from tests.workloads.resources import pod_total, quantity, show, with_api_defaults
from tests.workloads.scheduling import Node, nodes_needed, tolerates, unfit

Gi = Decimal(2**30)
Mi = Decimal(2**20)


def container(name: str = "c", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "nginx", **fields}


# ---- Pod Security ------------------------------------------------------------------------------

NGINX: dict[str, Any] = {"containers": [{"image": "nginx", "name": "nginx", "ports": [{"containerPort": 80}]}]}
"""k8s.io/examples/security/example-baseline-pod.yaml (tutorials "Apply Pod Security Standards at the
Namespace Level" and "... at the Cluster Level")."""


def test_the_tutorials_nginx_pod_passes_baseline_and_warns_at_restricted() -> None:
    assert psa.violations("baseline", "latest", {}, NGINX) == []
    # the tutorials' output: Warning: would violate PodSecurity "restricted:latest": ...
    assert ", ".join(psa.violations("restricted", "latest", {}, NGINX)) == (
        "allowPrivilegeEscalation != false "
        '(container "nginx" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" '
        'or "Localhost")'
    )
    assert psa.violations("privileged", "latest", {}, {**NGINX, "hostNetwork": True}) == []


HARDENED: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        container(securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}),
    ],
}


def harden(**changes: Any) -> dict[str, Any]:
    """HARDENED with pod-level ``changes`` (``sc_*`` keys go into the container's securityContext)."""
    pod_context = {**HARDENED["securityContext"], **changes.pop("securityContext", {})}
    spec = {"securityContext": pod_context} | {k: v for k, v in changes.items() if not k.startswith("sc_")}
    sc = dict(HARDENED["containers"][0]["securityContext"])
    sc.update({k[3:]: v for k, v in changes.items() if k.startswith("sc_")})
    spec["containers"] = [container(securityContext=sc)]
    return spec


@pytest.mark.parametrize(
    ("changes", "baseline", "restricted"),
    [
        # The Pod Security Standards page, "Baseline" and "Restricted" tables.
        ({}, None, None),
        ({"hostNetwork": True}, "host namespaces (hostNetwork=true)", "host namespaces (hostNetwork=true)"),
        ({"sc_privileged": True}, "privileged", "privileged"),
        (
            {"sc_capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}},
            "non-default capabilities",
            "unrestricted capabilities",
        ),
        ({"sc_capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, None, None),
        ({"sc_capabilities": {"add": ["CHOWN"]}}, None, "unrestricted capabilities"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPath volumes", "restricted volume types"),
        ({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}, None, "restricted volume types"),
        ({"volumes": [{"name": "p", "persistentVolumeClaim": {"claimName": "x"}}]}, None, None),
        ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "seccompProfile", "seccompProfile"),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
            "forbidden sysctls",
            "forbidden sysctls",
        ),
        ({"sc_procMount": "Unmasked"}, "procMount", "procMount"),
        ({"sc_seLinuxOptions": {"type": "spc_t"}}, "seLinuxOptions", "seLinuxOptions"),
        ({"sc_runAsUser": 0}, None, "runAsUser=0"),
        ({"sc_allowPrivilegeEscalation": True}, None, "allowPrivilegeEscalation != false"),
        ({"sc_runAsNonRoot": False}, None, "runAsNonRoot != true"),
    ],
)
def test_the_standards_tables(changes: dict[str, Any], baseline: str | None, restricted: str | None) -> None:
    spec = harden(**changes)
    for level, expected in (("baseline", baseline), ("restricted", restricted)):
        found = psa.violations(level, "v1.35", {}, spec)
        if expected is None:
            assert found == [], (level, found)
        else:
            assert len(found) == 1 and found[0].startswith(expected), (level, found)


def test_safe_sysctls_probe_hosts_and_app_armor() -> None:
    spec = harden(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]})
    assert psa.violations("restricted", "v1.35", {}, spec) == []  # allowed since 1.32
    probe = harden()
    probe["containers"][0]["livenessProbe"] = {"httpGet": {"host": "10.0.0.1", "port": 80}}
    assert psa.violations("baseline", "v1.35", {}, probe) == [
        'probe or lifecycle host (container "c" uses probe or lifecycle host "10.0.0.1")'
    ]
    unconfined = {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}
    assert psa.violations("baseline", "v1.35", unconfined, harden()) == [
        'forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c="unconfined")'
    ]
    with pytest.raises(ValueError, match=r"v1\.20"):
        psa.violations("restricted", "v1.20", {}, probe)


# ---- LimitRange, validation, quota -------------------------------------------------------------


def limit_range(*items: dict[str, Any], name: str = "lr") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"limits": list(items)}}


def admit(ranges: list[dict[str, Any]], resources: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A one-container pod through API defaulting, LimitRanger and validation: (its resources, errors)."""
    adm = admission.mutate(ranges, with_api_defaults({"containers": [container(resources=resources)]}))
    errors = admission.validate_resources(adm) + admission.validate_limits(ranges, adm.spec)
    return adm.spec["containers"][0]["resources"], errors


def test_the_limit_range_docs_conflict_example() -> None:
    """Concepts, "Limit Ranges": a default limit below the request makes the pod invalid."""
    lr = limit_range(
        {
            "type": "Container",
            "default": {"cpu": "500m"},
            "defaultRequest": {"cpu": "500m"},
            "max": {"cpu": "1"},
            "min": {"cpu": "100m"},
        },
        name="cpu-resource-constraint",
    )
    _, errors = admit([lr], {"requests": {"cpu": "700m"}})
    assert errors == [
        'container "c": cpu request 700m must be less than or equal to cpu limit 500m (the LimitRange\'s default limit)'
    ]
    assert admit([lr], {"requests": {"cpu": "700m"}, "limits": {"cpu": "700m"}})[1] == []


def test_the_default_memory_task() -> None:
    """Tasks, "Configure Default Memory Requests and Limits for a Namespace" (mem-limit-range)."""
    lr = limit_range({"type": "Container", "default": {"memory": "512Mi"}, "defaultRequest": {"memory": "256Mi"}})
    assert admit([lr], {}) == ({"limits": {"memory": "512Mi"}, "requests": {"memory": "256Mi"}}, [])
    assert admit([lr], {"limits": {"memory": "1Gi"}}) == (
        {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}},
        [],
    )
    assert admit([lr], {"requests": {"memory": "128Mi"}}) == (
        {"limits": {"memory": "512Mi"}, "requests": {"memory": "128Mi"}},
        [],
    )
    assert admit([lr], {"requests": {"memory": "1Gi"}})[1] == [
        'container "c": memory request 1Gi must be less than or equal to memory limit 512Mi '
        "(the LimitRange's default limit)"
    ]


def test_the_min_max_memory_task() -> None:
    """Tasks, "Configure Minimum and Maximum Memory Constraints for a Namespace" (mem-min-max-demo-lr)."""
    lr = limit_range(
        {"type": "Container", "max": {"memory": "1Gi"}, "min": {"memory": "500Mi"}}, name="mem-min-max-demo-lr"
    )
    assert admit([lr], {"requests": {"memory": "800Mi"}, "limits": {"memory": "1.5Gi"}})[1] == [
        'LimitRange mem-min-max-demo-lr, container "c": Maximum memory usage per Container is 1Gi, but limit is 1536Mi.'
    ]
    assert admit([lr], {"requests": {"memory": "100Mi"}, "limits": {"memory": "800Mi"}})[1] == [
        'LimitRange mem-min-max-demo-lr, container "c": Minimum memory usage per Container is 500Mi, '
        "but request is 100Mi."
    ]
    # "the default limit is the max, the default request the default limit": 1Gi and 1Gi
    assert admit([lr], {}) == ({"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}}, [])


def test_extended_resources_and_huge_pages() -> None:
    """Tasks, "Schedule GPUs" and "Manage HugePages": GPUs in limits (the request follows), whole,
    never overcommitted; huge pages come with cpu or memory."""
    assert admit([], {"limits": {"nvidia.com/gpu": "2"}}) == (
        {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}},
        [],
    )
    assert admit([], {"requests": {"nvidia.com/gpu": "1"}})[1] == [
        'container "c": nvidia.com/gpu: Limit must be set for non overcommitable resources'
    ]
    assert admit([], {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}})[1] == [
        'container "c": nvidia.com/gpu request 1 must be equal to nvidia.com/gpu limit 2'
    ]
    assert admit([], {"limits": {"nvidia.com/gpu": "0.5"}})[1] == [
        'container "c": limits nvidia.com/gpu 0.5 must be an integer',
        'container "c": requests nvidia.com/gpu 0.5 must be an integer',
    ]
    assert admit([], {"limits": {"hugepages-2Mi": "100Mi"}})[1] == ['container "c": HugePages require cpu or memory']
    assert admit([], {"limits": {"hugepages-2Mi": "100Mi", "memory": "100Mi"}})[1] == []


def test_a_pod_limit_counts_every_container() -> None:
    lr = limit_range({"type": "Pod", "max": {"cpu": "2"}})
    two = {"containers": [container(n, resources={"limits": {"cpu": "1500m"}}) for n in ("a", "b")]}
    adm = admission.mutate([lr], with_api_defaults(two))
    assert admission.validate_limits([lr], adm.spec) == [
        "LimitRange lr: Maximum cpu usage per Pod is 2, but limit is 3."
    ]


def test_the_storage_limit_task() -> None:
    """Tasks, "Limit Storage Consumption" (storagelimits: PVCs between 1Gi and 2Gi)."""
    lr = limit_range(
        {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}, name="storagelimits"
    )
    claim = {"resources": {"requests": {"storage": "500Mi"}}}
    assert admission.validate_claim([lr], claim) == [
        "LimitRange storagelimits: Minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi."
    ]
    assert admission.validate_claim([lr], {"resources": {"requests": {"storage": "5Gi"}}}) == [
        "LimitRange storagelimits: Maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi."
    ]


def test_the_extended_resource_quota_example() -> None:
    """Concepts, "Resource Quotas", "Resource quota for extended resources": ``requests.nvidia.com/gpu: 4``."""
    quota = {"metadata": {"name": "gpu"}, "spec": {"hard": {"requests.nvidia.com/gpu": "4", "pods": "10"}}}
    gpu_pod = {
        "containers": [container(resources={"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}})]
    }
    assert admission.within_quotas([quota], [gpu_pod, gpu_pod]) == []
    assert admission.within_quotas([quota], [gpu_pod] * 3) == [
        "ResourceQuota gpu: exceeded quota: the workload's 3 pod(s) need requests.nvidia.com/gpu=6 in all, hard limit "
        "requests.nvidia.com/gpu=4"
    ]
    scoped = {"metadata": {"name": "s"}, "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}}
    assert "not reproduced" in admission.within_quotas([scoped], [gpu_pod])[0]


def test_a_pod_requests_the_larger_of_its_containers_and_its_init_containers() -> None:
    """Concepts, "Init Containers", "Resource sharing within containers" (and sidecars, which add up)."""
    spec = {
        "initContainers": [container("init", resources={"requests": {"cpu": "2"}})],
        "containers": [container(n, resources={"requests": {"cpu": "500m", "memory": "1Gi"}}) for n in ("a", "b")],
    }
    assert pod_total(spec) == {"cpu": Decimal(2), "memory": 2 * Gi}
    sidecar = container("proxy", restartPolicy="Always", resources={"requests": {"cpu": "1500m"}})
    assert pod_total({**spec, "initContainers": [sidecar, *spec["initContainers"]]})["cpu"] == Decimal("3.5")
    assert [
        show("cpu", quantity("3920m")),
        show("memory", quantity("14162Mi")),
        show("nvidia.com/gpu", Decimal(8)),
    ] == [
        "3920m",
        "14162Mi",
        "8",
    ]


# ---- NetworkPolicy -----------------------------------------------------------------------------

TEST_NETWORK_POLICY: dict[str, Any] = {
    "metadata": {"name": "test-network-policy", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"role": "db"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        ],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}],
    },
}
"""The docs' example NetworkPolicy ("The NetworkPolicy resource")."""
NAMESPACES = {
    "default": {"kubernetes.io/metadata.name": "default"},
    "mine": {"kubernetes.io/metadata.name": "mine", "project": "myproject"},
    "other": {"kubernetes.io/metadata.name": "other"},
}
DB = Pod("default", {"role": "db"}, "db")


def test_the_docs_example_policy() -> None:
    """Its explanation: "isolates role=db pods ... allows connections to TCP port 6379 of role=db pods from: any pod in
    the default namespace with role=frontend; any pod in a namespace labeled project=myproject; IP
    addresses 172.17.0.0-172.17.0.255 and 172.17.2.0-172.17.255.255 ... allows connections from any
    pod in the default namespace with role=db to CIDR 10.0.0.0/24 on TCP port 5978"."""
    cluster = Cluster(NAMESPACES, [TEST_NETWORK_POLICY])
    frontend = Pod("default", {"role": "frontend"}, "frontend")
    allowed: list[tuple[Endpoint, Endpoint, int]] = [
        (frontend, DB, 6379),
        (Pod("mine", {"any": "pod"}), DB, 6379),
        (Address("172.17.0.9"), DB, 6379),
        (Address("172.17.2.9"), DB, 6379),
        (DB, Address("10.0.0.7"), 5978),
    ]
    denied: list[tuple[Endpoint, Endpoint, int]] = [
        (frontend, DB, 6380),
        (Pod("other", {"role": "frontend"}), DB, 6379),
        (Address("172.17.1.9"), DB, 6379),
        (DB, Address("10.0.1.7"), 5978),
        (DB, Address("10.0.0.7"), 80),
        (DB, frontend, 5978),  # ipBlock is for addresses outside the cluster
    ]
    assert [cluster.denial(s, d, "TCP", p) for s, d, p in allowed] == [None] * len(allowed)
    assert all(cluster.denial(s, d, "TCP", p) for s, d, p in denied)
    assert cluster.denial(frontend, Pod("default", {"role": "cache"}), "TCP", 1) is None  # not selected: not isolated


def policy(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_the_docs_default_policies() -> None:
    """ "Default policies": deny or allow all ingress, all egress, all traffic."""
    a, b = Pod("default", {"app": "a"}, "a"), Pod("default", {"app": "b"}, "b")
    deny_ingress = policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
    allow_ingress = policy("allow-all-ingress", {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]})
    deny_egress = policy("default-deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
    allow_egress = policy("allow-all-egress", {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]})
    deny_all = policy("default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert Cluster(NAMESPACES, [deny_ingress]).denial(a, b, "TCP", 80) == (
        "ingress of default/b is isolated by NetworkPolicy default-deny-ingress and no ingress rule allows it"
    )
    assert Cluster(NAMESPACES, [deny_ingress]).denial(a, Address("8.8.8.8"), "UDP", 53) is None
    assert Cluster(NAMESPACES, [deny_ingress, allow_ingress]).denial(a, b, "TCP", 80) is None
    assert Cluster(NAMESPACES, [deny_egress]).denial(a, Address("8.8.8.8"), "UDP", 53)
    assert Cluster(NAMESPACES, [deny_egress, allow_egress]).denial(a, Address("8.8.8.8"), "UDP", 53) is None
    both = Cluster(NAMESPACES, [deny_all]).denial(a, b, "TCP", 80)
    assert both is not None and "egress of default/a" in both and "ingress of default/b" in both


def test_policy_types_default_from_the_rules() -> None:
    """A policy without ``policyTypes`` affects ingress always, egress when it has egress rules."""
    only_egress_rules = policy("p", {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]})
    a, b = Pod("default", {"app": "a"}, "a"), Pod("default", {"app": "b"}, "b")
    cluster = Cluster(NAMESPACES, [only_egress_rules])
    assert cluster.denial(a, Address("1.1.1.1"), "TCP", 443)  # egress isolated
    assert cluster.denial(a, b, "TCP", 80)  # ingress isolated too, with no ingress rule


def test_namespace_and_pod_selectors_in_one_peer_or_two() -> None:
    """ "Behavior of to and from selectors": one element with both selectors is an AND, two are an OR."""
    target = Pod("default", {"app": "db"}, "db")
    and_peer = [
        {"namespaceSelector": {"matchLabels": {"user": "alice"}}, "podSelector": {"matchLabels": {"role": "client"}}}
    ]
    or_peers = [
        {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
        {"podSelector": {"matchLabels": {"role": "client"}}},
    ]
    namespaces = {**NAMESPACES, "alice": {"user": "alice"}}
    alice_other = Pod("alice", {"role": "other"})
    default_client = Pod("default", {"role": "client"})
    for peers, expected in ((and_peer, (False, False)), (or_peers, (True, True))):
        cluster = Cluster(namespaces, [policy("p", {"podSelector": {}, "ingress": [{"from": peers}]})])
        assert (
            cluster.denial(alice_other, target, "TCP", 1) is None,
            cluster.denial(default_client, target, "TCP", 1) is None,
        ) == expected
    assert (
        Cluster(namespaces, [policy("p", {"podSelector": {}, "ingress": [{"from": and_peer}]})]).denial(
            Pod("alice", {"role": "client"}), target, "TCP", 1
        )
        is None
    )


def test_port_ranges_named_ports_and_namespaces_by_name() -> None:
    """ "Targeting a range of ports" (32000-32768), named ports, and "Targeting a Namespace by its name"."""
    src = Pod("default", {"app": "a"}, "a")
    ranged = policy(
        "multi-port-egress",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}],
                }
            ],
        },
    )
    cluster = Cluster(NAMESPACES, [ranged])
    assert [cluster.denial(src, Address("10.0.0.1"), "TCP", p) is None for p in (31999, 32000, 32768, 32769)] == [
        False,
        True,
        True,
        False,
    ]
    web = Pod("other", {"app": "web"}, "web", {"http": ("TCP", 8080)})
    named = policy(
        "by-name",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}],
                    "ports": [{"port": "http"}],
                }
            ],
        },
        namespace="other",
    )
    cluster = Cluster(NAMESPACES, [named])
    assert cluster.denial(src, web, "TCP", 8080) is None
    assert cluster.denial(src, web, "TCP", 80) is not None
    assert cluster.denial(Pod("mine", {"app": "a"}), web, "TCP", 8080) is not None


def test_match_expressions() -> None:
    selector = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    }
    cluster = Cluster(NAMESPACES, [policy("p", {"podSelector": selector, "policyTypes": ["Ingress"]})])
    isolated = [
        cluster.denial(Address("1.1.1.1"), Pod("default", labels), "TCP", 1) is not None
        for labels in ({"tier": "a"}, {"tier": "c"}, {"tier": "b", "legacy": "1"})
    ]
    assert isolated == [True, False, False]


# ---- scheduling and the Cluster Autoscaler's template ------------------------------------------


def test_tolerations_match_taints_as_the_api_says() -> None:
    taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, taint)
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Equal", "value": "false"}, taint)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, taint)
    node = Node({}, [{"key": "spot", "value": "", "effect": "PreferNoSchedule"}], {"pods": Decimal(1)})
    assert unfit({}, {}, node) == []  # PreferNoSchedule is a preference, not a filter


def test_the_readme_template_tags() -> None:
    """The AWS README's examples: ``node-template/label/foo: bar``, ``node-template/taint/dedicated:
    true:NoSchedule``, ``node-template/resources/ephemeral-storage: 100G``; capacity from the instance
    type otherwise, with pods 110 and allocatable = capacity."""
    g5 = aws_data.catalogue()["g5.xlarge"]
    prefix = "k8s.io/cluster-autoscaler/node-template/"
    tags = {
        prefix + "label/foo": "bar",
        prefix + "taint/dedicated": "true:NoSchedule",
        prefix + "resources/ephemeral-storage": "100G",
        prefix + "resources/vpc.amazonaws.com/efa": "not a quantity",
        prefix + "taint/malformed": "true",
        "eks:nodegroup-name": "gpu",
    }
    node = template_node(g5, tags, "us-west-2", "us-west-2a")
    vcpus, mib, _, gpus = aws_data.shape("g5.xlarge")
    assert node.allocatable == {
        "pods": Decimal(110),
        "cpu": Decimal(vcpus),
        "memory": mib * Mi,
        "nvidia.com/gpu": Decimal(gpus),
        "ephemeral-storage": Decimal(100 * 10**9),
    }
    assert node.taints == [{"key": "dedicated", "value": "true", "effect": "NoSchedule"}]
    assert node.labels["foo"] == "bar" and node.labels["nodegroup-name"] == "gpu"
    assert (
        node.labels["kubernetes.io/arch"] == "amd64" and node.labels["node.kubernetes.io/instance-type"] == "g5.xlarge"
    )


def test_a_pod_asking_for_ephemeral_storage_never_fits_an_untagged_template() -> None:
    """kubernetes/autoscaler#1869: no ``ephemeral-storage`` in the template unless a tag gives it; a
    resource tag overrides even cpu and memory."""
    g5 = aws_data.catalogue()["g5.xlarge"]
    node = template_node(g5, {}, "us-west-2", "us-west-2a")
    pod = {"tolerations": [{"operator": "Exists"}]}
    assert unfit(pod, {"ephemeral-storage": Gi, "nvidia.com/gpu": Decimal(1)}, node) == [
        "Insufficient ephemeral-storage: the pod requests 1Gi, the node has 0"
    ]
    tagged = template_node(
        g5, {"k8s.io/cluster-autoscaler/node-template/resources/cpu": "3920m"}, "us-west-2", "us-west-2a"
    )
    assert unfit(pod, {"cpu": Decimal(4)}, tagged) == ["Insufficient cpu: the pod requests 4, the node has 3920m"]


def test_pods_fill_nodes_first_fit() -> None:
    node = Node({}, [], {"pods": Decimal(110), "cpu": Decimal(4), "nvidia.com/gpu": Decimal(8)})
    whole = {"cpu": Decimal(1), "nvidia.com/gpu": Decimal(8)}
    assert nodes_needed([whole, whole], node) == 2
    assert nodes_needed([{"cpu": Decimal(1)}] * 4, node) == 1
    assert nodes_needed([{"cpu": Decimal(1)}] * 5, node) == 2
