"""Example flows governed by wflo-prefect (deployable with prefect.yaml)."""
