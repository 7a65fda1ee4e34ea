"""Every psql block of docs/psql-cookbook.md runs as written, each on a fresh database (the README's examples
have their own tests in test_readme.py), so the cookbook cannot rot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crmindex.platform.pgcluster import find_bindir

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "psql-cookbook.md"
BLOCKS = re.findall(r"```sql\n(.*?)```", COOKBOOK.read_text(), flags=re.S)


def _psql() -> str:
    found = find_bindir(require_cron=False) / "psql"
    return str(found) if found.exists() else (shutil.which("psql") or "psql")


def _run(dsn: str, block: str) -> str:
    proc = subprocess.run(
        [_psql(), "-X", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
        input=block,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def test_the_cookbook_has_its_blocks() -> None:
    assert len(BLOCKS) >= 3
    assert all(r"\set org" in b for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_cookbook_block_runs_as_written(db_dsn: str, block: str) -> None:
    _run(db_dsn, block)


def test_the_phrase_search_finds_the_vp_at_the_fintech_company(db_dsn: str) -> None:
    out = _run(db_dsn, BLOCKS[0])
    # the interpreted entry point finds Stan (a VP at a FINANCIAL_SERVICES company) and says how
    assert re.search(r"\bStan\s+\|\s+VP of Sales\s+\|\s+Acme Payments", out), out
    assert '"industry_group"' in out and '"seniority"' in out


def test_the_application_block_changes_only_through_the_api(db_dsn: str) -> None:
    [block] = [b for b in BLOCKS if "SET ROLE crm_app" in b]
    out = _run(db_dsn, block)
    assert "CRO" in out and "sql" in out  # the local edit shows in the index at once
    assert "permission denied for table contact_index" in out  # a direct write is refused
    assert "is bound to org" in out  # another org is refused
