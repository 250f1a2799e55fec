"""The ``docker-sandbox`` Prefect worker type (registered when wflo_prefect is imported).

``prefect work-pool create my-pool --type docker-sandbox`` then
``prefect worker start --pool my-pool`` runs each flow run in a hardened container.
"""

from wflo_prefect.sandbox.worker.job_configuration import (
    ALLOWED_CREATE_KWARGS,
    DockerSandboxJobConfiguration,
)
from wflo_prefect.sandbox.worker.worker import DockerSandboxWorker, DockerSandboxWorkerResult

__all__ = [
    "ALLOWED_CREATE_KWARGS",
    "DockerSandboxJobConfiguration",
    "DockerSandboxWorker",
    "DockerSandboxWorkerResult",
]
