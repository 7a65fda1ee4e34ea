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
* The portal's vocabulary: deal pipelines and stages (``GET /crm/v3/pipelines/{type}``) and owners
  (``GET /crm/v3/owners/``, paged, active and archived).
* Rate limits as the account reports them (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines):
  every non-search answer's ``X-HubSpot-RateLimit-Max`` per ``-Interval-Milliseconds`` is the account's tier (100,
  190, 250 per 10 s; 110 for a public OAuth app) and replaces the limiter's default; ``-Remaining`` 0 backs every
  worker off a moment; ``X-HubSpot-RateLimit-Daily`` / ``-Daily-Remaining`` (private apps only: "not sent for
  OAuth") hold the account's calls until its midnight ("resets at midnight based on your time zone setting": the
  account details' ``timeZone``) once at most ``daily_reserve`` calls are left, and so does a 429 ``DAILY``.
  The account never goes over its daily limit, and its jobs wait with a clear reason (``DAILY``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import ValidationError as PydanticValidationError

from crmindex.crm.errors import CrmError, SearchLimitExceeded, ValidationError, hubspot_item_error
from crmindex.crm.http import HttpTransport, RetryPolicy, TokenProvider
from crmindex.crm.hubspot import API_BASE
from crmindex.crm.hubspot.models import (
    PRIMARY_TYPE_IDS,
    AssociationBatchResponse,
    AssociationTarget,
    BatchResponse,
    HubSpotObject,
    HubSpotPage,
    HubSpotSearchPage,
    Owner,
    OwnerPage,
    Pipeline,
    PipelineList,
    primary_target,
)
from crmindex.crm.hubspot.properties import READ_PROPERTIES
from crmindex.platform.limits import AdaptiveLimiter, LimitClass, RateLimiter

log = logging.getLogger("crmindex.crm.hubspot")

BATCH_LIMIT = 100
LIST_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_BODY_MAX_CHARS = 3_000
OWNER_PAGE = 500  # GET /crm/v3/owners/: limit at most 500
HELD_CLASSES = ("general", "search")  # what a spent daily budget holds (every call of the account counts)

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
        daily_reserve: int | None = None,
    ) -> None:
        self.search_cap = search_cap  # HubSpot's 10,000; settable for tests against a smaller fake cap
        # calls left of the daily budget at which the account is held (None: 1 in 500 of the budget, at least 1)
        self.daily_reserve = daily_reserve
        self._limits_lock = threading.Lock()
        self._observed_tier: tuple[int, int] | None = None
        self._daily_noted: int | None = None
        self._zone: tzinfo | None = None
        self._zone_known = False
        if transport is None:
            if token_provider is None:
                raise TypeError("HubSpotClient needs a token_provider (a callable returning the token)")
            transport = HttpTransport(
                "hubspot", base_url, token_provider, limiter, timeout=timeout, retry=retry
            )
        self.http = transport
        self.http.on_response = self._on_response
        self.portal_id = None if portal_id is None else str(portal_id)

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.http.base_url!r}, portal_id={self.portal_id!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rate limits as the account reports them -------------------------------------------------------
    def _on_response(self, limit_class: LimitClass, resp: requests.Response) -> float | None:
        """Read an answer's ``X-HubSpot-RateLimit-*`` headers into the account's limiter (module docstring); for a
        429 ``DAILY``, hold the account until its midnight and return that wait."""
        limiter = self.http.limiter if isinstance(self.http.limiter, AdaptiveLimiter) else None
        if resp.status_code == 429:
            if _daily_429(resp):
                until = self.daily_resets_at()
                if limiter is not None:
                    limiter.hold(HELD_CLASSES, until, "DAILY")
                return max(1.0, (until - datetime.now(UTC)).total_seconds())
            return None
        if limiter is None:
            return None
        h = resp.headers
        interval_ms, most = (
            _int_header(h, "X-HubSpot-RateLimit-Interval-Milliseconds"),
            _int_header(h, "X-HubSpot-RateLimit-Max"),
        )
        if interval_ms and most and limit_class == LimitClass.HUBSPOT_GENERAL:
            with self._limits_lock:
                seen, self._observed_tier = self._observed_tier, (most, interval_ms)
            if seen != (most, interval_ms) and limiter.observe(limit_class, most, interval_ms / 1000):
                log.info(
                    "hubspot account %s: %d calls per %.0f s (its tier)",
                    self.portal_id,
                    most,
                    interval_ms / 1000,
                )
            remaining = _int_header(h, "X-HubSpot-RateLimit-Remaining")
            if remaining is not None and remaining <= 0:
                self.http.limiter.penalize(limit_class, min(1.0, interval_ms / 1000))
        daily, left = (
            _int_header(h, "X-HubSpot-RateLimit-Daily"),
            _int_header(h, "X-HubSpot-RateLimit-Daily-Remaining"),
        )
        if daily is not None and left is not None:
            reserve = self.daily_reserve if self.daily_reserve is not None else max(1, daily // 500)
            with self._limits_lock:
                noted = self._daily_noted
                # record it now and then (every 1% of the budget), and at every call near the reserve
                due = (
                    noted is None
                    or left <= 2 * reserve + 10
                    or noted - left >= max(1, daily // 100)
                    or left > noted
                )
                if due:
                    self._daily_noted = left
            # the account's midnight is looked up only when it is needed (once, when the account is to be held)
            resets = self.daily_resets_at() if left <= reserve else None
            if due and limiter.observe_daily(daily, left, resets, reserve, HELD_CLASSES):
                log.warning(
                    "hubspot account %s: %d of %d daily calls left: held until the account's midnight",
                    self.portal_id,
                    left,
                    daily,
                )
        return None

    def daily_resets_at(self, now: datetime | None = None) -> datetime:
        """When the account's daily limit resets: its next midnight in its time zone (the account details'
        ``timeZone``); when that cannot be read, ``RetryPolicy.hubspot_daily_wait`` from now (look again then)."""
        zone = self._account_zone()
        now = now or datetime.now(UTC)
        if zone is None:
            return now + timedelta(seconds=self.http.retry.hubspot_daily_wait)
        local = now.astimezone(zone)
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)
        return midnight.astimezone(UTC)

    def _account_zone(self) -> tzinfo | None:
        """The account's time zone (``GET /account-info/v3/details``: ``timeZone``, else ``utcOffsetMilliseconds``),
        read once, without a limiter permit (it is read when the account may be held)."""
        with self._limits_lock:
            if self._zone_known:
                return self._zone
            self._zone_known = True  # one try per client, also when it fails
        zone: tzinfo | None = None
        try:
            body = self.http.request(
                "GET", "/account-info/v3/details", limit_class=LimitClass.HUBSPOT_GENERAL, limited=False
            ).body
        except CrmError as exc:
            log.warning("hubspot account %s: time zone not read (%s)", self.portal_id, exc)
            body = None
        info = body if isinstance(body, dict) else {}
        name = info.get("timeZone")
        if isinstance(name, str) and name:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                zone = None
        offset = info.get("utcOffsetMilliseconds")
        if zone is None and isinstance(offset, int) and abs(offset) < 86_400_000:
            zone = timezone(timedelta(milliseconds=offset))
        with self._limits_lock:
            self._zone = zone
        return zone

    # -- the portal's vocabulary -------------------------------------------------------------------------
    def pipelines(self, object_type: str = "deals") -> list[Pipeline]:
        """``GET /crm/v3/pipelines/{objectType}``: every live pipeline with its stages."""
        path = f"/crm/v3/pipelines/{object_type}"
        raw = self._call("GET", path)
        listed: PipelineList = self._model(PipelineList, f"GET {path}", raw)
        return listed.results

    def owners(self, *, archived: bool = False) -> list[Owner]:
        """``GET /crm/v3/owners/``, every page (``archived=True``: only the deactivated owners)."""
        path = "/crm/v3/owners/"
        out: list[Owner] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": OWNER_PAGE, "archived": "true" if archived else "false"}
            if after:
                params["after"] = after
            raw = self._call("GET", path, params=params)
            page: OwnerPage = self._model(OwnerPage, f"GET {path}", raw)
            out.extend(page.results)
            if page.after is None or not page.results:
                return out
            after = page.after

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

    # -- batch writes ------------------------------------------------------------------------------------
    def _batch_write(
        self,
        object_type: str,
        op: str,
        inputs: Sequence[dict[str, Any]],
        keys: Sequence[str | None],
        *,
        idempotent: bool,
    ) -> list[ItemResult]:
        """Send ``inputs`` in calls of <= 100. A call HubSpot refuses as a whole for one bad input (400
        ``VALIDATION_ERROR`` / 409 ``CONFLICT``, naming only the first offender: see :func:`_isolate`) is split until
        the bad inputs stand alone: every other input lands, each bad one fails with its own error."""
        path = f"/crm/v3/objects/{object_type}/batch/{op}"
        endpoint = f"POST {path}"
        results: dict[int, ItemResult] = {}
        for start in range(0, len(inputs), BATCH_LIMIT):
            idxs = list(range(start, min(start + BATCH_LIMIT, len(inputs))))
            results.update(self._write_chunk(path, endpoint, inputs, keys, idxs, idempotent, isolating=False))
        out: list[ItemResult] = []
        for i in range(len(inputs)):
            res = results.get(i)
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

    def _write_chunk(
        self,
        path: str,
        endpoint: str,
        inputs: Sequence[dict[str, Any]],
        keys: Sequence[str | None],
        idxs: list[int],
        idempotent: bool,
        *,
        isolating: bool,
    ) -> dict[int, ItemResult]:
        """One batch call for the inputs at ``idxs``; its outcome per input index. While ``isolating`` (part of a
        call that was refused as a whole, whose other parts may have landed already) a failure of this call is
        recorded on its inputs instead of raised, so what landed stays landed."""
        chunk = [
            {**inputs[i], "objectWriteTraceId": inputs[i].get("objectWriteTraceId") or str(i)} for i in idxs
        ]
        trace_to_idx = {str(c["objectWriteTraceId"]): i for c, i in zip(chunk, idxs, strict=True)}
        key_to_idx = {str(keys[i]): i for i in idxs if keys[i]}
        out: dict[int, ItemResult] = {}
        try:
            raw = self._call("POST", path, body={"inputs": chunk}, idempotent=idempotent)
            resp: BatchResponse = self._model(BatchResponse, endpoint, raw)
        except ValidationError as exc:
            if not _refused_as_a_whole(exc):
                if not isolating:
                    raise
                return {i: ItemResult(i, False, error=exc) for i in idxs}
            if len(idxs) == 1:
                i = idxs[0]
                return {i: ItemResult(i, False, error=_for_input(exc, inputs[i], path))}
            for part in _isolate(exc, idxs, inputs, trace_to_idx, key_to_idx):
                out.update(self._write_chunk(path, endpoint, inputs, keys, part, idempotent, isolating=True))
            return out
        except CrmError as exc:
            if not isolating:
                raise
            return {i: ItemResult(i, False, error=exc) for i in idxs}
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
                out[idx_opt] = ItemResult(idx_opt, True, obj)
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
                if i not in out:
                    out[i] = ItemResult(i, False, error=error)
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

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: Sequence[int]
    ) -> None:
        """``PUT /crm/v4/objects/{from}/{id}/associations/{to}/{toId}`` with HUBSPOT_DEFINED type ids (a primary type
        id makes it the primary association). Idempotent: associating twice leaves one association."""
        body = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t} for t in type_ids]
        self._call("PUT", f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}", body=body)

    def disassociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """``DELETE /crm/v4/objects/{from}/{id}/associations/{to}/{toId}``: every association between the two."""
        self._call("DELETE", f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}")

    def contact_companies(self, contact_ids: Sequence[str]) -> dict[str, str | None]:
        """Each contact's primary company id (None without a company): the contact -> company primary type (1)."""
        out: dict[str, str | None] = {}
        for cid, targets in self.batch_read_associations("contacts", "companies", contact_ids).items():
            out[cid] = primary_target(targets, PRIMARY_TYPE_IDS[("contacts", "companies")])
        return out

    def deal_associations(self, deal_ids: Sequence[str]) -> dict[str, tuple[list[str], str | None]]:
        """Each deal's (contact ids, primary company id): the deal -> company primary type (5), every page."""
        contacts = self.batch_read_associations("deals", "contacts", deal_ids)
        companies = self.batch_read_associations("deals", "companies", deal_ids)
        primary = PRIMARY_TYPE_IDS[("deals", "companies")]
        return {
            d: (
                list(dict.fromkeys(t.to_object_id for t in contacts.get(d, []))),
                primary_target(companies.get(d, []), primary),
            )
            for d in contacts
        }


