"""Job configuration of the ``docker-sandbox`` worker: prefect-docker's, minus every loosening.

Each field that could loosen the container is pinned twice: in the JSON schema of
the work pool's base job template (so the Prefect server refuses such job variables
when a deployment or flow run is created), and in a validator here (so the worker
refuses them even if someone edits the template's ``job_configuration`` by hand).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from prefect_docker.worker import DockerWorkerJobConfiguration
from pydantic import Field, field_validator, model_validator

from wflo_prefect.sandbox.config import FORBIDDEN_OPTIONS, parse_size
from wflo_prefect.sandbox.errors import SandboxConfigError
from wflo_prefect.sandbox.flows_image import DEFAULT_FLOWS_IMAGE

__all__ = ["ALLOWED_CREATE_KWARGS", "DockerSandboxJobConfiguration"]

#: ``container_create_kwargs`` keys that cannot loosen anything; every other is refused.
ALLOWED_CREATE_KWARGS = (
    "domainname",
    "entrypoint",
    "healthcheck",
    "hostname",
    "stop_signal",
    "working_dir",
)
# A named Docker volume ("name:/path"), as opposed to a host path ("/x", "./x", "~/x").
_NAMED_VOLUME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*:/[^:]*(:(ro|rw))?$"
_NAMED_VOLUME_WHY = (
    "a named volume outlives the run and may belong to another workload (or hold what an "
    "earlier run left); runs write to their own tmpfs at /tmp and /opt/prefect/work"
)


def _refuse(field: str, value: Any, why: str) -> SandboxConfigError:
    return SandboxConfigError(
        f"The docker-sandbox worker refuses job variable `{field}`: {why}",
        value=value,
        hint="Remove it from the deployment's job_variables / the work pool template; the "
        "sandbox's hardening is not configurable",
    )


class DockerSandboxJobConfiguration(DockerWorkerJobConfiguration):  # type: ignore[misc]
    """A Docker job whose container is always hardened (see docs/sandbox.md)."""

    image: str = Field(
        default=DEFAULT_FLOWS_IMAGE,
        description="Image the flow run's container runs; the default is the one "
        "`wflo sandbox build-image --flows` builds (Python, the locked dependencies, "
        "wflo-prefect and flows/ at /opt/flows).",
        examples=[DEFAULT_FLOWS_IMAGE],
    )
    image_pull_policy: Literal["IfNotPresent", "Always", "IfPossible", "Never"] | None = Field(
        default="IfNotPresent",
        description="IfNotPresent by default: the flows image is built on the worker's host; "
        "use Always with a registry tag you push to.",
    )
    privileged: bool = Field(
        default=False,
        description="Always false: the sandbox never runs privileged containers.",
        json_schema_extra={"const": False},
    )
    volumes: list[str] = Field(
        default_factory=list,
        description="Always empty: a volume outlives the run and may be another "
        "workload's. Runs write to their tmpfs at /tmp and /opt/prefect/work.",
        json_schema_extra={"maxItems": 0},
    )
    networks: list[str] = Field(
        default_factory=list,
        description="Always empty: the worker gives each run its own network.",
        json_schema_extra={"maxItems": 0},
    )
    network_mode: str | None = Field(
        default=None,
        description="Always empty: the worker picks the network (Prefect API only).",
        json_schema_extra={"enum": [None]},
    )
    container_create_kwargs: dict[str, Any] | None = Field(
        default=None,
        title="Container Configuration",
        description=f"Only these docker-py options: {', '.join(ALLOWED_CREATE_KWARGS)}.",
        json_schema_extra={"propertyNames": {"enum": list(ALLOWED_CREATE_KWARGS)}},
    )
    mem_limit: str | None = Field(
        default="1g", title="Memory Limit", description="Memory of the container (no swap)."
    )
    memswap_limit: str | None = Field(
        default=None,
        title="Memory Swap Limit",
        description="Always empty: swap is off (memory + swap = memory).",
        json_schema_extra={"enum": [None]},
    )
    cpu_limit: float = Field(default=1.0, gt=0, le=64, description="CPUs the container may use.")
    pids_limit: int = Field(default=512, ge=16, le=32768, description="Processes and threads.")
    runtime: Literal["runc", "runsc"] = Field(
        default="runc", description="OCI runtime; runsc (gVisor) has no network on this engine."
    )
    network: Literal["prefect-api-only", "none"] = Field(
        default="prefect-api-only",
        description="prefect-api-only: the run reaches the Prefect API through an allow-list "
        "proxy and nothing else; none: no network (the run cannot report its state).",
    )

    @field_validator("privileged", mode="before")
    @classmethod
    def _no_privileged(cls, value: Any) -> Any:
        if value not in (False, None, "false", "False"):
            raise _refuse("privileged", value, FORBIDDEN_OPTIONS["privileged"])
        return False

    @field_validator("volumes", mode="before")
    @classmethod
    def _no_volumes(cls, value: Any) -> Any:
        for volume in value or []:
            if not isinstance(volume, str) or not re.match(_NAMED_VOLUME, volume):
                raise _refuse("volumes", volume, FORBIDDEN_OPTIONS["volumes"])
            raise _refuse("volumes", volume, _NAMED_VOLUME_WHY)
        return []

    @field_validator("networks", mode="before")
    @classmethod
    def _no_networks(cls, value: Any) -> Any:
        if value:
            raise _refuse("networks", value, FORBIDDEN_OPTIONS["network_mode"])
        return []

    @field_validator("network_mode", mode="before")
    @classmethod
    def _no_network_mode(cls, value: Any) -> Any:
        if value not in (None, ""):
            why = (
                FORBIDDEN_OPTIONS["host_network"]
                if value == "host"
                else FORBIDDEN_OPTIONS["network_mode"]
            )
            raise _refuse("network_mode", value, why)
        return None

    @field_validator("memswap_limit", mode="before")
    @classmethod
    def _no_swap(cls, value: Any) -> Any:
        if value not in (None, ""):
            raise _refuse("memswap_limit", value, "swap would let the run outgrow mem_limit")
        return None

    @field_validator("container_create_kwargs", mode="before")
    @classmethod
    def _safe_create_kwargs(cls, value: Any) -> Any:
        for key in value or {}:
            if key not in ALLOWED_CREATE_KWARGS:
                why = FORBIDDEN_OPTIONS.get(key, "it is not on the worker's list of safe options")
                raise _refuse(f"container_create_kwargs.{key}", value[key], why)
        return value

    @model_validator(mode="after")
    def _runtime_network(self) -> DockerSandboxJobConfiguration:
        if self.mem_limit:
            parse_size(self.mem_limit, field="mem_limit")
        if self.runtime == "runsc" and self.network != "none":
            raise SandboxConfigError(
                "gVisor (runtime='runsc') runs without a network on this engine, so a flow "
                "run there cannot reach the Prefect API",
                value={"runtime": self.runtime, "network": self.network},
                hint="Use runtime='runc', or set network='none'",
            )
        return self
