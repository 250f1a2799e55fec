"""A custom seccomp profile may only tighten the shipped one: every loosening is refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wflo_prefect import WfloError
from wflo_prefect.sandbox import SandboxConfig, SandboxConfigError
from wflo_prefect.sandbox.seccomp import default_seccomp_profile

Profile = dict[str, Any]


def shipped() -> Profile:
    """A fresh copy of the packaged profile."""
    return dict(json.loads(default_seccomp_profile()))


def edited(change: Callable[[Profile], object]) -> Profile:
    """The shipped profile with ``change`` applied."""
    profile = copy.deepcopy(shipped())
    change(profile)
    return profile


def allow(*names: str, **extra: Any) -> Callable[[Profile], object]:
    """An edit appending one rule that allows ``names``."""
    return lambda p: p["syscalls"].append(
        {"names": list(names), "action": "SCMP_ACT_ALLOW", **extra}
    )


def write(tmp_path: Path, profile: object) -> Path:
    """``profile`` as a JSON file."""
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    return path


LOOSENINGS: list[tuple[str, object, str]] = [
    ("default log", {"defaultAction": "SCMP_ACT_LOG"}, "SCMP_ACT_LOG"),
    ("default allow", {"defaultAction": "SCMP_ACT_ALLOW"}, "SCMP_ACT_ALLOW"),
    ("default notify", edited(lambda p: p.update(defaultAction="SCMP_ACT_NOTIFY")), "NOTIFY"),
    ("default trace", edited(lambda p: p.update(defaultAction="SCMP_ACT_TRACE")), "TRACE"),
    ("default missing", {"syscalls": []}, "defaultAction"),
    (
        "deny by default, allow everything",
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "unshare", "mount", "ptrace"], "action": "SCMP_ACT_ALLOW"}
            ],
        },
        "`unshare`",
    ),
    ("allow io_uring", edited(allow("io_uring_setup")), "`io_uring_setup`"),
    ("log add_key", edited(allow("add_key", action="SCMP_ACT_LOG")), "`add_key`"),
    (
        "legacy name",
        edited(lambda p: p["syscalls"].append({"name": "ptrace", "action": "SCMP_ACT_ALLOW"})),
        "`ptrace`",
    ),
    (
        "notify keyctl",
        edited(lambda p: p["syscalls"].append({"names": ["keyctl"], "action": "SCMP_ACT_NOTIFY"})),
        "`keyctl`",
    ),
    ("trace bpf", edited(allow("bpf", action="SCMP_ACT_TRACE")), "`bpf`"),
    ("unknown action", edited(allow("read", action="SCMP_ACT_MAYBE")), "SCMP_ACT_MAYBE"),
    ("clone without its flag mask", edited(allow("clone")), "`clone`"),
    (
        "clone mask ORed with a second condition",
        edited(
            allow(
                "clone",
                args=[
                    {"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                ],
            )
        ),
        "two conditions",
    ),
    (
        "personality with another value",
        edited(allow("personality", args=[{"index": 0, "value": 4, "op": "SCMP_CMP_EQ"}])),
        "`personality`",
    ),
    ("socket without the AF_VSOCK guard", edited(allow("socket")), "`socket`"),
    (
        "arch_prctl on every architecture",
        edited(allow("arch_prctl")),
        "`arch_prctl`",
    ),
    (
        "clone3 allowed instead of ENOSYS",
        edited(allow("clone3")),
        "`clone3`",
    ),
    ("extra architecture", edited(lambda p: p.update(architectures=["SCMP_ARCH_S390X"])), "S390X"),
    ("listener", edited(lambda p: p.update(listenerPath="/run/x.sock")), "listenerPath"),
    ("filter flags", edited(lambda p: p.update(flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])), "flags"),
    ("errno 0", edited(lambda p: p.update(defaultErrnoRet=0)), "defaultErrnoRet"),
    ("not an object", ["SCMP_ACT_ALLOW"], "not a JSON object"),
]


@pytest.mark.parametrize(
    ("profile", "named"), [(p, n) for _, p, n in LOOSENINGS], ids=[i for i, _, _ in LOOSENINGS]
)
def test_seccomp_profile_that_loosens_is_refused(
    tmp_path: Path, profile: object, named: str
) -> None:
    """Any default or rule that lets through what the shipped profile denies is refused, named."""
    with pytest.raises(SandboxConfigError, match="would loosen the sandbox") as caught:
        SandboxConfig(seccomp_profile=write(tmp_path, profile))
    assert named in str(caught.value)
    assert isinstance(caught.value, WfloError)


TIGHTENINGS: list[tuple[str, Profile]] = [
    ("the shipped profile itself", shipped()),
    ("kill by default", edited(lambda p: p.update(defaultAction="SCMP_ACT_KILL_PROCESS"))),
    (
        "fewer syscalls",
        edited(lambda p: p["syscalls"][0].update(names=["read", "write", "exit_group"])),
    ),
    (
        "an extra deny rule",
        edited(lambda p: p["syscalls"].append({"names": ["chmod"], "action": "SCMP_ACT_ERRNO"})),
    ),
    (
        "socket for AF_INET only",
        edited(allow("socket", args=[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}])),
    ),
    ("arch_prctl on amd64 only", edited(allow("arch_prctl", includes={"arches": ["amd64"]}))),
]


@pytest.mark.parametrize("profile", [p for _, p in TIGHTENINGS], ids=[i for i, _ in TIGHTENINGS])
def test_seccomp_profile_that_only_tightens_is_accepted(tmp_path: Path, profile: Profile) -> None:
    """A profile that denies at least what the shipped one denies is accepted and applied."""
    config = SandboxConfig(seccomp_profile=write(tmp_path, profile))
    assert json.loads(config.seccomp_json()) == profile


def test_seccomp_profile_is_checked_again_when_applied(tmp_path: Path) -> None:
    """A profile file swapped for a loosening one after the config was built is refused."""
    path = write(tmp_path, shipped())
    config = SandboxConfig(seccomp_profile=path)
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_LOG"}))
    with pytest.raises(SandboxConfigError, match="SCMP_ACT_LOG"):
        config.seccomp_json()
