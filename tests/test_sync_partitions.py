"""The split initial sync (issue 18 item 6): list pages and ``hs_object_id`` search ranges at once.

* a split sync and a list-only sync of the same fake portal give the same index rows;
* with the fake's real limits on (Free/Starter 100 / 10 s, search 5 / s) neither sees a 429, and no search
  pages into the 10,000-result cap's 400;
* every range read stays under the cap, also where ids are much denser than the first estimate (ranges are
  narrowed before they are read);
* a split sync stopped half-way resumes from its cursor to the same rows; so does one whose database restarted
  (while both streams ran, and after the listing had stopped with a search range half read) or whose search
  stream failed half-way through a range, and the rerun reads no more than what is left;
* the planner, the cursor and the send window (pure);
* the fake's id-range search answers as its general path does;
* the registry splits HubSpot syncs unless a connection opts out (``split_sync: false``).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import requests

from crmindex.app import CrmIndex
from crmindex.crm.errors import RetryableError
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.models import HubSpotPage, HubSpotSearchPage
from crmindex.crm.hubspot.partitions import IdRange, SendWindow, SplitState, narrow, plan_range
from crmindex.crm.registry import Account, crm
from crmindex.freshness.sync import HubSpotLister, SyncError, run_sync
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.migrate import migrate
from crmindex.platform.pgcluster import LocalCluster
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG_A, ORG_B
from tests.process_helpers import TOKEN_ENV, connect_crm, wait_for

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
# columns that name our own ids or times, not what the CRM said
OWN = ["org_id", "id", "indexed_at", "updated_at", "created_at", "synced_at", "associations_read_at"]
TABLES = ("crm.contact_index", "crm.company_index", "crm.deal_index")


def _rows(db: Conn, table: str, org: uuid.UUID) -> list[Any]:
    rows = db.execute(
        f"SELECT to_jsonb(t) - %s::text[] FROM {table} t WHERE org_id = %s ORDER BY crm_record_id",
        (OWN, org),
    ).fetchall()
    return [r[0] for r in rows]


def _deal_links(db: Conn, org: uuid.UUID) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT deal_crm_id, contact_crm_id, removed FROM crm.deal_contact WHERE org_id = %s ORDER BY 1, 2",
        (org,),
    ).fetchall()


def _sync(db: Conn, dsn: str, org: uuid.UUID, fake: FakeHubSpot, *, split: bool) -> HubSpotLister:
    limiter = PgRateLimiter(dsn, org, "hubspot")
    client = HubSpotClient(
        fake.base_url,
        lambda: TOKEN,
        limiter,
        retry=RetryPolicy.fast(max_attempts=6),
        search_cap=fake.search_cap,
    )
    lister = HubSpotLister(client, split=split)
    try:
        run_sync(db, org, lister, progress=False)
    finally:
        client.close()
        limiter.close()
    return lister


@pytest.fixture
def two_accounts(db: Conn) -> Conn:
    connect_with_token(db, None, ORG_A, "hubspot", None, account_id="62515")
    connect_with_token(db, None, ORG_B, "hubspot", None, account_id="62516")
    return db


@pytest.fixture
def limited_fake() -> Iterator[FakeHubSpot]:
    # Free/Starter: 100 requests / 10 s (rolling), search 5 / s (server.py's defaults); a small cap so that the
    # portal needs many ranges
    with FakeHubSpot(limits=True, search_cap=1_000) as f:
        f.seed_from(SyntheticCRM(seed=21, contacts=4_050))  # ranges of 800 straddle list pages
        yield f


def _same_rows(db: Conn) -> None:
    for table in TABLES:
        a, b = _rows(db, table, ORG_A), _rows(db, table, ORG_B)
        assert len(a) > 0 or table != "crm.contact_index"
        assert a == b, table
    assert _deal_links(db, ORG_A) == _deal_links(db, ORG_B)


def test_split_sync_equals_list_only_with_zero_429s(
    two_accounts: Conn, db_dsn: str, limited_fake: FakeHubSpot
) -> None:
    db, fake = two_accounts, limited_fake
    _sync(db, db_dsn, ORG_A, fake, split=False)
    listed = list(fake.request_log)
    fake.clear_log()
    lister = _sync(db, db_dsn, ORG_B, fake, split=True)
    split_log = list(fake.request_log)
    _same_rows(db)
    assert len(_rows(db, "crm.contact_index", ORG_B)) == 4_050
    # the fake's counters: no 429, no 400 (cap), in either run
    assert [r.status for r in listed + split_log if r.status != 200] == []
    searches = [r for r in split_log if r.path.endswith("/contacts/search")]
    pages = [r for r in split_log if r.path == "/crm/v3/objects/contacts" and r.method == "GET"]
    # both budgets did the work: search pages (200 each) and list pages (100 each)
    assert len(searches) >= 5 and len(pages) >= 5
    # fewer general-budget calls than the list-only sync: the search budget took part of the contacts
    general = [r for r in split_log if r.limit_class == "general"]
    assert len(general) < len([r for r in listed if r.limit_class == "general"])
    ranges = [rng for reader in lister.readers for rng in reader.ranges]
    assert ranges and all(total <= fake.search_cap for _, total in ranges)


def test_ranges_are_narrowed_where_ids_are_dense(two_accounts: Conn, db_dsn: str) -> None:
    db = two_accounts
    with FakeHubSpot(limits=False, search_cap=500) as fake:
        fake.seed_from(SyntheticCRM(seed=22, contacts=3_000, deals=0))
        store = fake.store("contacts")
        store.materialize()
        ids = sorted(r.id for r in store.all())
        # archive most of the lower ids: the first density estimate (all records over the whole span) is far
        # below the density at the top, so the first ranges hold more than planned
        for oid in ids[: len(ids) // 2]:
            if oid % 10:
                rec = store.get(oid)
                assert rec is not None
                store.archive(rec)
        _sync(db, db_dsn, ORG_A, fake, split=False)
        fake.clear_log()
        lister = _sync(db, db_dsn, ORG_B, fake, split=True)
        assert [r.status for r in fake.request_log if r.status != 200] == []
        readers = [r for r in lister.readers if r.object_type == "contacts"]
        assert readers and readers[0].narrowed >= 1
        assert all(total <= readers[0].target < 500 for _, total in readers[0].ranges)
    _same_rows(db)


def test_split_sync_resumes_from_its_cursor(two_accounts: Conn, db_dsn: str) -> None:
    db = two_accounts
    with FakeHubSpot(limits=False, search_cap=400) as fake:
        fake.seed_from(SyntheticCRM(seed=23, contacts=2_500))
        _sync(db, db_dsn, ORG_A, fake, split=False)
        client = HubSpotClient(fake.base_url, lambda: TOKEN, None, search_cap=400)

        class Stop(Exception):
            pass

        def stop_at(step: str, pages: int) -> None:
            if step == "contacts" and pages == 6:
                raise Stop

        with pytest.raises(Stop):
            run_sync(
                db, ORG_B, HubSpotLister(client, split=True), progress=False, read_ahead=1, on_page=stop_at
            )
        row = db.execute(
            "SELECT status, cursor FROM crm.sync_state WHERE org_id = %s AND object_type = 'contacts'",
            (ORG_B,),
        ).fetchone()
        assert row is not None and row[0] != "completed"
        state = SplitState.decode(str(row[1]))
        assert state is not None and not (state.list_done and state.search_done)
        run_sync(db, ORG_B, HubSpotLister(client, split=True), progress=False)
        client.close()
    _same_rows(db)


class _Paced(HubSpotClient):
    """The client of a split sync under test: its streams paced apart (a slow search lets the listing stop while a
    range is half read, a slow listing keeps both running), its search calls counted (a rerun that reads more than
    what is left fails at ``search_budget`` instead of walking on), and one search page failing on demand (the
    search stream dies half-way through a range, as after a CRM error that outlasts the retries)."""

    def __init__(self, *args: Any, search_delay: float = 0.0, list_delay: float = 0.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.search_delay, self.list_delay = search_delay, list_delay
        self.searches = 0
        self.search_budget: int | None = None
        # the next search of this object type for a range's second or later page fails (once)
        self.fail_paged_search: str | None = None

    def search(self, object_type: str, **kw: Any) -> HubSpotSearchPage:
        self.searches += 1
        if self.search_budget is not None and self.searches > self.search_budget:
            raise AssertionError(f"{self.searches} search calls: the rerun reads far more than what was left")
        if object_type == self.fail_paged_search and kw.get("after") is not None and kw.get("filter_groups"):
            self.fail_paged_search = None
            raise RetryableError("the CRM answered 502 (after retries)", source="hubspot", status=502)
        time.sleep(self.search_delay)
        return super().search(object_type, **kw)

    def iter_pages(self, object_type: str, **kw: Any) -> Iterator[HubSpotPage]:
        for page in super().iter_pages(object_type, **kw):
            time.sleep(self.list_delay)
            yield page


def _split_state(db: Conn, org: uuid.UUID) -> SplitState | None:
    row = db.execute(
        "SELECT cursor FROM crm.sync_state WHERE org_id = %s AND object_type = 'contacts'", (org,)
    ).fetchone()
    return None if row is None or row[0] is None else SplitState.decode(str(row[0]))


def _same_rows_as(db: Conn, reference: uuid.UUID, org: uuid.UUID) -> None:
    for table in TABLES:
        assert _rows(db, table, org) == _rows(db, table, reference), table
    assert _deal_links(db, org) == _deal_links(db, reference)


def _fast_limiter(dsn: str, org: uuid.UUID) -> PgRateLimiter:
    """The account's shared limiter (its own connection, reconnecting after a restart), with room to spare."""
    limiter = PgRateLimiter(dsn, org, "hubspot")
    for cls in ("general", "search"):
        limiter.configure(cls, 1_000, 1.0)
    return limiter


