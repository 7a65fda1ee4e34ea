"""Processing webhook deliveries: every event type, any order, duplicates, bad deliveries kept aside."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.index.writes import ContactRow, DealRow, ensure_org, upsert_contacts, upsert_deals
from crmindex.platform.queue import Queue, Worker
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def ev(kind: str, object_id: int | None, at: datetime, **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "eventId": random.randint(1, 10**9),
        "subscriptionId": 1,
        "portalId": 77,
        "appId": 5,
        "occurredAt": ms(at),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "changeSource": "CRM_UI",
    }
    if object_id is not None:
        e["objectId"] = object_id
    e.update(extra)
    return e


def deliver(db: Conn, events: Any, source: str = "hubspot", account: str = "77") -> None:
    body = json.dumps(events)
    db.execute(
        "SELECT crm.webhook_accept(%s, %s, %s, %s, '{}', %s)", (ORG, source, account, body, len(events))
    )


def drain(db_dsn: str) -> int:
    return Worker(db_dsn, INBOX, process_inbox).run_once()


@pytest.fixture
def org(db: Conn) -> Conn:
    ensure_org(db, ORG)
    upsert_contacts(
        db,
        ORG,
        "hubspot",
        [
            ContactRow(
                crm_record_id="1",
                first_name="Ann",
                job_title="Engineer",
                email="ann@a.com",
                phone="1",
                crm_updated_at=T0,
            ),
            ContactRow(crm_record_id="2", first_name="Bob", job_title="Sales Manager", crm_updated_at=T0),
        ],
    )
    return db


def contact(db: Conn, rid: str, *cols: str) -> tuple[object, ...]:
    row = db.execute(
        f"SELECT {', '.join(cols)} FROM crm.contact_index WHERE crm_record_id = %s", (rid,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def hydrate_jobs(db: Conn) -> set[tuple[str, str]]:
    rows = db.execute(
        "SELECT payload ->> 'object_type', payload ->> 'crm_record_id' FROM crm.job "
        "WHERE kind = 'hydrate' AND status = 'pending'"
    ).fetchall()
    return {(str(a), str(b)) for a, b in rows}


def test_property_changes_apply_by_event_time_in_any_order(org: Conn, db_dsn: str) -> None:
    changes = [
        ev(
            "contact.propertyChange",
            1,
            T0 + timedelta(minutes=m),
            propertyName="jobtitle",
            propertyValue=title,
        )
        for m, title in [(1, "Director"), (2, "VP Sales"), (3, "CTO")]
    ]
    shuffled = [changes[2], changes[0], changes[1], changes[0]]  # reordered and duplicated
    for e in shuffled:
        deliver(org, [e])
    assert drain(db_dsn) == 4
    assert contact(org, "1", "job_title", "seniority") == ("CTO", "c_suite")
    # an event older than the last full snapshot changes nothing
    deliver(
        org,
        [
            ev(
                "contact.propertyChange",
                2,
                T0 - timedelta(days=1),
                propertyName="jobtitle",
                propertyValue="Intern",
            )
        ],
    )
    drain(db_dsn)
    assert contact(org, "2", "job_title") == ("Sales Manager",)


def test_a_field_changed_by_webhook_survives_an_older_snapshot(org: Conn, db_dsn: str) -> None:
    deliver(
        org,
        [
            ev(
                "contact.propertyChange",
                1,
                T0 + timedelta(hours=2),
                propertyName="lifecyclestage",
                propertyValue="salesqualifiedlead",
            )
        ],
    )
    drain(db_dsn)
    assert contact(org, "1", "lifecycle_stage") == ("sql",)
    # a batch read taken at T0+1h arrives late: it updates other fields, not the newer lifecycle stage
    upsert_contacts(
        org,
        ORG,
        "hubspot",
        [
            ContactRow(
                crm_record_id="1",
                first_name="Anne",
                lifecycle_stage="lead",
                crm_updated_at=T0 + timedelta(hours=1),
            )
        ],
    )
    assert contact(org, "1", "first_name", "lifecycle_stage") == ("Anne", "sql")
    # a snapshot newer than the field's change wins
    upsert_contacts(
        org,
        ORG,
        "hubspot",
        [ContactRow(crm_record_id="1", lifecycle_stage="customer", crm_updated_at=T0 + timedelta(hours=3))],
    )
    assert contact(org, "1", "lifecycle_stage", "field_versions") == ("customer", None)


def test_creation_and_unknown_records_are_hydrated_once(org: Conn, db_dsn: str) -> None:
    deliver(
        org,
        [
            ev("contact.creation", 9, T0),
            ev("contact.creation", 9, T0),
            ev(
                "contact.propertyChange",
                10,
                T0 + timedelta(seconds=1),
                propertyName="email",
                propertyValue="x@y.com",
            ),
        ],
    )
    deliver(org, [ev("contact.creation", 9, T0)])  # a retried delivery
    drain(db_dsn)
    assert hydrate_jobs(org) == {("contacts", "9"), ("contacts", "10")}
    assert org.execute("SELECT count(*) FROM crm.job WHERE kind = 'hydrate'").fetchone() == (2,)


def test_deletion_privacy_restore_and_merge(org: Conn, db_dsn: str) -> None:
    t = T0 + timedelta(hours=1)
    deliver(org, [ev("contact.privacyDeletion", 1, t), ev("contact.deletion", 2, t)])
    drain(db_dsn)
    assert contact(org, "1", "deleted_at", "first_name", "email", "phone") == (t, None, None, None)
    assert contact(org, "2", "deleted_at", "first_name") == (t, "Bob")
    # a restore older than the deletion is ignored; a newer one undeletes and refetches
    deliver(org, [ev("contact.restore", 2, t - timedelta(minutes=5))])
    drain(db_dsn)
    assert contact(org, "2", "deleted_at") == (t,)
    deliver(org, [ev("contact.restore", 2, t + timedelta(minutes=5))])
    drain(db_dsn)
    assert contact(org, "2", "deleted_at") == (None,)
    assert ("contacts", "2") in hydrate_jobs(org)
    upsert_contacts(org, ORG, "hubspot", [ContactRow(crm_record_id="3", first_name="Dup", crm_updated_at=T0)])
    deliver(org, [ev("contact.merge", 2, t + timedelta(hours=1), primaryObjectId=2, mergedObjectIds=[3])])
    drain(db_dsn)
    assert contact(org, "3", "merged_into") == ("2",)
    assert contact(org, "3", "deleted_at") != (None,)


def test_associations_converge_whatever_the_order(org: Conn, db_dsn: str) -> None:
    upsert_deals(org, ORG, "hubspot", [DealRow(crm_record_id="d1", stage="contractsent", amount=9000)])
    add = ev(
        "deal.associationChange",
        None,
        T0 + timedelta(minutes=1),
        associationType="DEAL_TO_CONTACT",
        fromObjectId="d1",
        toObjectId=2,
        associationRemoved=False,
    )
    remove = ev(
        "deal.associationChange",
        None,
        T0 + timedelta(minutes=2),
        associationType="DEAL_TO_CONTACT",
        fromObjectId="d1",
        toObjectId=2,
        associationRemoved=True,
    )
    readd = ev(
        "deal.associationChange",
        None,
        T0 + timedelta(minutes=3),
        associationType="CONTACT_TO_DEAL",
        fromObjectId=2,
        toObjectId="d1",
        associationRemoved=False,
    )
    company = ev(
        "contact.associationChange",
        None,
        T0 + timedelta(minutes=1),
        associationType="CONTACT_TO_COMPANY",
        fromObjectId=2,
        toObjectId=555,
        associationRemoved=False,
    )
    for e in (readd, remove, add, company):  # newest first
        deliver(org, [e])
    drain(db_dsn)
    assert contact(org, "2", "has_active_deal", "deal_value", "company_crm_id") == (True, 9000, "555")
    deliver(
        org,
        [
            ev(
                "deal.associationChange",
                None,
                T0 + timedelta(minutes=4),
                associationType="DEAL_TO_CONTACT",
                fromObjectId="d1",
                toObjectId=2,
                associationRemoved=True,
            ),
            ev(
                "contact.associationChange",
                None,
                T0 + timedelta(minutes=4),
                associationType="CONTACT_TO_COMPANY",
                fromObjectId=2,
                toObjectId=555,
                associationRemoved=True,
            ),
        ],
    )
    drain(db_dsn)
    assert contact(org, "2", "has_active_deal", "company_crm_id") == (False, None)


def test_a_bad_delivery_is_kept_with_its_error_and_blocks_nothing(org: Conn, db_dsn: str) -> None:
    deliver(
        org,
        [
            ev(
                "contact.propertyChange",
                1,
                T0 + timedelta(hours=1),
                propertyName="jobtitle",
                propertyValue="COO",
            ),
            ev("ticket.creation", 5, T0),
        ],
    )
    deliver(
        org,
        [
            ev(
                "contact.propertyChange",
                2,
                T0 + timedelta(hours=1),
                propertyName="jobtitle",
                propertyValue="Head of Sales",
            )
        ],
    )
    org.execute(
        "SELECT crm.webhook_accept(%s, 'hubspot', '77', '[{\"not\": \"an event\"}]', '{}', 1)", (ORG,)
    )
    drain(db_dsn)
    rows = org.execute("SELECT status, last_error FROM crm.webhook_inbox ORDER BY id").fetchall()
    assert rows[0][0] == "dead_letter" and "ticket.creation" in str(rows[0][1])
    assert rows[1] == ("completed", None)
    assert rows[2][0] == "dead_letter" and "invalid" in str(rows[2][1])
    assert contact(org, "1", "job_title") == ("COO",)  # what could be applied was applied
    assert contact(org, "2", "job_title") == ("Head of Sales",)
    # after a fix, requeued deliveries re-apply harmlessly
    assert Queue("crm.webhook_inbox").requeue(org, ORG) == 2


def test_attio_events_refetch_and_delete(org: Conn, db_dsn: str) -> None:
    upsert_contacts(org, ORG, "attio", [ContactRow(crm_record_id="p1", first_name="Zoe", crm_updated_at=T0)])

    def attio(event_type: str, record: str, **extra: Any) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "id": {"workspace_id": "ws", "object_id": "people", "record_id": record, "attribute_id": "a"},
            "actor": {"type": "api-token", "id": "x"},
            **extra,
        }

    for e in [attio("record.updated", "p2"), attio("record.updated", "p2"), attio("record.created", "p3")]:
        deliver(org, {"webhook_id": "w", "events": [e]}, source="attio", account="ws")
    deliver(org, {"webhook_id": "w", "events": [attio("record.deleted", "p1")]}, source="attio", account="ws")
    drain(db_dsn)
    # a deletion is a hint too (Attio events carry no time): p1 is refetched, and soft-deleted only when the
    # fetch finds it gone (tests/test_trust_webhooks.py)
    assert hydrate_jobs(org) == {("contacts", "p1"), ("contacts", "p2"), ("contacts", "p3")}
    row = org.execute(
        "SELECT deleted_at IS NOT NULL FROM crm.contact_index WHERE crm_record_id = 'p1'"
    ).fetchone()
    assert row == (False,)
