"""Contract: FakeHubSpot answers in the shapes of HubSpot's public OpenAPI files, so it cannot drift from them again
(issue 15).

Representative requests for contacts, companies, deals, associations v4, pipelines and owners are replayed through
crmindex's own client (:class:`~crmindex.crm.hubspot.client.HubSpotClient`) and through HubSpot's official SDK
(``hubspot-api-client``, pointed at the fake: ``host`` = its base URL, ``access_token`` = its token), and every
answer is checked against the schema shapes below. The shapes were written by hand from the specs in
HubSpot/HubSpot-public-api-spec-collection (read, not vendored):

* ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (companies and deals: the same shapes in
  ``Companies/.../companies.json``, ``Deals/.../deals.json``): ``SimplePublicObject(WithAssociations)``,
  ``CollectionResponse...ForwardPaging``, ``BatchResponseSimplePublicObject(WithErrors)``, ``StandardError``,
  ``CollectionResponseWithTotalSimplePublicObjectForwardPaging``, ``Error``;
* ``PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json``: ``BatchResponsePublicAssociation
  MultiWithLabel``, ``MultiAssociatedObjectWithLabel``, ``AssociationSpecWithLabel``;
* ``PublicApiSpecs/CRM/Pipelines/Rollouts/145896/v3/pipelines.json``: ``Pipeline``, ``PipelineStage``;
* the owners v3 API (the SDK's ``hubspot.crm.owners`` package, generated from its spec): ``PublicOwner``.

The SDK deserializes every answer into its own models (a missing required field or a wrong enum value raises), which
checks the same shapes a second way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import ApiException

from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.testing import FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM

TOKEN = "contract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# -- schema shapes (field -> (check, required)), by hand from the specs --------------------------------------------
Check = Callable[[Any], bool]


def s(v: Any) -> bool:
    return isinstance(v, str)


def i(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def b(v: Any) -> bool:
    return isinstance(v, bool)


def dt(v: Any) -> bool:
    return isinstance(v, str) and ISO.fullmatch(v) is not None


def str_map(v: Any) -> bool:  # additionalProperties: {type: string} (nullable values)
    return isinstance(v, dict) and all(
        isinstance(k, str) and (x is None or isinstance(x, str)) for k, x in v.items()
    )


def one_of(*values: str) -> Check:
    return lambda v: v in values


def list_of(shape: Mapping[str, tuple[Check, bool]]) -> Check:
    return lambda v: isinstance(v, list) and all(conforms(x, shape) == [] for x in v)


def obj(shape: Mapping[str, tuple[Check, bool]]) -> Check:
    return lambda v: conforms(v, shape) == []


def map_of(check: Check) -> Check:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


NEXT_PAGE = {"after": (s, True), "link": (lambda v: v is None or isinstance(v, str), False)}
FORWARD_PAGING = {"next": (obj(NEXT_PAGE), False)}
SIMPLE_PUBLIC_OBJECT = {
    "id": (s, True),
    "properties": (str_map, True),
    "createdAt": (dt, True),
    "updatedAt": (dt, True),
    "archived": (b, False),
    "archivedAt": (dt, False),
    "propertiesWithHistory": (dict.__instancecheck__, False),
    "objectWriteTraceId": (s, False),
    "url": (s, False),
}
ASSOCIATED_ID = {"id": (s, True), "type": (s, True)}
COLLECTION_ASSOCIATED_ID = {"results": (list_of(ASSOCIATED_ID), True), "paging": (obj(FORWARD_PAGING), False)}
WITH_ASSOCIATIONS = {**SIMPLE_PUBLIC_OBJECT, "associations": (map_of(obj(COLLECTION_ASSOCIATED_ID)), False)}
UPSERT_OBJECT = {**SIMPLE_PUBLIC_OBJECT, "new": (b, True)}
LIST_PAGE = {"results": (list_of(WITH_ASSOCIATIONS), True), "paging": (obj(FORWARD_PAGING), False)}
SEARCH_PAGE = {"total": (i, True), "results": (list_of(SIMPLE_PUBLIC_OBJECT), True),
               "paging": (obj(FORWARD_PAGING), False)}  # fmt: skip
STANDARD_ERROR = {
    "status": (s, True),
    "category": (s, True),
    "message": (s, True),
    "context": (map_of(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)), True),
    "links": (map_of(s), True),
    "errors": (lambda v: isinstance(v, list), True),
    "id": (s, False),
    "subCategory": (lambda v: v is not None, False),
}
BATCH_STATUS = one_of("PENDING", "PROCESSING", "CANCELED", "COMPLETE")


def batch_response(
    result: Mapping[str, tuple[Check, bool]], with_errors: bool
) -> dict[str, tuple[Check, bool]]:
    shape = {
        "status": (BATCH_STATUS, True),
        "results": (list_of(result), True),
        "startedAt": (dt, True),
        "completedAt": (dt, True),
        "requestedAt": (dt, False),
        "links": (map_of(s), False),
    }
    if with_errors:
        shape |= {"numErrors": (i, False), "errors": (list_of(STANDARD_ERROR), False)}
    return shape


ERROR = {
    "category": (s, True),
    "correlationId": (lambda v: isinstance(v, str) and UUID.fullmatch(v) is not None, True),
    "message": (s, True),
    "subCategory": (s, False),
    "context": (dict.__instancecheck__, False),
    "errors": (lambda v: isinstance(v, list), False),
    "links": (dict.__instancecheck__, False),
}
ASSOCIATION_SPEC_WITH_LABEL = {
    "category": (one_of("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"), True),
    "typeId": (i, True),
    "label": (lambda v: v is None or isinstance(v, str), False),
}
MULTI_ASSOCIATED = {"toObjectId": (s, True), "associationTypes": (list_of(ASSOCIATION_SPEC_WITH_LABEL), True)}
ASSOCIATION_MULTI_WITH_LABEL = {
    "from": (obj({"id": (s, True)}), True),
    "to": (list_of(MULTI_ASSOCIATED), True),
    "paging": (obj(FORWARD_PAGING), False),
}
ASSOCIATION_PAGE = {"results": (list_of(MULTI_ASSOCIATED), True), "paging": (obj(FORWARD_PAGING), False)}
PIPELINE_STAGE = {
    "id": (s, True),
    "label": (s, True),
    "displayOrder": (i, True),
    "metadata": (str_map, True),
    "createdAt": (dt, True),
    "updatedAt": (dt, True),
    "archived": (b, True),
    "archivedAt": (dt, False),
    "writePermissions": (one_of("CRM_PERMISSIONS_ENFORCEMENT", "READ_ONLY", "INTERNAL_ONLY"), False),
}
PIPELINE = {
    "id": (s, True),
    "label": (s, True),
    "displayOrder": (i, True),
    "stages": (list_of(PIPELINE_STAGE), True),
    "createdAt": (dt, True),
    "updatedAt": (dt, True),
    "archived": (b, True),
    "archivedAt": (dt, False),
}
PUBLIC_OWNER = {
    "id": (s, True),
    "email": (lambda v: v is None or isinstance(v, str), False),
    "firstName": (lambda v: v is None or isinstance(v, str), False),
    "lastName": (lambda v: v is None or isinstance(v, str), False),
    "userId": (i, False),
    "userIdIncludingInactive": (i, False),
    "createdAt": (dt, True),
    "updatedAt": (dt, True),
    "archived": (b, True),
    "teams": (list_of({"id": (s, True), "name": (s, True), "primary": (b, True)}), False),
    "type": (one_of("PERSON", "QUEUE"), True),
}
OWNER_PAGE = {"results": (list_of(PUBLIC_OWNER), True), "paging": (obj(FORWARD_PAGING), False)}


def conforms(value: Any, shape: Mapping[str, tuple[Check, bool]], where: str = "$") -> list[str]:
    """Problems of ``value`` against ``shape`` (required fields present, every known field of the right type)."""
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    problems = [f"{where}.{k}: missing" for k, (_, required) in shape.items() if required and k not in value]
    for k, v in value.items():
        entry = shape.get(k)
        if entry is not None and not entry[0](v):
            problems.append(f"{where}.{k}: {str(v)[:80]!r} does not fit the spec")
    return problems


# -- the fake, the two clients ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as f:
        f.seed_from(SyntheticCRM(seed=31, contacts=400))
        pid, _ = f.metadata.add_pipeline("Enterprise", [("Discovery", "0.1", False), ("Won", "1.0", True)])
        deal = f.create("deals", {"dealname": "Contract deal", "pipeline": pid, "dealstage": "contractsent"})
        older = f.create("companies", {"name": "Older", "domain": "older.contract"})
        primary = f.create("companies", {"name": "Primary", "domain": "primary.contract"})
        f.associate("deals", deal, "companies", older)
        f.associate("deals", deal, "companies", primary, primary=True)
        yield f


@pytest.fixture(scope="module")
def sdk(fake: FakeHubSpot) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=fake.base_url)


@pytest.fixture(scope="module")
def ours(fake: FakeHubSpot) -> Iterator[HubSpotClient]:
    with HubSpotClient(fake.base_url, lambda: TOKEN, retry=RetryPolicy.fast()) as c:
        yield c


def raw(fake: FakeHubSpot, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, fake.base_url + path, headers=AUTH, timeout=10, **kw)


def conforming(resp: requests.Response, shape: Mapping[str, tuple[Check, bool]]) -> dict[str, Any]:
    body = resp.json()
    assert conforms(body, shape) == [], conforms(body, shape)
    return dict(body)


# -- objects --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["contacts", "companies", "deals"])
def test_list_pages_with_associations(
    fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient, kind: str
) -> None:
    assoc = {"contacts": "companies", "companies": "contacts", "deals": "contacts,companies"}[kind]
    body = conforming(raw(fake, "GET", f"/crm/v3/objects/{kind}", params={"limit": 5, "associations": assoc}),
                      LIST_PAGE)  # fmt: skip
    assert body["paging"]["next"]["after"]
    api = getattr(sdk.crm, kind).basic_api
    page = api.get_page(limit=5, associations=assoc.split(","))
    assert [o.id for o in page.results] == [o["id"] for o in body["results"]]
    assert page.paging.next.after == body["paging"]["next"]["after"]
    mine = ours.list_page(kind, limit=5, associations=assoc.split(","))
    assert [o.id for o in mine.results] == [o["id"] for o in body["results"]]


def test_get_batch_read_and_search(fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient) -> None:
    first = raw(fake, "GET", "/crm/v3/objects/contacts", params={"limit": 3}).json()["results"]
    ids = [o["id"] for o in first]
    conforming(raw(fake, "GET", f"/crm/v3/objects/contacts/{ids[0]}"), SIMPLE_PUBLIC_OBJECT)
    assert sdk.crm.contacts.basic_api.get_by_id(ids[0]).id == ids[0]
    body = {
        "inputs": [{"id": x} for x in [*ids, "999999999"]],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }
    conforming(
        raw(fake, "POST", "/crm/v3/objects/contacts/batch/read", json=body),
        batch_response(SIMPLE_PUBLIC_OBJECT, True),
    )
    read = sdk.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=x) for x in [*ids, "999999999"]], properties=["email"], properties_with_history=[]
    ))  # fmt: skip
    assert sorted(o.id for o in read.results) == sorted(ids) and read.errors[0].category == "OBJECT_NOT_FOUND"
    assert ours.batch_read("contacts", [*ids, "999999999"]).missing == ["999999999"]
    search = {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GTE", "value": "0"}]}],
              "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}], "limit": 5}  # fmt: skip
    got = conforming(raw(fake, "POST", "/crm/v3/objects/contacts/search", json=search), SEARCH_PAGE)
    sdk_page = sdk.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=search["filterGroups"], sorts=["hs_object_id"], limit=5))  # fmt: skip
    assert sdk_page.total == got["total"] and len(sdk_page.results) == 5
    assert ours.search("contacts", filter_groups=search["filterGroups"], limit=5).total == got["total"]


def test_batch_writes_and_the_whole_call_refusals(
    fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient
) -> None:
    ids = [
        o["id"] for o in raw(fake, "GET", "/crm/v3/objects/contacts", params={"limit": 2}).json()["results"]
    ]
    ok = conforming(raw(fake, "POST", "/crm/v3/objects/contacts/batch/update",
                        json={"inputs": [{"id": x, "properties": {"jobtitle": "Contract"}} for x in ids]}),
                    batch_response(SIMPLE_PUBLIC_OBJECT, False))  # fmt: skip
    assert ok["status"] == "COMPLETE"
    upsert = conforming(raw(fake, "POST", "/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
        {"id": "contract@upsert.example", "idProperty": "email", "properties": {"firstname": "C"}}]}),
        batch_response(UPSERT_OBJECT, False))  # fmt: skip
    assert upsert["results"][0]["new"] is True
    sdk_res = sdk.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=x, properties={"jobtitle": "SDK"}) for x in ids]))  # fmt: skip
    assert {o.properties["jobtitle"] for o in sdk_res.results} == {"SDK"}
    # one bad input: the whole call answers 400 in the Error shape, and the SDK raises it
    bad = {"inputs": [{"id": ids[0], "properties": {"email": "not an email"}},
                      {"id": ids[1], "properties": {"jobtitle": "never"}}]}  # fmt: skip
    refused = raw(fake, "POST", "/crm/v3/objects/contacts/batch/update", json=bad)
    assert refused.status_code == 400
    assert conforms(refused.json(), ERROR) == []
    with pytest.raises(ApiException) as exc:
        sdk.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
            SimplePublicObjectBatchInput(id=x["id"], properties=x["properties"]) for x in bad["inputs"]]))  # fmt: skip
    assert exc.value.status == 400
    results = ours.batch_update("contacts", [(x["id"], x["properties"]) for x in bad["inputs"]])
    assert [r.ok for r in results] == [False, True] and results[0].error is not None
    assert results[0].error.field == "email" and results[0].error.code == "INVALID_EMAIL"


# -- associations v4 ------------------------------------------------------------------------------------------------
def test_associations_v4(fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient) -> None:
    deals = [
        o["id"] for o in raw(fake, "GET", "/crm/v3/objects/deals", params={"limit": 5}).json()["results"]
    ]
    body = conforming(raw(fake, "POST", "/crm/v4/associations/deals/companies/batch/read",
                          json={"inputs": [{"id": d} for d in deals]}),
                      batch_response(ASSOCIATION_MULTI_WITH_LABEL, True))  # fmt: skip
    sdk_res = sdk.crm.associations.v4.batch_api.get_page(
        "deals", "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=d) for d in deals]))  # fmt: skip
    assert sorted(r._from.id for r in sdk_res.results) == sorted(r["from"]["id"] for r in body["results"])
    deal = deals[0]
    conforming(raw(fake, "GET", f"/crm/v4/objects/deals/{deal}/associations/contacts"), ASSOCIATION_PAGE)
    page = sdk.crm.associations.v4.basic_api.get_page("deals", deal, "contacts", limit=500)
    assert all(isinstance(t.to_object_id, str) for t in page.results) and page.results
    # the primary company by its type id (deal -> company primary: 5, labelled "Primary")
    (mine,) = [o for o in ours.iter_objects("deals") if o.properties.get("dealname") == "Contract deal"]
    assoc = raw(
        fake, "POST", "/crm/v4/associations/deals/companies/batch/read", json={"inputs": [{"id": mine.id}]}
    )
    (res,) = assoc.json()["results"]
    primary = [t for t in res["to"] if any(a["typeId"] == 5 for a in t["associationTypes"])]
    assert (
        len(res["to"]) == 2 and len(primary) == 1 and primary[0]["associationTypes"][0]["label"] == "Primary"
    )
    assert ours.deal_associations([mine.id])[mine.id][1] == primary[0]["toObjectId"]


# -- pipelines and owners -------------------------------------------------------------------------------------------
def test_pipelines(fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient) -> None:
    body = conforming(raw(fake, "GET", "/crm/v3/pipelines/deals"), {"results": (list_of(PIPELINE), True)})
    assert body["results"][0]["id"] == "default"
    custom = body["results"][1]
    conforming(raw(fake, "GET", f"/crm/v3/pipelines/deals/{custom['id']}"), PIPELINE)
    conforming(raw(fake, "GET", f"/crm/v3/pipelines/deals/{custom['id']}/stages"),
               {"results": (list_of(PIPELINE_STAGE), True)})  # fmt: skip
    assert raw(fake, "GET", "/crm/v3/pipelines/deals/404404").status_code == 404
    listed = sdk.crm.pipelines.pipelines_api.get_all("deals")
    assert [p.id for p in listed.results] == [p["id"] for p in body["results"]]
    assert listed.results[0].stages[-1].metadata == {"isClosed": "true", "probability": "0.0"}
    mine = ours.pipelines("deals")
    won = [st for p in mine for st in p.stages if st.is_won]
    assert {st.id for st in won} == {"closedwon", custom["stages"][1]["id"]}


def test_owners(fake: FakeHubSpot, sdk: HubSpot, ours: HubSpotClient) -> None:
    page = conforming(raw(fake, "GET", "/crm/v3/owners/", params={"limit": 2}), OWNER_PAGE)
    assert page["paging"]["next"]["after"]
    one = page["results"][0]
    conforming(raw(fake, "GET", f"/crm/v3/owners/{one['id']}"), PUBLIC_OWNER)
    sdk_page = sdk.crm.owners.owners_api.get_page(limit=2)
    assert [o.id for o in sdk_page.results] == [o["id"] for o in page["results"]]
    assert sdk.crm.owners.owners_api.get_by_id(int(one["id"])).email == one["email"]
    assert {o.id for o in ours.owners()} == set(fake.metadata.owners)


def test_errors_and_rate_limit_headers(fake: FakeHubSpot, sdk: HubSpot) -> None:
    nf = raw(fake, "GET", "/crm/v3/objects/contacts/404404404")
    assert nf.status_code == 404 and conforms(nf.json(), ERROR) == []
    unauth = requests.get(fake.base_url + "/crm/v3/objects/contacts", timeout=5)
    assert unauth.status_code == 401 and conforms(unauth.json(), ERROR) == []
    h = raw(fake, "GET", "/crm/v3/objects/contacts", params={"limit": 1}).headers
    assert {k for k in h if k.startswith("X-HubSpot-RateLimit")} == {
        "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
        "X-HubSpot-RateLimit-Daily", "X-HubSpot-RateLimit-Daily-Remaining"}  # fmt: skip
    with pytest.raises(ApiException) as exc:
        sdk.crm.contacts.basic_api.get_by_id("404404404")
    assert exc.value.status == 404
