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
from tests.orgs import ORG_A

Conn = psycopg.Connection[tuple[object, ...]]
ORG = str(ORG_A)  # the CLI takes it as text


def test_connect_then_status(
    db: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmindex.testing import FakeHubSpot

    monkeypatch.setenv("MY_HS_TOKEN", "pat-na1-SECRET-TOKEN-VALUE")
    monkeypatch.setenv("MY_HS_SECRET", "SECRET-CLIENT-SECRET")
    with FakeHubSpot(limits=False, portal_id=4242, tokens=["pat-na1-SECRET-TOKEN-VALUE"]) as fake:
        common = ["--org", ORG, "--base-url", fake.base_url, "--token-env", "MY_HS_TOKEN", "--dsn", db_dsn]
        # the token decides the account: a portal id that is not the token's is refused, nothing stored
        assert main(["connect", "hubspot", "--portal-id", "4243", *common]) == 2
        assert "belongs to hubspot portal 4242, not 4243" in capsys.readouterr().err
        assert db.execute("SELECT count(*) FROM crm.connection").fetchone() == (0,)
        code = main(
            ["connect", "hubspot", "--portal-id", "4242", "--webhook-secret-env", "MY_HS_SECRET", *common]
        )
    out = capsys.readouterr().out
    assert code == 0 and "connected hubspot account 4242" in out
    assert "SECRET" not in out
    row = db.execute("SELECT account_id, auth_kind, status FROM crm.connection").fetchone()
    assert row == ("4242", "private_app", "active")
    stored = db.execute("SELECT kind, ciphertext FROM crm.connection_secret ORDER BY kind").fetchall()
    assert [k for k, _ in stored] == ["private_app_token", "webhook_secret"]
    assert all(b"SECRET" not in bytes(ct) for _, ct in stored)  # type: ignore[arg-type]
    upsert_contacts(
        db, uuid.UUID(ORG), "hubspot", [ContactRow(crm_record_id="1"), ContactRow(crm_record_id="2")]
    )
    assert main(["status", "--org", ORG, "--dsn", db_dsn]) == 0
    text = capsys.readouterr().out
    assert "2 indexed" in text and "connection   hubspot account 4242" in text
    assert main(["status", "--json", "--dsn", db_dsn]) == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert doc["contacts_indexed"] == 2 and doc["org_id"] == ORG


def test_connect_drives_the_oauth_flow(db: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """As an operator runs it: the authorize URL is printed, the redirect URL is pasted on stdin."""
    import os

    from crmindex.testing import FakeHubSpot

    redirect = "https://crm.example.com/oauth/hubspot"
    with FakeHubSpot(limits=False, portal_id=5151) as fake:
        client_id, client_secret = fake.oauth.register_app(redirect_uris=[redirect])
        env = {
            **os.environ,
            "CRMINDEX_HUBSPOT_CLIENT_ID": client_id,
            "CRMINDEX_HUBSPOT_CLIENT_SECRET": client_secret,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmindex.cli", "connect", "hubspot", "--org", ORG, "--redirect-uri", redirect,
             "--base-url", fake.base_url, "--authorize-url", f"{fake.base_url}/oauth/authorize", "--dsn", db_dsn],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        assert "open this URL" in proc.stdout.readline()
        url = proc.stdout.readline().strip()
        assert url.startswith(f"{fake.base_url}/oauth/authorize?client_id={client_id}")
        pasted = fake.oauth.approve(url)  # the user approves; the browser lands on the redirect URL
        out, err = proc.communicate(pasted + "\n", timeout=60)
        assert proc.returncode == 0, err
        assert "connected hubspot account 5151" in out and "OAuth" in out
        [access] = list(fake.oauth.access)
        [refresh] = list(fake.oauth.refresh_tokens)
        assert access not in out + err and refresh not in out + err
    assert db.execute("SELECT account_id, auth_kind FROM crm.connection").fetchone() == ("5151", "oauth")
    # --begin-only prints the URL; --redirect-url finishes later (a used state cannot be replayed)
    with FakeHubSpot(limits=False, portal_id=5151) as fake:
        client_id, client_secret = fake.oauth.register_app(redirect_uris=[redirect])
        flags = ["--org", ORG, "--base-url", fake.base_url, "--authorize-url", f"{fake.base_url}/oauth/authorize",
                 "--dsn", db_dsn]  # fmt: skip
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CRMINDEX_HUBSPOT_CLIENT_ID", client_id)
            mp.setenv("CRMINDEX_HUBSPOT_CLIENT_SECRET", client_secret)
            mp.setenv("CRMINDEX_HUBSPOT_REDIRECT_URI", redirect)
            assert main(["connect", "hubspot", "--begin-only", *flags]) == 0
            url = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("http"))
            pasted = fake.oauth.approve(url)
            assert main(["connect", "hubspot", "--redirect-url", pasted, *flags]) == 0
            assert "connected hubspot account 5151" in capsys.readouterr().out
            assert main(["connect", "hubspot", "--redirect-url", pasted, *flags]) == 2
            assert "already used" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connect", "hubspot", "--org", "not-a-uuid", "--portal-id", "1"], "--org must be an org uuid"),
        (["connect", "hubspot", "--org", ORG], "CRMINDEX_HUBSPOT_CLIENT_ID"),
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
    assert "OAuth" in sub.stdout and "encrypted" in sub.stdout


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