def _rerun_reads_only_what_is_left(db: Conn, org: uuid.UUID, client: _Paced, contacts: int) -> None:
    """Run the sync again (no pacing): it finishes with every step completed, reading the contacts left with at
    most a page per range more than they need (the old cursor made a rerun walk down to id 1, range by range)."""
    state = _split_state(db, org)
    assert state is not None and not (state.list_done and state.search_done), state
    client.search_delay = client.list_delay = 0.0
    client.searches, client.search_budget = 0, 2 * math.ceil(contacts / 200) + 20
    run_sync(db, org, HubSpotLister(client, split=True), progress=False)
    statuses = {str(r[0]) for r in db.execute("SELECT status FROM crm.sync_state WHERE org_id = %s", (org,))}
    assert statuses == {"completed"}


# when to restart the database: at the first committed contacts page whose cursor says so
RESTART_POINTS: dict[str, tuple[float, float, Callable[[SplitState], bool]]] = {
    # (search delay, list delay, the state to restart at)
    "both_streams_running": (0.0, 0.05, lambda st: not st.list_done and st.cur_last is not None),
    "listing_done_range_half_read": (0.05, 0.0, lambda st: st.list_done and st.cur_last is not None),
}


@pytest.mark.slow
def test_split_sync_resumes_after_a_database_restart() -> None:
    """The database restarts during a split sync, at two points: while both streams run with a search range half
    read, and after the listing stopped while the search is half-way through its last range. The run fails on the
    lost connection; a rerun finishes, reads only what was left, and indexes what a list-only sync indexes."""
    contacts = 2_500
    with FakeHubSpot(limits=False) as fake, LocalCluster() as cluster:
        fake.seed_from(SyntheticCRM(seed=25, contacts=contacts))
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE split")
        dsn = cluster.dsn("split")
        migrate(dsn)
        orgs = {"list_only": ORG_A, **{name: uuid.uuid4() for name in RESTART_POINTS}}
        with psycopg.connect(dsn, autocommit=True) as db:
            for i, org in enumerate(orgs.values()):
                connect_with_token(db, None, org, "hubspot", None, account_id=str(62_600 + i))
            _sync(db, dsn, ORG_A, fake, split=False)
        for name, (search_delay, list_delay, restart_at) in RESTART_POINTS.items():
            org = orgs[name]
            limiter = _fast_limiter(dsn, org)
            client = _Paced(fake.base_url, lambda: TOKEN, limiter, search_cap=fake.search_cap)
            client.search_delay, client.list_delay = search_delay, list_delay
            restarted: list[SplitState] = []
            try:
                with psycopg.connect(dsn, autocommit=True) as db:

                    def maybe_restart(
                        step: str,
                        pages: int,
                        db: Conn = db,
                        org: uuid.UUID = org,
                        at: Any = restart_at,
                        restarted: list[SplitState] = restarted,
                    ) -> None:
                        state = _split_state(db, org)
                        if step == "contacts" and state is not None and not restarted and at(state):
                            restarted.append(state)
                            cluster.restart()

                    with pytest.raises(psycopg.OperationalError):
                        run_sync(
                            db,
                            org,
                            HubSpotLister(client, split=True),
                            progress=False,
                            read_ahead=1,
                            on_page=maybe_restart,
                        )
                assert restarted, f"{name}: the sync never reached the point to restart at"
                with psycopg.connect(dsn, autocommit=True) as db:
                    assert _split_state(db, org) == restarted[0]  # what was committed before the restart
                    _rerun_reads_only_what_is_left(db, org, client, contacts)
            finally:
                client.close()
                limiter.close()
        with psycopg.connect(dsn, autocommit=True) as db:
            for name in RESTART_POINTS:
                _same_rows_as(db, ORG_A, orgs[name])
            assert len(_rows(db, "crm.contact_index", orgs["listing_done_range_half_read"])) == contacts


