"""The portal's associations: which record links to which (both directions), and which link is primary.

Links are explicit (written by seeding deals, API creates, the v4 endpoints and ``associate``) or, for
seeded contacts, implicit: a lazily seeded contact's company comes from the generator and becomes an
explicit link only when that contact's links are read or changed (``materialize_contact``), so a 500K seed
is not walked until a company's contacts are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmindex.testing.hubspot.model import ASSOC_TYPES
from crmindex.testing.hubspot.store import HubSpotRecord, ObjectStore


class AssociationGraph:
    """(from type, to type) -> from id -> {to id: primary}, kept symmetric by :meth:`link`/:meth:`unlink`."""

    def __init__(self, contacts: ObjectStore) -> None:
        self._contacts = contacts
        self._assoc: dict[tuple[str, str], dict[int, dict[int, bool]]] = {k: {} for k in ASSOC_TYPES}
        self.seed_company_of: Callable[[int], int | None] | None = None  # seeded contact -> company
        self._touched: set[int] = set()  # contacts whose company links are explicit
        self._reverse_built = False

    def targets(self, from_kind: str, from_id: int, to_kind: str) -> dict[int, bool]:
        """Target id -> primary of one record's associations (a copy)."""
        if from_kind == "contacts" and to_kind == "companies":
            self.materialize_contact(from_id)
        elif from_kind == "companies" and to_kind == "contacts":
            self._build_reverse()
        return dict(self._assoc.get((from_kind, to_kind), {}).get(from_id, {}))

    # -- changing ----------------------------------------------------------------------------------
    def link(self, from_kind: str, from_id: int, to_kind: str, to_id: int, *, primary: bool) -> None:
        fwd = self._assoc[(from_kind, to_kind)].setdefault(from_id, {})
        back = self._assoc[(to_kind, from_kind)].setdefault(to_id, {})
        if primary:
            for k in fwd:
                fwd[k] = False
        fwd[to_id] = primary or fwd.get(to_id, False)
        back[from_id] = back.get(from_id, False)

    def unlink(self, from_kind: str, from_id: int, to_kind: str, to_id: int) -> bool:
        fwd = self._assoc[(from_kind, to_kind)].get(from_id, {})
        back = self._assoc[(to_kind, from_kind)].get(to_id, {})
        found = fwd.pop(to_id, None) is not None
        back.pop(from_id, None)
        return found

    def connect(
        self, from_kind: str, from_id: int, to_kind: str, to_id: int, *, primary: bool, remove: bool = False
    ) -> None:
        """Link (or unlink) two records, a seeded contact's implicit company link made explicit first."""
        for kind, oid in ((from_kind, from_id), (to_kind, to_id)):
            if kind == "contacts":
                self.materialize_contact(oid)
        if remove:
            self.unlink(from_kind, from_id, to_kind, to_id)
        else:
            self.link(from_kind, from_id, to_kind, to_id, primary=primary)

    def on_create(self, kind: str, rec: HubSpotRecord, specs: list[dict[str, Any]]) -> None:
        """The links of a record created through the API: a contact's ``associatedcompanyid`` (primary) and
        the request's ``associations`` (``to.id`` and ``types[].associationTypeId``)."""
        if kind == "contacts":
            self._touched.add(rec.id)
            self.link_company(rec)
        for spec in specs:
            to_id = int(str((spec.get("to") or {}).get("id", "0")))
            type_ids = {int(t.get("associationTypeId", 0)) for t in spec.get("types", [])}
            for (fk, tk), (unl, prim) in ASSOC_TYPES.items():
                if fk == kind and (unl in type_ids or (prim is not None and prim in type_ids)):
                    self.link(fk, rec.id, tk, to_id, primary=prim in type_ids)

    def link_company(self, contact: HubSpotRecord) -> bool:
        """Link a contact to its ``associatedcompanyid`` as the primary company, when it names one."""
        co = contact.props.get("associatedcompanyid")
        if not (co and co.isdigit()):
            return False
        self.link("contacts", contact.id, "companies", int(co), primary=True)
        return True

    def mark_explicit(self, contact_id: int) -> None:
        """The contact's company links are explicit from now on (a new contact: nothing to materialize)."""
        self._touched.add(contact_id)

    def move(self, kind: str, from_id: int, to_id: int) -> None:
        """Move a merged-away record's links to the primary; a moved primary link stays primary only when the
        primary had none."""
        if kind == "contacts":
            self.materialize_contact(from_id)
            self.materialize_contact(to_id)
        for (fk, tk), table in self._assoc.items():
            if fk != kind:
                continue
            for target, prim in list(table.get(from_id, {}).items()):
                self.unlink(fk, from_id, tk, target)
                if target not in table.get(to_id, {}):
                    self.link(fk, to_id, tk, target, primary=prim and not any(table.get(to_id, {}).values()))

    # -- seeded contacts ---------------------------------------------------------------------------
    def materialize_contact(self, contact_id: int) -> None:
        """Turn a seeded contact's implicit company link into explicit associations."""
        if contact_id in self._touched or self.seed_company_of is None:
            return
        st = self._contacts
        self._touched.add(contact_id)
        if st.seed is not None and st.seed.covers(contact_id) and contact_id not in st.records:
            company = self.seed_company_of(contact_id)
            if company is not None:
                self.link("contacts", contact_id, "companies", company, primary=True)
        elif contact_id in st.records:
            rec = st.records[contact_id]
            co = rec.props.get("associatedcompanyid") if rec is not None else None
            if co and co.isdigit() and (contact_id, int(co)) not in self._explicit_pairs(contact_id):
                self.link("contacts", contact_id, "companies", int(co), primary=True)

    def _explicit_pairs(self, contact_id: int) -> set[tuple[int, int]]:
        return {(contact_id, c) for c in self._assoc[("contacts", "companies")].get(contact_id, {})}

    def _build_reverse(self) -> None:
        """company -> contacts for seeded contacts (one pass over the seeded range)."""
        if self._reverse_built or self.seed_company_of is None:
            return
        self._reverse_built = True
        st = self._contacts
        if st.seed is None:
            return
        for oid in range(st.seed.base, st.seed.base + st.seed.n):
            self.materialize_contact(oid)
