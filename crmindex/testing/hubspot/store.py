"""The records of one HubSpot object type: :class:`HubSpotRecord` (properties, created/updated stamps, archive
state) and :class:`ObjectStore`, which holds the records written so far plus a lazily generated seed range.

A seeded store of 500,000 contacts costs nothing until read: a seeded record is built from its index on
every read and stored only once it is written to (:meth:`ObjectStore.touch`). Ids ascend; a record merged
away is gone (``None``) and its id redirects to the primary; unique emails (contacts) and domains
(companies) answer ``idProperty`` lookups.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crmindex.testing.hubspot.model import DEFAULT_PROPERTIES, LASTMOD, READ_ONLY, iso_ms, now_ms

UNIQUE_PROPERTY = {"contacts": "email", "companies": "domain"}


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
        """The record as the API returns it, with the ``names`` properties (None: the default ones)."""
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


class SeedRange:
    """Lazily generated records in a contiguous numeric id range [base, base + n)."""

    def __init__(
        self, base: int, n: int, build: Callable[[int], HubSpotRecord], max_updated_ms: int | None = None
    ) -> None:
        self.base, self.n, self.build = base, n, build
        self.max_updated_ms = max_updated_ms  # no seeded record was modified after this (None: unknown)

    def covers(self, oid: int) -> bool:
        return self.base <= oid < self.base + self.n


class ObjectStore:
    """One object type: written records plus the lazily seeded range; ids in ascending order."""

    def __init__(self, kind: str, first_id: int) -> None:
        self.kind = kind
        self.records: dict[int, HubSpotRecord | None] = {}  # None: gone (merged away / purged)
        self.extra_ids: list[int] = []  # sorted ids outside the seeded range
        self.seed: SeedRange | None = None
        self.next_id = first_id
        self.redirect: dict[int, int] = {}  # merged-away id -> primary id
        self.unique: dict[str, int] = {}  # email / domain (lower) -> id, for idProperty lookups
        self._unique_seeded = False

    # -- reading -----------------------------------------------------------------------------------
    def get(self, oid: int) -> HubSpotRecord | None:
        if oid in self.records:
            return self.records[oid]
        if self.seed is not None and self.seed.covers(oid):
            return self.seed.build(oid - self.seed.base)
        return None

    def resolve(self, raw_id: str, id_property: str | None) -> HubSpotRecord | None:
        """The record an API path or input names: by id (following merges) or by a unique ``idProperty``."""
        if id_property and id_property != "hs_object_id":
            return self.find_unique(raw_id)
        if not raw_id.isdigit():
            return None
        oid = int(raw_id)
        oid = self.redirect.get(oid, oid)
        return self.get(oid)

    def archived_ids_from(self, start: int) -> list[int]:
        """Ids >= ``start`` of archived records, ascending. Seeded records start unarchived, so only written
        ones can be archived: an archived listing never walks (or builds) a 500K lazy seed."""
        return sorted(oid for oid, r in self.records.items() if oid >= start and r is not None and r.archived)

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

    def unique_key(self, rec: HubSpotRecord) -> str | None:
        field_name = UNIQUE_PROPERTY.get(self.kind)
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

    # -- writing -----------------------------------------------------------------------------------
    def touch(self, oid: int) -> HubSpotRecord | None:
        """The record, stored from now on (a seeded one is built once and kept): call before changing it."""
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

    def new(self, props: Mapping[str, Any], *, at: int | None = None) -> HubSpotRecord:
        """A new record with the next id (read-only properties dropped, values as strings)."""
        ts = now_ms() if at is None else at
        clean = {k: (None if v is None else str(v)) for k, v in props.items() if k not in READ_ONLY}
        rec = HubSpotRecord(self.next_id, clean, ts, ts)
        self.add(rec)
        key = self.unique_key(rec)
        if key is not None:
            self.unique[key] = rec.id
        return rec

    def set_prop(self, rec: HubSpotRecord, name: str, value: str | None) -> None:
        """Change one property, keeping the unique email/domain index current."""
        old_key = self.unique_key(rec)
        rec.props[name] = value
        new_key = self.unique_key(rec)
        if old_key != new_key and new_key is not None:
            self.unique[new_key] = rec.id

    def archive(self, rec: HubSpotRecord) -> HubSpotRecord:
        """Archive (restorable): ``archivedAt`` is set, the last-modified date is not bumped."""
        stored = self.touch(rec.id)
        assert stored is not None
        stored.archived, stored.archived_ms = True, now_ms()
        return stored

    def materialize(self) -> None:
        """Build and store every seeded record (a search has to look at all of them)."""
        if self.seed is None:
            return
        seed, self.seed = self.seed, None
        for i in range(seed.n):
            oid = seed.base + i
            if oid not in self.records:
                self.records[oid] = seed.build(i)
        self.extra_ids = sorted(k for k, v in self.records.items() if v is not None)
