"""Attio REST v2 records client.

* ``query`` / ``iter_records``: ``POST /v2/objects/{object}/records/query`` with ``limit``/``offset``; the
  end is the first page shorter than ``limit`` (Attio returns no cursor).
* ``get``: ``GET /v2/objects/{object}/records/{id}`` (None when the record is gone).
* ``assert_record``: ``PUT /v2/objects/{object}/records?matching_attribute=...`` (idempotent upsert).
* ``create`` (``POST``), ``update`` (``PATCH``, multiselects appended), ``delete``.

Reads spend ``ATTIO_READ`` permits (100/s), writes ``ATTIO_WRITE`` (25/s).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from crmindex.crm.attio import API_BASE
from crmindex.crm.attio.models import AttioRecord
from crmindex.crm.errors import NotFoundError
from crmindex.crm.http import HttpTransport, RetryPolicy, TokenProvider
from crmindex.platform.limits import LimitClass, RateLimiter

DEFAULT_PAGE = 500


class AttioClient:
    """An Attio workspace."""

    source = "attio"

    def __init__(
        self,
        base_url: str = API_BASE,
        token_provider: TokenProvider | None = None,
        limiter: RateLimiter | None = None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        if transport is None:
            if token_provider is None:
                raise TypeError("AttioClient needs a token_provider (a callable returning the token)")
            transport = HttpTransport(
                "attio", base_url, token_provider, limiter, timeout=timeout, retry=retry
            )
        self.http = transport

    def __repr__(self) -> str:
        return f"AttioClient(base_url={self.http.base_url!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AttioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _read(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.request(
            method, path, limit_class=LimitClass.ATTIO_READ, json=body, params=params
        ).body

    def _write(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool,
    ) -> Any:
        return self.http.request(
            method, path, limit_class=LimitClass.ATTIO_WRITE, json=body, params=params, idempotent=idempotent
        ).body

    def _record(self, endpoint: str, body: Any) -> AttioRecord:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise self.http.malformed(endpoint, "expected {'data': {record}}", body)
        try:
            return AttioRecord.model_validate(data)
        except PydanticValidationError as exc:
            raise self.http.malformed(endpoint, f"{exc.error_count()} schema errors", body) from None

    # -- reads -------------------------------------------------------------------------------------
    def query(
        self,
        object_slug: str,
        *,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        sorts: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[AttioRecord]:
        """One page of ``POST /v2/objects/{object}/records/query``."""
        path = f"/v2/objects/{object_slug}/records/query"
        body: dict[str, Any] = {"limit": limit, "offset": offset}
        if filter is not None:
            body["filter"] = dict(filter)
        if sorts:
            body["sorts"] = [dict(s) for s in sorts]
        raw = self._read("POST", path, body)
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, list):
            raise self.http.malformed(f"POST {path}", "expected {'data': [records]}", raw)
        try:
            return [AttioRecord.model_validate(r) for r in data]
        except PydanticValidationError as exc:
            raise self.http.malformed(f"POST {path}", f"{exc.error_count()} schema errors", raw) from None

    def iter_pages(
        self,
        object_slug: str,
        *,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        sorts: Sequence[Mapping[str, Any]] | None = None,
    ) -> Iterator[tuple[int, list[AttioRecord]]]:
        """(offset of the page, records) from ``offset`` on, until a page shorter than ``limit``."""
        while True:
            page = self.query(object_slug, limit=limit, offset=offset, filter=filter, sorts=sorts)
            yield offset, page
            if len(page) < limit:
                return
            offset += limit

    def iter_records(self, object_slug: str, **kw: Any) -> Iterator[AttioRecord]:
        for _, page in self.iter_pages(object_slug, **kw):
            yield from page

    def get(self, object_slug: str, record_id: str) -> AttioRecord | None:
        """The record, or None when it does not exist (deleted or merged away)."""
        path = f"/v2/objects/{object_slug}/records/{record_id}"
        try:
            raw = self._read("GET", path)
        except NotFoundError:
            return None
        return self._record(f"GET /v2/objects/{object_slug}/records/{{id}}", raw)

    def get_many(self, object_slug: str, record_ids: Sequence[str]) -> dict[str, AttioRecord]:
        """Records by id (one GET each: Attio v2 has no batch read); absent ids are left out."""
        out: dict[str, AttioRecord] = {}
        for rid in dict.fromkeys(record_ids):
            rec = self.get(object_slug, rid)
            if rec is not None:
                out[rid] = rec
        return out

    # -- writes ------------------------------------------------------------------------------------
    def create(self, object_slug: str, values: Mapping[str, Any]) -> AttioRecord:
        path = f"/v2/objects/{object_slug}/records"
        raw = self._write("POST", path, {"data": {"values": dict(values)}}, idempotent=False)
        return self._record(f"POST {path}", raw)

    def assert_record(
        self, object_slug: str, matching_attribute: str, values: Mapping[str, Any]
    ) -> AttioRecord:
        """Create or update the record matching ``values[matching_attribute]`` (idempotent)."""
        path = f"/v2/objects/{object_slug}/records"
        raw = self._write(
            "PUT",
            path,
            {"data": {"values": dict(values)}},
            params={"matching_attribute": matching_attribute},
            idempotent=True,
        )
        return self._record(f"PUT {path}", raw)

    def update(self, object_slug: str, record_id: str, values: Mapping[str, Any]) -> AttioRecord:
        path = f"/v2/objects/{object_slug}/records/{record_id}"
        raw = self._write("PATCH", path, {"data": {"values": dict(values)}}, idempotent=True)
        return self._record(f"PATCH /v2/objects/{object_slug}/records/{{id}}", raw)

    def delete(self, object_slug: str, record_id: str) -> None:
        self._write("DELETE", f"/v2/objects/{object_slug}/records/{record_id}", idempotent=True)
