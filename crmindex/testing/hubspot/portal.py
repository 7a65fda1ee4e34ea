"""A HubSpot portal's data: the contacts, companies and deals stores, their associations, and the changes
that touch more than one record's fields (update, restore, merge, associate) with the last-modified
stamps, unique keys and links HubSpot keeps. No HTTP and no webhooks here: a change returns what its
webhook events describe. Callers hold :attr:`Portal.lock` around a change and the reads it depends on.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from crmindex.testing.hubspot.associations import AssociationGraph
from crmindex.testing.hubspot.model import now_ms, object_type
from crmindex.testing.hubspot.store import HubSpotRecord, ObjectStore

PropertyChange = tuple[str, str | None]  # (name, new value; None: cleared)


class Portal:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stores = {
            "contacts": ObjectStore("contacts", 1_001),
            "companies": ObjectStore("companies", 2_000_001),
            "deals": ObjectStore("deals", 3_000_001),
        }
        self.links = AssociationGraph(self.stores["contacts"])

    def store(self, kind: str) -> ObjectStore:
        return self.stores[object_type(kind)]

    def associations(self, from_kind: str, from_id: int, to_kind: str) -> dict[int, bool]:
        """Target id -> primary of one record's associations."""
        with self.lock:
            return self.links.targets(from_kind, from_id, to_kind)

    def update(self, kind: str, oid: int, props: Mapping[str, Any]) -> tuple[list[PropertyChange], int]:
        """Set properties (``None`` or ``""`` clears one); returns the ones that changed and the new
        last-modified time (bumped only when something changed). KeyError for a missing or archived record."""
        st = self.store(kind)
        rec = st.touch(oid)
        if rec is None or rec.archived:
            raise KeyError(f"no {kind} {oid}")
        ts = max(now_ms(), rec.updated_ms + 1)
        changes: list[PropertyChange] = []
        for name, raw in props.items():
            value = None if raw is None or raw == "" else str(raw)
            if rec.props.get(name) == value:
                continue
            st.set_prop(rec, name, value)
            if kind == "contacts" and name == "associatedcompanyid":
                self.links.materialize_contact(oid)
                self.links.link_company(rec)
            changes.append((name, value))
        if changes:
            rec.updated_ms = ts
        return changes, ts

    def restore(self, kind: str, oid: int) -> HubSpotRecord:
        rec = self.store(kind).touch(oid)
        if rec is None or not rec.archived:
            raise KeyError(f"no archived {kind} {oid}")
        rec.archived, rec.archived_ms = False, None
        rec.updated_ms = max(now_ms(), rec.updated_ms + 1)
        return rec

    def merge(self, kind: str, pid: int, mid: int) -> tuple[HubSpotRecord, int]:
        """Merge ``mid`` into ``pid``: the primary takes the properties it lacks (returns it and how many it
        took) and the merged record's links; the merged record is gone and its id redirects to the primary."""
        st = self.store(kind)
        if pid == mid:
            raise ValueError("cannot merge a record into itself")
        primary, merged = st.touch(pid), st.touch(mid)
        if primary is None or merged is None or primary.archived or merged.archived:
            raise KeyError(f"both {kind} {pid} and {mid} must exist")
        moved = 0
        for k, v in merged.props.items():
            if v not in (None, "") and primary.props.get(k) in (None, ""):
                primary.props[k] = v
                moved += 1
        ids = [x for x in (primary.props.get("hs_merged_object_ids") or "").split(";") if x]
        ids += [str(mid)] + [x for x in (merged.props.get("hs_merged_object_ids") or "").split(";") if x]
        primary.props["hs_merged_object_ids"] = ";".join(dict.fromkeys(ids))
        primary.updated_ms = max(now_ms(), primary.updated_ms + 1)
        st.records[mid] = None
        st.redirect[mid] = pid
        for old, target in list(st.redirect.items()):
            if target == mid:
                st.redirect[old] = pid
        key = st.unique_key(merged)
        if key is not None:
            st.unique[key] = pid
        self.links.move(kind, mid, pid)
        return primary, moved

    def associate(
        self, from_kind: str, from_id: int, to_kind: str, to_id: int, *, remove: bool, primary: bool
    ) -> int:
        """Add (or remove) an association as a user does in the UI; returns when it happened."""
        self.links.connect(from_kind, from_id, to_kind, to_id, primary=primary, remove=remove)
        if from_kind == "contacts" and to_kind == "companies":
            crec = self.store("contacts").touch(from_id)
            if crec is not None and (primary or remove):
                if remove and crec.props.get("associatedcompanyid") == str(to_id):
                    crec.props["associatedcompanyid"] = None
                elif primary:
                    crec.props["associatedcompanyid"] = str(to_id)
        ts = now_ms()
        # as in a real portal, the change modifies the contact (associatedcompanyid) and the deal
        # (num_associated_* rollups): their last-modified dates move, so a modified-time search sees it
        for kind, oid in ((from_kind, from_id), (to_kind, to_id)):
            if kind in ("contacts", "deals"):
                touched = self.store(kind).touch(oid)
                if touched is not None:
                    touched.updated_ms = max(touched.updated_ms, ts)
        return ts
