"""Pod Security admission: the baseline and restricted checks of the Pod Security Standards, v1.35.

Each check reproduces one file of kubernetes/pod-security-admission ``policy/`` (in the main repo:
``staging/src/k8s.io/pod-security-admission/policy/``), named by its check ID, and returns upstream's
``ForbiddenReason (ForbiddenDetail)`` or ``None``. As ``registry.go`` ``EvaluatePod`` does, the
baseline checks run first, then either the three "overlapping" baseline checks (at baseline) or the
restricted checks that supersede them (at restricted: ``capabilities_restricted`` for
``capabilities_baseline``, ``seccompProfile_restricted`` for ``seccompProfile_baseline``,
``restrictedVolumes`` for ``hostPathVolumes``), each group in the order the checks register (their
files' names, which sort as their IDs do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .resources import all_containers

Check = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]
"""(pod metadata, pod spec) -> ``"reason (detail)"`` when the pod violates the check."""

SUPPORTED_VERSIONS = ("v1.34", "v1.35", "latest")
"""Versions whose checks this module reproduces (``hostProbesAndHostLifecycle`` is new in 1.34)."""


def _quote(items: Iterable[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _plural(word: str, count: int, plural: str = "") -> str:
    return word if count == 1 else plural or word + "s"


def _containers(names: list[str]) -> str:
    return f"{_plural('container', len(names))} {_quote(names)}"


def _context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _pod_context(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec.get("securityContext") or {}


# ---- baseline ------------------------------------------------------------------------------


def app_armor_profile(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_appArmorProfile.go: no ``Unconfined`` AppArmor profile, by field or annotation."""
    bad = [
        f'{key}="{value}"'
        for key, value in sorted((meta.get("annotations") or {}).items())
        if key.startswith("container.apparmor.security.beta.kubernetes.io/")
        and value not in ("", "runtime/default")
        and not value.startswith("localhost/")
    ]
    setters = [("pod", _pod_context(spec))] + [(f'container "{c["name"]}"', _context(c)) for c in all_containers(spec)]
    bad += [
        f'{who} must not set appArmorProfile.type to "Unconfined"'
        for who, ctx in setters
        if (ctx.get("appArmorProfile") or {}).get("type") == "Unconfined"
    ]
    if bad:
        return f"forbidden AppArmor profile{'s' if len(bad) > 1 else ''} ({', '.join(bad)})"
    return None


BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE"}
    | {"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)


def capabilities_baseline(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_capabilities_baseline.go: capabilities may be added only from the container runtime's default set."""
    bad, caps = [], set()
    for c in all_containers(spec):
        added = set((_context(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            bad.append(c["name"])
            caps |= added
    if bad:
        detail = f"{_containers(bad)} must not include {_quote(sorted(caps))} in securityContext.capabilities.add"
        return f"non-default capabilities ({detail})"
    return None


def host_namespaces(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_hostNamespaces.go: no hostNetwork, hostPID or hostIPC."""
    bad = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    return f"host namespaces ({', '.join(bad)})" if bad else None


def host_path_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_hostPathVolumes.go: no hostPath volumes."""
    bad = [v["name"] for v in spec.get("volumes", []) if "hostPath" in v]
    if bad:
        return f"hostPath volumes ({_plural('volume', len(bad))} {_quote(bad)})"
    return None


def host_ports(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_hostPorts.go: no container port bound to a host port."""
    bad, ports = [], []
    for c in all_containers(spec):
        used = [str(p["hostPort"]) for p in c.get("ports", []) if p.get("hostPort")]
        if used:
            bad.append(c["name"])
            ports += used
    if bad:
        uses = _plural("uses", len(bad), "use")
        return f"hostPort ({_containers(bad)} {uses} {_plural('hostPort', len(ports))} {', '.join(ports)})"
    return None


def host_probes_and_host_lifecycle(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_hostProbesAndhostLifecycle.go (1.34+): probes and lifecycle handlers may not name a host."""
    bad, hosts = [], set()
    for c in all_containers(spec):
        handlers = [c.get(p) or {} for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) or {} for h in ("postStart", "preStop")]
        found = {
            host for h in handlers for kind in ("httpGet", "tcpSocket") if (host := (h.get(kind) or {}).get("host"))
        }
        if found:
            bad.append(c["name"])
            hosts |= found
    if bad:
        uses, what = _plural("uses", len(bad), "use"), _plural("probe or lifecycle host", len(hosts))
        return f"probe or lifecycle host ({_containers(bad)} {uses} {what} {_quote(sorted(hosts))})"
    return None


def privileged(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_privileged.go: no privileged container."""
    bad = [c["name"] for c in all_containers(spec) if _context(c).get("privileged")]
    return f"privileged ({_containers(bad)} must not set securityContext.privileged=true)" if bad else None


def proc_mount(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_procMount.go: ``procMount`` unset or ``Default``."""
    bad = [c["name"] for c in all_containers(spec) if _context(c).get("procMount", "Default") != "Default"]
    return f'procMount ({_containers(bad)} must not set securityContext.procMount to "Unmasked")' if bad else None


SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})


def se_linux_options(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_seLinuxOptions.go: SELinux type from the container set only, no user, no role."""

    def bad(ctx: Mapping[str, Any]) -> bool:
        opts = ctx.get("seLinuxOptions") or {}
        return opts.get("type", "") not in SELINUX_TYPES or bool(opts.get("user")) or bool(opts.get("role"))

    setters = ["pod"] if bad(_pod_context(spec)) else []
    containers = [c["name"] for c in all_containers(spec) if bad(_context(c))]
    if containers:
        setters.append(_containers(containers))
    return f"seLinuxOptions ({' and '.join(setters)} set forbidden securityContext.seLinuxOptions)" if setters else None


def seccomp_profile_baseline(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_seccompProfile_baseline.go: no ``Unconfined`` seccomp profile."""

    def unconfined(ctx: Mapping[str, Any]) -> bool:
        return (ctx.get("seccompProfile") or {}).get("type") == "Unconfined"

    setters = ["pod"] if unconfined(_pod_context(spec)) else []
    containers = [c["name"] for c in all_containers(spec) if unconfined(_context(c))]
    if containers:
        setters.append(_containers(containers))
    if setters:
        return (
            f'seccompProfile ({" and ".join(setters)} must not set securityContext.seccompProfile.type to "Unconfined")'
        )
    return None


SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",  # 1.27
        "net.ipv4.tcp_keepalive_time",  # 1.29
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",  # 1.32
        "net.ipv4.tcp_wmem",
    }
)
"""check_sysctls.go ``sysctlsAllowedV1Dot32``, the set in force at 1.35."""


def sysctls(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_sysctls.go: only namespaced, isolated sysctls."""
    bad = [s["name"] for s in _pod_context(spec).get("sysctls", []) if s["name"] not in SAFE_SYSCTLS]
    return f"forbidden sysctls ({', '.join(bad)})" if bad else None


def windows_host_process(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_windowsHostProcess.go: no Windows HostProcess containers."""

    def host(ctx: Mapping[str, Any]) -> bool:
        return bool((ctx.get("windowsOptions") or {}).get("hostProcess"))

    setters = ["pod"] if host(_pod_context(spec)) else []
    containers = [c["name"] for c in all_containers(spec) if host(_context(c))]
    if containers:
        setters.append(_containers(containers))
    if setters:
        return f"hostProcess ({' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true)"
    return None


# ---- restricted ----------------------------------------------------------------------------


def allow_privilege_escalation(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_allowPrivilegeEscalation.go: every container sets ``allowPrivilegeEscalation: false``."""
    bad = [c["name"] for c in all_containers(spec) if _context(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        detail = f"{_containers(bad)} must set securityContext.allowPrivilegeEscalation=false"
        return f"allowPrivilegeEscalation != false ({detail})"
    return None


def capabilities_restricted(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_capabilities_restricted.go: every container drops ALL and adds at most NET_BIND_SERVICE."""
    missing, adding, caps = [], [], set()
    for c in all_containers(spec):
        capabilities = _context(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            missing.append(c["name"])
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            adding.append(c["name"])
            caps |= added
    details = []
    if missing:
        details.append(f'{_containers(missing)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(
            f"{_containers(adding)} must not include {_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return f"unrestricted capabilities ({'; '.join(details)})" if details else None


RESTRICTED_VOLUME_SOURCES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)


def restricted_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_restrictedVolumes.go: only the volume types listed above."""
    bad = [v["name"] for v in spec.get("volumes", []) if not set(v) & RESTRICTED_VOLUME_SOURCES]
    if bad:
        return f"restricted volume types ({_plural('volume', len(bad))} {_quote(bad)} use restricted volume types)"
    return None


def run_as_non_root(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_runAsNonRoot.go: ``runAsNonRoot: true`` on the pod or on every container, false nowhere."""
    pod = _pod_context(spec).get("runAsNonRoot")
    setters = ["pod"] if pod is False else []
    explicit = [c["name"] for c in all_containers(spec) if _context(c).get("runAsNonRoot") is False]
    implicit = [c["name"] for c in all_containers(spec) if _context(c).get("runAsNonRoot") is None and pod is not True]
    if explicit:
        setters.append(_containers(explicit))
    if setters:
        return f"runAsNonRoot != true ({' and '.join(setters)} must not set securityContext.runAsNonRoot=false)"
    if implicit:
        return f"runAsNonRoot != true (pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true)"
    return None


def run_as_user(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_runAsUser.go: nothing sets ``runAsUser: 0``."""
    setters = ["pod"] if _pod_context(spec).get("runAsUser") == 0 else []
    containers = [c["name"] for c in all_containers(spec) if _context(c).get("runAsUser") == 0]
    if containers:
        setters.append(_containers(containers))
    return f"runAsUser=0 ({' and '.join(setters)} must not set runAsUser=0)" if setters else None


def seccomp_profile_restricted(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """check_seccompProfile_restricted.go: ``RuntimeDefault`` or ``Localhost`` on the pod or every container."""

    def profile(ctx: Mapping[str, Any]) -> str | None:
        kind: str | None = (ctx.get("seccompProfile") or {}).get("type")
        return kind

    valid = ("RuntimeDefault", "Localhost")
    pod = profile(_pod_context(spec))
    setters, values, explicit, implicit = [], set(), [], []
    if pod is not None and pod not in valid:
        setters.append("pod")
        values.add(pod)
    for c in all_containers(spec):
        kind = profile(_context(c))
        if kind is None and pod not in valid:
            implicit.append(c["name"])
        elif kind is not None and kind not in valid:
            explicit.append(c["name"])
            values.add(kind)
    if explicit:
        setters.append(_containers(explicit))
    if setters:
        detail = f"must not set securityContext.seccompProfile.type to {_quote(sorted(values))}"
        return f"seccompProfile ({' and '.join(setters)} {detail})"
    if implicit:
        detail = 'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        return f"seccompProfile (pod or {_containers(implicit)} {detail})"
    return None


BASELINE: dict[str, Check] = {
    "appArmorProfile": app_armor_profile,
    "capabilities_baseline": capabilities_baseline,
    "hostNamespaces": host_namespaces,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "hostProbesAndHostLifecycle": host_probes_and_host_lifecycle,
    "privileged": privileged,
    "procMount": proc_mount,
    "seLinuxOptions": se_linux_options,
    "seccompProfile_baseline": seccomp_profile_baseline,
    "sysctls": sysctls,
    "windowsHostProcess": windows_host_process,
}
RESTRICTED: dict[str, Check] = {
    "allowPrivilegeEscalation": allow_privilege_escalation,
    "capabilities_restricted": capabilities_restricted,
    "restrictedVolumes": restricted_volumes,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile_restricted": seccomp_profile_restricted,
}
OVERLAPPING = frozenset({"capabilities_baseline", "seccompProfile_baseline", "hostPathVolumes"})
"""Baseline checks with ``Overlap: true``: run at baseline only, a restricted check covers each."""


def violations(level: str, version: str, meta: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """What Pod Security at ``level`` (``privileged``, ``baseline``, ``restricted``) and ``version``
    (``v1.35``, ``latest``) refuses in a pod, in upstream's order; empty when it is admitted."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"Pod Security version {version!r}: this reproduction knows {SUPPORTED_VERSIONS}")
    if level == "privileged":
        return []
    if level not in ("baseline", "restricted"):
        raise ValueError(f"unknown Pod Security level {level!r}")
    checks = [BASELINE[c] for c in sorted(BASELINE) if c not in OVERLAPPING]
    if level == "baseline":
        checks += [BASELINE[c] for c in sorted(OVERLAPPING)]
    else:
        checks += [RESTRICTED[c] for c in sorted(RESTRICTED)]
    found = (check(meta, spec) for check in checks)
    return [v for v in found if v is not None]
