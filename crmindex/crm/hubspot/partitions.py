"""The initial sync of one HubSpot object type read through both of the account's budgets at once.

HubSpot gives an account two independent request budgets (developers.hubspot.com/docs/developer-tooling/platform/
usage-guidelines; ``../shared/reference/crm-apis.md``): the general ten-second window (Free/Starter: 100 requests per
10 s; a list page ``GET /crm/v3/objects/{type}?limit=100`` holds 100 records) and the search endpoints' own limit
(``POST /crm/v3/objects/{type}/search``: "five requests per second per account", up to 200 records per page, not
counted in the ten-second window: the spec's ``x-hubspot-rate-limit-exemptions: ["ten-secondly"]``). A list-only
sync reads 1,000 records/s on Free/Starter; using both reads up to 2,000/s, so its rate bound is half the
list-only one.

How the work is shared (no id space is read twice, nothing is left out):

* the **list stream** walks the listing from the lowest id up (its ``after`` cursor is opaque: it can only start
  at the beginning). The listing comes in ascending id order: its cursor is the next record's id, base64-encoded
  (the documented example ``"after": "NTI1Cg%3D%3D"`` is ``525\n``; crm-apis.md), and the fake lists the same
  way;
* the **search stream** takes ``hs_object_id`` ranges ``[lo, hi)`` from the top down: each range is one query
  (``hs_object_id GTE lo AND LT hi``, sorted by ``hs_object_id`` ascending, paged with ``after``) planned to hold
  fewer than the 10,000 results a query may page through ("The search endpoints are limited to 10,000 total
  results for any given query. Attempting to page beyond 10,000 will result in a 400 error."): the width comes
  from the density of ids seen so far (:func:`plan_range`); a range whose first page reports more than
  :data:`RANGE_TARGET` results is narrowed before any further page is read (:func:`narrow`);
* they meet in the middle: a new range never starts below the highest id the listing has reached, and the
  listing stops once it reaches the lowest range the search has claimed. Whichever stream is faster takes the
  larger share, so the two budgets are used together until the end. A new range claims only the search's share
  (:data:`SEARCH_SHARE`) of what lies between the two streams, so the ranges shrink as they close in and
  neither stream is left reading alone at the end;
* zero 429s: the account's shared limiter paces both streams, and each stream also keeps to the server's own
  rolling window as it counts arrivals (:class:`SendWindow`).

Search is eventually consistent, so a change made moments before the sync may not show there yet. A split
lister therefore sets the sync's watermark a few minutes early (``HubSpotLister.watermark_margin``), and
reconcile re-reads those minutes.

Archived records are not in search results ("Archived CRM objects won't appear in any search results"): the
archived listings stay list-only, and so do deals (search answers carry no associations).

The step's cursor (:class:`SplitState`, JSON) holds both streams' positions as they were written, so a sync
resumes where it stopped (after a lost database, a killed process or a failed call alike): the listing from its
``after`` cursor, the search from the range it was reading (past its last id written) down to where the listing's
*coverage* ends. That coverage (``list_top``: every id up to it came through the listing) is the meeting point,
never the highest id the listing happened to fetch: once the listing stops at the search's lowest claim, it covers
every id below that claim, whether or not its last page kept a record. A resumed search therefore never plans
below it (an earlier version saved the highest id *kept*, 0 when the listing's only page was all above the claim,
and a resumed search then walked down through the empty ids to 1, a range at a time: the sync never finished).
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from crmindex.crm.hubspot.client import SEARCH_LIMIT, SEARCH_RESULT_CAP, HubSpotClient
from crmindex.crm.hubspot.models import HubSpotObject

CURSOR_PREFIX = "split1:"
# a range is planned for this many results and narrowed when its first page reports more than that: far enough
# below the cap that a denser stretch of ids (or records created meanwhile) cannot push a query past it
RANGE_TARGET = 8_000
# the search stream's share of the records read while both run: search 5 requests/s x 200 = 1,000 records/s
# beside list pages at 100 / 10 s x 100 = 1,000 records/s (Free/Starter). A higher tier lists faster (190 / 10 s:
# 1,900/s, a share of 0.34); a wrong share costs only a shorter or longer tail (the streams still meet exactly)
SEARCH_SHARE = 0.5
ID_ORDER = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]


class SendWindow:
    """At most ``limit`` calls in any ``seconds`` as the server counts them (a rolling window of arrivals), for
    calls made one after another: a call starts only ``seconds`` + ``margin`` after the call ``limit`` places
    before it *returned* (its arrival lies before its return).

    The account's shared limiter paces the calls (GCRA, 97% of the limit) but cannot see when they arrive: a
    call held up a moment (a busy machine) and the next one on time arrive closer than their interval, and
    HubSpot's search window (5 per second: 1 - 4 x 0.206 s leaves 31 ms) answers 429 to that. This guard keeps
    the split sync at zero 429s at a cost of ``margin`` per window."""

    def __init__(
        self,
        limit: int,
        seconds: float,
        margin: float = 0.05,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.seconds, self.margin = limit, seconds, margin
        self._clock, self._sleep = clock, sleep
        self._returned: collections.deque[float] = collections.deque(maxlen=limit)
        self._lock = threading.Lock()
        self.waited_s = 0.0

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        while True:
            with self._lock:
                if len(self._returned) < self.limit:
                    break
                wait = self._returned[0] + self.seconds + self.margin - self._clock()
            if wait <= 0:
                break
            self.waited_s += wait
            self._sleep(wait)
        try:
            yield
        finally:
            with self._lock:
                self._returned.append(self._clock())


def search_window() -> SendWindow:
    """HubSpot's search limit: "five requests per second per account" (the search guide; crm-apis.md)."""
    return SendWindow(5, 1.0)


