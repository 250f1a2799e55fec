"""``wflo stack``: Prefect server on PostgreSQL, workers, approvals and metrics on loopback.

One command starts what a team runs in production, on one machine, for trying
deployments end to end: see :func:`~wflo_prefect.stack.lifecycle.up` and
``docs/deployment.md``.
"""
