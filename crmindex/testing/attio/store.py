"""The records of an Attio workspace: each record's values as histories (a change closes the active values
with ``active_until`` and appends the new ones; a multiselect attribute adds values unless overwritten),
records in creation order, lazily generated seeds (500,000 people cost nothing until read), deletions,
merges (today's: a new record, both originals gone, maybe still in progress) and the uniqueness of email
addresses and domains.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
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
        self._merged: dict[str, dict[str, str]] = {o: {} for o in ws.attributes}  # original -> merged record
        self._merging: dict[str, dict[str, int]] = {
            o: {} for o in ws.attributes
        }  # merged record -> reads left
        self._changes = 0  # bumped by every creation and deletion (the sorted order's cache key)
        self._sorted: dict[tuple[str, str], tuple[int, list[str]]] = {}

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

    def cached(self, obj: str) -> list[AttioStoredRecord]:
        """The records held in full (created, written, read by id; not the lazy seeds never read)."""
        return list(self._records.get(obj, {}).values())

    def sorted_ids(self, obj: str, key: str) -> list[str]:
        """:meth:`ids` in the order of the system attributes ``created_at`` then ``record_id`` (``key``
        "created_at"), or ``record_id`` alone; cached until a record is created or deleted (a lazily seeded
        workspace builds every record once for it)."""
        cached = self._sorted.get((obj, key))
        if cached is not None and cached[0] == self._changes:
            return cached[1]
        ids = self.ids(obj)
        if key == "created_at":
            stamps = {}
            for rid in ids:
                rec = self.get_transient(obj, rid)
                stamps[rid] = "" if rec is None else rec.created_at
            ids = sorted(ids, key=lambda r: (stamps[r], r))
        else:
            ids = sorted(ids)
        self._sorted[(obj, key)] = (self._changes, ids)
        return ids

    def ids(self, obj: str) -> list[str]:
        """Record ids in order (seeded ones first, then those created since), deleted ones and merges still in
        progress left out."""
        gone = self._gone[obj]
        if self._merging[obj]:
            gone = gone | set(self._merging[obj])
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
        self,
        obj: str,
        rec: AttioStoredRecord,
        values: Mapping[str, Any],
        *,
        api: bool,
        overwrite_multi: bool,
        append: Collection[str] = (),
    ) -> list[str]:
        """Apply ``values``; returns the attributes that changed.

        A multiselect attribute gets the values given added *in front of* its values when not ``overwrite_multi``
        (``PATCH``: "the values supplied will be created and prepended to the list of values that already exist";
        nothing is removed, so ``[]`` changes nothing), or ends up with exactly the values given (``PUT``,
        "overwrite/remove"; docs.attio.com update-a-record and update-a-record-overwrite-multiselect-values).
        ``append``: multiselect attributes added to even when overwriting (an assert's matching attribute: "new
        values will be added and existing values will not be deleted. For any other multiselect attribute, all
        values will be either created or deleted as necessary", the 2024-11 OpenAPI spec, PUT .../records)."""
        at = iso_now()
        changed: list[str] = []
        for slug, raw in values.items():
            _, multi = self.ws.attribute(obj, slug)
            items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            new = [normalize(self.ws, obj, slug, x, api, at) for x in items]
            history = rec.values.setdefault(slug, [])
            current = active(history)
            if multi and (not overwrite_multi or slug in append):
                added = [n for n in new if not any(same(n, a) for a in current)]
                history[:0] = added  # prepended: the view lists active values in history order
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
        self._changes += 1

    def new(self, obj: str, values: Mapping[str, Any], *, api: bool) -> AttioStoredRecord:
        rec = AttioStoredRecord(self.ws.new_id(), iso_now())
        self.write_values(obj, rec, values, api=api, overwrite_multi=True)
        self.add(obj, rec)
        return rec

    def seed_lazily(self, obj: str, ids: list[str], build: Callable[[int], AttioStoredRecord]) -> None:
        self._lazy[obj] = (ids, build)
        self._lazy_index.pop(obj, None)
        self._changes += 1

    def delete(self, obj: str, rid: str) -> None:
        self._gone[obj].add(rid)
        self._changes += 1

    def merge(
        self, obj: str, primary: AttioStoredRecord, duplicate: AttioStoredRecord, *, in_progress: int = 0
    ) -> AttioStoredRecord:
        """Merge two records as Attio does today (docs.attio.com "Merge two records"): the merge produces a **new**
        record ("the new_record_id returned will match neither of the records supplied") holding the values of both,
        the primary's taking precedence where both have one (a multiselect gets the primary's values, then the
        duplicate's others); both originals are "marked as merged and can no longer be read or written" (404).
        ``in_progress``: an asynchronous merge ("large merges are completed asynchronously"): the new record
        answers 404 ``merge_in_progress`` to that many requests (-1: until :meth:`complete_merges`)."""
        merged = AttioStoredRecord(self.ws.new_id(), iso_now())
        for attr in dict.fromkeys([*primary.values, *duplicate.values]):
            mine = [dict(v) for v in active(primary.values.get(attr, []))]
            theirs = [dict(v) for v in active(duplicate.values.get(attr, []))]
            _, multi = self.ws.attributes[obj][attr]
            if multi:
                merged.values[attr] = mine + [v for v in theirs if not any(same(v, m) for m in mine)]
            else:
                merged.values[attr] = mine or theirs
        self.add(obj, merged)
        for original in (primary, duplicate):
            self.delete(obj, original.record_id)
            self._merged[obj][original.record_id] = merged.record_id
        if in_progress:
            self._merging[obj][merged.record_id] = in_progress
        return merged

    def merge_in_progress(self, obj: str, rid: str) -> bool:
        """Whether ``rid`` is the new record of a merge still being applied; counts down a limited wait."""
        left = self._merging[obj].get(rid)
        if left is None:
            return False
        if left > 0:
            if left == 1:
                del self._merging[obj][rid]
            else:
                self._merging[obj][rid] = left - 1
        return True

    def complete_merges(self, obj: str | None = None) -> None:
        for o in [obj] if obj is not None else list(self._merging):
            self._merging[o].clear()

    def merged_into(self, obj: str, rid: str) -> str | None:
        """The record ``rid`` was merged into (the fake's bookkeeping; the API answers 404 for it)."""
        return self._merged[obj].get(rid)
