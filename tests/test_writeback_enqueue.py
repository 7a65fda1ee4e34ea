"""Write-back, local side: immediate local change + queued CRM write in one transaction, coalescing,
mapping errors at enqueue time, and never clobbering newer CRM data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from crmindex.platform.queue import Worker
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def org(db: Conn) -> Conn:
    ensure_org(db, ORG)
    upsert_contacts(
        db,
        ORG,
        "hubspot",
        [
            ContactRow(
                crm_record_id="101",
                first_name="Stan",
                last_name="Lee",
                email="stan@acme.com",
                lifecycle_stage="lead",
                crm_updated_at=T0,
            ),
            ContactRow(crm_record_id="102", first_name="Gone", deleted_at=T0, crm_updated_at=T0),
        ],
    )
    upsert_contacts(
        db,
        ORG,
        "attio",
        [ContactRow(crm_record_id="p-1", first_name="Zoe", last_name="Ng", crm_updated_at=T0)],
    )
    return db


def connect_hubspot(db: Conn, account: str) -> None:
    """The connection row the operator path leaves (seeded as the owner: connecting is not under test here)."""
    db.execute(
        "INSERT INTO crm.connection (org_id, crm_source, account_id) VALUES (%s, 'hubspot', %s)",
        (ORG, account),
    )


def jobs(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT crm_source, crm_record_id, operation, payload, status FROM crm.writeback_queue ORDER BY id"
    ).fetchall()


def test_update_changes_the_index_now_and_queues_the_mapped_write(org: Conn) -> None:
    q = update_contact(org, ORG, "stan@acme.com", {"lifecycle_stage": "sql", "job_title": "VP Sales"})
    assert q.payload == {"lifecyclestage": "salesqualifiedlead", "jobtitle": "VP Sales"}
    row = org.execute(
        "SELECT lifecycle_stage, job_title, seniority FROM crm.contact_index WHERE crm_record_id = '101'"
    ).fetchone()
    assert row == ("sql", "VP Sales", "vp")
    assert jobs(org) == [("hubspot", "101", "update", q.payload, "pending")]


def test_pending_updates_of_one_record_coalesce(org: Conn) -> None:
    a = update_contact(org, ORG, "101", {"job_title": "Director"})
    b = update_contact(org, ORG, "101", {"job_title": "VP", "phone": "+1 555"})
    c = update_contact(org, ORG, "101", {"lifecycle_stage": "customer"})
    assert a.job_id == b.job_id == c.job_id
    assert jobs(org) == [
        (
            "hubspot",
            "101",
            "update",
            {"jobtitle": "VP", "phone": "+1 555", "lifecyclestage": "customer"},
            "pending",
        )
    ]


def test_bad_updates_change_nothing(org: Conn) -> None:
    with pytest.raises(InvalidInputError, match="writable fields"):
        update_contact(org, ORG, "101", {"seniority": "vp"})
    with pytest.raises(InvalidInputError, match="Attio"):
        update_contact(org, ORG, "p-1", {"lifecycle_stage": "customer"})
    with pytest.raises(InvalidInputError, match="deleted"):
        update_contact(org, ORG, "102", {"job_title": "x"})
    with pytest.raises(NotFoundError):
        update_contact(org, ORG, "nobody@nowhere.io", {"job_title": "x"})
    assert jobs(org) == []
    row = org.execute("SELECT lifecycle_stage FROM crm.contact_index WHERE crm_record_id = 'p-1'").fetchone()
    assert row == (None,)


def test_attio_name_change_keeps_the_other_half(org: Conn) -> None:
    q = update_contact(org, ORG, "p-1", {"last_name": "Nguyen"})
    assert q.payload == {"name": [{"first_name": "Zoe", "last_name": "Nguyen", "full_name": "Zoe Nguyen"}]}


def test_creates_are_keyed_by_email_and_coalesce(org: Conn) -> None:
    a = create_contact(org, ORG, "hubspot", {"email": "New@Lead.io", "first_name": "N"})
    b = create_contact(org, ORG, "hubspot", {"email": "new@lead.io", "job_title": "CEO"})
    assert a.job_id == b.job_id
    assert jobs(org)[0][2:] == (
        "create",
        {"email": "new@lead.io", "firstname": "N", "jobtitle": "CEO"},
        "pending",
    )
    with pytest.raises(InvalidInputError, match="email"):
        create_contact(org, ORG, "hubspot", {"first_name": "No email"})


def _deliver(db: Conn, prop: str, value: str, at: datetime) -> None:
    events = [
        {
            "eventId": 1,
            "subscriptionId": 1,
            "portalId": 5,
            "occurredAt": int(at.timestamp() * 1000),
            "subscriptionType": "contact.propertyChange",
            "objectId": 101,
            "propertyName": prop,
            "propertyValue": value,
            "changeSource": "CRM_UI",
        }
    ]
    db.execute("SELECT crm.webhook_accept(%s, 'hubspot', '5', %s, '{}', 1)", (ORG, json.dumps(events)))


def test_newer_crm_change_drops_the_field_but_our_echo_does_not(org: Conn, db_dsn: str) -> None:
    connect_hubspot(org, "5")
    update_contact(org, ORG, "101", {"job_title": "VP Sales", "lifecycle_stage": "sql"})
    later = datetime.now(UTC) + timedelta(seconds=5)
    _deliver(org, "jobtitle", "VP Sales", later)  # the echo of our own value: keep the field
    _deliver(org, "lifecyclestage", "customer", later)  # someone changed it in HubSpot since: drop ours
    Worker(db_dsn, INBOX, process_inbox).run_once()
    assert jobs(org) == [("hubspot", "101", "update", {"jobtitle": "VP Sales"}, "pending")]
    row = org.execute("SELECT lifecycle_stage FROM crm.contact_index WHERE crm_record_id = '101'").fetchone()
    assert row == ("customer",)
    _deliver(org, "jobtitle", "Founder", later + timedelta(seconds=1))
    Worker(db_dsn, INBOX, process_inbox).run_once()
    assert jobs(org)[0][3:] == ({}, "completed")


def test_an_older_crm_event_does_not_undo_a_local_change(org: Conn, db_dsn: str) -> None:
    update_contact(org, ORG, "101", {"job_title": "CTO"})
    _deliver(org, "jobtitle", "Intern", datetime.now(UTC) - timedelta(minutes=5))
    Worker(db_dsn, INBOX, process_inbox).run_once()
    row = org.execute("SELECT job_title FROM crm.contact_index WHERE crm_record_id = '101'").fetchone()
    assert row == ("CTO",)
    assert jobs(org)[0][3] == {"jobtitle": "CTO"}


def test_maintenance_never_breaks_one_open_update_per_record(org: Conn) -> None:
    from crmindex.platform.queue import Queue

    update_contact(org, ORG, "101", {"job_title": "First"})
    [claimed] = Queue("crm.writeback_queue").claim(org, "w", 10, lease_s=0.01)
    update_contact(org, ORG, "101", {"job_title": "Second"})  # a new open job while the first is in flight
    import time

    time.sleep(0.05)
    # the expired first job cannot go back to pending beside the newer one: no error, it waits for a claim
    assert org.execute("SELECT crm.queue_reclaim_expired('crm.writeback_queue')").fetchone() == (0,)
    org.execute("UPDATE crm.writeback_queue SET status = 'dead_letter' WHERE id = %s", (claimed.id,))
    assert Queue("crm.writeback_queue").requeue(org, ORG) == 0  # superseded: stays a dead letter
    statuses = sorted(str(r[0]) for r in org.execute("SELECT status FROM crm.writeback_queue"))
    assert statuses == ["dead_letter", "pending"]


def test_a_crm_snapshot_read_before_the_write_lands_does_not_undo_the_local_edit(org: Conn) -> None:
    """Found by bench/mixed_load: a snapshot (materialize, hydrate, reconcile) whose record timestamp moved past
    the local edit because of some other CRM change must not bring back the old value of the edited field."""
    update_contact(org, ORG, "stan@acme.com", {"phone": "+1 555 0101"})
    later = datetime.now(UTC) + timedelta(seconds=5)  # e.g. the job title changed in the CRM UI meanwhile

    def snapshot(at: datetime, phone: str | None) -> None:
        row = ContactRow(crm_record_id="101", first_name="Stan", last_name="Lee", email="stan@acme.com",
                         job_title="CTO", phone=phone, crm_updated_at=at)  # fmt: skip
        upsert_contacts(org, ORG, "hubspot", [row])

    snapshot(later, None)  # read from the CRM before our write landed: no phone yet
    row = org.execute("SELECT phone, job_title FROM crm.contact_index WHERE org_id = %s AND crm_record_id = '101'",
                      (ORG,)).fetchone()  # fmt: skip
    assert row == ("+1 555 0101", "CTO")  # the other field is taken from the snapshot

    # once the write has landed, the CRM is the truth again: a newer snapshot wins for every field
    org.execute(
        "UPDATE crm.writeback_queue SET status = 'completed', completed_at = now() WHERE org_id = %s", (ORG,)
    )
    snapshot(later + timedelta(seconds=1), "+1 555 0199")
    row = org.execute("SELECT phone FROM crm.contact_index WHERE org_id = %s AND crm_record_id = '101'",
                      (ORG,)).fetchone()  # fmt: skip
    assert row == ("+1 555 0199",)


def test_every_writable_column_maps_to_the_property_the_reads_map_back(org: Conn) -> None:
    """The write mapping lives in SQL (crm.writeback_contact_payload); the read mapping in
    crmindex/crm/hubspot/properties.py. Each writable column must go out as the property that comes back as it."""
    from crmindex.crm.hubspot.properties import PROPERTY_COLUMNS

    columns = org.execute("SELECT crm.writeback_contact_columns()").fetchone()
    assert columns is not None
    fields = {
        c: "x@y.io" if c == "email" else "MQL" if c == "lifecycle_stage" else f"v {c}" for c in columns[0]
    }
    q = update_contact(org, ORG, "101", fields)
    reads = {prop: col for prop, (col, _) in PROPERTY_COLUMNS["contacts"].items()}
    assert {reads[p] for p in q.payload} == set(columns[0])
    assert q.payload["lifecyclestage"] == "marketingqualifiedlead" and q.payload["email"] == "x@y.io"
    # clearing a field sends '' (HubSpot clears a property given an empty string)
    assert update_contact(org, ORG, "101", {"phone": None, "job_title": "  "}).payload["phone"] == ""


def test_attio_values_and_custom_attributes(org: Conn) -> None:
    org.execute(
        "INSERT INTO crm.connection (org_id, crm_source, account_id, settings) VALUES (%s, 'attio', 'ws', %s)",
        (ORG, json.dumps({"attio_attributes": {"lifecycle_stage": "stage", "company_name": "employer"}})),
    )
    q = update_contact(
        org,
        ORG,
        "p-1",
        {"first_name": "Zo", "email": "Z@X.io", "phone": "+1", "job_title": "CTO", "lifecycle_stage": "lead",
         "company_name": "Acme"},
    )  # fmt: skip
    assert q.payload == {
        "name": [{"first_name": "Zo", "last_name": "Ng", "full_name": "Zo Ng"}],
        "email_addresses": ["z@x.io"],
        "phone_numbers": [{"original_phone_number": "+1"}],
        "job_title": "CTO",
        "stage": "lead",
        "employer": "Acme",
    }
    cleared = update_contact(org, ORG, "p-1", {"email": None, "phone": None, "job_title": None})
    assert cleared.payload == {"email_addresses": [], "phone_numbers": [], "job_title": None}
    with pytest.raises(InvalidInputError, match=r"lead_status.*attio_attributes"):
        update_contact(org, ORG, "p-1", {"lead_status": "OPEN"})
