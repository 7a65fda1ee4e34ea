"""The CRM clients behind crmindex's protocols: record fetchers (materialization, hydration, reconcile) and
write-back writers (the drainer). One module, so each CRM's quirks sit next to each other.

* HubSpot fetch: batch reads of <= 100 ids (deals with their v4 associations); merged-away ids resolve to
  their primary. HubSpot write: batch update (<= 100) and batch upsert by email for creates (idempotent).
* Attio fetch: one GET per record (Attio has no batch read). Attio write: PATCH per record for updates,
  assert (PUT ?matching_attribute=email_addresses) for creates (idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmindex.crm.attio import AttioClient
from crmindex.crm.errors import CrmError
from crmindex.crm.fetch import FetchedRecord
from crmindex.crm.hubspot import HubSpotClient
from crmindex.crm.hubspot_properties import OBJECT_TYPES
from crmindex.crm.mapping import hubspot_contact_to_row, hubspot_deal_to_row, hubspot_to_row
from crmindex.drainer import WriteResult


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
            if object_type == "contacts":
                row = hubspot_contact_to_row(obj)
            elif object_type == "deals":
                contacts, company = links.get(obj.id, ([], None))
                row = hubspot_deal_to_row(obj, contact_crm_ids=contacts, company_crm_id=company)
            else:
                row = hubspot_to_row(object_type, obj)
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
        object_type = OBJECT_TYPES[entity_type]
        results = self.client.batch_update(object_type, [(rid, dict(p)) for rid, p in items])
        return [WriteResult(r.ok, r.crm_record_id, r.error) for r in results]

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        object_type = OBJECT_TYPES[entity_type]
        id_property = "email" if object_type == "contacts" else "domain"
        results = self.client.batch_upsert(
            object_type, [(key, dict(p)) for key, p in items], id_property=id_property
        )
        return [WriteResult(r.ok, r.crm_record_id, r.error) for r in results]


class AttioFetcher:
    source = "attio"
    OBJECTS = {"contacts": "people", "companies": "companies", "deals": "deals"}

    def __init__(self, client: AttioClient, custom: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.custom = dict(custom or {})

    def __repr__(self) -> str:
        return f"AttioFetcher({self.client!r})"

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        from crmindex.crm.mapping import attio_company_to_row, attio_deal_to_row, attio_person_to_row

        out: dict[str, FetchedRecord] = {}
        for rid, rec in self.client.get_many(self.OBJECTS[object_type], [str(i) for i in ids]).items():
            if object_type == "contacts":
                row = attio_person_to_row(rec, custom=self.custom)
            elif object_type == "companies":
                row = attio_company_to_row(rec)
            else:
                row = attio_deal_to_row(rec)
            props = {k: [v.get("value", v) for v in vals] for k, vals in rec.active_values().items()}
            out[str(rid)] = FetchedRecord(crm_record_id=rec.record_id, row=row, properties=props)
        return out


class AttioWriter:
    source = "attio"
    max_batch = 1
    OBJECTS = {"contact": "people", "company": "companies", "deal": "deals"}
    MATCH = {"contact": "email_addresses", "company": "domains"}

    def __init__(self, client: AttioClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"AttioWriter({self.client!r})"

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for rid, values in items:
            try:
                rec = self.client.update(self.OBJECTS[entity_type], rid, dict(values))
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for _key, values in items:
            try:
                rec = self.client.assert_record(
                    self.OBJECTS[entity_type], self.MATCH[entity_type], dict(values)
                )
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out
