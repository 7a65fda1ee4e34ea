"""An Attio workspace's identity and schema: the ids of the workspace, its objects (people, companies,
deals) and their attributes, each attribute's type and whether it is multiselect (holds many values),
the unique attribute of people (email addresses) and companies (domains), the statuses and select options of
its status and select attributes (objects' and lists'), and its workspace members.

All ids are UUIDs drawn from one seeded generator, so a fake built with the same ``seed`` has the same
workspace, object, attribute and record ids.

Statuses and options (docs.attio.com "List statuses" / "List select options",
``GET /v2/{target}/{identifier}/attributes/{attribute}/statuses|options``): each is
``{"id": {workspace_id, object_id, attribute_id, status_id|option_id}, "title", "is_archived"}`` (statuses add
``target_time_in_status`` and ``celebration_enabled``), listed in the order they were made; a list's attribute
names the list's id in ``id.object_id`` (as the documented list-entry example does). Members
(docs.attio.com "List workspace members"; interfere-inc/attio ``docs/models/workspace-member.md``):
``{"id": {workspace_id, workspace_member_id}, first_name, last_name, avatar_url, email_address, created_at,
access_level}``, access_level ``admin|member|suspended`` (members are never deleted, suspended instead).
"""

from __future__ import annotations

import random
import uuid
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
# titles of the attributes the API lists (GET /v2/objects/{object}/attributes); others are their slug
TITLES = {
    ("deals", "stage"): "Deal stage",
    ("deals", "owner"): "Deal owner",
    ("deals", "value"): "Deal value",
}
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

        # (target key, attribute slug) -> statuses / options in order; target key: the object slug, or
        # "list:<list id>" for a list's attribute
        self.choices: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # lists' attributes, keyed "list:<list id>" like an object slug (crmindex.testing.attio.lists)
        self.list_attributes: dict[str, dict[str, tuple[str, bool]]] = {}
        self.list_attribute_ids: dict[tuple[str, str], str] = {}
        self.members: list[dict[str, Any]] = []
        self.member_ids: dict[str, str] = {}  # a member's id by itself and by email, for actor references

    def choice(
        self, target: str, slug: str, kind: str, title: Any, attribute_id: str, object_id: str
    ) -> dict[str, Any]:
        """The status (``kind`` "status") or option ("option") titled ``title`` of an attribute, made when new (the
        real API refuses a title that is not an existing status or option: not modelled, seeding needs them)."""
        text = str(title.get("title") if isinstance(title, dict) else title)
        made = self.choices.setdefault((target, slug), [])
        for c in made:  # a status / option is written by its title or its id (docs.attio.com attribute types)
            if text in (c["title"], c["id"].get(f"{kind}_id")):
                return c
        ident = {"workspace_id": self.workspace_id, "object_id": object_id, "attribute_id": attribute_id,
                 f"{kind}_id": _stable_id(f"{target}:{slug}:{text}")}  # fmt: skip
        choice: dict[str, Any] = {"id": ident, "title": text, "is_archived": False}
        if kind == "status":
            choice.update({"celebration_enabled": _celebrated(text), "target_time_in_status": None})
        made.append(choice)
        return choice

    def add_member(self, first_name: str, last_name: str, email: str, *, member_id: str | None = None,
                   access_level: str = "member", created_at: str = "2024-01-01T00:00:00.000000000Z") -> str:  # fmt: skip
        mid = member_id or self.new_id()
        self.members.append({
            "id": {"workspace_id": self.workspace_id, "workspace_member_id": mid},
            "first_name": first_name, "last_name": last_name, "avatar_url": None, "email_address": email,
            "created_at": created_at, "access_level": access_level,
        })  # fmt: skip
        self.member_ids[mid] = mid
        self.member_ids[email.lower()] = mid
        return mid

    def slug(self, obj: str) -> str:
        """The object's slug, from its slug or its id; a 404 ``not_found`` for neither."""
        for slug, oid in self.object_ids.items():
            if obj in (slug, oid):
                return slug
        raise Invalid(f'Object with slug/ID "{obj}" not found.', "not_found", 404)

    def target(self, obj: str) -> tuple[str, dict[str, tuple[str, bool]]]:
        """(object or list id, attributes) of an object slug or a list key ``list:<list id>``."""
        if obj.startswith("list:"):
            return obj.removeprefix("list:"), self.list_attributes[obj]
        return self.object_ids[obj], self.attributes[obj]

    def attribute_id(self, obj: str, slug: str) -> str:
        return (
            self.list_attribute_ids[(obj, slug)]
            if obj.startswith("list:")
            else self.attribute_ids[(obj, slug)]
        )

    def attribute(self, obj: str, slug: str) -> tuple[str, bool]:
        """(type, multiselect) of an attribute; ``value_not_found`` for an unknown one."""
        found = self.target(obj)[1].get(slug)
        if found is None:
            raise Invalid(f'Cannot find attribute with slug/ID "{slug}".', "value_not_found")
        return found

    def actor(self, api: bool) -> dict[str, Any]:
        """Who made a change: the API token (``api``) or a workspace member in the UI."""
        if api:
            return {"type": "api-token", "id": self.webhook_id}
        return {"type": "workspace-member", "id": self.workspace_id}


def _stable_id(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"attio-choice:{text}"))


def _celebrated(title: str) -> bool:
    """Attio celebrates reaching a deal's won stage (its default "Won 🎉" status has ``celebration_enabled``)."""
    return "won" in title.lower().split() or title.lower() in ("won", "closedwon") or "🎉" in title