def list_window() -> SendWindow:
    """The Free/Starter ten-second window: 100 requests per 10 s (usage guidelines)."""
    return SendWindow(100, 10.0)


@dataclass(frozen=True)
class IdRange:
    """``hs_object_id`` in ``[lo, hi)``."""

    lo: int
    hi: int

    @property
    def width(self) -> int:
        return self.hi - self.lo

    def filter_groups(self) -> list[dict[str, Any]]:
        return [
            {
                "filters": [
                    {"propertyName": "hs_object_id", "operator": "GTE", "value": str(self.lo)},
                    {"propertyName": "hs_object_id", "operator": "LT", "value": str(self.hi)},
                ]
            }
        ]


def plan_range(hi: int, floor: int, density: float, target: int = RANGE_TARGET) -> IdRange | None:
    """The next range below ``hi`` (exclusive) and not below ``floor`` (inclusive) expected to hold about ``target``
    records at ``density`` records per id; None when nothing is left between them."""
    if hi <= floor:
        return None
    width = max(1, int(target / density)) if density > 0 else hi - floor
    return IdRange(max(floor, hi - width), hi)


def narrow(r: IdRange, total: int, target: int = RANGE_TARGET) -> IdRange:
    """The top part of ``r`` expected to hold ``target`` of its ``total`` results (at least one id narrower)."""
    keep = max(1, min(r.width - 1, int(r.width * target / max(total, 1))))
    return IdRange(r.hi - keep, r.hi)


@dataclass
class SplitState:
    """Both streams' positions as far as their pages were written (the step's cursor).

    ``list_after``/``list_top``: the listing's cursor and its coverage (every id up to ``list_top`` came through the
    listing; once it is done, every id below the search's lowest claim); ``floor``: every id from there up to
    ``top`` (the highest id when the sync began) came through search; ``cur_lo``/``cur_hi``/``cur_last``: the range
    being read and the last id of it handed over.
    """

    top: int
    floor: int
    density: float
    list_after: str | None = None
    list_top: int = 0
    list_done: bool = False
    search_done: bool = False
    cur_lo: int | None = None
    cur_hi: int | None = None
    cur_last: int | None = None

    def encode(self) -> str:
        return CURSOR_PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, cursor: str | None) -> SplitState | None:
        if not cursor or not cursor.startswith(CURSOR_PREFIX):
            return None
        return cls(**json.loads(cursor.removeprefix(CURSOR_PREFIX)))


@dataclass
class _Meet:
    """What the two streams tell each other while they run (under ``lock``)."""

    lock: threading.Lock
    # the highest id the listing has fetched; once it has stopped, its coverage: every id below ``claimed``
    list_top: int
    claimed: int  # the lowest id a search range has been started at
    list_stopped: bool = False


@dataclass
class SplitPage:
    stream: str  # "list" or "search"
    objects: list[HubSpotObject]
    list_after: str | None = None
    list_top: int = 0  # a list page: the listing's coverage once it is written
    done: bool = False
    range_: IdRange | None = None
    range_done: bool = False


