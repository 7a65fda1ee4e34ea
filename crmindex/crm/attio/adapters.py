"""Attio behind crmindex's protocols: the record fetcher and the write-back writer.

* fetch: one GET per record (Attio has no batch read).
* write: PATCH per record for updates, assert (PUT ?matching_attribute=email_addresses) for creates (idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.mapping import OBJECT_SLUGS, attio_to_row
from crmindex.crm.errors import CrmError
from crmindex.crm.protocols import OBJECT_TYPE_OF, FetchedRecord, WriteResult


class AttioFetcher:
    source = "attio"

    def __init__(self, client: AttioClient, custom: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.custom = dict(custom or {})

    def __repr__(self) -> str:
        return f"AttioFetcher({self.client!r})"

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        out: dict[str, FetchedRecord] = {}
        for rid, rec in self.client.get_many(OBJECT_SLUGS[object_type], [str(i) for i in ids]).items():
            row = attio_to_row(object_type, rec, custom=self.custom)
            props = {k: [v.get("value", v) for v in vals] for k, vals in rec.active_values().items()}
            out[str(rid)] = FetchedRecord(crm_record_id=rec.record_id, row=row, properties=props)
        return out


class AttioWriter:
    source = "attio"
    max_batch = 1
    MATCH = {"contact": "email_addresses", "company": "domains"}

    def __init__(self, client: AttioClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"AttioWriter({self.client!r})"

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for rid, values in items:
            try:
                rec = self.client.update(OBJECT_SLUGS[OBJECT_TYPE_OF[entity_type]], rid, dict(values))
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for _key, values in items:
            try:
                rec = self.client.assert_record(
                    OBJECT_SLUGS[OBJECT_TYPE_OF[entity_type]], self.MATCH[entity_type], dict(values)
                )
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out
