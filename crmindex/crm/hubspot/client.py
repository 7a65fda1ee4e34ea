"""HubSpot CRM v3 objects + v4 associations client.

* List (``GET /crm/v3/objects/{type}``, 100 per page) as pages exposing the ``after`` cursor, so a sync
  can checkpoint a cursor and resume from it (:meth:`HubSpotClient.iter_pages`).
* Batch read / create / update / upsert (<= 100 inputs per call; larger inputs are chunked), with 207
  partial failures reported per input (:class:`ItemResult`), correlated by ``objectWriteTraceId``.
* Search (``POST /crm/v3/objects/{type}/search``, <= 200 per page, the search limit class); paging past the
  10,000-result cap raises :class:`SearchLimitExceeded`; :meth:`HubSpotClient.iter_modified` walks a
  modified-time window by ``hs_object_id`` and restarts with ``hs_object_id GT last`` before the cap.
* Associations v4 batch reads (contact->company, deal->contact, deal->company).
* Merges: ``hs_merged_object_ids`` is requested by default and exposed as ``HubSpotObject.merged_ids``;
  batch reads resolve merged-away ids to their primary (``BatchReadResult.redirects``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from crmindex.crm.errors import CrmError, SearchLimitExceeded, ValidationError, hubspot_item_error
from crmindex.crm.http import HttpTransport, RetryPolicy, TokenProvider
from crmindex.crm.hubspot import API_BASE
from crmindex.crm.hubspot.models import (
    AssociationBatchResponse,
    AssociationTarget,
    BatchResponse,
    HubSpotObject,
    HubSpotPage,
    HubSpotSearchPage,
)
from crmindex.crm.hubspot.properties import READ_PROPERTIES
from crmindex.platform.limits import LimitClass, RateLimiter

BATCH_LIMIT = 100
LIST_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_BODY_MAX_CHARS = 3_000

Properties = Mapping[str, str | None]


def last_modified_property(object_type: str) -> str:
    """``lastmodifieddate`` for contacts, ``hs_lastmodifieddate`` for companies and deals."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(when: datetime) -> int:
    """Epoch milliseconds, exactly (``timestamp() * 1000`` is a float and can be 1 ms short)."""
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time is local time, as datetime.timestamp() reads it
    return (when - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one input of a batch write, in input order."""

    index: int
    ok: bool
    object: HubSpotObject | None = None
    error: CrmError | None = None

    @property
    def crm_record_id(self) -> str | None:
        return None if self.object is None else self.object.id


@dataclass
class BatchReadResult:
    """Objects by id; ids the CRM did not return are ``missing`` (deleted/archived/never existed)."""

    objects: dict[str, HubSpotObject] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)  # merged-away id -> primary id
    errors: list[CrmError] = field(default_factory=list)

    def get(self, requested_id: str) -> HubSpotObject | None:
        return self.objects.get(self.redirects.get(requested_id, requested_id))


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class HubSpotClient:
    """A HubSpot account (portal). Thread-safe as far as ``requests.Session`` is (one per thread is best)."""

    source = "hubspot"

    def __init__(
        self,
        base_url: str = API_BASE,
        token_provider: TokenProvider | None = None,
        limiter: RateLimiter | None = None,
        portal_id: str | int | None = None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        transport: HttpTransport | None = None,
        search_cap: int = SEARCH_RESULT_CAP,
    ) -> None:
        self.search_cap = search_cap  # HubSpot's 10,000; settable for tests against a smaller fake cap
        if transport is None:
            if token_provider is None:
                raise TypeError("HubSpotClient needs a token_provider (a callable returning the token)")
            transport = HttpTransport(
                "hubspot", base_url, token_provider, limiter, timeout=timeout, retry=retry
            )
        self.http = transport
        self.portal_id = None if portal_id is None else str(portal_id)

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.http.base_url!r}, portal_id={self.portal_id!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        search: bool = False,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        limit_class = LimitClass.HUBSPOT_SEARCH if search else LimitClass.HUBSPOT_GENERAL
        resp = self.http.request(
            method, path, limit_class=limit_class, params=params, json=body, idempotent=idempotent
        )
        return resp.body

    def _model(self, model: Any, endpoint: str, body: Any) -> Any:
        if not isinstance(body, dict):
            raise self.http.malformed(endpoint, "expected a JSON object", body)
        if "results" in model.model_fields and not isinstance(body.get("results"), list):
            # a page or batch answer without its results must not read as "no records": that would end a
            # sync early, mark every requested record gone or drop every association
            raise self.http.malformed(endpoint, "expected 'results': [...]", body)
        try:
            return model.model_validate(body)
        except PydanticValidationError as exc:
            raise self.http.malformed(endpoint, f"{exc.error_count()} schema errors", body) from None

    @staticmethod
    def _props(object_type: str, properties: Iterable[str] | None) -> list[str]:
        props = list(READ_PROPERTIES.get(object_type, [])) if properties is None else list(properties)
        if "hs_merged_object_ids" not in props:
            props.append("hs_merged_object_ids")
        return props

    # -- list --------------------------------------------------------------------------------------
    def list_page(
        self,
        object_type: str,
        *,
        after: str | None = None,
        limit: int = LIST_LIMIT,
        properties: Iterable[str] | None = None,
        archived: bool = False,
        associations: Iterable[str] | None = None,
    ) -> HubSpotPage:
        """One page of ``GET /crm/v3/objects/{type}``; ``page.after`` is the next page's cursor."""
        path = f"/crm/v3/objects/{object_type}"
        params: dict[str, Any] = {
            "limit": min(limit, LIST_LIMIT),
            "properties": ",".join(self._props(object_type, properties)),
            "archived": "true" if archived else "false",
        }
        if after:
            params["after"] = after
        if associations:
            params["associations"] = ",".join(associations)
        body = self._call("GET", path, params=params)
        page: HubSpotPage = self._model(HubSpotPage, f"GET {path}", body)
        return page

    def iter_pages(
        self,
        object_type: str,
        *,
        after: str | None = None,
        limit: int = LIST_LIMIT,
        properties: Iterable[str] | None = None,
        archived: bool = False,
        associations: Iterable[str] | None = None,
    ) -> Iterator[HubSpotPage]:
        """Every page from ``after`` (a saved cursor) on; checkpoint ``page.after`` after each page."""
        props = self._props(object_type, properties)
        assoc = list(associations) if associations else None
        while True:
            page = self.list_page(
                object_type, after=after, limit=limit, properties=props, archived=archived, associations=assoc
            )
            yield page
            if page.after is None:
                return
            after = page.after

    def iter_objects(self, object_type: str, **kw: Any) -> Iterator[HubSpotObject]:
        for page in self.iter_pages(object_type, **kw):
            yield from page.results

    def get(
        self,
        object_type: str,
        object_id: str,
        *,
        properties: Iterable[str] | None = None,
        id_property: str | None = None,
    ) -> HubSpotObject:
        """``GET /crm/v3/objects/{type}/{id}``; raises NotFoundError when absent."""
        path = f"/crm/v3/objects/{object_type}/{object_id}"
        params: dict[str, Any] = {"properties": ",".join(self._props(object_type, properties))}
        if id_property:
            params["idProperty"] = id_property
        body = self._call("GET", path, params=params)
        obj: HubSpotObject = self._model(HubSpotObject, f"GET /crm/v3/objects/{object_type}/{{id}}", body)
        return obj

    # -- batch read --------------------------------------------------------------------------------
    def batch_read(
        self,
        object_type: str,
        ids: Sequence[str],
        *,
        properties: Iterable[str] | None = None,
        id_property: str | None = None,
        archived: bool = False,
    ) -> BatchReadResult:
        """Read ``ids`` in chunks of 100 (``POST .../batch/read``); absent ids are ``missing``."""
        path = f"/crm/v3/objects/{object_type}/batch/read"
        props = self._props(object_type, properties)
        out = BatchReadResult()
        unique = list(dict.fromkeys(str(i) for i in ids))
        for chunk in _chunks(unique, BATCH_LIMIT):
            body: dict[str, Any] = {
                "inputs": [{"id": i} for i in chunk],
                "properties": props,
                "propertiesWithHistory": [],
            }
            if id_property:
                body["idProperty"] = id_property
            raw = self._call("POST", path, params={"archived": "true" if archived else "false"}, body=body)
            resp: BatchResponse = self._model(BatchResponse, f"POST {path}", raw)
            found: set[str] = set()
            for obj in resp.results:
                out.objects[obj.id] = obj
                found.add(obj.id)
                if id_property and obj.prop(id_property):
                    key = str(obj.prop(id_property))
                    found.add(key)
                    if key != obj.id:
                        out.redirects[key] = obj.id
                for merged in obj.merged_ids:
                    if merged in chunk and merged != obj.id:
                        out.redirects[merged] = obj.id
                        found.add(merged)
            for err in resp.errors:
                if err.category != "OBJECT_NOT_FOUND":
                    out.errors.append(
                        hubspot_item_error(err.model_dump(by_alias=True), endpoint=f"POST {path}")
                    )
            out.missing.extend(i for i in chunk if i not in found)
        return out

    # -- batch writes ------------------------------------------------------------------------------
    def _batch_write(
        self,
        object_type: str,
        op: str,
        inputs: Sequence[dict[str, Any]],
        keys: Sequence[str | None],
        *,
        idempotent: bool,
    ) -> list[ItemResult]:
        path = f"/crm/v3/objects/{object_type}/batch/{op}"
        endpoint = f"POST {path}"
        results: list[ItemResult | None] = [None] * len(inputs)
        for start in range(0, len(inputs), BATCH_LIMIT):
            chunk = []
            for offset, item in enumerate(inputs[start : start + BATCH_LIMIT]):
                idx = start + offset
                chunk.append({**item, "objectWriteTraceId": item.get("objectWriteTraceId") or str(idx)})
            trace_to_idx = {str(c["objectWriteTraceId"]): start + i for i, c in enumerate(chunk)}
            key_to_idx = {str(k): start + i for i, k in enumerate(keys[start : start + BATCH_LIMIT]) if k}
            raw = self._call("POST", path, body={"inputs": chunk}, idempotent=idempotent)
            resp: BatchResponse = self._model(BatchResponse, endpoint, raw)
            for obj in resp.results:
                idx_opt = trace_to_idx.get(obj.object_write_trace_id or "")
                if idx_opt is None:
                    idx_opt = key_to_idx.get(obj.id)
                if idx_opt is None:
                    for k, i in key_to_idx.items():
                        if k in obj.properties.values():
                            idx_opt = i
                            break
                if idx_opt is not None:
                    results[idx_opt] = ItemResult(idx_opt, True, obj)
            for err in resp.errors:
                error = hubspot_item_error(err.model_dump(by_alias=True), endpoint=endpoint)
                targets = [
                    trace_to_idx[t] for t in err.context.get("objectWriteTraceId", []) if t in trace_to_idx
                ]
                if err.id and err.id in trace_to_idx:
                    targets.append(trace_to_idx[err.id])
                for key in err.context_ids():
                    if key in key_to_idx:
                        targets.append(key_to_idx[key])
                for i in dict.fromkeys(targets):
                    if results[i] is None:
                        results[i] = ItemResult(i, False, error=error)
        out: list[ItemResult] = []
        for i, res in enumerate(results):
            out.append(
                res
                if res is not None
                else ItemResult(
                    i,
                    False,
                    error=CrmError(
                        "the batch response has no result for this input",
                        source="hubspot",
                        endpoint=endpoint,
                        retryable=True,
                    ),
                )
            )
        return out

    def batch_create(
        self,
        object_type: str,
        items: Sequence[Properties | Mapping[str, Any]],
        *,
        associations: Sequence[Sequence[Mapping[str, Any]] | None] | None = None,
    ) -> list[ItemResult]:
        """Create records (``{properties, associations}`` per item); not retried after it may have landed."""
        inputs: list[dict[str, Any]] = []
        for i, props in enumerate(items):
            inp: dict[str, Any] = {"properties": dict(props), "associations": []}
            if associations is not None and associations[i]:
                inp["associations"] = [dict(a) for a in associations[i] or []]
            inputs.append(inp)
        return self._batch_write(object_type, "create", inputs, [None] * len(inputs), idempotent=False)

    def batch_update(self, object_type: str, items: Sequence[tuple[str, Properties]]) -> list[ItemResult]:
        """Update ``(id, properties)`` pairs; an empty string clears a property."""
        inputs = [{"id": str(i), "properties": dict(p)} for i, p in items]
        return self._batch_write(object_type, "update", inputs, [str(i) for i, _ in items], idempotent=True)

    def batch_upsert(
        self, object_type: str, items: Sequence[tuple[str, Properties]], *, id_property: str = "email"
    ) -> list[ItemResult]:
        """Create or update by a unique property (contacts: ``email``); ``result.object.new`` tells which."""
        inputs = [{"id": str(k), "idProperty": id_property, "properties": dict(p)} for k, p in items]
        return self._batch_write(object_type, "upsert", inputs, [str(k) for k, _ in items], idempotent=True)

    def create(self, object_type: str, properties: Properties) -> HubSpotObject:
        path = f"/crm/v3/objects/{object_type}"
        raw = self._call("POST", path, body={"properties": dict(properties)}, idempotent=False)
        obj: HubSpotObject = self._model(HubSpotObject, f"POST {path}", raw)
        return obj

    def update(self, object_type: str, object_id: str, properties: Properties) -> HubSpotObject:
        path = f"/crm/v3/objects/{object_type}/{object_id}"
        raw = self._call("PATCH", path, body={"properties": dict(properties)})
        obj: HubSpotObject = self._model(HubSpotObject, f"PATCH /crm/v3/objects/{object_type}/{{id}}", raw)
        return obj

    def archive(self, object_type: str, object_id: str) -> None:
        self._call("DELETE", f"/crm/v3/objects/{object_type}/{object_id}")

    def merge(self, object_type: str, primary_id: str, merged_id: str) -> HubSpotObject:
        path = f"/crm/v3/objects/{object_type}/merge"
        raw = self._call(
            "POST", path, body={"primaryObjectId": str(primary_id), "objectIdToMerge": str(merged_id)}
        )
        obj: HubSpotObject = self._model(HubSpotObject, f"POST {path}", raw)
        return obj

    # -- search ------------------------------------------------------------------------------------
    def search(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[Mapping[str, Any]] = (),
        sorts: Sequence[Mapping[str, Any] | str] = (),
        properties: Iterable[str] | None = None,
        limit: int = SEARCH_LIMIT,
        after: str | int | None = None,
        query: str | None = None,
    ) -> HubSpotSearchPage:
        """One page of ``POST /crm/v3/objects/{type}/search`` (search limit class, <= 200 per page).

        Raises :class:`SearchLimitExceeded` when the page would cross the 10,000-result cap.
        """
        path = f"/crm/v3/objects/{object_type}/search"
        limit = min(limit, SEARCH_LIMIT)
        body: dict[str, Any] = {
            "filterGroups": [dict(g) for g in filter_groups],
            "sorts": [s if isinstance(s, str) else dict(s) for s in sorts],
            "properties": self._props(object_type, properties),
            "limit": limit,
        }
        if after is not None:
            body["after"] = str(after)
        if query:
            body["query"] = query
        size = len(json.dumps(body))
        if size > SEARCH_BODY_MAX_CHARS:
            raise ValidationError(
                f"search body is {size} characters; HubSpot accepts at most {SEARCH_BODY_MAX_CHARS}",
                source="hubspot",
                endpoint=f"POST {path}",
            )
        offset = int(after) if after is not None and str(after).isdigit() else 0
        try:
            raw = self._call("POST", path, search=True, body=body)
        except ValidationError as exc:
            if offset + limit > self.search_cap:
                raise SearchLimitExceeded(
                    exc.message,
                    source="hubspot",
                    status=exc.status,
                    endpoint=exc.endpoint,
                    category=exc.category,
                    details={**exc.details, "after": offset, "limit": limit, "cap": self.search_cap},
                    correlation_id=exc.correlation_id,
                ) from exc
            raise
        page: HubSpotSearchPage = self._model(HubSpotSearchPage, f"POST {path}", raw)
        return page

    def iter_modified(
        self,
        object_type: str,
        since: datetime,
        until: datetime,
        *,
        properties: Iterable[str] | None = None,
        page_size: int = SEARCH_LIMIT,
        after_id: str | None = None,
    ) -> Iterator[HubSpotObject]:
        """Objects modified in ``[since, until]``, by ascending ``hs_object_id``, past the 10,000 cap.

        Before the next page would cross the cap the query restarts with ``hs_object_id GT <last id>``
        (sorting by the unique id never loops, even when >10k records share one timestamp).
        """
        prop = last_modified_property(object_type)
        props = self._props(object_type, properties)
        last_id = after_id
        query_from = after_id  # the id the current query starts after (changes only on restart)
        after: str | None = None
        while True:
            filters: list[dict[str, Any]] = [
                {"propertyName": prop, "operator": "GTE", "value": str(to_ms(since))},
                {"propertyName": prop, "operator": "LTE", "value": str(to_ms(until))},
            ]
            if query_from is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(query_from)})
            page = self.search(
                object_type,
                filter_groups=[{"filters": filters}],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=props,
                limit=page_size,
                after=after,
            )
            for obj in page.results:
                last_id = obj.id
                yield obj
            if page.after is None or not page.results:
                return
            nxt = int(page.after) if page.after.isdigit() else None
            # restart from the last id seen before the cap
            if nxt is None or nxt + page_size > self.search_cap:
                after, query_from = None, last_id
            else:
                after = page.after

    # -- associations v4 ---------------------------------------------------------------------------
    def batch_read_associations(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> dict[str, list[AssociationTarget]]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``: targets per id (every id is a key)."""
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        out: dict[str, list[AssociationTarget]] = {str(i): [] for i in ids}
        pending: list[dict[str, Any]] = [{"id": i} for i in out]
        while pending:
            chunk, pending = pending[:BATCH_LIMIT], pending[BATCH_LIMIT:]
            raw = self._call("POST", path, body={"inputs": chunk})
            resp: AssociationBatchResponse = self._model(AssociationBatchResponse, f"POST {path}", raw)
            for res in resp.results:
                out.setdefault(res.from_.id, []).extend(res.to)
                if res.paging and res.paging.next:
                    pending.append({"id": res.from_.id, "after": res.paging.next.after})
            for err in resp.errors:
                if (err.sub_category or "").endswith(
                    "NO_ASSOCIATIONS_FOUND"
                ) or err.category == "OBJECT_NOT_FOUND":
                    continue
                raise hubspot_item_error(err.model_dump(by_alias=True), endpoint=f"POST {path}")
        return out

    def contact_companies(self, contact_ids: Sequence[str]) -> dict[str, str | None]:
        """Each contact's primary company id (None without a company)."""
        out: dict[str, str | None] = {}
        for cid, targets in self.batch_read_associations("contacts", "companies", contact_ids).items():
            out[cid] = _primary(targets)
        return out

    def deal_associations(self, deal_ids: Sequence[str]) -> dict[str, tuple[list[str], str | None]]:
        """Each deal's (contact ids, primary company id)."""
        contacts = self.batch_read_associations("deals", "contacts", deal_ids)
        companies = self.batch_read_associations("deals", "companies", deal_ids)
        return {
            d: ([t.to_object_id for t in contacts.get(d, [])], _primary(companies.get(d, [])))
            for d in contacts
        }


def _primary(targets: Sequence[AssociationTarget]) -> str | None:
    for t in targets:
        if any((a.label or "").lower() == "primary" for a in t.association_types):
            return t.to_object_id
    return targets[0].to_object_id if targets else None
