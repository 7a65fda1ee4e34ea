"""The Attio contract: request/response pairs in Attio's documented shapes, replayed through the real client, and
the same requests against ``FakeAttio``, both checked against field sets and types written by hand from the docs,
so the fake cannot drift from the API again (issue 15).

Sources of the shapes (read, not copied): docs.attio.com endpoint reference (records: query, get, create, assert,
update PATCH / overwrite PUT; lists and entries; statuses; workspace members; merge two records), the webhook
reference (record.* and list-entry.* payloads), the guides (rate limiting: 429 with an HTTP-date ``Retry-After``;
webhooks: ``Attio-Signature`` / ``X-Attio-Signature`` hex HMAC, ``Idempotency-Key``); interfere-inc/attio
``docs/models/*.md`` (List, WorkspaceMember). Timestamps in the docs have nanoseconds ("...049.061281000Z"); the
client must take them.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.events import plan_attio
from crmindex.crm.attio.mapping import attio_person_to_row, entry_to_row, member_to_owner, statuses_to_stages
from crmindex.crm.errors import MergeInProgress, RetryableError, ValidationError
from crmindex.crm.http import HttpTransport, RetryPolicy
from crmindex.testing import FakeAttio
from crmindex.testing.synthetic import SyntheticCRM

WS, OBJ, REC = (
    "14beef7a-99f7-4534-a87e-70b564330a4c",
    "97052eb9-e65e-443f-a297-f2d9a4a7f795",
    "bf071e1f-6035-429d-b874-d83ea64ea13b",
)
MEMBER, LIST, ENTRY, ATTR = (
    "50cf242c-7fa3-4cad-87d0-75b1af71c57b",
    "33ebdbe9-e529-47c9-b894-0ba25e9c15c0",
    "2e6e29ea-c4e0-4f44-842d-78a891f8c156",
    "41252299-f8c7-4b5e-99c9-4ff8321d2f96",
)
TS = "2023-01-01T15:00:00.000000000Z"
ACTOR = {"type": "workspace-member", "id": MEMBER}

# ----------------------------------------------------------------------------------- expected shapes (by hand)
# a spec: a type name ("str", "int", "num", "bool", "ts": an Attio timestamp), "?" suffix: may be null; a dict:
# these keys at least, each of its spec; [spec]: a list of them (maybe empty); "dict"/"list": any of that type
ID_RECORD = {"workspace_id": "str", "object_id": "str", "record_id": "str"}
VALUE = {"active_from": "ts", "active_until": "ts?", "created_by_actor": {"type": "str", "id": "str?"},
         "attribute_type": "str"}  # fmt: skip
VALUE_FIELDS: dict[str, dict[str, Any]] = {
    "personal-name": {"first_name": "str", "last_name": "str", "full_name": "str"},
    "email-address": {"original_email_address": "str", "email_address": "str", "email_domain": "str",
                      "email_root_domain": "str", "email_local_specifier": "str"},
    "text": {"value": "str"},
    "record-reference": {"target_object": "str", "target_record_id": "str"},
    "domain": {"domain": "str", "root_domain": "str"},
    "phone-number": {"original_phone_number": "str", "country_code": "str?"},
    "status": {"status": {"id": {"workspace_id": "str", "object_id": "str", "attribute_id": "str", "status_id": "str"},
                          "title": "str", "is_archived": "bool", "celebration_enabled": "bool",
                          "target_time_in_status": "str?"}},
    "select": {"option": {"id": {"workspace_id": "str", "object_id": "str", "attribute_id": "str", "option_id": "str"},
                          "title": "str", "is_archived": "bool"}},
    "currency": {"currency_value": "num", "currency_code": "str?"},
    "actor-reference": {"referenced_actor_type": "str", "referenced_actor_id": "str?"},
}  # fmt: skip
RECORD = {"id": ID_RECORD, "created_at": "ts", "values": "dict"}
LIST_SHAPE = {"id": {"workspace_id": "str", "list_id": "str"}, "api_slug": "str", "name": "str",
              "parent_object": ["str"], "workspace_access": "str?", "workspace_member_access": "list",
              "created_by_actor": {"type": "str", "id": "str?"}, "created_at": "ts"}  # fmt: skip
ENTRY_SHAPE = {"id": {"workspace_id": "str", "list_id": "str", "entry_id": "str"}, "parent_record_id": "str",
               "parent_object": "str", "created_at": "ts", "entry_values": "dict"}  # fmt: skip
MEMBER_SHAPE = {"id": {"workspace_id": "str", "workspace_member_id": "str"}, "first_name": "str", "last_name": "str",
                "avatar_url": "str?", "email_address": "str", "created_at": "ts", "access_level": "str"}  # fmt: skip
STATUS_SHAPE = VALUE_FIELDS["status"]["status"]
ATTRIBUTE_SHAPE = {"id": {"workspace_id": "str", "object_id": "str", "attribute_id": "str"}, "title": "str",
                   "api_slug": "str", "type": "str", "is_multiselect": "bool", "is_archived": "bool"}  # fmt: skip
ERROR_SHAPE = {"status_code": "int", "type": "str", "code": "str", "message": "str"}
EVENT_SHAPE = {"event_type": "str", "id": {"workspace_id": "str"}, "actor": {"type": "str", "id": "str?"}}
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


def conforms(value: Any, spec: Any, where: str = "$") -> list[str]:
    """What of ``value`` does not match ``spec`` (empty: it matches)."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        out = []
        for key, sub in spec.items():
            if key not in value:
                out.append(f"{where}.{key}: missing")
            else:
                out += conforms(value[key], sub, f"{where}.{key}")
        return out
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: expected an array"]
        return [p for i, v in enumerate(value) for p in conforms(v, spec[0], f"{where}[{i}]")]
    name, nullable = spec.rstrip("?"), spec.endswith("?")
    if value is None:
        return [] if nullable else [f"{where}: null"]
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "dict": isinstance(value, dict),
        "list": isinstance(value, list),
        "ts": isinstance(value, str) and _TS.fullmatch(value) is not None,
    }[name]
    return [] if ok else [f"{where}: expected {spec}, got {value!r}"]


