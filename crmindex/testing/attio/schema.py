"""An Attio workspace's identity and schema: the ids of the workspace, its objects (people, companies,
deals) and their attributes, each attribute's type and whether it is multiselect (holds many values),
and the unique attribute of people (email addresses) and companies (domains).

All ids are UUIDs drawn from one seeded generator, so a fake built with the same ``seed`` has the same
workspace, object, attribute and record ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from crmindex.testing._server import new_uuid
from crmindex.testing.attio.errors import Invalid

# attribute slug -> (type, multiselect)
ATTRIBUTES: dict[str, dict[str, tuple[str, bool]]] = {
    "people": {
        "name": ("personal-name", False),
        "email_addresses": ("email-address", True),
        "phone_numbers": ("phone-number", True),
        "job_title": ("text", False),
        "description": ("text", False),
        "company": ("record-reference", False),
        "primary_location": ("location", False),
        "linkedin": ("text", False),
    },
    "companies": {
        "name": ("text", False),
        "domains": ("domain", True),
        "description": ("text", False),
        "categories": ("select", True),
        "employee_range": ("select", False),
        "estimated_arr_usd": ("select", False),
        "primary_location": ("location", False),
        "team": ("record-reference", True),
    },
    "deals": {
        "name": ("text", False),
        "stage": ("status", False),
        "value": ("currency", False),
        "owner": ("actor-reference", False),
        "associated_people": ("record-reference", True),
        "associated_company": ("record-reference", False),
    },
}
UNIQUE = {"people": "email_addresses", "companies": "domains"}
DEFAULT_CUSTOM_ATTRIBUTES = {"people": {"lifecycle_stage": "select", "lead_status": "select"}}


class Workspace:
    """Ids and attributes of one workspace; ``new_id`` draws the next record id."""

    def __init__(self, seed: int, custom_attributes: Mapping[str, Mapping[str, str]] | None) -> None:
        rnd = random.Random(seed)
        self.new_id: Callable[[], str] = lambda: new_uuid(rnd)
        self.workspace_id = self.new_id()
        self.webhook_id = self.new_id()
        self.attributes: dict[str, dict[str, tuple[str, bool]]] = {k: dict(v) for k, v in ATTRIBUTES.items()}
        custom = DEFAULT_CUSTOM_ATTRIBUTES if custom_attributes is None else custom_attributes
        for obj, attrs in custom.items():
            for slug, typ in attrs.items():
                self.attributes.setdefault(obj, {})[slug] = (typ, False)
        self.object_ids = {obj: self.new_id() for obj in self.attributes}
        self.attribute_ids = {(o, a): self.new_id() for o, attrs in self.attributes.items() for a in attrs}

    def slug(self, obj: str) -> str:
        """The object's slug, from its slug or its id; a 404 ``not_found`` for neither."""
        for slug, oid in self.object_ids.items():
            if obj in (slug, oid):
                return slug
        raise Invalid(f'Object with slug/ID "{obj}" not found.', "not_found", 404)

    def attribute(self, obj: str, slug: str) -> tuple[str, bool]:
        """(type, multiselect) of an attribute; ``value_not_found`` for an unknown one."""
        found = self.attributes[obj].get(slug)
        if found is None:
            raise Invalid(f'Cannot find attribute with slug/ID "{slug}".', "value_not_found")
        return found

    def actor(self, api: bool) -> dict[str, Any]:
        """Who made a change: the API token (``api``) or a workspace member in the UI."""
        if api:
            return {"type": "api-token", "id": self.webhook_id}
        return {"type": "workspace-member", "id": self.workspace_id}
