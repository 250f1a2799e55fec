"""``python -m wflo_prefect.cli``: the ``wflo`` command without its console script."""

from wflo_prefect.cli import main

main()