def record_problems(record: Mapping[str, Any]) -> list[str]:
    """A record (or an entry's values) checked deep: each value by its attribute_type."""
    out = conforms(record, RECORD)
    for slug, values in dict(record.get("values") or {}).items():
        for i, v in enumerate(values):
            spec = {**VALUE, **VALUE_FIELDS.get(v.get("attribute_type"), {})}
            out += conforms(v, spec, f"$.values.{slug}[{i}]")
    return out


# --------------------------------------------------------------------------- documented examples (hand-written)
def v(attribute_type: str, **fields: Any) -> dict[str, Any]:
    return {"active_from": TS, "active_until": None, "created_by_actor": ACTOR, "attribute_type": attribute_type,
            **fields}  # fmt: skip


PERSON = {  # docs.attio.com "Get a record" / people standard object (shortened)
    "id": {"workspace_id": WS, "object_id": OBJ, "record_id": REC},
    "created_at": "2022-11-21T13:22:49.061281000Z",
    "web_url": f"https://app.attio.com/acme/person/{REC}",
    "values": {
        "name": [v("personal-name", first_name="Ada", last_name="Lovelace", full_name="Ada Lovelace")],
        "email_addresses": [v("email-address", original_email_address="Ada@Example.com",
                              email_address="ada@example.com", email_domain="example.com",
                              email_root_domain="example.com", email_local_specifier="ada")],
        "job_title": [v("text", value="Analyst")],
        "company": [v("record-reference", target_object="companies", target_record_id=OBJ)],
        "phone_numbers": [v("phone-number", original_phone_number="+15558675309", country_code="US")],
    },
}  # fmt: skip
STATUS = {"id": {"workspace_id": WS, "object_id": LIST, "attribute_id": ATTR, "status_id": "527def35-7994-4ef7-9584-80ef8de352a8"},
          "title": "In Progress", "is_archived": False, "target_time_in_status": None, "celebration_enabled": False}  # fmt: skip
