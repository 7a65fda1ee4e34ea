"""``FakeHubSpot``: a local HubSpot CRM v3/v4 server with HubSpot's shapes, limits, errors and webhooks.

Endpoints (the ones the clients use): objects list/get/create/update/archive, batch read/create/update/
upsert/archive, search, merge (contacts, companies, deals), v4 association batch reads and default
association create. Bodies follow the public OpenAPI shapes: every property value is a string,
``createdAt``/``updatedAt``/``archived``(/``archivedAt``), list paging ``{"paging":{"next":{"after":...}}}``,
search ``total`` with integer-offset ``after`` and a 400 when paging past 10,000 results, 207 multi-status
``errors`` for partial batch failures, 400 for more than 100 batch inputs, HubSpot error bodies
``{"status":"error","message","correlationId","category"}``, 429 bodies with ``policyName``
(``TEN_SECONDLY_ROLLING`` for the 10-second window, ``SECONDLY`` for search) and
``X-HubSpot-RateLimit-*`` headers on non-search responses.

Mutation helpers (``create``, ``update_property``, ``delete``, ``restore``, ``merge``, ``associate``)
change the store and emit HubSpot webhook event arrays signed v1 (``X-HubSpot-Signature``) and v3
(``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp``). API writes emit too (``changeSource``
``API``), like a real portal echoing an integration's own writes.

Seeded data is generated lazily from a :class:`~crmindex.testing.synthetic.SyntheticCRM`: 500,000 contacts cost
nothing until read; a record is stored only once it is written to. A search materialises the object type
once (it has to look at every record).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmindex.testing._server import EmitMode, FakeServer, Request, Response, SlidingWindow, new_uuid

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM

KINDS = ("contacts", "companies", "deals")
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
ALIASES = {"contact": "contacts", "company": "companies", "deal": "deals", "0-1": "contacts", "0-2": "companies",
           "0-3": "deals"}  # fmt: skip
LASTMOD = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"],
    "companies": ["name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "deals": ["dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate",
              "hs_object_id"],
}  # fmt: skip
ALWAYS_PROPERTIES = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"}
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids",
             "hs_createdate"}  # fmt: skip
WRITABLE = {
    "contacts": {"firstname", "lastname", "email", "phone", "company", "jobtitle", "lifecyclestage", "hs_lead_status",
                 "associatedcompanyid", "hubspot_owner_id", "city", "country", "website", "mobilephone", "state",
                 "address", "zip", "industry", "annualrevenue", "numemployees"},
    "companies": {"name", "domain", "industry", "numberofemployees", "annualrevenue", "city", "country", "state",
                  "phone", "website", "description", "hubspot_owner_id", "lifecyclestage", "type"},
    "deals": {"dealname", "dealstage", "pipeline", "amount", "closedate", "hubspot_owner_id", "hs_is_closed",
              "dealtype", "description", "hs_priority"},
}  # fmt: skip
LIFECYCLE_OPTIONS = {"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                     "customer", "evangelist", "other"}  # fmt: skip
LEAD_STATUS_OPTIONS = {"NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                       "CONNECTED", "BAD_TIMING"}  # fmt: skip
LOCAL_TO_HUBSPOT_LIFECYCLE = {"mql": "marketingqualifiedlead", "sql": "salesqualifiedlead"}
NUMERIC = {"amount", "numberofemployees", "annualrevenue", "hs_object_id", "numemployees"}
DATES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "hs_createdate"}
SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_additional_emails"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
}
# association type ids: (from, to) -> (unlabeled typeId, primary typeId | None)
ASSOC_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
}
BATCH_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
SEARCH_BODY_MAX = 3_000
MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}  # fmt: skip


def iso_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_ms() -> int:
    return int(time.time() * 1000)


MODIFIED_PROPERTIES = ("lastmodifieddate", "hs_lastmodifieddate")


def _modified_floor(groups: list[dict[str, Any]]) -> int | None:
    """The lowest last-modified time (ms) a search can match, when every filter group bounds it below."""
    floors = []
    for g in groups:
        bounds = [
            _ms(f.get("value"))
            for f in g.get("filters") or []
            if f.get("propertyName") in MODIFIED_PROPERTIES and f.get("operator") in ("GT", "GTE")
        ]
        known = [b for b in bounds if b is not None]
        if not known:
            return None
        floors.append(max(known))
    return min(floors) if floors else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    s = str(value).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _dt_ms(dt)  # integer arithmetic: dt.timestamp() * 1000 is a float and read 16.205 s as 16204 ms


def encode_after(next_id: int) -> str:
    return base64.b64encode(f"{next_id}\n".encode()).decode()


def decode_after(after: str) -> int | None:
    try:
        return int(base64.b64decode(after.encode(), validate=True).decode().strip())
    except (ValueError, UnicodeDecodeError):
        return int(after) if after.isdigit() else None


@dataclass
class HubSpotRecord:
    id: int
    props: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    trace_id: str | None = None

    def view(self, kind: str, names: Iterable[str] | None) -> dict[str, Any]:
        if names is None:
            wanted: list[str] = DEFAULT_PROPERTIES[kind]
        else:
            wanted = [n for n in names if n]
            wanted += [n for n in ("hs_object_id", "createdate", LASTMOD[kind]) if n not in wanted]
        props = {n: self.prop(kind, n) for n in wanted}
        out: dict[str, Any] = {
            "id": str(self.id),
            "properties": props,
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
        }
        if self.archived and self.archived_ms is not None:
            out["archivedAt"] = iso_ms(self.archived_ms)
        return out

    def prop(self, kind: str, name: str) -> str | None:
        if name == "hs_object_id":
            return str(self.id)
        if name in ("createdate", "hs_createdate"):
            return iso_ms(self.created_ms)
        if name in ("lastmodifieddate", "hs_lastmodifieddate"):
            return iso_ms(self.updated_ms)
        return self.props.get(name)


class _Seed:
    """Lazily generated records in a contiguous numeric id range [base, base + n)."""

    def __init__(
        self, base: int, n: int, build: Callable[[int], HubSpotRecord], max_updated_ms: int | None = None
    ) -> None:
        self.base, self.n, self.build = base, n, build
        self.max_updated_ms = max_updated_ms  # no seeded record was modified after this (None: unknown)

    def covers(self, oid: int) -> bool:
        return self.base <= oid < self.base + self.n


class _Store:
    """One object type: written records plus the lazily seeded range; ids in ascending order."""

    def __init__(self, kind: str, first_id: int) -> None:
        self.kind = kind
        self.records: dict[int, HubSpotRecord | None] = {}  # None: gone (merged away / purged)
        self.extra_ids: list[int] = []  # sorted ids outside the seeded range
        self.seed: _Seed | None = None
        self.next_id = first_id
        self.redirect: dict[int, int] = {}  # merged-away id -> primary id
        self.unique: dict[str, int] = {}  # email / domain (lower) -> id, for idProperty lookups
        self._unique_seeded = False

    def get(self, oid: int) -> HubSpotRecord | None:
        if oid in self.records:
            return self.records[oid]
        if self.seed is not None and self.seed.covers(oid):
            return self.seed.build(oid - self.seed.base)
        return None

    def archived_ids_from(self, start: int) -> list[int]:
        """Ids >= ``start`` of archived records, ascending. Seeded records start unarchived, so only written
        ones can be archived: an archived listing never walks (or builds) a 500K lazy seed."""
        return sorted(oid for oid, r in self.records.items() if oid >= start and r is not None and r.archived)

    def touch(self, oid: int) -> HubSpotRecord | None:
        rec = self.get(oid)
        if rec is not None and oid not in self.records:
            self.records[oid] = rec
        return rec

    def add(self, rec: HubSpotRecord) -> None:
        self.records[rec.id] = rec
        if not (self.seed is not None and self.seed.covers(rec.id)):
            idx = bisect.bisect_left(self.extra_ids, rec.id)
            if idx == len(self.extra_ids) or self.extra_ids[idx] != rec.id:
                self.extra_ids.insert(idx, rec.id)
        self.next_id = max(self.next_id, rec.id + 1)

    def ids_from(self, start: int) -> Iterator[int]:
        seeded: Iterable[int] = ()
        if self.seed is not None:
            lo = max(start, self.seed.base)
            seeded = range(lo, self.seed.base + self.seed.n)
        extra = itertools.islice(self.extra_ids, bisect.bisect_left(self.extra_ids, start), None)
        return heapq.merge(seeded, extra)

    def all(self) -> Iterator[HubSpotRecord]:
        for oid in self.ids_from(0):
            rec = self.get(oid)
            if rec is not None:
                yield rec

    def modified_after(self, floor_ms: int) -> list[HubSpotRecord] | None:
        """The records that may have been modified after ``floor_ms`` (in no particular order) without
        building the untouched seeded ones (a search for recent changes in a large lazy seed); None when
        that cannot be told. A record last modified before the floor cannot match and is left out."""
        if self.seed is not None and (
            self.seed.max_updated_ms is None or self.seed.max_updated_ms >= floor_ms
        ):
            return None
        return [r for r in self.records.values() if r is not None and r.updated_ms >= floor_ms]

    def materialize(self) -> None:
        if self.seed is None:
            return
        seed, self.seed = self.seed, None
        for i in range(seed.n):
            oid = seed.base + i
            if oid not in self.records:
                self.records[oid] = seed.build(i)
        self.extra_ids = sorted(k for k, v in self.records.items() if v is not None)

    def unique_key(self, rec: HubSpotRecord) -> str | None:
        field_name = {"contacts": "email", "companies": "domain"}.get(self.kind)
        if field_name is None:
            return None
        v = rec.props.get(field_name)
        return v.lower() if v else None

    def find_unique(self, value: str) -> HubSpotRecord | None:
        if not self._unique_seeded:
            self._unique_seeded = True
            for rec in self.all():
                key = self.unique_key(rec)
                if key is not None:
                    self.unique.setdefault(key, rec.id)
        oid = self.unique.get(value.lower())
        if oid is None:
            return None
        return self.get(self.redirect.get(oid, oid))


class FakeHubSpot(FakeServer):
    """A HubSpot portal on 127.0.0.1. Use as a context manager; ``base_url`` is where it listens."""

    source = "hubspot"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("test-token",),
        portal_id: int = 62515,
        app_id: int = 54321,
        limits: bool = True,
        burst_limit: int = 100,
        burst_window: float = 10.0,
        search_per_second: int = 5,
        webhook_url: str | None = None,
        client_secret: str | None = None,
        webhook_secret: str | None = None,
        emit: EmitMode = "send",
        emit_api_changes: bool = True,
        search_lag: float = 0.0,
        search_cap: int = SEARCH_CAP,
        seed: int = 0,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            tokens=tokens,
            limits=limits,
            webhook_url=webhook_url,
            webhook_secret=client_secret or webhook_secret,
            emit=emit,
            seed=seed,
        )
        self.portal_id = portal_id
        self.app_id = app_id
        self.emit_api_changes = emit_api_changes
        self.search_lag = search_lag
        self.search_cap = search_cap
        self._general = SlidingWindow(burst_limit, burst_window)
        self._search = SlidingWindow(search_per_second, 1.0)
        self._stores = {
            "contacts": _Store("contacts", 1_001),
            "companies": _Store("companies", 2_000_001),
            "deals": _Store("deals", 3_000_001),
        }
        # explicit associations: (from, to) -> from id -> {to id: primary}
        self._assoc: dict[tuple[str, str], dict[int, dict[int, bool]]] = {k: {} for k in ASSOC_TYPES}
        self._seed_company_of: Callable[[int], int | None] | None = None  # seeded contact -> company
        self._assoc_touched: set[int] = set()  # contacts whose company links are explicit
        self._reverse_built = False
        self._event_id = itertools.count(1)
        self._subscription_ids = {t: 100_000 + i for i, t in enumerate(sorted(
            f"{SINGULAR[k]}.{e}" for k in KINDS for e in
            ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")))}  # fmt: skip
        self._batch_events: list[dict[str, Any]] | None = None
        self._batch_lock = threading.Lock()

    # ================================================================ store helpers
    def store(self, kind: str) -> _Store:
        return self._stores[ALIASES.get(kind, kind)]

    def count(self, kind: str, *, archived: bool = False) -> int:
        with self._lock:
            return sum(1 for r in self.store(kind).all() if r.archived == archived)

    def record(self, kind: str, oid: str | int) -> HubSpotRecord | None:
        """The stored record (None when absent); a copy is not made: do not mutate."""
        with self._lock:
            return self.store(kind).get(int(oid))

    def properties(self, kind: str, oid: str | int) -> dict[str, str | None]:
        with self._lock:
            rec = self.store(kind).get(int(oid))
            if rec is None:
                raise KeyError(f"no {kind} {oid}")
            out = dict(rec.props)
            out.update(
                {
                    n: rec.prop(kind, n)
                    for n in ("hs_object_id", "createdate", LASTMOD[ALIASES.get(kind, kind)])
                }
            )
            return out

    def _new_record(self, kind: str, props: Mapping[str, Any], *, at: int | None = None) -> HubSpotRecord:
        st = self.store(kind)
        ts = now_ms() if at is None else at
        clean = {k: (None if v is None else str(v)) for k, v in props.items() if k not in READ_ONLY}
        rec = HubSpotRecord(st.next_id, clean, ts, ts)
        st.add(rec)
        key = st.unique_key(rec)
        if key is not None:
            st.unique[key] = rec.id
        return rec

    # ================================================================ seeding
    def seed_from(self, crm: SyntheticCRM) -> FakeHubSpot:
        """Serve ``crm``'s companies, contacts and deals (contacts lazily; HubSpot-style numeric ids)."""
        if crm.source != "hubspot":
            raise ValueError("seed FakeHubSpot from a SyntheticCRM with source='hubspot'")
        with self._lock:
            companies = self.store("companies")
            for c in crm.companies():
                created, updated = (
                    _ms(c.crm_created_at.isoformat()) or 0,
                    _ms(c.crm_updated_at.isoformat()) or 0,
                )
                props: dict[str, str | None] = {
                    "name": c.name,
                    "domain": c.domain,
                    "industry": c.industry,
                    "numberofemployees": None if c.employee_count is None else str(c.employee_count),
                    "annualrevenue": None if c.annual_revenue is None else str(c.annual_revenue),
                    "city": c.city,
                    "country": c.country,
                }
                companies.add(HubSpotRecord(int(c.crm_record_id), props, created, updated))
            if crm.n_contacts:
                base = int(crm.contact_id(0))

                def build(i: int) -> HubSpotRecord:
                    x = crm.contact(i)
                    lifecycle = x.lifecycle_stage
                    if lifecycle is not None:
                        lifecycle = LOCAL_TO_HUBSPOT_LIFECYCLE.get(lifecycle, lifecycle)
                    props = {
                        "firstname": x.first_name,
                        "lastname": x.last_name,
                        "email": x.email,
                        "phone": x.phone,
                        "jobtitle": x.job_title,
                        "lifecyclestage": lifecycle,
                        "hs_lead_status": x.lead_status,
                        "company": x.company_name,
                        "associatedcompanyid": x.company_crm_id,
                    }
                    return HubSpotRecord(
                        base + i, props, _dt_ms(x.crm_created_at),
                        _dt_ms(x.crm_updated_at),
                    )  # fmt: skip

                contacts = self.store("contacts")
                contacts.seed = _Seed(base, crm.n_contacts, build, _dt_ms(crm.as_of))
                contacts.next_id = max(contacts.next_id, base + crm.n_contacts)

                def company_of(oid: int) -> int | None:
                    j = crm.company_of_contact(oid - base)
                    return None if j is None else int(crm.company_id(j))

                self._seed_company_of = company_of
            deals = self.store("deals")
            for d in crm.deals():
                props = {
                    "dealname": d.name,
                    "dealstage": d.stage,
                    "pipeline": "default",
                    "amount": None if d.amount is None else str(d.amount),
                    "closedate": None
                    if d.close_date is None
                    else f"{d.close_date.isoformat()}T00:00:00.000Z",
                    "hubspot_owner_id": d.owner_crm_id,
                }
                rec = HubSpotRecord(
                    int(d.crm_record_id), props, _dt_ms(d.crm_created_at),
                    _dt_ms(d.crm_updated_at),
                )  # fmt: skip
                deals.add(rec)
                for cid in d.contact_crm_ids:
                    self._link("deals", rec.id, "contacts", int(cid), primary=False)
                if d.company_crm_id:
                    self._link("deals", rec.id, "companies", int(d.company_crm_id), primary=True)
        return self

    def seed_records(self, kind: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add records with the given properties (no webhooks); returns their ids."""
        with self._lock:
            return [str(self._new_record(kind, r).id) for r in rows]

    # ================================================================ associations
    def _link(self, from_kind: str, from_id: int, to_kind: str, to_id: int, *, primary: bool) -> None:
        fwd = self._assoc[(from_kind, to_kind)].setdefault(from_id, {})
        back = self._assoc[(to_kind, from_kind)].setdefault(to_id, {})
        if primary:
            for k in fwd:
                fwd[k] = False
        fwd[to_id] = primary or fwd.get(to_id, False)
        back[from_id] = back.get(from_id, False)

    def _unlink(self, from_kind: str, from_id: int, to_kind: str, to_id: int) -> bool:
        fwd = self._assoc[(from_kind, to_kind)].get(from_id, {})
        back = self._assoc[(to_kind, from_kind)].get(to_id, {})
        found = fwd.pop(to_id, None) is not None
        back.pop(from_id, None)
        return found

    def _materialize_contact_links(self, contact_id: int) -> None:
        """Turn a seeded contact's implicit company link into explicit associations."""
        if contact_id in self._assoc_touched or self._seed_company_of is None:
            return
        st = self.store("contacts")
        self._assoc_touched.add(contact_id)
        if st.seed is not None and st.seed.covers(contact_id) and contact_id not in st.records:
            company = self._seed_company_of(contact_id)
            if company is not None:
                self._link("contacts", contact_id, "companies", company, primary=True)
        elif contact_id in st.records:
            rec = st.records[contact_id]
            co = rec.props.get("associatedcompanyid") if rec is not None else None
            if co and co.isdigit() and (contact_id, int(co)) not in self._explicit_pairs(contact_id):
                self._link("contacts", contact_id, "companies", int(co), primary=True)

    def _explicit_pairs(self, contact_id: int) -> set[tuple[int, int]]:
        return {(contact_id, c) for c in self._assoc[("contacts", "companies")].get(contact_id, {})}

    def _build_reverse(self) -> None:
        """company -> contacts for seeded contacts (one pass over the seeded range)."""
        if self._reverse_built or self._seed_company_of is None:
            return
        self._reverse_built = True
        st = self.store("contacts")
        if st.seed is None:
            return
        for oid in range(st.seed.base, st.seed.base + st.seed.n):
            self._materialize_contact_links(oid)

    def associations(self, from_kind: str, from_id: int | str, to_kind: str) -> dict[int, bool]:
        """Target id -> primary of one record's associations."""
        fk, tk = ALIASES.get(from_kind, from_kind), ALIASES.get(to_kind, to_kind)
        fid = int(from_id)
        with self._lock:
            if fk == "contacts" and tk == "companies":
                self._materialize_contact_links(fid)
            elif fk == "companies" and tk == "contacts":
                self._build_reverse()
            return dict(self._assoc.get((fk, tk), {}).get(fid, {}))

    # ================================================================ webhooks
    def _event(
        self, kind: str, etype: str, object_id: int, *, source: str = "CRM_UI", **extra: Any
    ) -> dict[str, Any]:
        sub = f"{SINGULAR[kind]}.{etype}"
        ev: dict[str, Any] = {
            "eventId": next(self._event_id),
            "subscriptionId": self._subscription_ids[sub],
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": extra.pop("occurredAt", now_ms()),
            "subscriptionType": sub,
            "attemptNumber": 0,
            "objectId": object_id,
            "changeSource": source,
        }
        if source in ("CRM_UI", "CRM"):
            ev["sourceId"] = "userId:45678"
        ev.update(extra)
        return ev

    def sign(
        self, body: bytes, *, method: str = "POST", uri: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The signature headers HubSpot sends with ``body`` (v1 and v3, side by side)."""
        secret = self.webhook_secret or ""
        uri = uri or self.webhook_url or ""
        ts = str(now_ms() if timestamp is None else timestamp)
        v1 = hashlib.sha256(secret.encode() + body).hexdigest()
        v3 = base64.b64encode(
            hmac.new(
                secret.encode(), method.encode() + uri.encode() + body + ts.encode(), hashlib.sha256
            ).digest()
        ).decode()
        return {
            "X-HubSpot-Signature": v1,
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Signature-v3": v3,
            "X-HubSpot-Request-Timestamp": ts,
        }

    def _emit(self, events: list[dict[str, Any]]) -> None:
        if not events or self.webhook_url is None:
            return
        with self._batch_lock:
            if self._batch_events is not None:
                self._batch_events.extend(events)
                return
        self._send_events(events)

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        for i in range(0, len(events), 100):  # HubSpot sends up to 100 events per request
            body = json.dumps(events[i : i + 100], separators=(",", ":")).encode()
            self._deliver(body, self.sign(body))

    def batched_webhooks(self) -> _WebhookBatch:
        """``with fake.batched_webhooks(): ...`` sends the events of several mutations in one array."""
        return _WebhookBatch(self)

    def emit_events(self, events: list[dict[str, Any]]) -> None:
        """Send (or collect) an arbitrary event array, signed (for tests of odd payloads)."""
        self._send_events(events)

    # ================================================================ mutation helpers (UI-like)
    def create(self, kind: str, props: Mapping[str, Any], *, source: str = "CRM_UI") -> str:
        kind = ALIASES.get(kind, kind)
        with self._lock:
            rec = self._new_record(kind, props)
            company = rec.props.get("associatedcompanyid")
            if kind == "contacts" and company and company.isdigit():
                self._assoc_touched.add(rec.id)
                self._link("contacts", rec.id, "companies", int(company), primary=True)
            events = [self._event(kind, "creation", rec.id, source=source, changeFlag="NEW",
                                  occurredAt=rec.created_ms)]  # fmt: skip
        self._emit(events)
        return str(rec.id)

    def update_property(
        self, kind: str, oid: str | int, name: str, value: Any, *, source: str = "CRM_UI"
    ) -> None:
        self.update(kind, oid, {name: value}, source=source)

    def update(self, kind: str, oid: str | int, props: Mapping[str, Any], *, source: str = "CRM_UI") -> None:
        kind = ALIASES.get(kind, kind)
        with self._lock:
            events = self._apply_update(kind, int(oid), props, source)
        self._emit(events)

    def _apply_update(
        self, kind: str, oid: int, props: Mapping[str, Any], source: str
    ) -> list[dict[str, Any]]:
        st = self.store(kind)
        rec = st.touch(oid)
        if rec is None or rec.archived:
            raise KeyError(f"no {kind} {oid}")
        ts = max(now_ms(), rec.updated_ms + 1)
        events: list[dict[str, Any]] = []
        for name, raw in props.items():
            value = None if raw is None or raw == "" else str(raw)
            if rec.props.get(name) == value:
                continue
            old_key = st.unique_key(rec)
            rec.props[name] = value
            new_key = st.unique_key(rec)
            if old_key != new_key and new_key is not None:
                st.unique[new_key] = rec.id
            if kind == "contacts" and name == "associatedcompanyid":
                self._materialize_contact_links(oid)
                if value and value.isdigit():
                    self._link("contacts", oid, "companies", int(value), primary=True)
            events.append(self._event(kind, "propertyChange", oid, source=source, propertyName=name,
                                      propertyValue="" if value is None else value, occurredAt=ts))  # fmt: skip
        if events:
            rec.updated_ms = ts
        return events

    def delete(self, kind: str, oid: str | int, *, source: str = "CRM_UI") -> None:
        """Archive (restorable): ``archivedAt`` is set, the last-modified date is not bumped."""
        kind = ALIASES.get(kind, kind)
        with self._lock:
            rec = self.store(kind).touch(int(oid))
            if rec is None or rec.archived:
                raise KeyError(f"no {kind} {oid}")
            rec.archived, rec.archived_ms = True, now_ms()
            events = [self._event(kind, "deletion", rec.id, source=source, changeFlag="DELETED",
                                  occurredAt=rec.archived_ms)]  # fmt: skip
        self._emit(events)

    def restore(self, kind: str, oid: str | int, *, source: str = "CRM_UI") -> None:
        kind = ALIASES.get(kind, kind)
        with self._lock:
            rec = self.store(kind).touch(int(oid))
            if rec is None or not rec.archived:
                raise KeyError(f"no archived {kind} {oid}")
            rec.archived, rec.archived_ms = False, None
            rec.updated_ms = max(now_ms(), rec.updated_ms + 1)
            events = [self._event(kind, "restore", rec.id, source=source, changeFlag="RESTORED",
                                  occurredAt=rec.updated_ms)]  # fmt: skip
        self._emit(events)

    def merge(self, kind: str, primary_id: str | int, merged_id: str | int, *, source: str = "CRM_UI") -> str:
        """Merge ``merged_id`` into ``primary_id``: the merged record is gone; reads of it redirect."""
        kind = ALIASES.get(kind, kind)
        with self._lock:
            primary, n_moved = self._apply_merge(kind, int(primary_id), int(merged_id))
            events = [self._event(kind, "merge", primary.id, source=source, primaryObjectId=primary.id,
                                  mergedObjectIds=[int(merged_id)], newObjectId=primary.id,
                                  numberOfPropertiesMoved=n_moved, occurredAt=primary.updated_ms)]  # fmt: skip
        self._emit(events)
        return str(primary.id)

    def _apply_merge(self, kind: str, pid: int, mid: int) -> tuple[HubSpotRecord, int]:
        st = self.store(kind)
        if pid == mid:
            raise ValueError("cannot merge a record into itself")
        primary, merged = st.touch(pid), st.touch(mid)
        if primary is None or merged is None or primary.archived or merged.archived:
            raise KeyError(f"both {kind} {pid} and {mid} must exist")
        moved = 0
        for k, v in merged.props.items():
            if v not in (None, "") and primary.props.get(k) in (None, ""):
                primary.props[k] = v
                moved += 1
        ids = [x for x in (primary.props.get("hs_merged_object_ids") or "").split(";") if x]
        ids += [str(mid)] + [x for x in (merged.props.get("hs_merged_object_ids") or "").split(";") if x]
        primary.props["hs_merged_object_ids"] = ";".join(dict.fromkeys(ids))
        primary.updated_ms = max(now_ms(), primary.updated_ms + 1)
        st.records[mid] = None
        st.redirect[mid] = pid
        for old, target in list(st.redirect.items()):
            if target == mid:
                st.redirect[old] = pid
        key = st.unique_key(merged)
        if key is not None:
            st.unique[key] = pid
        # move associations
        if kind == "contacts":
            self._materialize_contact_links(mid)
            self._materialize_contact_links(pid)
        for (fk, tk), table in self._assoc.items():
            if fk != kind:
                continue
            for to_id, prim in list(table.get(mid, {}).items()):
                self._unlink(fk, mid, tk, to_id)
                if to_id not in table.get(pid, {}):
                    self._link(fk, pid, tk, to_id, primary=prim and not any(table.get(pid, {}).values()))
        return primary, moved

    def associate(
        self,
        from_kind: str,
        from_id: str | int,
        to_kind: str,
        to_id: str | int,
        *,
        remove: bool = False,
        primary: bool = False,
        source: str = "CRM_UI",
    ) -> None:
        """Add (or remove) an association and emit ``associationChange`` events for both sides."""
        fk, tk = ALIASES.get(from_kind, from_kind), ALIASES.get(to_kind, to_kind)
        fid, tid = int(from_id), int(to_id)
        with self._lock:
            if fk == "contacts":
                self._materialize_contact_links(fid)
            if tk == "contacts":
                self._materialize_contact_links(tid)
            if remove:
                self._unlink(fk, fid, tk, tid)
            else:
                self._link(fk, fid, tk, tid, primary=primary)
            if fk == "contacts" and tk == "companies":
                crec = self.store("contacts").touch(fid)
                if crec is not None and (primary or remove):
                    if remove and crec.props.get("associatedcompanyid") == str(tid):
                        crec.props["associatedcompanyid"] = None
                    elif primary:
                        crec.props["associatedcompanyid"] = str(tid)
            ts = now_ms()
            # as in a real portal, the change modifies the contact (associatedcompanyid) and the deal
            # (num_associated_* rollups): their last-modified dates move, so a modified-time search sees it
            for kind, oid in ((fk, fid), (tk, tid)):
                if kind in ("contacts", "deals"):
                    touched = self.store(kind).touch(oid)
                    if touched is not None:
                        touched.updated_ms = max(touched.updated_ms, ts)
            events = []
            for a, aid, b, bid in ((fk, fid, tk, tid), (tk, tid, fk, fid)):
                events.append(self._event(
                    a, "associationChange", aid, source=source, occurredAt=ts,
                    associationType=f"{SINGULAR[a].upper()}_TO_{SINGULAR[b].upper()}",
                    fromObjectId=aid, toObjectId=bid, associationRemoved=remove, isPrimaryAssociation=primary,
                ))  # fmt: skip
        self._emit(events)

    # ================================================================ HTTP: framework hooks
    def _limit_class(self, req: Request) -> str | None:
        return "search" if req.path.endswith("/search") else "general"

    def _error(self, status: int, message: str, category: str, **extra: Any) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": new_uuid(),
            "category": category,
            **extra,
        }
        return Response(status, body)

    def _check_limits(self, limit_class: str | None) -> Response | None:
        if limit_class == "search":
            ok, _ = self._search.hit()
        else:
            ok, _ = self._general.hit()
        return None if ok else self._rate_limited(limit_class or "general")

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        if limit_class == "search":
            body = {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                    "correlationId": new_uuid(), "policyName": "SECONDLY", "requestId": new_uuid()}  # fmt: skip
        else:
            body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT", "correlationId": new_uuid(), "policyName": "TEN_SECONDLY_ROLLING",
                    "requestId": new_uuid()}  # fmt: skip
        retry_after = self.faults.retry_after  # HubSpot sends Retry-After only sometimes
        return Response(429, body, {} if retry_after is None else {"Retry-After": f"{retry_after:g}"})

    def _unauthorized(self, reason: str) -> Response:
        if reason == "revoked":
            return self._error(
                401,
                "The OAuth token used to make this call expired or was revoked.",
                "EXPIRED_AUTHENTICATION",
            )
        return self._error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            "INVALID_AUTHENTICATION",
        )

    def _server_error(self, status: int) -> Response:
        return self._error(
            status, "internal error", "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"
        )

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        resp = self._route_inner(req, parts)
        if not req.path.endswith("/search"):
            _, remaining = self._general.limit, max(0, self._general.limit - len(self._general._events))
            resp.headers.update({
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self._general.seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(self._general.limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
            })  # fmt: skip
        return resp

    def _route_inner(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        try:
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
                kind = ALIASES.get(parts[3], parts[3])
                if kind not in self._stores:
                    return self._error(
                        400, f"Unable to infer object type from: {parts[3]}", "VALIDATION_ERROR"
                    )
                rest = parts[4:]
                if not rest:
                    if m == "GET":
                        return self._list(req, kind)
                    if m == "POST":
                        return self._create_one(req, kind)
                elif len(rest) == 1 and rest[0] == "search" and m == "POST":
                    return self._search_api(req, kind)
                elif len(rest) == 1 and rest[0] == "merge" and m == "POST":
                    return self._merge_api(req, kind)
                elif len(rest) == 2 and rest[0] == "batch" and m == "POST":
                    return self._batch(req, kind, rest[1])
                elif len(rest) == 1:
                    if m == "GET":
                        return self._get_one(req, kind, rest[0])
                    if m == "PATCH":
                        return self._patch_one(req, kind, rest[0])
                    if m == "DELETE":
                        return self._archive_one(kind, rest[0])
            if (
                parts[:3] == ["crm", "v4", "associations"]
                and len(parts) == 7
                and parts[5:] == ["batch", "read"]
            ):
                return self._assoc_batch_read(
                    req, ALIASES.get(parts[3], parts[3]), ALIASES.get(parts[4], parts[4])
                )
            if (
                parts[:3] == ["crm", "v4", "objects"]
                and len(parts) == 9
                and parts[6] == "default"
                and m == "PUT"
            ):
                return self._assoc_default(parts)
        except _BadRequest as exc:
            return self._error(400, str(exc), "VALIDATION_ERROR", **exc.extra)
        return self._error(404, f"No route for {m} {req.path}", "OBJECT_NOT_FOUND")

    # ================================================================ HTTP: objects
    @staticmethod
    def _prop_names(value: str | None) -> list[str] | None:
        if value is None:
            return None
        return [p.strip() for p in value.split(",") if p.strip()]

    def _props_param(self, req: Request) -> list[str] | None:
        vals = req.query.get("properties")
        if not vals:
            return None
        out: list[str] = []
        for v in vals:
            out.extend(self._prop_names(v) or [])
        return out

    def _list(self, req: Request, kind: str) -> Response:
        try:
            limit = int(req.q("limit", "10") or 10)
        except ValueError as exc:
            raise _BadRequest("limit must be an integer") from exc
        limit = max(1, min(limit, 100))
        archived = (req.q("archived", "false") or "false").lower() == "true"
        after = req.q("after")
        start = 0
        if after:
            decoded = decode_after(after)
            if decoded is None:
                raise _BadRequest(f"Invalid input JSON: after={after[:20]}")
            start = decoded
        names = self._props_param(req)
        assoc_kinds = [ALIASES.get(a, a) for a in (self._prop_names(req.q("associations")) or [])]
        with self._lock:
            st = self.store(kind)
            results: list[dict[str, Any]] = []
            next_id: int | None = None
            for oid in st.archived_ids_from(start) if archived else st.ids_from(start):
                rec = st.get(oid)
                if rec is None or rec.archived != archived:
                    continue
                if len(results) == limit:
                    next_id = oid
                    break
                view = rec.view(kind, names)
                if assoc_kinds:
                    view["associations"] = self._inline_assoc(kind, oid, assoc_kinds)
                results.append(view)
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            token = encode_after(next_id)
            body["paging"] = {"next": {"after": token, "link": f"?after={token}"}}
        return Response(200, body)

    def _inline_assoc(self, kind: str, oid: int, to_kinds: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tk in to_kinds:
            if (kind, tk) not in ASSOC_TYPES:
                continue
            targets = self.associations(kind, oid, tk)
            if targets:
                label = f"{SINGULAR[kind]}_to_{SINGULAR[tk]}"
                out[tk] = {"results": [{"id": str(t), "type": label} for t in sorted(targets)]}
        return out

    def _resolve(self, kind: str, raw_id: str, id_property: str | None) -> HubSpotRecord | None:
        st = self.store(kind)
        if id_property and id_property != "hs_object_id":
            return st.find_unique(raw_id)
        if not raw_id.isdigit():
            return None
        oid = int(raw_id)
        oid = st.redirect.get(oid, oid)
        return st.get(oid)

    def _get_one(self, req: Request, kind: str, raw_id: str) -> Response:
        archived = (req.q("archived", "false") or "false").lower() == "true"
        with self._lock:
            rec = self._resolve(kind, raw_id, req.q("idProperty"))
            if rec is None or rec.archived != archived:
                return self._error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                   context={"id": [raw_id]})  # fmt: skip
            view = rec.view(kind, self._props_param(req))
        return Response(200, view)

    def _validate_props(self, kind: str, props: Any, *, creating: bool) -> str | None:
        """An error message for invalid input properties, else None."""
        if not isinstance(props, dict):
            return "properties must be an object"
        bad_ro = sorted(k for k in props if k in READ_ONLY)
        if bad_ro:
            return f"Property values were not valid: {bad_ro[0]!r} is a read only property"
        unknown = sorted(k for k in props if k not in WRITABLE[kind])
        if unknown:
            return f'Property values were not valid: Property "{unknown[0]}" does not exist'
        for k, v in props.items():
            if v is None or v == "":
                continue
            s = str(v)
            if k == "email" and ("@" not in s or s.startswith("@") or s.endswith("@") or " " in s):
                return f"Property values were not valid: Email address {s} is invalid"
            if k == "lifecyclestage" and s.lower() not in LIFECYCLE_OPTIONS and not s.isdigit():
                return f"Property values were not valid: {s} was not one of the allowed options"
            if k == "hs_lead_status" and s not in LEAD_STATUS_OPTIONS:
                return f"Property values were not valid: {s} was not one of the allowed options"
            if k in NUMERIC and k != "hs_object_id":
                try:
                    float(s)
                except ValueError:
                    return f"Property values were not valid: {s} is not a valid number for {k}"
        return None

    def _conflict(self, kind: str, props: Mapping[str, Any], self_id: int | None = None) -> int | None:
        if kind != "contacts" or not props.get("email"):
            return None
        existing = self.store(kind).find_unique(str(props["email"]))
        if existing is not None and existing.id != self_id and not existing.archived:
            return existing.id
        return None

    def _create_one(self, req: Request, kind: str) -> Response:
        body = req.json() or {}
        props = body.get("properties", {})
        msg = self._validate_props(kind, props, creating=True)
        if msg:
            return self._error(400, msg, "VALIDATION_ERROR")
        with self._lock:
            existing = self._conflict(kind, props)
            if existing is not None:
                return self._error(409, f"Contact already exists. Existing ID: {existing}", "CONFLICT")
            rec = self._new_record(kind, props)
            self._associations_on_create(kind, rec, body.get("associations") or [])
            view = rec.view(kind, list(props))
            events = [
                self._event(
                    kind, "creation", rec.id, source="API", changeFlag="NEW", occurredAt=rec.created_ms
                )
            ]
        if self.emit_api_changes:
            self._emit(events)
        return Response(201, view)

    def _associations_on_create(self, kind: str, rec: HubSpotRecord, specs: list[dict[str, Any]]) -> None:
        if kind == "contacts":
            self._assoc_touched.add(rec.id)
            co = rec.props.get("associatedcompanyid")
            if co and co.isdigit():
                self._link("contacts", rec.id, "companies", int(co), primary=True)
        for spec in specs:
            to_id = int(str((spec.get("to") or {}).get("id", "0")))
            type_ids = {int(t.get("associationTypeId", 0)) for t in spec.get("types", [])}
            for (fk, tk), (unl, prim) in ASSOC_TYPES.items():
                if fk == kind and (unl in type_ids or (prim is not None and prim in type_ids)):
                    self._link(fk, rec.id, tk, to_id, primary=prim in type_ids)

    def _patch_one(self, req: Request, kind: str, raw_id: str) -> Response:
        body = req.json() or {}
        props = body.get("properties", {})
        msg = self._validate_props(kind, props, creating=False)
        if msg:
            return self._error(400, msg, "VALIDATION_ERROR")
        with self._lock:
            rec = self._resolve(kind, raw_id, req.q("idProperty"))
            if rec is None or rec.archived:
                return self._error(404, "resource not found", "OBJECT_NOT_FOUND", context={"id": [raw_id]})
            events = self._apply_update(kind, rec.id, props, "API")
            view = self.store(kind).get(rec.id)
            assert view is not None
            out = view.view(kind, list(props))
        if self.emit_api_changes:
            self._emit(events)
        return Response(200, out)

    def _archive_one(self, kind: str, raw_id: str) -> Response:
        with self._lock:
            rec = self._resolve(kind, raw_id, None)
            if rec is not None and not rec.archived:
                rec = self.store(kind).touch(rec.id)
                assert rec is not None
                rec.archived, rec.archived_ms = True, now_ms()
                events = [self._event(kind, "deletion", rec.id, source="API", changeFlag="DELETED",
                                      occurredAt=rec.archived_ms)]  # fmt: skip
                if self.emit_api_changes:
                    self._emit(events)
        return Response(204)

    def _merge_api(self, req: Request, kind: str) -> Response:
        body = req.json() or {}
        try:
            pid, mid = int(str(body["primaryObjectId"])), int(str(body["objectIdToMerge"]))
        except (KeyError, ValueError) as exc:
            raise _BadRequest("primaryObjectId and objectIdToMerge are required") from exc
        with self._lock:
            try:
                primary, n_moved = self._apply_merge(kind, pid, mid)
            except (KeyError, ValueError) as exc:
                return self._error(400, str(exc).strip("'\""), "VALIDATION_ERROR")
            view = primary.view(kind, None)
            events = [self._event(kind, "merge", pid, source="API", primaryObjectId=pid, mergedObjectIds=[mid],
                                  newObjectId=pid, numberOfPropertiesMoved=n_moved)]  # fmt: skip
        if self.emit_api_changes:
            self._emit(events)
        return Response(200, view)

    # ================================================================ HTTP: batch
    def _batch(self, req: Request, kind: str, op: str) -> Response:
        body = req.json() or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _BadRequest("Invalid input JSON on line 1: inputs is required")
        if len(inputs) > BATCH_LIMIT:
            raise _BadRequest(f"Batch input limit exceeded: {len(inputs)} inputs; the limit is {BATCH_LIMIT}",
                              context={"limit": [str(BATCH_LIMIT)]})  # fmt: skip
        started = iso_ms(now_ms())
        if op == "read":
            results, errors, events = self._batch_read(req, kind, body, inputs)
        elif op in ("create", "update", "upsert"):
            results, errors, events = self._batch_write(kind, op, inputs)
        elif op == "archive":
            with self._lock:
                events = []
                for inp in inputs:
                    rec = self._resolve(kind, str(inp.get("id", "")), None)
                    if rec is not None and not rec.archived:
                        rec = self.store(kind).touch(rec.id)
                        assert rec is not None
                        rec.archived, rec.archived_ms = True, now_ms()
                        events.append(
                            self._event(kind, "deletion", rec.id, source="API", changeFlag="DELETED")
                        )
            if self.emit_api_changes:
                self._emit(events)
            return Response(204)
        else:
            return self._error(404, f"No route for batch/{op}", "OBJECT_NOT_FOUND")
        if self.emit_api_changes:
            self._emit(events)
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": iso_ms(now_ms())}  # fmt: skip
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return Response(207, out)
        return Response(201 if op == "create" else 200, out)

    def _batch_read(
        self, req: Request, kind: str, body: dict[str, Any], inputs: list[Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        archived = (req.q("archived", "false") or "false").lower() == "true"
        names = body.get("properties") or None
        id_property = body.get("idProperty")
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[int] = set()
        with self._lock:
            for inp in inputs:
                raw = str((inp or {}).get("id", ""))
                rec = self._resolve(kind, raw, id_property)
                if rec is None or rec.archived != archived:
                    missing.append(raw)
                    continue
                if rec.id in seen:
                    continue
                seen.add(rec.id)
                results.append(rec.view(kind, names))
        errors = []
        if missing:
            errors.append({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {SINGULAR[kind].upper()} objects, they may be deleted or not exist. "
                           "Check that ids are valid.",
                "context": {"ids": missing},
                "errors": [],
                "links": {},
            })  # fmt: skip
        return results, errors, []

    def _item_error(
        self, inp: Mapping[str, Any], message: str, category: str, key: str | None
    ) -> dict[str, Any]:
        ctx: dict[str, list[str]] = {}
        if key is not None:
            ctx["ids"] = [key]
        trace = inp.get("objectWriteTraceId")
        if trace is not None:
            ctx["objectWriteTraceId"] = [str(trace)]
        err: dict[str, Any] = {"status": "error", "category": category, "message": message, "context": ctx,
                               "errors": [], "links": {}}  # fmt: skip
        if trace is not None:
            err["id"] = str(trace)
        return err

    def _batch_write(
        self, kind: str, op: str, inputs: list[Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        with self._lock:
            for raw_inp in inputs:
                inp = raw_inp if isinstance(raw_inp, dict) else {}
                props = inp.get("properties") or {}
                key = None if op == "create" else str(inp.get("id", ""))
                msg = self._validate_props(kind, props, creating=op == "create")
                if msg:
                    errors.append(self._item_error(inp, msg, "VALIDATION_ERROR", key))
                    continue
                rec: HubSpotRecord | None
                is_new = False
                if op == "create":
                    existing = self._conflict(kind, props)
                    if existing is not None:
                        errors.append(self._item_error(
                            inp, f"Contact already exists. Existing ID: {existing}", "CONFLICT", None))  # fmt: skip
                        continue
                    rec = self._new_record(kind, props)
                    self._associations_on_create(kind, rec, inp.get("associations") or [])
                    events.append(self._event(kind, "creation", rec.id, source="API", changeFlag="NEW",
                                              occurredAt=rec.created_ms))  # fmt: skip
                else:
                    id_property = inp.get("idProperty")
                    rec = self._resolve(kind, key or "", id_property)
                    if rec is not None and rec.archived:
                        rec = None
                    if rec is None and op == "upsert" and id_property and id_property != "hs_object_id":
                        create_props = {**props, id_property: key}
                        rec = self._new_record(kind, create_props)
                        self._associations_on_create(kind, rec, [])
                        is_new = True
                        events.append(self._event(kind, "creation", rec.id, source="API", changeFlag="NEW",
                                                  occurredAt=rec.created_ms))  # fmt: skip
                    if rec is None:
                        errors.append(self._item_error(
                            inp, f"Object not found. objectId {key} does not exist", "OBJECT_NOT_FOUND", key))  # fmt: skip
                        continue
                    if not is_new:
                        existing = self._conflict(kind, props, self_id=rec.id)
                        if existing is not None:
                            errors.append(self._item_error(
                                inp, f"Contact already exists. Existing ID: {existing}", "CONFLICT", key))  # fmt: skip
                            continue
                        events.extend(self._apply_update(kind, rec.id, props, "API"))
                        rec = self.store(kind).get(rec.id)
                        assert rec is not None
                view = rec.view(kind, list(props) + (["email"] if kind == "contacts" else []))
                if inp.get("objectWriteTraceId") is not None:
                    view["objectWriteTraceId"] = str(inp["objectWriteTraceId"])
                if op == "upsert":
                    view["new"] = is_new
                results.append(view)
        return results, errors, events

    # ================================================================ HTTP: search
    def _search_api(self, req: Request, kind: str) -> Response:
        if len(req.body) > SEARCH_BODY_MAX:
            raise _BadRequest(f"The request body must be at most {SEARCH_BODY_MAX} characters")
        body = req.json() or {}
        try:
            limit = int(body.get("limit", 10))
            offset = int(str(body.get("after") or 0))
        except ValueError as exc:
            raise _BadRequest("limit and after must be integers") from exc
        if limit > SEARCH_LIMIT or limit < 0:
            raise _BadRequest(f"limit must be at most {SEARCH_LIMIT}")
        if offset + limit > self.search_cap:
            raise _BadRequest(
                f"The search endpoints are limited to {self.search_cap} total results for any given query; "
                f"cannot page beyond {self.search_cap} (after={offset}, limit={limit})"
            )
        groups = body.get("filterGroups") or []
        if len(groups) > MAX_FILTER_GROUPS:
            raise _BadRequest(f"Too many filter groups: at most {MAX_FILTER_GROUPS}")
        n_filters = 0
        for g in groups:
            filters = g.get("filters") or []
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise _BadRequest(f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP}")
            n_filters += len(filters)
            for f in filters:
                if f.get("operator") not in OPERATORS:
                    raise _BadRequest(f"Unknown operator {f.get('operator')!r}")
        if n_filters > MAX_FILTERS:
            raise _BadRequest(f"Too many filters: at most {MAX_FILTERS} in all")
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise _BadRequest("Only one sort is supported")
        names = body.get("properties") or None
        query = (body.get("query") or "").strip().lower()
        lag_cutoff = now_ms() - int(self.search_lag * 1000) if self.search_lag > 0 else None
        matches = self._matcher(kind, groups)
        floor = _modified_floor(groups)
        with (
            self._lock
        ):  # only the candidate list is taken under the lock: writes are not held up by a search
            st = self.store(kind)
            candidates = None if floor is None else st.modified_after(floor)
            if candidates is None:
                st.materialize()
                candidates = list(st.all())
        matched = [
            r
            for r in candidates
            if not r.archived
            and (lag_cutoff is None or r.updated_ms <= lag_cutoff)
            and matches(r)
            and (not query or self._query_match(kind, r, query))
        ]
        matched.sort(key=_record_id)
        if sorts:
            s = sorts[0]
            prop = s if isinstance(s, str) else s.get("propertyName", "hs_object_id")
            desc = not isinstance(s, str) and str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"
            if prop != "hs_object_id" or desc:
                matched.sort(key=lambda r: (_sort_key(kind, r, prop), r.id), reverse=desc)
        total = len(matched)
        with self._lock:  # a record's properties may be changing: read them under the lock
            page = [r.view(kind, names) for r in matched[offset : offset + limit]]
        out: dict[str, Any] = {"total": total, "results": page}
        if offset + limit < total:
            nxt = str(offset + limit)
            out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return Response(200, out)

    @staticmethod
    def _matcher(kind: str, groups: list[dict[str, Any]]) -> Callable[[HubSpotRecord], bool]:
        """The filter groups compiled once per request (OR of ANDs), not re-read for every record."""
        if not groups:
            return lambda rec: True
        compiled = [[_compile_filter(kind, f) for f in (g.get("filters") or [])] for g in groups]
        return lambda rec: any(all(ok(rec) for ok in group) for group in compiled)

    def _query_match(self, kind: str, rec: HubSpotRecord, query: str) -> bool:
        for name in SEARCHABLE[kind]:
            v = rec.prop(kind, name)
            if v and query in v.lower():
                return True
        return False

    # ================================================================ HTTP: associations
    def _assoc_batch_read(self, req: Request, fk: str, tk: str) -> Response:
        if (fk, tk) not in ASSOC_TYPES:
            raise _BadRequest(f"Unknown association {fk} -> {tk}")
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            raise _BadRequest("Batch input limit exceeded: the limit is 1000")
        unl, prim = ASSOC_TYPES[(fk, tk)]
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        page_size = 500
        for inp in inputs:
            raw = str(inp.get("id", ""))
            start = int(str(inp.get("after") or 0)) if str(inp.get("after") or "0").isdigit() else 0
            targets = self.associations(fk, int(raw), tk) if raw.isdigit() else {}
            if not targets:
                errors.append({
                    "status": "error", "category": "VALIDATION_ERROR",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {SINGULAR[tk]} is associated with {SINGULAR[fk]} {raw}.",
                    "context": {"fromObjectId": [raw]}, "errors": [], "links": {},
                })  # fmt: skip
                continue
            ordered = sorted(targets.items())
            chunk = ordered[start : start + page_size]
            to = []
            for to_id, is_primary in chunk:
                types = [{"category": "HUBSPOT_DEFINED", "typeId": unl, "label": None}]
                if is_primary and prim is not None:
                    types.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": prim, "label": "Primary"})
                to.append({"toObjectId": to_id, "associationTypes": types})
            res: dict[str, Any] = {"from": {"id": raw}, "to": to}
            if start + page_size < len(ordered):
                res["paging"] = {"next": {"after": str(start + page_size), "link": None}}
            results.append(res)
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso_ms(now_ms()),
                               "completedAt": iso_ms(now_ms())}  # fmt: skip
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return Response(207, out)
        return Response(200, out)

    def _assoc_default(self, parts: list[str]) -> Response:
        fk, tk = ALIASES.get(parts[3], parts[3]), ALIASES.get(parts[7], parts[7])
        fid, tid = int(parts[4]), int(parts[8])
        if (fk, tk) not in ASSOC_TYPES:
            raise _BadRequest(f"Unknown association {fk} -> {tk}")
        with self._lock:
            if fk == "contacts":
                self._materialize_contact_links(fid)
            if tk == "contacts":
                self._materialize_contact_links(tid)
            self._link(fk, fid, tk, tid, primary=False)
        return Response(200, {"status": "COMPLETE", "results": [
            {"from": {"id": str(fid)}, "to": {"id": str(tid)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOC_TYPES[(fk, tk)][0]}}
        ]})  # fmt: skip


class _WebhookBatch:
    def __init__(self, fake: FakeHubSpot) -> None:
        self.fake = fake

    def __enter__(self) -> _WebhookBatch:
        with self.fake._batch_lock:
            self.fake._batch_events = []
        return self

    def __exit__(self, *exc: object) -> None:
        with self.fake._batch_lock:
            events, self.fake._batch_events = self.fake._batch_events or [], None
        self.fake._send_events(events)


class _BadRequest(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


def _typed(kind: str, name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name in DATES:
        return _ms(value)
    if name in NUMERIC:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value).lower()


def _sort_key(kind: str, rec: HubSpotRecord, prop: str) -> tuple[int, Any]:
    v = _typed(kind, prop, rec.prop(kind, prop))
    if v is None:
        return (1, 0)
    return (0, v)


def _record_id(rec: HubSpotRecord) -> int:
    return rec.id


# the record attributes behind the built-in properties: compared as integers without formatting the value
_BUILTIN_INTS: dict[str, Callable[[HubSpotRecord], int]] = {
    "hs_object_id": lambda r: r.id,
    "createdate": lambda r: r.created_ms,
    "hs_createdate": lambda r: r.created_ms,
    "lastmodifieddate": lambda r: r.updated_ms,
    "hs_lastmodifieddate": lambda r: r.updated_ms,
}
_INT_OPS: dict[str, Callable[[float, float], bool]] = {
    "EQ": lambda a, b: a == b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
}


def _compile_filter(kind: str, f: Mapping[str, Any]) -> Callable[[HubSpotRecord], bool]:
    """One filter as a predicate: the same answers as :func:`_filter_ok`, with the value parsed once and a
    fast path for the always-set built-in numbers (id, created, last modified)."""
    name = str(f.get("propertyName", ""))
    op = str(f.get("operator", "EQ"))
    getter = _BUILTIN_INTS.get(name)
    if getter is not None and op in _INT_OPS:
        want = _typed(kind, name, f.get("value"))
        if want is None:
            return lambda rec: False
        cmp = _INT_OPS[op]
        return lambda rec: cmp(getter(rec), want)
    return lambda rec: _filter_ok(kind, rec, f)


def _filter_ok(kind: str, rec: HubSpotRecord, f: Mapping[str, Any]) -> bool:
    name = str(f.get("propertyName", ""))
    op = str(f.get("operator", "EQ"))
    raw = rec.prop(kind, name)
    if op == "HAS_PROPERTY":
        return raw not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    have = _typed(kind, name, raw)
    if op in ("IN", "NOT_IN"):
        vals = {_typed(kind, name, v) for v in (f.get("values") or [])}
        return (have in vals) == (op == "IN")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value", "")).lower().strip("*")
        found = raw is not None and token in raw.lower()
        return found == (op == "CONTAINS_TOKEN")
    want = _typed(kind, name, f.get("value"))
    if op == "NEQ":
        return bool(have != want)
    if have is None or want is None:
        return False
    if type(have) is not type(want):
        have, want = str(have), str(want)
    if op == "EQ":
        return bool(have == want)
    if op == "LT":
        return bool(have < want)
    if op == "LTE":
        return bool(have <= want)
    if op == "GT":
        return bool(have > want)
    if op == "GTE":
        return bool(have >= want)
    if op == "BETWEEN":
        high = _typed(kind, name, f.get("highValue"))
        return high is not None and bool(want <= have <= high)
    return False


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    msg = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()
