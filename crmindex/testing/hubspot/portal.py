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
from crmindex.testing.hubspot.model import LIFECYCLE_ORDER, now_ms, object_type
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

    def update(
        self, kind: str, oid: int, props: Mapping[str, Any], *, api: bool = False
    ) -> tuple[list[PropertyChange], int]:
        """Set properties (``None`` or ``""`` clears one); returns the ones that changed and the new
        last-modified time (bumped only when something changed). KeyError for a missing or archived record.

        ``api``: the change comes through the API, where a lifecycle stage does not move backwards: setting an
        earlier stage than the record has is ignored (the call still succeeds) unless the value was cleared first.
        Sources: the contacts API reference, "The Lifecycle stage is not designed to move backwards. If you need to
        set this property to a previous stage, you will first need to set the value to "" (an empty string) and
        then set" it (developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/v1/
        post-contacts-v1-contact-email-email-profile, the legacy reference that states it); a HubSpot developer
        on integrate.hubspot.com/t/update-lifecycle-stage-using-api/1333: the update answered success and the
        stage did not change until it was cleared in a separate request (clear and set in one batch are not
        applied in order). Users in the UI may move it either way."""
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
            if api and name == "lifecyclestage" and _backwards(rec.props.get(name), value):
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

    def merge(self, kind: str, pid: int, mid: int, *, new_object: bool = False) -> tuple[HubSpotRecord, int]:
        """Merge ``mid`` into ``pid``: the primary takes the properties it lacks (returns it and how many it
        took) and the merged record's links; the merged record is gone and its id redirects to the primary.

        ``new_object``: the merge creates a new record (a new id) that takes both records' values and links; both
        originals are gone and their ids redirect to it. The merge webhook's ``newObjectId`` names it: "the Id of
        the object that was created from the result of the merge. This is separate from primaryObjectId because
        in some cases a new object is created" (developers.hubspot.com/changelog/new-subscription-types-for-
        webhooks); merged records' old ids keep resolving to the new one."""
        st = self.store(kind)
        if pid == mid:
            raise ValueError("cannot merge a record into itself")
        primary, merged = st.touch(pid), st.touch(mid)
        if primary is None or merged is None or primary.archived or merged.archived:
            raise KeyError(f"both {kind} {pid} and {mid} must exist")
        if new_object:
            result = st.new({k: v for k, v in primary.props.items() if k != "hs_merged_object_ids"})
            moved = self._merge_into(kind, result, primary)
            moved += self._merge_into(kind, result, merged)
            return result, moved
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

    def _merge_into(self, kind: str, result: HubSpotRecord, gone: HubSpotRecord) -> int:
        """``gone`` merged into the new record ``result``: values it lacks, links, and ``gone``'s id redirecting."""
        st = self.store(kind)
        moved = 0
        for k, v in gone.props.items():
            if k != "hs_merged_object_ids" and v not in (None, "") and result.props.get(k) in (None, ""):
                st.set_prop(result, k, v)
                moved += 1
        ids = [x for x in (result.props.get("hs_merged_object_ids") or "").split(";") if x]
        ids += [str(gone.id)] + [x for x in (gone.props.get("hs_merged_object_ids") or "").split(";") if x]
        result.props["hs_merged_object_ids"] = ";".join(dict.fromkeys(ids))
        st.records[gone.id] = None
        st.redirect[gone.id] = result.id
        for old, target in list(st.redirect.items()):
            if target == gone.id:
                st.redirect[old] = result.id
        key = st.unique_key(gone)
        if key is not None:
            st.unique[key] = result.id
        if kind == "contacts":
            self.links.mark_explicit(result.id)
        self.links.move(kind, gone.id, result.id)
        return moved

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


def _backwards(current: str | None, new: str | None) -> bool:
    """Whether setting lifecycle stage ``new`` over ``current`` moves it backwards (see :meth:`Portal.update`)."""
    if current is None or new is None:
        return False
    order = {v: i for i, v in enumerate(LIFECYCLE_ORDER)}
    a, b = order.get(current.lower()), order.get(new.lower())
    return a is not None and b is not None and b < a