ENTRY_DOC = {  # docs.attio.com "Get a list entry"
    "id": {"workspace_id": WS, "list_id": LIST, "entry_id": ENTRY},
    "parent_record_id": "891dcbfc-9141-415d-9b2a-2238a6cc012d",
    "parent_object": "people",
    "created_at": "2022-11-21T13:22:49.061281000Z",
    "entry_values": {"status": [v("status", status=STATUS)]},
}
LIST_DOC = {  # interfere-inc/attio docs/models/list.md
    "id": {"workspace_id": WS, "list_id": LIST}, "name": "Hiring Engineering", "api_slug": "hiring-engineering",
    "parent_object": ["people"], "workspace_access": "read-and-write",
    "workspace_member_access": [{"workspace_member_id": MEMBER, "level": "read-and-write"}],
    "created_by_actor": ACTOR, "created_at": "2022-11-21T13:22:49.061281000Z",
}  # fmt: skip
MEMBER_DOC = {  # docs.attio.com "List workspace members"; interfere-inc/attio docs/models/workspace-member.md
    "id": {"workspace_id": WS, "workspace_member_id": MEMBER}, "first_name": "Susan", "last_name": "Kare",
    "avatar_url": "https://lh3.googleusercontent.com/a/x=s96-c", "email_address": "susan.kare@apple.com",
    "created_at": "2022-11-21T13:22:49.061281000Z", "access_level": "member",
}  # fmt: skip
ATTRIBUTE_DOC = {"id": {"workspace_id": WS, "object_id": LIST, "attribute_id": ATTR}, "title": "Status",
                 "api_slug": "status", "type": "status", "is_multiselect": False, "is_archived": False}  # fmt: skip


def error(status: int, type_: str, code: str, message: str) -> dict[str, Any]:
    return {"status_code": status, "type": type_, "code": code, "message": message}


