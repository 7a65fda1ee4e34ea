"""The CLI: one test per command at least; clear errors and exit codes, secrets never printed."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

from crmindex.cli import main
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts

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


def test_sync_reconcile_and_drain_commands_against_the_fake(
    db: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmindex.testing import FakeHubSpot
    from crmindex.testing.synthetic import SyntheticCRM
    from crmindex.writeback.enqueue import update_contact

    monkeypatch.setenv("CLI_HS_TOKEN", "test-token")
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=21, contacts=300))
        assert (
            main(
                [
                    "connect",
                    "hubspot",
                    "--org",
                    ORG,
                    "--portal-id",
                    str(fake.portal_id),
                    "--base-url",
                    fake.base_url,
                    "--token-env",
                    "CLI_HS_TOKEN",
                    "--dsn",
                    db_dsn,
                ]
            )
            == 0
        )
        assert main(["sync", "--org", ORG, "--quiet", "--dsn", db_dsn]) == 0
        assert "hubspot: " in capsys.readouterr().out
        row = db.execute("SELECT count(*) FROM crm.contact_index WHERE deleted_at IS NULL").fetchone()
        assert row == (fake.count("contacts"),)
        first = str(next(iter(fake.store("contacts").ids_from(0))))
        fake.update_property("contacts", first, "jobtitle", "Chief Product Officer")
        assert main(["reconcile", "--org", ORG, "--dsn", db_dsn]) == 0
        assert "repaired" in capsys.readouterr().out
        row = db.execute(
            "SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", (first,)
        ).fetchone()
        assert row == ("Chief Product Officer",)
        update_contact(db, uuid.UUID(ORG), first, {"lifecycle_stage": "customer"})
        assert main(["drain", "--once", "--dsn", db_dsn]) == 0
        assert "writeback 1" in capsys.readouterr().out
        assert fake.properties("contacts", first)["lifecyclestage"] == "customer"
        assert main(["drain", "requeue", "--org", ORG, "--dsn", db_dsn]) == 0
        assert "requeued 0 dead letter(s)" in capsys.readouterr().out


def test_fake_crm_command_serves_a_seeded_crm() -> None:
    import socket

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmindex.cli",
            "fake-crm",
            "hubspot",
            "--contacts",
            "40",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        resp = requests.get(
            f"http://127.0.0.1:{port}/crm/v3/objects/contacts?limit=5",
            headers={"Authorization": "Bearer test-token"},
            timeout=10,
        )
        assert resp.status_code == 200 and len(resp.json()["results"]) == 5
        resp.close()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_demo_command_runs_the_whole_flow_small(db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--contacts", "1000", "--dsn", db_dsn]) == 0
    out = capsys.readouterr().out
    for step in (
        "initial sync",
        "accepted and applied",
        "copilot searches",
        "meeting booked",
        "landed in the CRM",
        "crmindex status",
        "demo finished",
    ):
        assert step in out, step
    assert "still catching up" not in out
    assert "250 landed in the CRM" in out