@pytest.mark.slow
def test_an_index_syncs_again_in_the_same_process_after_a_database_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``CrmIndex.sync`` (the registry's lister: split by default) loses its database half-way; the same object's
    next sync finishes with every contact (its pool's connections from before the restart are replaced, not tried
    and failed on)."""
    org, portal, contacts = uuid.uuid4(), 910_007, 4_000
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with FakeHubSpot(limits=False, portal_id=portal) as fake, LocalCluster() as cluster:
        fake.seed_from(SyntheticCRM(seed=27, contacts=contacts))
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE split")
        dsn = cluster.dsn("split")
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as db:
            connect_crm(db, dsn, org, "hubspot", str(portal), fake.base_url)
        fake.set_faults(latency=0.03)
        idx = CrmIndex(dsn)
        try:
            assert getattr(idx.lister(org, "hubspot"), "split", None) is True

            def restart_half_way() -> None:
                with psycopg.connect(dsn, autocommit=True) as db:
                    wait_for(lambda: _pages(db, org) >= 3, 60, "the sync did not get going")
                cluster.restart()

            watcher = threading.Thread(target=restart_half_way)
            watcher.start()
            with pytest.raises(psycopg.OperationalError):
                idx.sync(org)
            watcher.join()
            fake.clear_faults()
            [report] = idx.sync(org)
            assert report.records > 0
        finally:
            idx.close()
        with psycopg.connect(dsn, autocommit=True) as db:
            statuses = {
                str(r[0]) for r in db.execute("SELECT status FROM crm.sync_state WHERE org_id = %s", (org,))
            }
            assert statuses == {"completed"}
            assert len(_rows(db, "crm.contact_index", org)) == contacts


def _pages(db: Conn, org: uuid.UUID) -> int:
    row = db.execute(
        "SELECT coalesce(sum(pages), 0) FROM crm.sync_state WHERE org_id = %s AND object_type = 'contacts'",
        (org,),
    ).fetchone()
    return int(str(row[0])) if row else 0


def test_split_sync_resumes_after_its_search_stream_fails_mid_range(two_accounts: Conn, db_dsn: str) -> None:
    """The search stream dies half-way through a range (a CRM error past the retries, while the listing has
    stopped): the sync fails with the range's position saved, and a rerun finishes to the list-only sync's rows."""
    db, contacts = two_accounts, 2_500
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=26, contacts=contacts))
        _sync(db, db_dsn, ORG_A, fake, split=False)
        limiter = _fast_limiter(db_dsn, ORG_B)
        client = _Paced(fake.base_url, lambda: TOKEN, limiter, search_cap=fake.search_cap, search_delay=0.05)
        client.fail_paged_search = "contacts"
        try:
            with pytest.raises(SyncError):
                run_sync(db, ORG_B, HubSpotLister(client, split=True), progress=False, read_ahead=1)
            state = _split_state(db, ORG_B)
            assert state is not None and state.cur_last is not None, state  # a range half read
            _rerun_reads_only_what_is_left(db, ORG_B, client, contacts)
        finally:
            client.close()
            limiter.close()
    _same_rows(db)


def test_plan_range_width_follows_the_density() -> None:
    assert plan_range(10_000, 0, 1.0, 800) == IdRange(9_200, 10_000)
    assert plan_range(10_000, 9_500, 1.0, 800) == IdRange(9_500, 10_000)  # never below the floor
    assert plan_range(10_000, 10_000, 1.0, 800) is None
    assert plan_range(10_000, 0, 0.01, 800) == IdRange(0, 10_000)
    assert plan_range(10_000, 0, 0.0, 800) == IdRange(0, 10_000)  # unknown density: all of it


def test_planner_keeps_every_range_under_the_cap() -> None:
    """The search stream's planning loop (plan, narrow while the first page reports too many, move down) over
    ids clustered very unevenly: every range read holds at most the target, and the ranges tile the span."""
    ids = sorted(
        {*range(1, 2_000, 97), *range(50_000, 62_000), *range(70_000, 70_500, 3), *range(90_000, 99_000)}
    )
    cap, target = 10_000, 8_000

    def count(r: IdRange) -> int:
        return sum(1 for i in ids if r.lo <= i < r.hi)

    density = len(ids) / (ids[-1] - ids[0] + 1)
    hi, floor = ids[-1] + 1, ids[0]
    read: list[tuple[IdRange, int]] = []
    while (r := plan_range(hi, floor, density, target)) is not None:
        total = count(r)
        while total > target and r.width > 1:
            density = total / r.width
            r = narrow(r, total, target)
            total = count(r)
        read.append((r, total))
        density = total / r.width if total else density
        hi = r.lo
    assert all(total <= target < cap for _, total in read)
    assert sum(total for _, total in read) == len(ids)
    assert all(a.lo == b.hi for (a, _), (b, _) in itertools.pairwise(read))
    assert read[-1][0].lo == floor and read[0][0].hi == ids[-1] + 1


def test_split_state_round_trips() -> None:
    st = SplitState(
        top=99, floor=50, density=0.5, list_after="abc", list_top=10, cur_lo=40, cur_hi=50, cur_last=44
    )
    assert SplitState.decode(st.encode()) == st
    assert SplitState.decode("12345") is None and SplitState.decode(None) is None


def test_send_window_spaces_calls_as_the_server_counts_them() -> None:
    """No more than ``limit`` call starts within ``seconds`` of an earlier call's return (its arrival), even when
    the calls themselves take time: the rolling window the fake (and HubSpot) counts arrivals in."""
    now = [0.0]
    window = SendWindow(5, 1.0, 0.05, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    starts: list[float] = []
    returns: list[float] = []
    for _ in range(23):
        with window.call():
            starts.append(now[0])
            now[0] += 0.03  # the call's round trip
        returns.append(now[0])
    for i in range(5, len(starts)):
        assert starts[i] >= returns[i - 5] + 1.0
    # and not slower than needed: 5 calls per 1.08 s (1 s + the margin + one round trip)
    assert starts[-1] - starts[0] <= (len(starts) / 5) * 1.08 + 0.1


def test_fake_id_range_search_answers_as_the_general_path() -> None:
    """The fake answers an ``hs_object_id``-range search from the id order (without building every seeded
    record); its answer equals the general path's (forced here by a filter on another property that every record
    matches): archived records left out, ascending ids, the range's ``total``, ``after`` paging, and the cap."""
    with FakeHubSpot(limits=False, search_cap=500) as fake:
        fake.seed_from(SyntheticCRM(seed=24, contacts=600, deals=0))
        store = fake.store("contacts")
        ids = sorted(r.id for r in store.all())
        for oid in ids[10:400:7]:
            rec = store.get(oid)
            assert rec is not None
            store.archive(rec)
        lo, hi = ids[5], ids[590]

        def ask(extra: list[dict[str, str]], after: str | None) -> requests.Response:
            body: dict[str, Any] = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "hs_object_id", "operator": "GTE", "value": str(lo)},
                            {"propertyName": "hs_object_id", "operator": "LT", "value": str(hi)},
                            *extra,
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": ["email", "firstname"],
                "limit": 200,
            }
            if after is not None:
                body["after"] = after
            return requests.post(
                f"{fake.base_url}/crm/v3/objects/contacts/search",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )

        everyone = [{"propertyName": "hs_object_id", "operator": "GT", "value": "0"}]
        every_other = [{"propertyName": "createdate", "operator": "GTE", "value": "0"}]
        for after in (None, "200"):
            fast, general = ask(everyone, after), ask(every_other, after)
            assert fast.status_code == general.status_code == 200
            assert fast.json() == general.json()
            assert fast.json()["total"] == sum(1 for i in ids if lo <= i < hi and (i not in ids[10:400:7]))
        # paging past the cap is refused the same way (400) on both paths
        assert ask(everyone, "200").json()["paging"]["next"]["after"] == "400"
        assert ask(everyone, "400").status_code == ask(every_other, "400").status_code == 400