# ------------------------------------------------------------------------------------------------- replaying
class Replay(BaseAdapter):
    """Answers the client's requests with canned responses, in order, and records what it was sent."""

    def __init__(self, answers: list[tuple[int, Any, dict[str, str]]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        status, body, headers = self.answers.pop(0)
        resp = requests.Response()
        resp.status_code, resp.request, resp.url = status, request, str(request.url)
        resp.headers.update({"Content-Type": "application/json", **headers})
        resp._content = b"" if body is None else json.dumps(body).encode()
        return resp

    def close(self) -> None:
        pass

    def body(self, i: int) -> Any:
        raw = self.sent[i].body
        return None if raw is None else json.loads(raw)


def replayed(*answers: tuple[int, Any] | tuple[int, Any, dict[str, str]]) -> tuple[AttioClient, Replay]:
    adapter = Replay([(a[0], a[1], a[2] if len(a) > 2 else {}) for a in answers])  # type: ignore[misc]
    session = requests.Session()
    session.mount("https://", adapter)
    transport = HttpTransport("attio", "https://api.attio.com", lambda: "tok", None, session=session,
                              retry=RetryPolicy.fast(), sleep=lambda s: None)  # fmt: skip
    return AttioClient(transport=transport), adapter


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAttio]:
    with FakeAttio(tokens=["tok"], limits=False, webhook_url="http://127.0.0.1:9/none", emit="collect",
                   webhook_secret="whsec") as f:  # fmt: skip
        f.seed_from(SyntheticCRM(seed=5, contacts=20, companies=4, deals=5, source="attio"))
        yield f


def fake_get(fake: FakeAttio, path: str, **kw: Any) -> requests.Response:
    return requests.get(f"{fake.base_url}{path}", headers={"Authorization": "Bearer tok"}, timeout=5, **kw)


def fake_send(fake: FakeAttio, method: str, path: str, body: Any) -> requests.Response:
    return requests.request(method, f"{fake.base_url}{path}", json=body, headers={"Authorization": "Bearer tok"},
                            timeout=5)  # fmt: skip


# ========================================================================================= records
def test_records_query_and_get() -> None:
    assert record_problems(PERSON) == []
    c, r = replayed((200, {"data": [PERSON]}), (200, {"data": PERSON}), (404, error(404, "invalid_request_error",
                    "not_found", f'Record with ID "{REC}" not found.')))  # fmt: skip
    page = c.query("people", limit=10, offset=20, filter={"name": "Ada Lovelace"},
                   sorts=[{"attribute": "created_at", "direction": "asc"}])  # fmt: skip
    assert r.sent[0].method == "POST" and r.sent[0].path_url == "/v2/objects/people/records/query"
    assert r.body(0) == {"limit": 10, "offset": 20, "filter": {"name": "Ada Lovelace"},
                         "sorts": [{"attribute": "created_at", "direction": "asc"}]}  # fmt: skip
    assert page[0].record_id == REC and page[0].created_at == datetime(
        2022, 11, 21, 13, 22, 49, 61281, tzinfo=UTC
    )
    rec = c.get("people", REC)
    assert (
        rec is not None
        and r.sent[1].method == "GET"
        and r.sent[1].path_url == f"/v2/objects/people/records/{REC}"
    )
    row = attio_person_to_row(rec)
    assert (row["first_name"], row["email"], row["job_title"], row["company_crm_id"], row["phone"]) == (
        "Ada", "ada@example.com", "Analyst", OBJ, "+15558675309")  # fmt: skip
    assert datetime.fromisoformat(row["crm_updated_at"]) == datetime(2023, 1, 1, 15, tzinfo=UTC)
    assert c.get("people", REC) is None  # 404 not_found: gone


def test_the_fakes_records_have_the_documented_shapes(fake: FakeAttio) -> None:
    for slug in ("people", "companies", "deals"):
        resp = fake_send(fake, "POST", f"/v2/objects/{slug}/records/query", {"limit": 3})
        data = resp.json()["data"]
        assert resp.status_code == 200 and data
        for record in data:
            assert record_problems(record) == [], slug
    rid = fake.record_ids("people")[0]
    one = fake_get(fake, f"/v2/objects/people/records/{rid}").json()
    assert set(one) == {"data"} and record_problems(one["data"]) == []


def test_writes_create_assert_patch_put() -> None:
    c, r = replayed(*[(200, {"data": PERSON})] * 4)
    values = {"email_addresses": ["ada@example.com"], "name": "Ada Lovelace"}
    c.create("people", values)
    c.assert_record("people", "email_addresses", values)
    c.update("people", REC, {"job_title": "CTO"})
    c.replace("people", REC, {"email_addresses": ["new@example.com"]})
    assert [(p.method, p.path_url) for p in r.sent] == [
        ("POST", "/v2/objects/people/records"),
        ("PUT", "/v2/objects/people/records?matching_attribute=email_addresses"),
        ("PATCH", f"/v2/objects/people/records/{REC}"),  # multiselects prepended
        ("PUT", f"/v2/objects/people/records/{REC}"),  # multiselects overwritten (docs: "overwrite/remove")
    ]
    assert [r.body(i) for i in range(4)] == [
        {"data": {"values": values}},
        {"data": {"values": values}},
        {"data": {"values": {"job_title": "CTO"}}},
        {"data": {"values": {"email_addresses": ["new@example.com"]}}},
    ]


def test_the_fakes_writes_answer_records(fake: FakeAttio) -> None:
    body = {"data": {"values": {"name": "Grace Hopper", "email_addresses": ["grace@contract.test"]}}}
    created = fake_send(fake, "POST", "/v2/objects/people/records", body).json()["data"]
    rid = created["id"]["record_id"]
    for method, path, values in (
        ("PUT", "/v2/objects/people/records?matching_attribute=email_addresses", body["data"]["values"]),
        ("PATCH", f"/v2/objects/people/records/{rid}", {"job_title": "Admiral"}),
        ("PUT", f"/v2/objects/people/records/{rid}", {"email_addresses": ["hopper@contract.test"]}),
    ):
        resp = fake_send(fake, method, path, {"data": {"values": values}})
        assert resp.status_code == 200 and record_problems(resp.json()["data"]) == [], (method, path)
    bad = fake_send(
        fake, "PUT", "/v2/objects/people/records?matching_attribute=nope", {"data": {"values": {"nope": 1}}}
    )
    assert (
        bad.status_code == 400
        and conforms(bad.json(), ERROR_SHAPE) == []
        and bad.json()["code"] == "value_not_found"
    )


# ========================================================================================= errors
def test_errors_as_documented() -> None:
    retry_at = email.utils.formatdate(time.time() + 2, usegmt=True)  # "usually the following second"
    c, r = replayed(
        (429, error(429, "rate_limit_error", "rate_limit_exceeded", "Rate limit exceeded, please try again later"),
         {"Retry-After": retry_at}),
        (200, {"data": PERSON}),
        (409, error(409, "invalid_request_error", "concurrent_write_conflict", "The record was modified by another "
                    "request while this write was being validated. Please try again.")),
        (200, {"data": PERSON}),
        (404, error(404, "invalid_request_error", "merge_in_progress", "being merged")),
        (404, error(404, "invalid_request_error", "merge_in_progress", "being merged")),
        (404, error(404, "invalid_request_error", "merge_in_progress", "being merged")),
        (400, error(400, "invalid_request_error", "value_not_found", 'Cannot find attribute with slug/ID "x".')),
    )  # fmt: skip
    assert c.get("people", REC) is not None  # the 429 was waited (capped in tests) and retried
    assert r.sent[0].path_url == r.sent[1].path_url
    assert c.update("people", REC, {"job_title": "x"}) is not None  # 409 concurrent_write_conflict: retried
    with pytest.raises(MergeInProgress) as merging:
        c.get("people", REC)  # 404 merge_in_progress: retried, then raised (not "gone")
    assert isinstance(merging.value, RetryableError) and merging.value.code == "merge_in_progress"
    with pytest.raises(ValidationError) as bad:
        c.assert_record("people", "x", {"x": 1})
    assert bad.value.code == "value_not_found" and bad.value.status == 400


def test_the_fakes_errors_have_the_documented_shape(fake: FakeAttio) -> None:
    missing = fake_get(fake, "/v2/objects/people/records/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and conforms(missing.json(), ERROR_SHAPE) == []
    fake.set_faults(rate_limit_storm=1)
    limited = fake_get(fake, "/v2/lists")
    assert limited.status_code == 429 and conforms(limited.json(), ERROR_SHAPE) == []
    assert limited.json()["code"] == "rate_limit_exceeded"
    assert email.utils.parsedate_to_datetime(limited.headers["Retry-After"]) is not None  # an HTTP-date
    a = fake.create("people", {"name": "Merge A"})
    b = fake.create("people", {"name": "Merge B"})
    new = fake.merge("people", a, b, in_progress=1)
    merging = fake_get(fake, f"/v2/objects/people/records/{new}")
    assert merging.status_code == 404 and merging.json()["code"] == "merge_in_progress"
    assert conforms(merging.json(), ERROR_SHAPE) == []


# ========================================================================================= lists, entries
def test_lists_entries_statuses_members() -> None:
    assert conforms(LIST_DOC, LIST_SHAPE) == [] and conforms(ENTRY_DOC, ENTRY_SHAPE) == []
    assert conforms(MEMBER_DOC, MEMBER_SHAPE) == [] and conforms(STATUS, STATUS_SHAPE) == []
    c, r = replayed((200, {"data": [LIST_DOC]}), (200, {"data": [ATTRIBUTE_DOC]}), (200, {"data": [STATUS]}),
                    (200, {"data": [ENTRY_DOC]}), (200, {"data": ENTRY_DOC}), (200, {"data": [MEMBER_DOC]}))  # fmt: skip
    (lst,) = c.lists()
    assert lst.list_id == LIST and lst.parent_object == ["people"]
    (attr,) = c.attributes("lists", LIST)
    assert attr.api_slug == "status" and attr.type == "status"
    stages = statuses_to_stages(c.statuses("lists", LIST, "status"), "status", "Hiring Engineering")
    assert stages == [{"pipeline_id": "status", "pipeline_label": "Hiring Engineering",
                       "stage_id": STATUS["id"]["status_id"], "stage_label": "In Progress", "display_order": 0,  # type: ignore[index]
                       "is_closed": False, "is_won": False, "archived": False}]  # fmt: skip
    (entry,) = c.query_entries(LIST, limit=50, offset=100)
    row = entry_to_row(entry, "status", datetime(2024, 1, 1, tzinfo=UTC))
    assert (row["parent_object"], row["stage_label"], row["list_id"], row["entry_id"]) == (
        "contacts", "In Progress", LIST, ENTRY)  # fmt: skip
    assert c.get_entry(LIST, ENTRY) is not None
    (member,) = c.workspace_members()
    assert member_to_owner(member)["email"] == "susan.kare@apple.com"
    assert [(p.method, p.path_url) for p in r.sent] == [
        ("GET", "/v2/lists"),
        ("GET", f"/v2/lists/{LIST}/attributes"),
        ("GET", f"/v2/lists/{LIST}/attributes/status/statuses?show_archived=true"),
        ("POST", f"/v2/lists/{LIST}/entries/query"),
        ("GET", f"/v2/lists/{LIST}/entries/{ENTRY}"),
        ("GET", "/v2/workspace_members"),
    ]
    assert r.body(3) == {"limit": 50, "offset": 100}


def test_the_fakes_lists_and_metadata_have_the_documented_shapes(fake: FakeAttio) -> None:
    lst = fake.create_list("Sales pipeline", "companies", stages=["Lead", "Won 🎉"])
    entry = fake.add_entry(lst, fake.record_ids("companies")[0], {"stage": "Lead"})
    lists = fake_get(fake, "/v2/lists").json()["data"]
    assert lists and all(conforms(x, LIST_SHAPE) == [] for x in lists)
    entries = fake_send(fake, "POST", f"/v2/lists/{lst}/entries/query", {"limit": 10}).json()["data"]
    assert entries and all(conforms(e, ENTRY_SHAPE) == [] for e in entries)
    stage = entries[0]["entry_values"]["stage"][0]
    assert conforms(stage, {**VALUE, **VALUE_FIELDS["status"]}) == []
    one = fake_get(fake, f"/v2/lists/{lst}/entries/{entry}").json()["data"]
    assert conforms(one, ENTRY_SHAPE) == []
    for target, ident, attribute in (("lists", lst, "stage"), ("objects", "deals", "stage")):
        attrs = fake_get(fake, f"/v2/{target}/{ident}/attributes").json()["data"]
        assert attrs and all(conforms(a, ATTRIBUTE_SHAPE) == [] for a in attrs)
        statuses = fake_get(fake, f"/v2/{target}/{ident}/attributes/{attribute}/statuses").json()["data"]
        assert statuses and all(conforms(s, STATUS_SHAPE) == [] for s in statuses)
    options = fake_get(fake, "/v2/objects/companies/attributes/categories/options").json()["data"]
    assert all(conforms(o, VALUE_FIELDS["select"]["option"]) == [] for o in options)
    members = fake_get(fake, "/v2/workspace_members").json()["data"]
    assert members and all(conforms(m, MEMBER_SHAPE) == [] for m in members)


# ========================================================================================= webhooks
RECORD_UPDATED = {  # docs.attio.com webhook reference, record.updated
    "webhook_id": "23e42eaf-323a-41da-b5bb-fd67eebda553",
    "events": [{"event_type": "record.updated",
                "id": {"workspace_id": WS, "object_id": OBJ, "record_id": REC, "attribute_id": ATTR},
                "actor": ACTOR}],
}  # fmt: skip
ENTRY_UPDATED = {  # docs.attio.com webhook reference, list-entry.updated
    "webhook_id": "23e42eaf-323a-41da-b5bb-fd67eebda553",
    "events": [{"event_type": "list-entry.updated",
                "id": {"workspace_id": WS, "list_id": LIST, "entry_id": ENTRY, "attribute_id": ATTR},
                "parent_object_id": OBJ, "parent_record_id": REC, "actor": ACTOR}],
}  # fmt: skip


def merged(new: str, original: str) -> dict[str, Any]:
    """record.merged today: "both carry the new record's ID in id.record_id, and each names one of the originals
    in duplicate_record_id" (docs.attio.com webhook reference, record.merged)."""
    return {"event_type": "record.merged", "id": {"workspace_id": WS, "object_id": OBJ, "record_id": new},
            "duplicate_object_id": OBJ, "duplicate_record_id": original, "actor": ACTOR}  # fmt: skip


def test_webhook_payloads_plan_as_documented() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    slugs = {OBJ: "people"}
    plan = plan_attio(RECORD_UPDATED["events"], slugs, when)  # type: ignore[arg-type]
    assert dict(plan.hydrate) == {"contacts": {REC}} and not plan.errors
    plan = plan_attio(ENTRY_UPDATED["events"], slugs, when)  # type: ignore[arg-type]
    assert dict(plan.hydrate) == {"list_entries": {f"{LIST}/{ENTRY}"}} and not plan.errors
    plan = plan_attio([merged("new", "a"), merged("new", "b")], slugs, when)
    assert dict(plan.hydrate) == {"contacts": {"new"}}
    assert sorted((d["crm_record_id"], d["merged_into"]) for d in plan.deletions["contacts"]) == [
        ("a", "new"), ("b", "new")]  # fmt: skip


def test_the_fakes_deliveries_have_the_documented_shape(fake: FakeAttio) -> None:
    fake.take_deliveries()
    rid = fake.record_ids("people")[1]
    fake.update("people", rid, {"job_title": "Contract Tester"})
    lst = fake.create_list("Webhook list", "people", stages=["A", "B"])
    entry = fake.add_entry(lst, rid, {"stage": "A"})
    fake.update_entry(lst, entry, {"stage": "B"})
    deliveries = fake.take_deliveries()
    assert len(deliveries) == 3
    for d in deliveries:
        payload = d.json()
        assert set(payload) == {"webhook_id", "events"} and len(payload["events"]) == 1
        assert conforms(payload["events"][0], EVENT_SHAPE) == []
        sig = hmac.new(b"whsec", d.body, hashlib.sha256).hexdigest()
        assert d.headers["Attio-Signature"] == d.headers["X-Attio-Signature"] == sig
        assert d.headers["Idempotency-Key"]
    record_event, _, entry_event = (d.json()["events"][0] for d in deliveries)
    assert (
        conforms(record_event, {**EVENT_SHAPE, "id": {k: "str" for k in ID_RECORD | {"attribute_id": 1}}})
        == []
    )
    assert set(record_event) == set(RECORD_UPDATED["events"][0])  # type: ignore[index]
    entry_shape = {**EVENT_SHAPE, "id": {"workspace_id": "str", "list_id": "str", "entry_id": "str",
                                         "attribute_id": "str"}, "parent_object_id": "str", "parent_record_id": "str"}  # fmt: skip
    assert conforms(entry_event, entry_shape) == [] and set(entry_event) == set(ENTRY_UPDATED["events"][0])  # type: ignore[index]
    assert entry_event["event_type"] == "list-entry.updated"
