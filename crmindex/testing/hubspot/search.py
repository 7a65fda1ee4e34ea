"""The search endpoint, ``POST /crm/v3/objects/{type}/search``: its limits (body size, page size, filter
groups and filters, one sort, ``total`` capped at 10,000 results with a 400 when paging past it), the
filter compiler (filter groups ORed, filters ANDed, values typed as numbers, dates or lower-cased text),
the free-text ``query``, sorting, integer-offset ``after`` paging and an optional indexing lag.

A search bounded below by a last-modified filter looks only at the records written since (a seeded record
is never newer than its seed). A search whose every filter bounds ``hs_object_id`` (the split initial sync's
ranges, :mod:`crmindex.crm.hubspot.partitions`) is answered from the id order, building only the page's
records. Any other search materialises the object type once, because it has to look at every record.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from crmindex.testing._http import Request, Response
from crmindex.testing.hubspot.errors import BadRequest
from crmindex.testing.hubspot.model import DATES, NUMERIC, now_ms, parse_ms
from crmindex.testing.hubspot.portal import Portal
from crmindex.testing.hubspot.store import HubSpotRecord

SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
SEARCH_BODY_MAX = 3_000
MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}  # fmt: skip
SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_additional_emails"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
}
MODIFIED_PROPERTIES = ("lastmodifieddate", "hs_lastmodifieddate")


def search(portal: Portal, kind: str, req: Request, *, lag: float, cap: int) -> Response:
    """Answer one search request; ``lag`` hides changes younger than that many seconds, ``cap`` is the
    most results a query can page through. Raises :class:`BadRequest` for a request HubSpot refuses."""
    if len(req.body) > SEARCH_BODY_MAX:
        raise BadRequest(f"The request body must be at most {SEARCH_BODY_MAX} characters")
    body = req.json() or {}
    try:
        limit = int(body.get("limit", 10))
        offset = int(str(body.get("after") or 0))
    except ValueError as exc:
        raise BadRequest("limit and after must be integers") from exc
    if limit > SEARCH_LIMIT or limit < 0:
        raise BadRequest(f"limit must be at most {SEARCH_LIMIT}")
    if offset + limit > cap:
        raise BadRequest(
            f"The search endpoints are limited to {cap} total results for any given query; "
            f"cannot page beyond {cap} (after={offset}, limit={limit})"
        )
    groups = body.get("filterGroups") or []
    _check_filters(groups)
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise BadRequest("Only one sort is supported")
    names = body.get("properties") or None
    query = (body.get("query") or "").strip().lower()
    lag_cutoff = now_ms() - int(lag * 1000) if lag > 0 else None
    by_id = _by_id_direction(sorts)
    span = _id_span(groups) if not query and lag_cutoff is None and by_id is not None else None
    if span is not None:
        return _id_range_page(portal, kind, span, names, offset, limit, descending=by_id == "DESCENDING")
    matches = _matcher(kind, groups)
    floor = _modified_floor(groups)
    with portal.lock:  # only the candidate list is taken under the lock: writes are not held up by a search
        st = portal.store(kind)
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
        and (not query or _query_match(kind, r, query))
    ]
    matched.sort(key=_record_id)
    if sorts:
        s = sorts[0]
        prop = s if isinstance(s, str) else s.get("propertyName", "hs_object_id")
        desc = not isinstance(s, str) and str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"
        if prop != "hs_object_id" or desc:
            matched.sort(key=lambda r: (_sort_key(kind, r, prop), r.id), reverse=desc)
    total = len(matched)
    with portal.lock:  # a record's properties may be changing: read them under the lock
        page = [r.view(kind, names) for r in matched[offset : offset + limit]]
    out: dict[str, Any] = {"total": total, "results": page}
    if offset + limit < total:
        nxt = str(offset + limit)
        out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
    return Response(200, out)


_ID_BOUND_OPS = ("GT", "GTE", "LT", "LTE")


def _id_span(groups: list[dict[str, Any]]) -> tuple[int, int | None] | None:
    """``[lo, hi)`` when every filter of every group bounds ``hs_object_id`` (the union of the groups' spans, None
    for an open top; no filter at all: every id): the searches a partitioned sync sends (its id ranges and the
    probes of the lowest and highest id), answered from the id order alone. None otherwise."""
    if not groups:
        return 0, None
    los: list[int] = []
    his: list[int | None] = []
    for g in groups:
        lo, hi = 0, None
        filters = g.get("filters") or []
        if not filters:
            return None
        for f in filters:
            op = f.get("operator")
            if f.get("propertyName") != "hs_object_id" or op not in _ID_BOUND_OPS:
                return None
            try:
                v = int(str(f.get("value")))
            except ValueError:
                return None
            if op in ("GT", "GTE"):
                lo = max(lo, v + 1 if op == "GT" else v)
            else:
                top = v + 1 if op == "LTE" else v
                hi = top if hi is None else min(hi, top)
        los.append(lo)
        his.append(hi)
    return min(los), None if any(h is None for h in his) else max(h for h in his if h is not None)


def _by_id_direction(sorts: list[Any]) -> str | None:
    """The direction ("ASCENDING", "DESCENDING") of results in ``hs_object_id`` order (no sort: ascending), else
    None."""
    if not sorts:
        return "ASCENDING"
    s = sorts[0]
    if isinstance(s, str):
        return "ASCENDING" if s == "hs_object_id" else None
    direction = str(s.get("direction", "ASCENDING")).upper()
    by_id = s.get("propertyName", "hs_object_id") == "hs_object_id"
    if not by_id or direction not in {"ASCENDING", "DESCENDING"}:
        return None
    return direction


def _id_range_page(
    portal: Portal,
    kind: str,
    span: tuple[int, int | None],
    names: Any,
    offset: int,
    limit: int,
    *,
    descending: bool = False,
) -> Response:
    """The same answer as the general path for an id-range search (archived and gone records left out, ids in
    the asked order, ``total`` of the whole range) without building every seeded record of the range: only the
    page's. (A performance shortcut of the fake only: a 100K seed took ~9 s to build for a sync's first probe.)"""
    lo, hi = span
    with portal.lock:
        st = portal.store(kind)
        written = st.records
        ids: list[int] = []
        for oid in st.ids_from(lo):
            if hi is not None and oid >= hi:
                break
            if oid in written:
                rec = written[oid]
                if rec is None or rec.archived:
                    continue
            elif st.seed is None or not st.seed.covers(oid):
                continue
            ids.append(oid)
        if descending:
            ids.reverse()
        page = []
        for oid in ids[offset : offset + limit]:
            rec = st.get(oid)
            if rec is not None:
                page.append(rec.view(kind, names))
    total = len(ids)
    out: dict[str, Any] = {"total": total, "results": page}
    if offset + limit < total:
        nxt = str(offset + limit)
        out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
    return Response(200, out)


def _check_filters(groups: list[dict[str, Any]]) -> None:
    if len(groups) > MAX_FILTER_GROUPS:
        raise BadRequest(f"Too many filter groups: at most {MAX_FILTER_GROUPS}")
    n_filters = 0
    for g in groups:
        filters = g.get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise BadRequest(f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP}")
        n_filters += len(filters)
        for f in filters:
            if f.get("operator") not in OPERATORS:
                raise BadRequest(f"Unknown operator {f.get('operator')!r}")
    if n_filters > MAX_FILTERS:
        raise BadRequest(f"Too many filters: at most {MAX_FILTERS} in all")


def _modified_floor(groups: list[dict[str, Any]]) -> int | None:
    """The lowest last-modified time (ms) a search can match, when every filter group bounds it below."""
    floors = []
    for g in groups:
        bounds = [
            parse_ms(f.get("value"))
            for f in g.get("filters") or []
            if f.get("propertyName") in MODIFIED_PROPERTIES and f.get("operator") in ("GT", "GTE")
        ]
        known = [b for b in bounds if b is not None]
        if not known:
            return None
        floors.append(max(known))
    return min(floors) if floors else None


def _query_match(kind: str, rec: HubSpotRecord, query: str) -> bool:
    for name in SEARCHABLE[kind]:
        v = rec.prop(kind, name)
        if v and query in v.lower():
            return True
    return False


def _typed(kind: str, name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name in DATES:
        return parse_ms(value)
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


# -- the filter compiler ---------------------------------------------------------------------------
def _matcher(kind: str, groups: list[dict[str, Any]]) -> Callable[[HubSpotRecord], bool]:
    """The filter groups compiled once per request (OR of ANDs), not re-read for every record."""
    if not groups:
        return lambda rec: True
    compiled = [[_compile_filter(kind, f) for f in (g.get("filters") or [])] for g in groups]
    return lambda rec: any(all(ok(rec) for ok in group) for group in compiled)


# the record attributes behind the built-in properties: compared as integers without formatting the value
_BUILTIN_INTS: dict[str, Callable[[HubSpotRecord], int]] = {
    "hs_object_id": lambda r: r.id,
    "createdate": lambda r: r.created_ms,
    "hs_createdate": lambda r: r.created_ms,
    "lastmodifieddate": lambda r: r.updated_ms,
    "hs_lastmodifieddate": lambda r: r.updated_ms,
}
# the comparison operators, for the fast path and for typed values alike
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": operator.eq,
    "LT": operator.lt,
    "LTE": operator.le,
    "GT": operator.gt,
    "GTE": operator.ge,
}


def _compile_filter(kind: str, f: Mapping[str, Any]) -> Callable[[HubSpotRecord], bool]:
    """One filter as a predicate: the same answers as :func:`_filter_ok`, with the value parsed once and a
    fast path for the always-set built-in numbers (id, created, last modified)."""
    name = str(f.get("propertyName", ""))
    op = str(f.get("operator", "EQ"))
    getter = _BUILTIN_INTS.get(name)
    cmp = _COMPARE.get(op)
    if getter is not None and cmp is not None:
        want = _typed(kind, name, f.get("value"))
        if want is None:
            return lambda rec: False
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
    if (cmp := _COMPARE.get(op)) is not None:
        return bool(cmp(have, want))
    if op == "BETWEEN":
        high = _typed(kind, name, f.get("highValue"))
        return high is not None and bool(want <= have <= high)
    return False
