"""The migrator: applies once, refuses edited files, is safe when started twice at once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from crmindex.cli import main
from crmindex.errors import MigrationError
from crmindex.platform.migrate import MIGRATIONS_DIR, AppliedMigration, load_migrations, migrate


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def _recorded(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        return [
            (int(v), str(c))
            for v, c in conn.execute("SELECT version, checksum FROM crm.schema_migration ORDER BY 1")
        ]


def test_migrate_applies_every_file_then_does_nothing(empty_db_dsn: str) -> None:
    files = load_migrations()
    first = migrate(empty_db_dsn)
    assert [m.version for m in first] == [f.version for f in files]
    assert migrate(empty_db_dsn) == []
    assert _recorded(empty_db_dsn) == [(f.version, f.checksum) for f in files]


def test_migrate_refuses_an_edited_applied_file(empty_db_dsn: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    migrate(empty_db_dsn, directory=directory)
    first = sorted(directory.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=first.name):
        migrate(empty_db_dsn, directory=directory)


def test_migrate_refuses_a_database_newer_than_the_code(empty_db_dsn: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    migrate(empty_db_dsn, directory=directory)
    sorted(directory.glob("*.sql"))[-1].unlink()
    with pytest.raises(MigrationError, match="lacks"):
        migrate(empty_db_dsn, directory=directory)


def test_a_failing_migration_is_rolled_back_and_not_recorded(empty_db_dsn: str, tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    n = len(load_migrations(directory))
    (directory / f"{n + 1:04d}_broken.sql").write_text(
        "CREATE TABLE crm.half_done (id int);\nSELECT 1 / 0;\n"
    )
    with pytest.raises(MigrationError, match="broken"):
        migrate(empty_db_dsn, directory=directory)
    assert [v for v, _ in _recorded(empty_db_dsn)] == list(range(1, n + 1))
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT to_regclass('crm.half_done')").fetchone() == (None,)


def test_misnamed_or_gapped_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "0003_gap.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="gaps"):
        load_migrations(tmp_path)
    (tmp_path / "2-bad name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="named"):
        load_migrations(tmp_path)


def test_concurrent_migrators_apply_each_file_once(empty_db_dsn: str) -> None:
    results: list[list[AppliedMigration]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate(empty_db_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(m.version for r in results for m in r)
    assert applied == [m.version for m in load_migrations()]  # each exactly once, across all four
    assert len(_recorded(empty_db_dsn)) == len(applied)


def test_cli_migrate_twice(empty_db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--dsn", empty_db_dsn]) == 0
    out = capsys.readouterr().out
    assert "applied 0001_schema" in out
    assert main(["migrate", "--dsn", empty_db_dsn]) == 0
    assert "nothing to apply" in capsys.readouterr().out


def test_cli_migrate_bad_dsn_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["migrate", "--dsn", "host=/nonexistent-dir port=1 dbname=x connect_timeout=2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot connect" in err
    assert "Traceback" not in err