def test_the_registry_splits_hubspot_syncs_unless_a_connection_opts_out() -> None:
    entry = crm("hubspot")
    client = entry.client(Account(entry.api_base, lambda: TOKEN, None))
    try:
        default, on = entry.lister(client, {}), entry.lister(client, {"split_sync": True})
        off = entry.lister(client, {"split_sync": False})
        for lister in (default, on):
            assert isinstance(lister, HubSpotLister)
            assert lister.split and lister.watermark_margin > timedelta(0)
        assert isinstance(off, HubSpotLister)
        assert not off.split and off.watermark_margin == timedelta(0)
    finally:
        client.close()


def test_fake_id_probes_answer_as_the_general_path_without_building_the_seed() -> None:
    """The split sync's probes (no filter, sorted by ``hs_object_id`` descending / ascending, one result) are answered
    from the id order: the same answer as the general path (forced by a filter every record matches), without
    building the lazily seeded records (a 100K seed took ~9 s for the first probe, which a list-only sync never
    pays). Fails if an unfiltered or descending id search builds the seed again."""
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=25, contacts=700, deals=0))
        store = fake.store("contacts")
        ids = list(store.ids_from(0))
        for oid in (ids[-1], ids[0], ids[300]):  # the highest and lowest are archived: the probes skip them
            rec = store.get(oid)
            assert rec is not None
            store.archive(rec)

        def ask(direction: str, groups: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "filterGroups": groups,
                "sorts": [{"propertyName": "hs_object_id", "direction": direction}],
                "properties": ["hs_object_id"],
                "limit": 1,
            }
            if after is not None:
                body["after"] = after
            resp = requests.post(
                f"{fake.base_url}/crm/v3/objects/contacts/search",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
            assert resp.status_code == 200
            return dict(resp.json())

        asks = [("DESCENDING", None), ("ASCENDING", None), ("DESCENDING", "5")]
        fast = [ask(d, [], after) for d, after in asks]
        assert store.seed is not None  # not built
        every = [{"filters": [{"propertyName": "createdate", "operator": "GTE", "value": "0"}]}]
        general = [ask(d, every, after) for d, after in asks]
        assert store.seed is None  # the general path built it
        assert fast == general
        assert [int(a["results"][0]["id"]) for a in fast[:2]] == [ids[-2], ids[1]]
        assert fast[0]["total"] == len(ids) - 3


def test_parallel_writers_checkpoint_in_order_and_surface_errors(two_accounts: Conn) -> None:
    """``run_sync(writers=2)``'s bookkeeping: a group written before the one ahead of it is not checkpointed until
    that one is (a cursor past an unwritten page would skip it on resume); a writer's error reaches the sync with
    the cursor left after the last group written in order."""
    import contextlib

    from crmindex.crm.protocols import Page
    from crmindex.freshness.sync import StepReport, _Checkpoints, _Writers

    db = two_accounts
    db.execute("SELECT crm.sync_restart(%s, 'hubspot')", (ORG_A,))
    release = threading.Event()

    class Boom(Exception):
        pass

    def write(conn: object, rows: list[dict[str, Any]]) -> None:
        if rows[0]["g"] == 0:
            assert release.wait(10)
        if rows[0]["g"] == 2:
            raise Boom

    def cursor() -> object:
        row = db.execute(
            "SELECT cursor FROM crm.sync_state WHERE org_id = %s AND object_type = 'contacts'", (ORG_A,)
        ).fetchone()
        return None if row is None else row[0]

    pool = _Writers(lambda: contextlib.nullcontext(db), 2, write)
    done = _Checkpoints(db, str(ORG_A), "hubspot", "contacts", StepReport("contacts"), _NoBar(), None)
    try:
        for seq in range(2):
            pool.submit(seq, [{"g": seq}])
            done.pending.append((seq, [Page([], f"after-{seq}")], 1))
        wait_for(lambda: 1 in pool._done, 10, "group 1 written")
        assert done.advance(pool, wait=False) is None  # group 1 is written, group 0 is not: nothing moves
        assert cursor() is None
        release.set()
        assert done.advance(pool, wait=True) == "after-1"
        assert cursor() == "after-1" and done.report.pages == 2
        pool.submit(2, [{"g": 2}])
        done.pending.append((2, [Page([], "after-2")], 1))
        with pytest.raises(Boom):
            done.advance(pool, wait=True)
        assert cursor() == "after-1"
    finally:
        release.set()
        pool.close()


def test_a_split_sync_writes_on_two_connections_by_default_and_a_list_only_one_on_its_own(
    two_accounts: Conn, db_dsn: str
) -> None:
    """The split sync reads ~2,000 records/s, more than one connection writes on a busy machine: by default its
    contacts and companies are written on SPLIT_SYNC_WRITERS connections; a list-only sync (1,000/s) writes on the
    sync's own connection. Both index the same rows."""
    import contextlib

    from crmindex.freshness.sync import SPLIT_SYNC_WRITERS

    db = two_accounts
    opened: dict[uuid.UUID, int] = {ORG_A: 0, ORG_B: 0}

    def counting(org: uuid.UUID) -> Callable[[], contextlib.AbstractContextManager[Conn]]:
        @contextlib.contextmanager
        def connection() -> Iterator[Conn]:
            opened[org] += 1
            with psycopg.connect(db_dsn, autocommit=True) as c:
                yield c

        return connection

    with FakeHubSpot(limits=False, search_cap=400) as fake:
        fake.seed_from(SyntheticCRM(seed=27, contacts=1_500))
        client = HubSpotClient(fake.base_url, lambda: TOKEN, None, search_cap=400)
        try:
            for org, split in ((ORG_A, False), (ORG_B, True)):
                run_sync(
                    db,
                    org,
                    HubSpotLister(client, split=split),
                    progress=False,
                    write_connections=counting(org),
                )
        finally:
            client.close()
    assert SPLIT_SYNC_WRITERS == 2
    # companies, contacts and their archived listings, two writers each; deals on the sync's own connection
    assert opened == {ORG_A: 0, ORG_B: 4 * SPLIT_SYNC_WRITERS}
    _same_rows(db)


class _NoBar:
    def update(self, n: int) -> None:
        pass


def test_split_sync_with_parallel_writers_equals_list_only_and_resumes(
    two_accounts: Conn, db_dsn: str
) -> None:
    """The split sync written on two connections at once (``writers=2``), stopped half-way and run again, indexes
    the same rows as a list-only sync."""
    db = two_accounts
    with FakeHubSpot(limits=False, search_cap=400) as fake:
        fake.seed_from(SyntheticCRM(seed=26, contacts=2_500))
        _sync(db, db_dsn, ORG_A, fake, split=False)
        client = HubSpotClient(fake.base_url, lambda: TOKEN, None, search_cap=400)

        class Stop(Exception):
            pass

        def stop_at(step: str, pages: int) -> None:
            if step == "contacts" and pages == 4:
                raise Stop

        with pytest.raises(Stop):
            run_sync(db, ORG_B, HubSpotLister(client, split=True), progress=False, on_page=stop_at, writers=2)
        run_sync(db, ORG_B, HubSpotLister(client, split=True), progress=False, writers=2)
        client.close()
    _same_rows(db)
