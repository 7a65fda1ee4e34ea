"""The records of an Attio workspace: each record's values as histories (a change closes the active values
with ``active_until`` and appends the new ones; a multiselect attribute adds values unless overwritten),
records in creation order, lazily generated seeds (500,000 people cost nothing until read), deletions,
merges and the uniqueness of email addresses and domains.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmindex.testing.attio.schema import UNIQUE, Workspace
from crmindex.testing.attio.values import active, iso_now, normalize, same, unique_key


@dataclass
class AttioStoredRecord:
    record_id: str
    created_at: str
    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


LazySeed = tuple[list[str], Callable[[int], AttioStoredRecord]]  # record ids, and the record at an index


class AttioStore:
    """The workspace's records; callers hold :attr:`lock` around a change and the reads it depends on."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lock = threading.RLock()
        self._records: dict[str, dict[str, AttioStoredRecord]] = {o: {} for o in ws.attributes}
        self._order: dict[str, list[str]] = {o: [] for o in ws.attributes}
        self._lazy: dict[str, LazySeed] = {}
        self._lazy_index: dict[str, dict[str, int]] = {}
        self._gone: dict[str, set[str]] = {o: set() for o in ws.attributes}

    # -- reading -----------------------------------------------------------------------------------
    def get(self, obj: str, rid: str) -> AttioStoredRecord | None:
        if rid in self._gone[obj]:
            return None
        rec = self._records[obj].get(rid)
        if rec is not None:
            return rec
        rec = self._build(obj, rid)
        if rec is not None:
            self._records[obj][rid] = rec  # once read by id, keep it (writes usually follow)
        return rec

    def get_transient(self, obj: str, rid: str) -> AttioStoredRecord | None:
        """A record for a list page without caching lazily generated ones (keeps 500K queries light)."""
        rec = self._records[obj].get(rid)
        if rec is not None:
            return rec
        return self._build(obj, rid)

    def _build(self, obj: str, rid: str) -> AttioStoredRecord | None:
        if obj not in self._lazy:
            return None
        ids, build = self._lazy[obj]
        index = self._lazy_index.get(obj)
        if index is None:
            index = self._lazy_index[obj] = {r: i for i, r in enumerate(ids)}
        i = index.get(rid)
        return None if i is None else build(i)

    def ids(self, obj: str) -> list[str]:
        """Record ids in order (seeded ones first, then those created since), deleted ones left out."""
        gone = self._gone[obj]
        lazy_ids = self._lazy[obj][0] if obj in self._lazy else []
        if not lazy_ids:
            return [r for r in self._order[obj] if r not in gone]
        return [r for r in lazy_ids if r not in gone] + [r for r in self._order[obj] if r not in gone]

    def find(
        self,
        obj: str,
        slug: str,
        keys: set[str],
        key_of: Callable[[dict[str, Any]], str],
        exclude: str | None = None,
    ) -> AttioStoredRecord | None:
        """The first record (other than ``exclude``) with an active ``slug`` value whose ``key_of`` is in ``keys``."""
        for rid in self.ids(obj):
            if rid == exclude:
                continue
            rec = self.get_transient(obj, rid)
            if rec is None:
                continue
            if any(key_of(v) in keys for v in active(rec.values.get(slug, []))):
                return self.get(obj, rid)
        return None

    def unique_owner(self, obj: str, values: Mapping[str, Any], exclude: str | None = None) -> str | None:
        """The record that already holds one of the unique email addresses / domains in ``values``."""
        slug = UNIQUE.get(obj)
        if slug is None or slug not in values:
            return None
        raw = values[slug]
        wanted = {unique_key(x) for x in (raw if isinstance(raw, list) else [raw])}
        owner = self.find(obj, slug, wanted, unique_key, exclude)
        return None if owner is None else owner.record_id

    def view(self, obj: str, rec: AttioStoredRecord, *, historic: bool = False) -> dict[str, Any]:
        """The record as the API returns it: active values (``historic``: superseded ones too)."""
        values = {
            slug: [dict(v) for v in (vals if historic else active(vals))] for slug, vals in rec.values.items()
        }
        for slug in self.ws.attributes[obj]:
            values.setdefault(slug, [])
        return {
            "id": {
                "workspace_id": self.ws.workspace_id,
                "object_id": self.ws.object_ids[obj],
                "record_id": rec.record_id,
            },
            "created_at": rec.created_at,
            "web_url": f"https://app.attio.com/fake/{obj}/{rec.record_id}",
            "values": values,
        }

    # -- writing -----------------------------------------------------------------------------------
    def write_values(
        self, obj: str, rec: AttioStoredRecord, values: Mapping[str, Any], *, api: bool, overwrite_multi: bool
    ) -> list[str]:
        """Apply ``values``; returns the attributes that changed."""
        at = iso_now()
        changed: list[str] = []
        for slug, raw in values.items():
            _, multi = self.ws.attribute(obj, slug)
            items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            new = [normalize(self.ws, obj, slug, x, api, at) for x in items]
            history = rec.values.setdefault(slug, [])
            current = active(history)
            if multi and not overwrite_multi:
                added = [n for n in new if not any(same(n, a) for a in current)]
                history.extend(added)
                if added:
                    changed.append(slug)
                continue
            if len(new) == len(current) and all(same(n, a) for n, a in zip(new, current, strict=True)):
                continue
            for a in current:
                a["active_until"] = at
            history.extend(new)
            changed.append(slug)
        return changed

    def add(self, obj: str, rec: AttioStoredRecord) -> None:
        self._records[obj][rec.record_id] = rec
        self._order[obj].append(rec.record_id)

    def new(self, obj: str, values: Mapping[str, Any], *, api: bool) -> AttioStoredRecord:
        rec = AttioStoredRecord(self.ws.new_id(), iso_now())
        self.write_values(obj, rec, values, api=api, overwrite_multi=True)
        self.add(obj, rec)
        return rec

    def seed_lazily(self, obj: str, ids: list[str], build: Callable[[int], AttioStoredRecord]) -> None:
        self._lazy[obj] = (ids, build)
        self._lazy_index.pop(obj, None)

    def delete(self, obj: str, rid: str) -> None:
        self._gone[obj].add(rid)

    def merge(self, obj: str, primary: AttioStoredRecord, duplicate: AttioStoredRecord) -> None:
        """Copy the duplicate's values into the primary and delete the duplicate."""
        for attr, history in duplicate.values.items():
            theirs = active(history)
            mine = active(primary.values.get(attr, []))
            _, multi = self.ws.attributes[obj][attr]
            if multi:
                primary.values.setdefault(attr, []).extend(
                    dict(v) for v in theirs if not any(same(v, m) for m in mine)
                )
            elif not mine and theirs:
                primary.values.setdefault(attr, []).extend(dict(v) for v in theirs)
        self.delete(obj, duplicate.record_id)
