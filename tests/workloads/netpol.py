"""NetworkPolicy semantics: whether one connection is allowed by the policies of a cluster.

Reproduces the Kubernetes API reference for ``networking.k8s.io/v1`` NetworkPolicy and the docs'
"Network Policies" page (kubernetes.io/docs/concepts/services-networking/network-policies/):

* a pod is isolated for egress (ingress) when some policy of its namespace selects it by
  ``podSelector`` and has ``Egress`` (``Ingress``) in ``policyTypes``; ``policyTypes`` left out means
  ``Ingress``, plus ``Egress`` when the policy has egress rules;
* an isolated pod may send (receive) only what some egress (ingress) rule of a policy selecting it
  allows; policies add up and never deny; a connection needs both the sender's egress and the
  receiver's ingress; replies are allowed;
* a rule with no ``to``/``from`` matches every peer, with no ``ports`` every port; a peer with
  ``podSelector`` alone selects pods of the policy's namespace, ``namespaceSelector`` alone every pod
  of the selected namespaces, both together the selected pods of the selected namespaces; a port
  entry's protocol defaults to TCP, it may name a container port, and ``endPort`` makes a range.

``ipBlock`` peers are matched against addresses outside the cluster only: the API reference says they
are meant for cluster-external IPs and that whether pod traffic matches them is implementation
defined, so a policy must select pods (DNS, peers) with selectors to count here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicy sees it: its namespace, labels and named container ports."""

    namespace: str
    labels: Mapping[str, str]
    name: str = ""
    named_ports: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Container port name -> (protocol, number)."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name or ','.join(f'{k}={v}' for k, v in self.labels.items())}"


@dataclass(frozen=True)
class Address:
    """An address outside the cluster."""

    ip: str

    def __str__(self) -> str:
        return self.ip


Endpoint = Pod | Address


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) against labels; ``{}`` selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[op]
        if not ok:
            return False
    return True


def policy_types(spec: Mapping[str, Any]) -> list[str]:
    """``policyTypes``, or its default: Ingress, and Egress when the policy has egress rules."""
    types: list[str] | None = spec.get("policyTypes")
    if types is not None:
        return types
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


@dataclass(frozen=True)
class Cluster:
    """Namespaces (name -> labels) and NetworkPolicy manifests of a cluster."""

    namespaces: Mapping[str, Mapping[str, str]]
    policies: Sequence[Mapping[str, Any]]

    def _peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if not isinstance(other, Address):
                return False
            ip = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            inside = ip in ipaddress.ip_network(block["cidr"])
            return inside and not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            ns_ok = selects(peer["namespaceSelector"], self.namespaces.get(other.namespace, {}))
        else:
            ns_ok = other.namespace == policy_ns
        return ns_ok and selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port_matches(entry: Mapping[str, Any], protocol: str, port: int, dst: Endpoint) -> bool:
        if entry.get("protocol", "TCP") != protocol:
            return False
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            return isinstance(dst, Pod) and dst.named_ports.get(wanted) == (protocol, port)
        low = int(wanted)
        return low <= port <= int(entry.get("endPort", low))

    def _isolating(self, pod: Pod, direction: str) -> list[Mapping[str, Any]]:
        return [
            p
            for p in self.policies
            if p["metadata"].get("namespace", "default") == pod.namespace
            and selects(p["spec"].get("podSelector"), pod.labels)
            and direction in policy_types(p["spec"])
        ]

    def _side(self, pod: Pod, direction: str, other: Endpoint, protocol: str, port: int, dst: Endpoint) -> str | None:
        policies = self._isolating(pod, direction)
        if not policies:
            return None
        rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for p in policies:
            ns = p["metadata"].get("namespace", "default")
            for rule in p["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                ports = rule.get("ports")
                if (not peers or any(self._peer_matches(peer, ns, other) for peer in peers)) and (
                    not ports or any(self._port_matches(e, protocol, port, dst) for e in ports)
                ):
                    return None
        names = ", ".join(p["metadata"]["name"] for p in policies)
        return f"{direction.lower()} of {pod} is isolated by NetworkPolicy {names} and no {rules_key} rule allows it"

    def denial(self, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> str | None:
        """Why a new connection from ``src`` to ``dst`` on ``protocol``/``port`` is dropped, or ``None``."""
        reasons = []
        if isinstance(src, Pod):
            reasons.append(self._side(src, "Egress", dst, protocol, port, dst))
        if isinstance(dst, Pod):
            reasons.append(self._side(dst, "Ingress", src, protocol, port, dst))
        found = [r for r in reasons if r]
        return "; ".join(found) if found else None
