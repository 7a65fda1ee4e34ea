# crmindex — the two commands: `make demo` and `make test`.
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: bootstrap test demo lint bench clean

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: bootstrap
	.venv/bin/crmindex demo $(DEMO_ARGS)

lint: bootstrap
	.venv/bin/ruff check crmindex tests bench
	.venv/bin/ruff format --check crmindex tests bench
	.venv/bin/mypy
	.venv/bin/sqlfluff lint sql

bench: bootstrap
	$(PY) -m bench.ingest $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
