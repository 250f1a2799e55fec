# Shortcuts; the README's two commands work without make.
.PHONY: demo test lint types docs bench provision

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

provision:
	bash scripts/provision.sh

lint:
	.venv/bin/ruff check wflo_prefect tests benchmarks flows blocks
	.venv/bin/ruff format --check wflo_prefect tests benchmarks flows blocks

types:
	.venv/bin/mypy

docs:
	.venv/bin/mkdocs build --strict

bench:
	for b in benchmarks/bench_*.py; do .venv/bin/python $$b || exit 1; done
