"""The Python layer: the package's functions (search, refs, materialization, write-back, status, connections),
called by A's application session with org B or B's references, raise or return nothing of B; A cannot claim
B's CRM account."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from crmindex.crm.connections import get_connection, list_connections, register_connection
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.errors import InvalidInputError, NotFoundError, OrgMismatchError
from crmindex.index import search
from crmindex.index.refs import resolve_contact, resolve_contacts
from crmindex.platform.queue import Queue, enqueue_job
from crmindex.records.materialize import (
    activate_by_email,
    get_contact_record,
    materialize_contact,
    materialize_many,
    record_enrichment,
    request_materialization,
)
from crmindex.status import list_orgs, org_status
from crmindex.testing import FakeHubSpot
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.tenancy.helpers import (
    B_DOMAIN,
    B_EMAIL,
    COMPANY,
    COMPANY_FILTERS,
    PORTAL,
    SEARCH_FILTERS,
    Conn,
    Facts,
    assert_nothing_of_b,
    snapshot,
)


@pytest.fixture
def fake_fetcher() -> Iterator[tuple[FakeHubSpot, HubSpotFetcher]]:
    with FakeHubSpot(limits=False) as fake:
        client = HubSpotClient(
            fake.base_url, lambda: "test-token", None, retry=RetryPolicy.fast(max_attempts=2)
        )
        try:
            yield fake, HubSpotFetcher(client)
        finally:
            client.close()


def test_the_python_layer_acting_for_a_gets_nothing_of_b(
    su: Conn, app: Conn, facts: Facts, fake_fetcher: tuple[FakeHubSpot, HubSpotFetcher]
) -> None:
    fake, fetcher = fake_fetcher
    before = snapshot(su)
    b_refs: list[str | int] = [f"#{facts.contact_ids[0]}", facts.contact_ids[1], "91", B_EMAIL]
    mismatch: list[Callable[[], object]] = [
        lambda: search.search_contacts(app, B, "Stan"),
        lambda: search.search_companies(app, B, COMPANY[B]),
        lambda: search.search(app, B, "vps"),
        lambda: search.interpret(app, B, "vps"),
        lambda: search.resolve_contact(app, B, B_EMAIL),
        lambda: search.run_search_params(app, B, {"query": "stan"}),
        lambda: materialize_contact(app, fetcher, B, "91"),
        lambda: activate_by_email(app, fetcher, B, B_EMAIL),
        lambda: materialize_many(app, fetcher, B, ["91"]),
        lambda: org_status(app, B),
        lambda: create_contact(app, B, "hubspot", {"email": f"x@{B_DOMAIN}"}),
        lambda: update_contact(app, B, B_EMAIL, {"job_title": "pwned"}),
        lambda: request_materialization(app, B, ["91"]),
        lambda: resolve_contacts(app, B, b_refs),
    ]
    for call in mismatch:
        with pytest.raises(OrgMismatchError):
            call()
    # the queue core is the workers' (issue 13): refused to the application role for any org
    denied: list[Callable[[], object]] = [
        lambda: enqueue_job(app, B, "refetch"),
        lambda: enqueue_job(app, A, "refetch"),
        lambda: Queue("crm.job").requeue(app, B),
        lambda: Queue("crm.job").claim(app, "attacker", 100, org_id=B),
        lambda: Queue("crm.writeback_queue").claim(app, "attacker", 100),
    ]
    for call in denied:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call()
    not_found: list[Callable[[], object]] = [
        *(lambda r=r: resolve_contact(app, A, r) for r in b_refs),
        *(lambda r=r: materialize_contact(app, fetcher, A, r) for r in b_refs),
        *(lambda r=r: record_enrichment(app, fetcher, A, r, "apollo", {"x": 1}) for r in b_refs),
        *(lambda r=r: update_contact(app, A, r, {"job_title": "pwned"}) for r in b_refs),
        *(lambda r=r: request_materialization(app, A, [r]) for r in b_refs),
        lambda: materialize_many(app, fetcher, A, b_refs),
        lambda: get_contact_record(app, A, facts.record_id),
        lambda: get_contact_record(app, B, facts.record_id),
        lambda: get_connection(app, B, "hubspot"),
    ]
    for call in not_found:
        with pytest.raises(NotFoundError):
            call()
    # connecting is an operator path: refused to the application role (no EXECUTE; the function checks too)
    with pytest.raises((psycopg.errors.InsufficientPrivilege, OrgMismatchError)):
        register_connection(app, B, "hubspot", "4999", auth_kind="private_app")
    # calls that succeed for A, with B's ids / emails / domains / companies as references and filters
    results: list[object] = [
        resolve_contacts(app, A, b_refs),
        *(search.search_contacts(app, A, "", flt).hits for flt in SEARCH_FILTERS),
        *(search.search_contacts(app, A, text).hits for text in (B_EMAIL, B_DOMAIN)),
        search.search_contacts(app, A, "", after=f"0:{min(facts.contact_ids) - 1}").hits,
        *(search.search_companies(app, A, "", flt).hits for flt in COMPANY_FILTERS),
        search.search_companies(app, A, COMPANY[B]).hits,
        search.search(app, A, f"VPs at {B_DOMAIN}").hits,
        search.search(app, A, B_EMAIL).hits,
        search.resolve_contact(app, A, B_EMAIL),
        search.run_search_params(app, A, {"query": "", "filters": {"email": B_EMAIL}}).hits,
        list_connections(app, B),
    ]
    assert all(r in ([], [None] * len(b_refs)) for r in results), results
    assert_nothing_of_b(results, facts, what="python layer")
    # what A may see of itself carries nothing of B either
    own = [
        org_status(app, A),
        list_orgs(app),
        list_connections(app),
        search.search(app, A, f"Stan from {COMPANY[B]}"),
    ]
    assert own[1] == [A]
    assert_nothing_of_b(own, facts, what="python layer, own org")
    # the meeting-booked path with B's email makes a local contact of A's, never B's record
    walk_in = activate_by_email(app, fetcher, A, B_EMAIL, "Stan")
    assert walk_in.outcome == "local" and walk_in.record is not None and walk_in.record.org_id == A
    assert_nothing_of_b(walk_in, facts, what="activate_by_email")
    assert fake.requests_to("/crm/v3/objects/contacts") == []  # nothing of B was fetched on A's behalf
    assert snapshot(su) == before


def test_an_org_cannot_claim_another_orgs_crm_account(app: Conn, su: Conn) -> None:
    """Webhooks are routed by portal / workspace id: A registering B's portal would take B's webhooks. The
    check runs as the table owner, so row-level security (which hides B's connection from A) cannot blind it."""
    before = snapshot(su)
    for source, account in (("hubspot", PORTAL[B]), ("attio", f"ws-{PORTAL[B]}")):
        with pytest.raises((psycopg.errors.InsufficientPrivilege, OrgMismatchError)):
            register_connection(app, A, source, account, auth_kind="private_app")
        # even the operator path refuses it (the account ids come from the tokens, and one account is one org's)
        with pytest.raises(InvalidInputError, match=r"another org|disconnect it first"):
            register_connection(su, A, source, account, auth_kind="private_app")
        with pytest.raises(psycopg.Error) as exc:
            app.execute(
                "UPDATE crm.connection SET account_id = %s WHERE org_id = %s AND crm_source = %s",
                (account, A, source),
            )
        assert exc.value.sqlstate in ("CX002", "42501"), exc.value  # no UPDATE for crm_app at all now
    assert snapshot(su) == before
    assert get_connection(app, A, "hubspot").account_id == PORTAL[A]
