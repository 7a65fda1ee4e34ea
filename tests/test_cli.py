"""The CLI: one test per command at least; clear errors and exit codes, secrets never printed."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

from crmindex.cli import main
from crmindex.index import ContactRow, ensure_org, upsert_contacts

Conn = psycopg.Connection[tuple[object, ...]]
ORG = "00000000-0000-4000-8000-0000000000c5"


def test_connect_then_status(
    db: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_HS_TOKEN", "pat-na1-SECRET-TOKEN-VALUE")
    code = main(
        [
            "connect",
            "hubspot",
            "--org",
            ORG,
            "--portal-id",
            "4242",
            "--token-env",
            "MY_HS_TOKEN",
            "--webhook-secret-env",
            "MY_HS_SECRET",
            "--dsn",
            db_dsn,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "connected hubspot account 4242" in out
    assert "SECRET-TOKEN-VALUE" not in out
    row = db.execute("SELECT account_id, token_ref, webhook_secret_ref FROM crm.connection").fetchone()
    assert row == ("4242", "env:MY_HS_TOKEN", "env:MY_HS_SECRET")
    upsert_contacts(
        db, uuid.UUID(ORG), "hubspot", [ContactRow(crm_record_id="1"), ContactRow(crm_record_id="2")]
    )
    assert main(["status", "--org", ORG, "--dsn", db_dsn]) == 0
    text = capsys.readouterr().out
    assert "2 indexed" in text and "connection   hubspot account 4242" in text
    assert main(["status", "--json", "--dsn", db_dsn]) == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert doc["contacts_indexed"] == 2 and doc["org_id"] == ORG


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connect", "hubspot", "--org", "not-a-uuid", "--portal-id", "1"], "--org must be an org uuid"),
        (["connect", "hubspot", "--org", ORG], "--portal-id is required"),
        (["status", "--org", "xyz"], "--org must be an org uuid"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    db_dsn: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--dsn", db_dsn]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_no_database_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["status"]) == 1
    assert "no database: pass --dsn or set DATABASE_URL" in capsys.readouterr().err


def test_console_script_help_explains_each_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "crmindex.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("migrate", "demo", "connect", "status"):
        assert command in out.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "crmindex.cli", "connect", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "never stored" in sub.stdout


def test_status_of_an_org_seen_by_its_stats(
    db: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_org(db, uuid.UUID(ORG), "Acme Sales")
    assert main(["status", "--dsn", db_dsn]) == 0
    assert "Acme Sales" in capsys.readouterr().out
