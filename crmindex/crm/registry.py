"""The CRMs crmindex speaks to, one :class:`Crm` entry each: the only place that tells them apart.

An entry says where the CRM lives (its real API and OAuth hosts: tokens go nowhere else unless the operator
allows it, :mod:`crmindex.crm.hosts`), what its connected account is called, and how to build each adapter behind
the protocols of :mod:`crmindex.crm.protocols` for a connected account:

===============  ==========================================  ==========================================
entry            HubSpot                                     Attio
===============  ==========================================  ==========================================
client           :class:`~.hubspot.client.HubSpotClient`     :class:`~.attio.client.AttioClient`
fetcher          batch reads of <= 100                       one GET per record
writer           batch update, upsert by email               PUT overwrite, assert by email
lister           list pages by cursor, archived listings;    query pages by offset (a full rescan)
                 also a :class:`ChangeLister` (reconcile
                 repairs a modified-time window)
plan_events      :func:`.hubspot.events.plan_delivery`       :func:`.attio.events.plan_delivery`
oauth            :class:`~.hubspot.oauth.HubSpotOAuth`       :class:`~.attio.oauth.AttioOAuth` (also
                                                             registers webhooks)
===============  ==========================================  ==========================================

Clients (:class:`crmindex.crm.clients.Clients`), the token store, connecting, the sync, reconcile, hydration and
webhook processing consult it; none of them names a CRM. A third CRM is a package under ``crmindex.crm`` with
those adapters, its fake under ``crmindex.testing``, one entry in :data:`CRMS` and its name in
:data:`crmindex.crm.protocols.Source` (plus, in SQL, the ``crm_source`` checks: ``crm.crm_sources()`` and a
migration widening the tables' CHECK constraints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from crmindex.crm import attio, hubspot
from crmindex.crm.attio.adapters import AttioFetcher, AttioWriter
from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.events import plan_delivery as plan_attio_delivery
from crmindex.crm.attio.lister import AttioLister
from crmindex.crm.attio.oauth import AttioOAuth
from crmindex.crm.hosts import HostPolicy
from crmindex.crm.http import RetryPolicy, TokenProvider
from crmindex.crm.hubspot.adapters import HubSpotFetcher, HubSpotWriter
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.events import plan_delivery as plan_hubspot_delivery
from crmindex.crm.hubspot.lister import HubSpotLister
from crmindex.crm.hubspot.oauth import AUTHORIZE_URL as HUBSPOT_AUTHORIZE_URL
from crmindex.crm.hubspot.oauth import HubSpotOAuth
from crmindex.crm.oauth import OAuthApp, OAuthProvider
from crmindex.crm.protocols import CrmWriter, EventPlanner, Lister, RecordFetcher
from crmindex.errors import InvalidInputError
from crmindex.platform.limits import RateLimiter

C = TypeVar("C", bound="CrmClient")
Settings = Mapping[str, Any]  # the connection's settings (crm.connection.settings)


class CrmClient(Protocol):
    """What every CRM client offers the registry's users: its name, and closing its HTTP session."""

    source: str

    def close(self) -> None: ...


@dataclass(frozen=True)
class Account:
    """A connected account as a client needs it: where to send requests, the token to send, the account's shared
    rate limiter and id, and the retry policy."""

    base_url: str
    token: TokenProvider
    limiter: RateLimiter | None
    account_id: str | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class OAuthBases:
    """Where a CRM's OAuth provider sends requests: its API (token info, account) and OAuth (token) bases, and the
    user-facing authorize page (None: the CRM's own)."""

    api_base: str
    oauth_base: str
    authorize_url: str | None = None


@dataclass(frozen=True)
class Crm(Generic[C]):
    """One CRM: its hosts and the factories of its adapters (see the module docstring)."""

    name: str  # the crm_source of every row of it
    account_noun: str  # what its account ids name, in messages ("portal", "workspace")
    api_base: str  # the real API base URL (a connection with no base_url uses it)
    oauth_base: str  # the real OAuth token endpoint base
    real_hosts: frozenset[str]  # where its tokens may always go (https only)
    client: Callable[[Account], C]
    fetcher: Callable[[C, Settings], RecordFetcher]
    writer: Callable[[C], CrmWriter]
    lister: Callable[[C, Settings], Lister]
    plan_events: EventPlanner  # a stored webhook delivery -> what to apply (crmindex.freshness.webhooks)
    oauth: Callable[[OAuthApp | None, OAuthBases, HostPolicy], OAuthProvider]

    def oauth_provider(
        self,
        app: OAuthApp | None = None,
        *,
        api_base: str | None = None,
        oauth_base: str | None = None,
        authorize_url: str | None = None,
        hosts: HostPolicy,
    ) -> OAuthProvider:
        """The CRM's OAuth endpoints; bases left None are its real ones (anything else must be allow-listed). A
        fake serves both on one base: an API base given alone stands in for the OAuth base too."""
        api = api_base or self.api_base
        bases = OAuthBases(api, oauth_base or api_base or self.oauth_base, authorize_url)
        return self.oauth(app, bases, hosts)


def _attio_custom(settings: Settings) -> dict[str, str]:
    """Index columns without a standard Attio attribute -> the workspace's attribute slugs (connect --settings)."""
    custom = settings.get("attio_attributes") or {}
    return {str(k): str(v) for k, v in custom.items()} if isinstance(custom, Mapping) else {}


HUBSPOT: Crm[HubSpotClient] = Crm(
    name="hubspot",
    account_noun="portal",
    api_base=hubspot.API_BASE,
    oauth_base=hubspot.OAUTH_BASE,
    real_hosts=hubspot.REAL_HOSTS,
    client=lambda a: HubSpotClient(a.base_url, a.token, a.limiter, a.account_id, retry=a.retry),
    fetcher=lambda client, settings: HubSpotFetcher(client),
    writer=HubSpotWriter,
    # the initial sync reads list pages and search ranges at once (issue 18; crmindex.crm.hubspot.partitions); a
    # connection with the setting split_sync: false reads list pages only
    lister=lambda client, settings: HubSpotLister(client, split=bool(settings.get("split_sync", True))),
    plan_events=plan_hubspot_delivery,
    # HubSpot's token endpoints live on its API host (the authorize page is app.hubspot.com)
    oauth=lambda app, b, hosts: HubSpotOAuth(
        app, api_base=b.api_base, authorize_url=b.authorize_url or HUBSPOT_AUTHORIZE_URL, hosts=hosts
    ),
)

ATTIO: Crm[AttioClient] = Crm(
    name="attio",
    account_noun="workspace",
    api_base=attio.API_BASE,
    oauth_base=attio.OAUTH_BASE,
    real_hosts=attio.REAL_HOSTS,
    client=lambda a: AttioClient(a.base_url, a.token, a.limiter, retry=a.retry),
    fetcher=lambda client, settings: AttioFetcher(client, _attio_custom(settings)),
    writer=AttioWriter,
    lister=lambda client, settings: AttioLister(client, _attio_custom(settings)),
    plan_events=plan_attio_delivery,
    oauth=lambda app, b, hosts: AttioOAuth(app, api_base=b.api_base, oauth_base=b.oauth_base, hosts=hosts),
)

CRMS: Mapping[str, Crm[Any]] = {c.name: c for c in (HUBSPOT, ATTIO)}


def crm(source: str) -> Crm[Any]:
    """The entry of ``source``; InvalidInputError naming the known ones for anything else."""
    found = CRMS.get(source)
    if found is None:
        raise InvalidInputError(f"unknown CRM source {str(source)[:40]!r}: {' or '.join(CRMS)}")
    return found
