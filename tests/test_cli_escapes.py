"""Issue 13, item 8: the CLI prints CRM data escaped. A contact named with terminal escapes (clear screen, an OSC
window title, a bell, a bidirectional override, a line break) cannot rewrite the operator's terminal through
``crmindex search`` or ``crmindex status``: every unprintable character is shown as its escape.

Before issue 13 both commands printed them raw (the ``RAW`` assertions failed)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from crmindex.cli import main
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from crmindex.status import OrgStatus, render, terminal_text
from tests.orgs import ORG

Conn = psycopg.Connection[Any]
CLEAR, TITLE, BIDI = "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\u202e"
HOSTILE = f"Eve{CLEAR}{TITLE}{BIDI}moc.live\r\nFAKE LINE\x9b31m\u200b"
# what must never reach the terminal: ESC, BEL, CR, the C1 CSI, the bidi override, a zero-width space
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e", "\u200b")


def _assert_escaped(out: str) -> None:
    assert not [c for c in RAW if c in out], repr(out)
    assert "\\x1b[2J" in out and "\\u202e" in out and "\\x07" in out


def test_terminal_text_escapes_every_unprintable_character() -> None:
    assert terminal_text(HOSTILE) == (
        "Eve\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\u202emoc.live\\r\\nFAKE LINE\\x9b31m\\u200b"
    )
    assert terminal_text("Chloé O'Brien — 東京 ") == "Chloé O'Brien — 東京 "  # printable text is kept
    assert terminal_text("\ud800") == "\\ud800"  # an unpaired surrogate (undecodable bytes) is no crash


@pytest.fixture
def hostile_org(db: Conn) -> Conn:
    ensure_org(db, ORG)
    db.execute("UPDATE crm.org SET name = %s WHERE org_id = %s", (f"Acme{TITLE}", ORG))
    upsert_contacts(
        db,
        ORG,
        "hubspot",
        [
            ContactRow(
                crm_record_id="1",
                first_name=HOSTILE,
                last_name=f"Smith{BIDI}",
                job_title=f"CTO{CLEAR}",
                company_name=f"Evil{TITLE}Corp",
                lifecycle_stage="customer",
            )
        ],
    )
    db.execute(
        "INSERT INTO crm.webhook_inbox (org_id, crm_source, account_id, body, status, last_error) "
        "VALUES (%s, 'hubspot', '1', '[]', 'dead_letter', %s)",
        (ORG, f"CRM said: {HOSTILE}"),
    )
    return db


def test_search_prints_crm_strings_escaped(
    hostile_org: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "Eve", "--org", str(ORG), "--dsn", db_dsn]) == 0
    out = capsys.readouterr().out
    assert "1 result(s)" in out
    _assert_escaped(out)  # RAW before: the escapes were printed as they came from the CRM
    # --json keeps the data exact (JSON escapes control characters itself)
    assert main(["search", "Eve", "--org", str(ORG), "--dsn", db_dsn, "--json"]) == 0
    out = capsys.readouterr().out
    assert not [c for c in RAW if c in out]
    assert json.loads(out)["hits"][0]["first_name"] == HOSTILE


def test_status_prints_crm_strings_escaped(
    hostile_org: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--org", str(ORG), "--dsn", db_dsn]) == 0
    out = capsys.readouterr().out
    assert "dead #" in out and "\\x1b]0;pwned\\x07" in out
    assert not [c for c in RAW if c in out], repr(out)  # RAW before: the dead letter's error and the org name


def test_render_escapes_connection_errors() -> None:
    status = OrgStatus(
        org_id=ORG,
        name=f"Org{BIDI}",
        connections=[
            {
                "crm_source": "hubspot",
                "account_id": f"42{CLEAR}",
                "auth_error": HOSTILE,
                "auth_failed_at": "x",
            }
        ],
        contacts_indexed=0,
        contacts_materialized=0,
        contacts_deleted=0,
        companies_indexed=0,
        companies_materialized=0,
        deals_indexed=0,
        last_webhook_at=None,
        sync={"hubspot:contacts": {"status": "failed", "last_error": TITLE}},
        queues=[],
        limiters=[],
    )
    out = render(status)
    _assert_escaped(out)
    assert len(out.splitlines()) == 7  # a CR/LF in CRM data breaks no line
