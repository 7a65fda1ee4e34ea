# crmindex — the two commands: `make demo` and `make test`.
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: bootstrap test test-fast demo lint bench clean

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	$(PY) -m pytest -q $(PYTEST_ARGS)

# the tests that need no PostgreSQL (marked `pure` by tests/conftest.py), in seconds: run with no server reachable
# and no binaries (CRMINDEX_PG_BINDIR points nowhere), so one that starts a cluster fails here; the bootstrap
# is told of a DSN so that it installs the virtualenv only, never the PostgreSQL server
test-fast:
	@CRMINDEX_TEST_DSN=unused scripts/bootstrap.sh
	env -u DATABASE_URL -u CRMINDEX_TEST_DSN CRMINDEX_PG_BINDIR=/nonexistent $(PY) -m pytest -q -m pure $(PYTEST_ARGS)

demo: bootstrap
	.venv/bin/crmindex demo $(DEMO_ARGS)

# ruff, mypy and sqlfluff are pinned in pyproject.toml (dev extra), so a fresh clone lints like CI does
lint: bootstrap
	@if [ -d .git ] && [ -n "$$(git ls-files -ci --exclude-standard)" ]; then \
		echo "tracked files under ignored paths (git rm -r --cached them):"; git ls-files -ci --exclude-standard | head; exit 1; fi
	.venv/bin/ruff check crmindex tests bench
	.venv/bin/ruff format --check crmindex tests bench
	.venv/bin/mypy
	.venv/bin/sqlfluff lint sql

# each script prints its figures and writes bench/results/<name>.json (long: tens of minutes in all)
BENCHES := ingest sync search webhooks queue materialize mixed_load
bench: bootstrap
	@for b in $(BENCHES); do echo "== bench/$$b"; $(PY) -m bench.$$b || exit 1; done

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
