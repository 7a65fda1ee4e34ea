"""Maintenance: crm.maintenance() itself, and its schedule run by the real pg_cron (minute granularity)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from crmindex.platform.migrate import migrate
from crmindex.platform.queue import Queue, enqueue_job
from tests.conftest import CRON_DB, PgServer
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]


def _seed(conn: Conn) -> None:
    ensure_org(conn, ORG)
    upsert_contacts(
        conn,
        ORG,
        "hubspot",
        [
            ContactRow(crm_record_id="old"),
            ContactRow(crm_record_id="recent"),
            ContactRow(crm_record_id="alive"),
        ],
    )
    conn.execute(
        "UPDATE crm.contact_index SET deleted_at = now() - interval '40 days' WHERE crm_record_id = 'old'"
    )
    conn.execute(
        "UPDATE crm.contact_index SET deleted_at = now() - interval '1 day' WHERE crm_record_id = 'recent'"
    )
    conn.execute(
        "INSERT INTO crm.contact_record (org_id, crm_source, crm_record_id) VALUES (%s, 'hubspot', 'old')",
        (ORG,),
    )
    done = enqueue_job(conn, ORG, "k")
    stuck = enqueue_job(conn, ORG, "k")
    conn.execute(
        "UPDATE crm.job SET status = 'completed', completed_at = now() - interval '8 days' WHERE id = %s",
        (done,),
    )
    conn.execute(
        "UPDATE crm.job SET status = 'processing', attempts = 1, lease_token = gen_random_uuid(), "
        "leased_until = now() - interval '1 minute' WHERE id = %s",
        (stuck,),
    )


def _check(conn: Conn) -> None:
    ids = {r[0] for r in conn.execute("SELECT crm_record_id FROM crm.contact_index")}
    assert ids == {"recent", "alive"}
    assert conn.execute("SELECT count(*) FROM crm.contact_record").fetchone() == (0,)
    assert dict(conn.execute("SELECT status, count(*) FROM crm.job GROUP BY 1").fetchall()) == {"pending": 1}


def test_maintenance_pass(db: Conn) -> None:
    _seed(db)
    row = db.execute("SELECT crm.maintenance()").fetchone()
    assert row is not None
    summary = row[0]
    assert (
        summary["reclaimed_leases"] == 1 and summary["purged_jobs"] == 1 and summary["purged_contacts"] == 1
    )
    _check(db)
    assert Queue("crm.job").claim(db, "w", 5)  # the reclaimed job is claimable again


@pytest.fixture
def cron_db(pg_server: PgServer) -> Iterator[str]:
    """The database pg_cron runs in (cron.database_name of the test cluster), migrated."""
    dsn = pg_server.dsn(CRON_DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        except psycopg.Error as exc:  # an external server without pg_cron preloaded
            pytest.fail(f"pg_cron is not available on the test server: {exc}")
    migrate(dsn)
    yield dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'crmindex-%'")
        conn.execute("DROP SCHEMA crm CASCADE")


@pytest.mark.slow
def test_pg_cron_runs_the_schedule(cron_db: str) -> None:
    with psycopg.connect(cron_db, autocommit=True) as conn:
        _seed(conn)
        with pytest.raises(psycopg.Error, match="by the minute"):
            conn.execute("SELECT * FROM crm.install_maintenance_schedule('30 seconds')")
        conn.execute("SELECT * FROM crm.install_maintenance_schedule()")
        jobs = conn.execute("SELECT * FROM crm.install_maintenance_schedule()").fetchall()  # idempotent
        assert jobs == [("crmindex-maintenance", "* * * * *"), ("crmindex-prune-cron-history", "17 3 * * *")]
        deadline = time.monotonic() + 80
        ran = None
        while time.monotonic() < deadline:
            ran = conn.execute(
                "SELECT d.status, d.return_message FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid) "
                "WHERE j.jobname = 'crmindex-maintenance' AND d.status IN ('succeeded', 'failed') LIMIT 1"
            ).fetchone()
            if ran:
                break
            time.sleep(1)
        assert ran is not None, "pg_cron did not run the maintenance job within 80 s"
        assert ran[0] == "succeeded", ran
        _check(conn)
