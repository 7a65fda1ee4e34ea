"""HubSpot behind crmindex's protocols: the record fetcher (materialization, hydration, reconcile) and the
write-back writer (the drainer).

* fetch: batch reads of <= 100 ids (deals with their v4 associations); merged-away ids resolve to their primary.
* write: batch update (<= 100) and batch upsert by email for creates (idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_deal_to_row, hubspot_object_to_row
from crmindex.crm.protocols import OBJECT_TYPE_OF, FetchedRecord, WriteResult


class HubSpotFetcher:
    source = "hubspot"

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HubSpotFetcher({self.client!r})"

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        result = self.client.batch_read(object_type, list(ids))
        if result.errors:
            raise result.errors[0]
        links: dict[str, tuple[list[str], str | None]] = {}
        if object_type == "deals" and result.objects:
            links = self.client.deal_associations(list(result.objects))
        out: dict[str, FetchedRecord] = {}
        for rid in ids:
            obj = result.get(str(rid))
            if obj is None:
                continue
            if object_type == "deals":
                contacts, company = links.get(obj.id, ([], None))
                row = hubspot_deal_to_row(obj, contact_crm_ids=contacts, company_crm_id=company)
            else:
                row = hubspot_object_to_row(object_type, obj)
            out[str(rid)] = FetchedRecord(
                crm_record_id=obj.id,
                row=row,
                properties=dict(obj.properties),
                merged_ids=tuple(obj.merged_ids),
            )
        return out


class HubSpotWriter:
    source = "hubspot"
    max_batch = 100

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HubSpotWriter({self.client!r})"

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        object_type = OBJECT_TYPE_OF[entity_type]
        results = self.client.batch_update(object_type, [(rid, dict(p)) for rid, p in items])
        return [WriteResult(r.ok, r.crm_record_id, r.error) for r in results]

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        object_type = OBJECT_TYPE_OF[entity_type]
        id_property = "email" if object_type == "contacts" else "domain"
        results = self.client.batch_upsert(
            object_type, [(key, dict(p)) for key, p in items], id_property=id_property
        )
        return [WriteResult(r.ok, r.crm_record_id, r.error) for r in results]
