# crmindex — the two commands: `make demo` and `make test`.
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: bootstrap test test-fast demo lint bench clean

bootstrap:
	@scripts/bootstrap.sh

# two pytest workers (pytest-xdist), each with its own throwaway cluster: the suite fits CI's 15 minutes on 2 cores;
# `make test TEST_WORKERS=0` runs it in one process
TEST_WORKERS ?= 2
test: bootstrap
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

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

# each script prints its figures and writes bench/results/<name>.json (long: an hour or more in all) at the scales of
# issue 18; a script refuses to write results when the 1-minute load average exceeded the CPU count before or after
# its run (bench/README.md), and waits up to CRMINDEX_BENCH_WAIT_QUIET seconds for the previous one's load to die down
BENCHES := ingest sync search search_quality webhooks queue materialize mixed_load synthetic_speed
bench: bootstrap
	@for b in $(BENCHES); do echo "== bench/$$b"; CRMINDEX_BENCH_WAIT_QUIET=$${CRMINDEX_BENCH_WAIT_QUIET:-300} \
		$(PY) -m bench.$$b || exit 1; done

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