# -- whole-batch refusals ---------------------------------------------------------------------------------------
_NOT_VALID = "Property values were not valid:"


def _refused_as_a_whole(exc: ValidationError) -> bool:
    """A batch write HubSpot refused entirely because of its inputs' values: 400 ``VALIDATION_ERROR`` or 409
    ``CONFLICT`` (reference "Failure semantics": an invalid value or a taken unique value in one input fails the
    whole call; HubSpot/hubspot-api-python#51)."""
    return (exc.status == 400 and exc.category == "VALIDATION_ERROR") or (
        exc.status == 409 and exc.category == "CONFLICT"
    )


def _invalid_properties(exc: CrmError) -> list[tuple[str, str | None]]:
    """(property, error code) of a validation answer: HubSpot's message is ``Property values were not valid:``
    and a JSON list of ``{"isValid": false, "message", "error": "INVALID_EMAIL", "name": "email"}`` (changelog
    "upcoming-property-validations-rules-will-be-enforced-for-apis-and-integrations"). Empty when the message is
    not that (it is only read here, never stored: see crmindex.crm.errors)."""
    text = exc.message if exc.message_from_crm else ""
    if not text.startswith(_NOT_VALID):
        return []
    try:
        items = json.loads(text[len(_NOT_VALID) :].strip())
    except ValueError:
        return []
    out: list[tuple[str, str | None]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            code = item.get("error")
            out.append((item["name"], code if isinstance(code, str) else None))
    return out


def _isolate(
    exc: ValidationError,
    idxs: list[int],
    inputs: Sequence[Mapping[str, Any]],
    trace_to_idx: Mapping[str, int],
    key_to_idx: Mapping[str, int],
) -> list[list[int]]:
    """How to resend a refused call's inputs so the bad ones end up alone: the input the answer names (its
    ``context`` ids or ``objectWriteTraceId``, when HubSpot gives them), else the one input whose value the answer
    quotes for the property it names, goes alone and the rest together; otherwise the call is split in halves."""
    named: list[int] = []
    context = exc.details.get("context") if isinstance(exc.details.get("context"), dict) else {}
    assert isinstance(context, dict)
    for key in ("objectWriteTraceId", "ids", "id"):
        values = context.get(key)
        for v in values if isinstance(values, list) else []:
            i = trace_to_idx.get(str(v)) if key == "objectWriteTraceId" else key_to_idx.get(str(v))
            if i is not None and i in idxs and i not in named:
                named.append(i)
    if not named:
        quoted = exc.message if exc.message_from_crm else ""
        for name, _code in _invalid_properties(exc)[:1]:
            suspects = [
                i
                for i in idxs
                if str((inputs[i].get("properties") or {}).get(name) or "")
                and str((inputs[i].get("properties") or {}).get(name)) in quoted
            ]
            if len(suspects) == 1:
                named = suspects
    if named and len(named) < len(idxs):
        rest = [i for i in idxs if i not in named]
        return [rest] + [[i] for i in named]
    half = len(idxs) // 2
    return [idxs[:half], idxs[half:]]


def _for_input(exc: ValidationError, item: Mapping[str, Any], path: str) -> ValidationError:
    """The refusal of a call that held only ``item``, as that input's error, naming the property it refused (only
    a property the input holds: a name never comes from the CRM's text alone) and HubSpot's error code."""
    props = item.get("properties") or {}
    field: str | None = None
    code = exc.code
    for name, err_code in _invalid_properties(exc):
        if name in props:
            field, code = name, err_code or code
            break
    if field is None and exc.category == "CONFLICT":
        # a unique value already taken: contacts' email (the only unique property the index writes)
        if "email" in props:
            field = "email"
        elif item.get("idProperty"):
            field = str(item.get("idProperty"))
    return ValidationError(
        exc.message,
        source=exc.source,
        status=exc.status,
        endpoint=exc.endpoint or f"POST {path}",
        category=exc.category,
        code=code,
        details=exc.details,
        correlation_id=exc.correlation_id,
        message_from_crm=exc.message_from_crm,
        field=field,
    )


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return None if value is None else int(str(value).strip())
    except ValueError:
        return None


def _daily_429(resp: requests.Response) -> bool:
    """A 429 for the daily limit: ``policyName: DAILY`` or "You have reached your daily limit." (reference A2)."""
    try:
        body = resp.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    return (
        str(body.get("policyName") or "") == "DAILY"
        or "daily limit" in str(body.get("message") or "").lower()
    )