class SplitReaderStalled(RuntimeError):
    """Both streams of a split read ended without finishing the step (a bug, never a wait forever)."""


def probe(client: HubSpotClient, object_type: str, window: SendWindow | None = None) -> SplitState | None:
    """The id span and density of an object type (two one-record searches); None when it has no record."""
    props = ["hs_object_id"]
    guard = window or search_window()
    with guard.call():
        last = client.search(
            object_type,
            sorts=[{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
            properties=props,
            limit=1,
        )
    with guard.call():
        first = client.search(object_type, sorts=ID_ORDER, properties=props, limit=1)
    if not last.results or not first.results:
        return None
    top, bottom = int(last.results[0].id), int(first.results[0].id)
    density = last.total / max(1, top - bottom + 1)
    # nothing lies below the lowest id: the listing's coverage starts just under it, so the first range is planned
    # from the records actually left between the streams (not from id 1 up)
    return SplitState(top=top, floor=top + 1, density=density, list_top=bottom - 1)


class SplitReader:
    """Runs the list and search streams of one object type in two threads and hands their pages over in the
    order they arrive, each with the :class:`SplitState` to checkpoint after it is written."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        state: SplitState,
        list_pages: Callable[[str | None], Iterator[tuple[list[HubSpotObject], str | None]]],
        *,
        read_ahead: int = 8,
        cap: int | None = None,
        target: int | None = None,
        search_share: float = SEARCH_SHARE,
        search_guard: SendWindow | None = None,
        list_guard: SendWindow | None = None,
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.state = state
        self.list_pages = list_pages
        self.read_ahead = read_ahead
        self.cap = client.search_cap if cap is None else cap
        self.target = min(RANGE_TARGET, int(self.cap * 0.8)) if target is None else target
        self.search_share = search_share
        self.search_guard = search_guard or search_window()
        self.list_guard = list_guard or list_window()
        self.ranges: list[tuple[IdRange, int]] = []  # every range read through, with the total it reported
        self.narrowed = 0  # ranges found denser than planned (narrowed before their second page)

    def _list_worker(self, meet: _Meet, out: queue.Queue[object], stop: threading.Event) -> None:
        if self.state.list_done:
            return
        pages = iter(self.list_pages(self.state.list_after))
        after: str | None = self.state.list_after
        while True:
            try:
                with self.list_guard.call():
                    objs, after = next(pages)
            except StopIteration:  # the listing ended without a last page: it is done all the same
                objs, after = [], None
            if stop.is_set():
                return
            with meet.lock:
                if objs:
                    meet.list_top = max(meet.list_top, max(int(o.id) for o in objs))
                # the search has claimed everything from ``claimed`` up: the listing ends once it reaches it
                reached = meet.list_top >= meet.claimed - 1
                last = reached or after is None
                keep = [o for o in objs if int(o.id) < meet.claimed] if reached else objs
                if last:
                    # done: the listing covers every id below the claim (it has shown each one that exists), and
                    # the search plans down to exactly there, never below (a range narrowed after this point
                    # leaves its lower part to the search) nor above (ids fetched past the claim were dropped)
                    meet.list_stopped = True
                    meet.list_top = meet.claimed - 1
                coverage = meet.list_top
            _put(out, SplitPage("list", keep, list_after=after, list_top=coverage, done=last), stop)
            if last:
                return

    def _search_worker(self, meet: _Meet, out: queue.Queue[object], stop: threading.Event) -> None:
        st = self.state  # read here before the consumer changes it (it is not shared after ``pages`` starts)
        density = st.density
        current: IdRange | None = None
        resume_from: int | None = None
        if st.cur_lo is not None and st.cur_hi is not None:
            current = IdRange(st.cur_lo, st.cur_hi)
            resume_from = st.cur_last
        hi = st.floor
        search_done = st.search_done
        while not stop.is_set() and not search_done:
            if current is None:
                with meet.lock:
                    # never below what the listing has fetched; once it has stopped, down to where it stopped.
                    # While it runs, claim only the search's share of what is left between the two (at least a
                    # page): the ranges shrink as the streams close in, so both finish at about the same time
                    floor = meet.list_top + 1
                    want = self.target
                    if not meet.list_stopped:
                        left = (hi - floor) * density
                        want = min(self.target, max(SEARCH_LIMIT, int(left * self.search_share)))
                    current = plan_range(hi, floor, density, want)
                    if current is None:
                        break
                    meet.claimed = min(meet.claimed, current.lo)
            query = current if resume_from is None else IdRange(max(current.lo, resume_from + 1), current.hi)
            after: str | None = None
            while True:
                with self.search_guard.call():
                    page = self.client.search(
                        self.object_type,
                        filter_groups=query.filter_groups(),
                        sorts=ID_ORDER,
                        limit=SEARCH_LIMIT,
                        after=after,
                    )
                if after is None and page.total > self.target and query.width > 1:
                    # denser than planned: only the top part now, the rest is planned again below it
                    narrower = narrow(query, page.total, self.target)
                    self.narrowed += 1
                    with meet.lock:
                        if not meet.list_stopped:  # the lower part is given back to the listing for now
                            meet.claimed = max(meet.claimed, narrower.lo)
                    density = page.total / query.width
                    current = query = narrower
                    resume_from = None
                    continue
                if after is None:
                    self.ranges.append((query, page.total))
                done = page.after is None or not page.results
                _put(out, SplitPage("search", list(page.results), range_=current, range_done=done), stop)
                if done or stop.is_set():
                    break
                after = page.after
            if resume_from is None and query.width and page.total:
                density = page.total / query.width
            hi = current.lo
            current, resume_from = None, None
        _put(out, SplitPage("search", [], done=True), stop)

    def pages(self) -> Iterator[tuple[list[HubSpotObject], SplitState | None]]:
        """(objects, the state to checkpoint after writing them); the last state is None (the step is done)."""
        st = self.state
        meet = _Meet(
            threading.Lock(), list_top=st.list_top, claimed=st.cur_lo if st.cur_lo is not None else st.floor
        )
        if st.list_done:
            meet.list_stopped = True
        out: queue.Queue[object] = queue.Queue(maxsize=self.read_ahead)
        stop = threading.Event()
        workers = [
            threading.Thread(target=_guard(self._list_worker, out), args=(meet, out, stop), daemon=True),
            threading.Thread(target=_guard(self._search_worker, out), args=(meet, out, stop), daemon=True),
        ]
        for t in workers:
            t.start()
        try:
            while not (st.list_done and st.search_done):
                item = _get(out, workers)
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, SplitPage)
                if item.stream == "list":
                    st.list_after = item.list_after
                    st.list_top = item.list_top
                    st.list_done = st.list_done or item.done
                elif item.done:
                    st.search_done = True
                    st.cur_lo = st.cur_hi = st.cur_last = None
                elif item.range_ is not None:
                    if item.range_done:
                        st.floor = min(st.floor, item.range_.lo)
                        st.cur_lo = st.cur_hi = st.cur_last = None
                    else:
                        st.cur_lo, st.cur_hi = item.range_.lo, item.range_.hi
                        if item.objects:
                            st.cur_last = int(item.objects[-1].id)
                finished = st.list_done and st.search_done
                yield item.objects, None if finished else SplitState(**asdict(st))
        finally:
            stop.set()
            for t in workers:
                t.join(timeout=60)


def _get(out: queue.Queue[object], workers: list[threading.Thread]) -> object:
    """The next item; :class:`SplitReaderStalled` when both streams have ended and nothing is left (the consumer
    never waits for a page no thread will send)."""
    while True:
        try:
            return out.get(timeout=0.5)
        except queue.Empty:
            if not any(t.is_alive() for t in workers):
                try:
                    return out.get_nowait()
                except queue.Empty:
                    raise SplitReaderStalled(
                        "both streams of the split read ended before the step was done"
                    ) from None


def _put(out: queue.Queue[object], item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            out.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _guard(
    fn: Callable[[_Meet, queue.Queue[object], threading.Event], None], out: queue.Queue[object]
) -> Callable[[_Meet, queue.Queue[object], threading.Event], None]:
    def run(meet: _Meet, q: queue.Queue[object], stop: threading.Event) -> None:
        try:
            fn(meet, q, stop)
        except BaseException as exc:  # surfaced in the consumer
            _put(out, exc, stop)

    return run


__all__ = [
    "RANGE_TARGET",
    "SEARCH_RESULT_CAP",
    "IdRange",
    "SendWindow",
    "SplitReader",
    "SplitReaderStalled",
    "SplitState",
    "narrow",
    "plan_range",
    "probe",
]
