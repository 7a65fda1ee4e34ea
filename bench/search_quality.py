"""bench/search_quality: how well the index understands real-world data, on hand-labelled sets (no 500K data).

* Company groups: ``tests/eval/companies.csv`` (real-world-style companies with the groups a person assigns) run
  through ``crm.company_industry_groups``; precision and recall per group on those development rows (``dev``: every
  row; its SHA-1 hold-out third was spent on 2026-12-05), and on the blind company set (``holdout``): the
  highest-numbered ``tests/eval/companies_holdout*.csv`` present (``--company-holdout FILE`` picks another), same
  columns, never used for tuning; its misses are written only with ``--spend-holdout``.
* Copilot questions: ``tests/eval/questions.jsonl`` interpreted by ``crm.interpret_query`` in a seeded org (owners,
  deal stages, an Attio list, a few companies and contacts: :func:`seed_org`); the share interpreted exactly as a
  person expects (subject, filters, text and the words not understood).
* Hold-out questions: the highest-numbered ``tests/eval/questions_holdout*.jsonl`` present (``--holdout FILE``
  picks another, e.g. a spent one), written after the interpreter without looking at it and never used for tuning
  (``tests/eval/README.md``), interpreted and compared the same way; reported separately (``questions_holdout``: the
  file, count, exact, rate and every mismatch with what was expected and what came back).

Both sets were written by hand, independently of the rules (``tests/eval/README.md``). Runs in seconds::

    python -m bench.search_quality [--show-misses] [--holdout FILE] [--company-holdout FILE] [--spend-holdout]

``tests/test_derive.py`` and ``tests/test_interpret.py`` assert the targets (every group >= 0.9 precision and
recall; >= 90% of the questions exact; the issue's six questions exact). The synthetic data of bench/search.py
is a speed fixture only: its labels come from the generator's own word rules.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

EVAL = Path(__file__).resolve().parent.parent / "tests" / "eval"
COMPANIES = EVAL / "companies.csv"
QUESTIONS = EVAL / "questions.jsonl"
# hold-out sets: questions_holdout.jsonl (1, spent and merged), questions_holdout2.jsonl (2, spent and merged), ...
# blind company sets: companies_holdout.csv (1), companies_holdout2.csv (2), ... (companies.csv's SHA-1 third: spent)
SEED_ORG = uuid.UUID("00000000-0000-4000-8000-00000000e7a1")
SEED_TIME_ZONE = "America/New_York"
TARGET = 0.9

# the region a person means by "Europe" (tests/eval/README.md): the EU, the EFTA states, the UK, the microstates,
# the Western Balkans, Ukraine and Moldova
EUROPE = sorted(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
        "CH",
        "GB",
        "AD",
        "MC",
        "SM",
        "VA",
        "AL",
        "BA",
        "ME",
        "MK",
        "RS",
        "XK",
        "UA",
        "MD",
    ]
)
DATE_KEYS = {"close_after", "close_before"}
TIME_KEYS = {
    "updated_since", "created_after", "created_before", "last_contacted_after", "last_contacted_before",
    "last_activity_after", "last_activity_before",
}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Companies
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    name: str
    domain: str | None
    industry: str | None
    description: str | None
    tags: tuple[str, ...]
    groups: frozenset[str]
    note: str


def load_companies(path: Path = COMPANIES) -> list[Company]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            Company(
                name=r["name"],
                domain=r["domain"] or None,
                industry=r["industry"] or None,
                description=r["description"] or None,
                tags=tuple(t.strip() for t in r["tags"].split(";") if t.strip()),
                groups=frozenset(r["groups"].split()),
                note=r["note"],
            )
            for r in csv.DictReader(fh)
        ]


def classify(conn: psycopg.Connection[Any], companies: Sequence[Company]) -> list[frozenset[str]]:
    """The groups the database derives for each company, in order (one query). Uses the description and tags when
    crm.company_industry_groups takes them (migration 0019), else industry, name and domain only (before)."""
    five = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE oid::regprocedure::text ="
        " 'crm.company_industry_groups(text,text,text,text,text[])')"
    ).fetchone()
    args = "t.industry, t.name, t.domain" + (", t.description, t.tags" if five and five[0] else "")
    rows = conn.execute(
        f"SELECT crm.company_industry_groups({args}) FROM ROWS FROM (jsonb_to_recordset(%s::jsonb)"
        " AS (name text, domain text, industry text, description text, tags text[])) WITH ORDINALITY AS t"
        " (name, domain, industry, description, tags, ord) ORDER BY t.ord",
        (
            json.dumps(
                [
                    {
                        "name": c.name,
                        "domain": c.domain,
                        "industry": c.industry,
                        "description": c.description,
                        "tags": list(c.tags),
                    }
                    for c in companies
                ]
            ),
        ),
    ).fetchall()
    return [frozenset(r[0]) for r in rows]


@dataclass
class GroupScore:
    support: int = 0
    predicted: int = 0
    tp: int = 0

    @property
    def precision(self) -> float:
        return self.tp / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 1.0


def group_scores(
    companies: Sequence[Company], got: Sequence[frozenset[str]], groups: Iterable[str]
) -> dict[str, GroupScore]:
    scores = {g: GroupScore() for g in groups}
    for c, g in zip(companies, got, strict=True):
        for name, s in scores.items():
            want, have = name in c.groups, name in g
            s.support += want
            s.predicted += have
            s.tp += want and have
    return scores


def _highest_numbered(eval_dir: Path, stem: str, suffix: str) -> Path | None:
    """The highest-numbered ``<stem><N><suffix>`` in ``eval_dir`` (no number counts as 1: the first set), else None.
    Spent sets are merged into the development file and deleted, so the one left is the blind one."""
    numbered = [
        (int(m.group(1) or 1), p)
        for p in eval_dir.glob(f"{stem}*{suffix}")
        if (m := re.fullmatch(re.escape(stem) + r"(\d*)" + re.escape(suffix), p.name))
    ]
    return max(numbered, key=lambda t: t[0])[1] if numbered else None


def company_holdout_path(eval_dir: Path = EVAL) -> Path | None:
    """The current blind company set: the highest-numbered ``companies_holdout<N>.csv`` in ``eval_dir``."""
    return _highest_numbered(eval_dir, "companies_holdout", ".csv")


def _company_part(
    companies: Sequence[Company], got: Sequence[frozenset[str]], groups: Sequence[str]
) -> dict[str, Any]:
    """Per group precision and recall, the groups below target, exact rows and micro figures of one set."""
    scores = group_scores(companies, got, groups)
    return {
        "rows": len(companies),
        "per_group": {
            g: {
                "support": s.support,
                "predicted": s.predicted,
                "precision": round(s.precision, 3),
                "recall": round(s.recall, 3),
            }
            for g, s in scores.items()
        },
        "exact_rows": sum(g == c.groups for c, g in zip(companies, got, strict=True)),
        **_totals(scores),
    }


def _totals(scores: Mapping[str, GroupScore]) -> dict[str, Any]:
    """The groups below target and the micro figures: over every (company, group) label counted, the share of
    assigned groups that are right, of right ones found."""
    return {
        "groups_below_target": sorted(
            g for g, s in scores.items() if s.precision < TARGET or s.recall < TARGET
        ),
        "micro_precision": round(
            sum(s.tp for s in scores.values()) / max(1, sum(s.predicted for s in scores.values())), 3
        ),
        "micro_recall": round(
            sum(s.tp for s in scores.values()) / max(1, sum(s.support for s in scores.values())), 3
        ),
    }


def agreement_path(holdout: Path) -> Path | None:
    """A second annotator's labels of the blind set, made without seeing the first's: ``agreement/<stem>_b.csv``."""
    path = holdout.parent / "agreement" / f"{holdout.stem}_b.csv"
    return path if path.exists() else None


def _agreed_part(
    companies: Sequence[Company],
    second: Sequence[Company],
    got: Sequence[frozenset[str]],
    groups: Sequence[str],
) -> dict[str, Any]:
    """The set's figures over the (company, group) labels both annotators gave alike only: what the rules get wrong
    where people agree, apart from where they do not (tests/eval/README.md, "Agreement between two people")."""
    by_name = {c.name: c for c in second}
    scores = {g: GroupScore() for g in groups}
    agreed = total = 0
    for c, have in zip(companies, got, strict=True):
        other = by_name.get(c.name)
        if other is None:
            continue
        for name, s in scores.items():
            total += 1
            if (name in c.groups) != (name in other.groups):
                continue
            agreed += 1
            s.support += name in c.groups
            s.predicted += name in have
            s.tp += name in c.groups and name in have
    return {
        "rows": sum(c.name in by_name for c in companies),
        "labels_agreed": agreed,
        "labels_disagreed": total - agreed,
        **_totals(scores),
    }


def _reader_part(
    companies: Sequence[Company], second: Sequence[Company], groups: Sequence[str]
) -> dict[str, Any]:
    """The second annotator's labels scored as the classifier's are, the first's taken as truth: what a person
    reading the same definitions reaches on the set (micro figures and the groups below target)."""
    by_name = {c.name: c.groups for c in second}
    rows = [c for c in companies if c.name in by_name]
    part = _company_part(rows, [by_name[c.name] for c in rows], groups)
    return {
        k: part[k] for k in ("rows", "exact_rows", "micro_precision", "micro_recall", "groups_below_target")
    }


def _company_misses(companies: Sequence[Company], got: Sequence[frozenset[str]]) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "missing": sorted(c.groups - g), "extra": sorted(g - c.groups)}
        for c, g in zip(companies, got, strict=True)
        if c.groups != g
    ]


def company_report(
    conn: psycopg.Connection[Any],
    show_misses: bool = False,
    holdout: Path | None = None,
    spend_holdout: bool = False,
) -> dict[str, Any]:
    """Company groups on the development rows (``dev``: all of companies.csv) and, when ``holdout`` names a file
    (main() passes :func:`company_holdout_path` by default), on that blind set (``holdout``: ``file`` and the same
    figures; its misses only when ``spend_holdout``, else their count as ``misses_withheld``; whoever reads them
    has spent the set). ``show_misses``: the development rows it gets wrong (``dev_misses``)."""
    companies = load_companies()
    got = classify(conn, companies)
    groups = [str(r[0]) for r in conn.execute("SELECT group_name FROM crm.industry_group ORDER BY 1")]
    out: dict[str, Any] = {"companies": len(companies), "groups": len(groups)}
    out["dev"] = _company_part(companies, got, groups)
    if show_misses:
        out["dev_misses"] = _company_misses(companies, got)
    if holdout is None:
        out["holdout"] = {"file": None, "rows": 0}
        return out
    blind = load_companies(holdout)
    blind_got = classify(conn, blind)
    out["holdout"] = {"file": holdout.name, **_company_part(blind, blind_got, groups)}
    second = agreement_path(holdout)
    if second is not None:
        other = load_companies(second)
        out["holdout"]["agreed_labels"] = {"file": f"agreement/{second.name}"} | _agreed_part(
            blind, other, blind_got, groups
        )
        out["holdout"]["second_reader"] = _reader_part(blind, other, groups)
    misses = _company_misses(blind, blind_got)
    if spend_holdout:
        out["holdout"]["misses"] = misses
    else:
        out["holdout"]["misses_withheld"] = len(misses)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Questions
# ----------------------------------------------------------------------------------------------------------------


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _exists(conn: psycopg.Connection[Any], relation: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
    return bool(row and row[0])


def _has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s"
        " AND NOT attisdropped)",
        (table, column),
    ).fetchone()
    return bool(row and row[0])


def seed_org(conn: psycopg.Connection[Any], org: uuid.UUID = SEED_ORG) -> None:
    """The org the questions are asked in (as a superuser or crm_worker): three owners, a deal pipeline with a
    Negotiation stage, an Attio list 'Enterprise pipeline' with its stages, and a few companies and contacts
    (Stan Lee at Acme, Jane Doe at Globex, Priya Patel a nurse; a company in Springfield)."""
    o = str(org)
    conn.execute("INSERT INTO crm.org (org_id, name) VALUES (%s, 'eval') ON CONFLICT DO NOTHING", (o,))
    if _has_column(conn, "crm.org", "time_zone"):
        conn.execute("UPDATE crm.org SET time_zone = %s WHERE org_id = %s", (SEED_TIME_ZONE, o))
    companies = [
        ("co-acme", "Acme Corp", "acme.com", "COMPUTER_SOFTWARE", "Berlin", "DE"),
        ("co-globex", "Globex", "globex.com", "BANKING", "London", "United Kingdom"),
        ("co-initech", "Initech", "initech.com", "COMPUTER_SOFTWARE", "Springfield", "US"),
        ("co-stripe", "Stripe", "stripe.com", "COMPUTER_SOFTWARE", "San Francisco", "US"),
        ("co-mercy", "Mercy Hospital", "mercy.org", "HOSPITAL_HEALTH_CARE", "Chicago", "US"),
    ]
    conn.execute(
        "SELECT crm.upsert_companies(%s, 'hubspot', %s::jsonb)",
        (
            o,
            json.dumps(
                [
                    {"crm_record_id": r, "name": n, "domain": d, "industry": i, "city": c, "country": k}
                    for r, n, d, i, c, k in companies
                ]
            ),
        ),
    )
    contacts = [
        ("p1", "Stan", "Lee", "stan@acme.com", "co-acme", "Acme Corp", "Account Executive"),
        ("p2", "Jane", "Doe", "jane@globex.com", "co-globex", "Globex", "VP Marketing"),
        ("p3", "Priya", "Patel", "priya@mercy.org", "co-mercy", "Mercy Hospital", "Nurse Practitioner"),
        ("p4", "John", "Smith", "john@acme.com", "co-acme", "Acme Corp", "Software Engineer"),
    ]
    conn.execute(
        "SELECT crm.upsert_contacts(%s, 'hubspot', %s::jsonb)",
        (
            o,
            json.dumps(
                [
                    {
                        "crm_record_id": r,
                        "first_name": f,
                        "last_name": la,
                        "email": e,
                        "company_crm_id": ci,
                        "company_name": cn,
                        "job_title": t,
                    }
                    for r, f, la, e, ci, cn, t in contacts
                ]
            ),
        ),
    )
    conn.execute(
        "INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name, last_name, email) VALUES"
        " (%(o)s, 'hubspot', '101', 'Jane', 'Smith', 'jane@ourco.com'),"
        " (%(o)s, 'hubspot', '102', 'Raj', 'Patel', 'raj@ourco.com'),"
        " (%(o)s, 'hubspot', '103', 'Maria', 'Lopez', 'maria@ourco.com') ON CONFLICT DO NOTHING",
        {"o": o},
    )
    stages = [
        ("appointmentscheduled", "Appointment Scheduled", 0, False, False),
        ("qualifiedtobuy", "Qualified To Buy", 1, False, False),
        ("negotiation", "Negotiation", 2, False, False),
        ("contractsent", "Contract Sent", 3, False, False),
        ("closedwon", "Closed Won", 4, True, True),
        ("closedlost", "Closed Lost", 5, True, False),
    ]
    for sid, label, order, closed, won in stages:
        conn.execute(
            "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, pipeline_label,"
            " stage_id, stage_label, display_order, is_closed, is_won)"
            " VALUES (%s, 'hubspot', 'deals', 'default', 'Sales Pipeline', %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (o, sid, label, order, closed, won),
        )
    if _exists(conn, "crm.crm_list"):
        conn.execute(
            "INSERT INTO crm.crm_list (org_id, crm_source, list_id, api_slug, name, parent_object, stage_attribute)"
            " VALUES (%s, 'attio', 'L1', 'enterprise-pipeline', 'Enterprise pipeline', 'companies', 'stage')"
            " ON CONFLICT DO NOTHING",
            (o,),
        )
        for sid, label, order in (
            ("s-pro", "Prospecting", 0),
            ("s-neg", "Negotiation", 1),
            ("s-won", "Won", 2),
        ):
            conn.execute(
                "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, pipeline_label,"
                " stage_id, stage_label, display_order)"
                " VALUES (%s, 'attio', 'list:L1', 'stage', 'Enterprise pipeline', %s, %s, %s) ON CONFLICT DO NOTHING",
                (o, sid, label, order),
            )


def _first_of_month(d: date, add: int = 0) -> date:
    m = d.month - 1 + add
    return date(d.year + m // 12, m % 12 + 1, 1)


def resolve_token(token: str, today: date) -> date | None:
    """'@today-90d', '@month_start', '@2024-01-01' ... -> the date it names (None: not a date token)."""
    t = token[1:]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        return date.fromisoformat(t)
    m = re.fullmatch(r"today(?:([+-])(\d+)([dmy]))?", t)
    if m:
        if not m.group(1):
            return today
        n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
        if m.group(3) == "d":
            return today + timedelta(days=n)
        months = n if m.group(3) == "m" else 12 * n
        first = _first_of_month(today, months)
        last_day = (_first_of_month(first, 1) - timedelta(days=1)).day
        return first.replace(day=min(today.day, last_day))
    q0 = (today.month - 1) // 3 * 3
    named = {
        "month_start": _first_of_month(today),
        "next_month_start": _first_of_month(today, 1),
        "next2_month_start": _first_of_month(today, 2),
        "last_month_start": _first_of_month(today, -1),
        "quarter_start": date(today.year, q0 + 1, 1),
        "next_quarter_start": _first_of_month(date(today.year, q0 + 1, 1), 3),
        # listed in tests/eval/README.md but not defined there; questions_holdout.jsonl uses it as the exclusive end
        # of the quarter (its note): the day after the quarter, the same day as next_quarter_start
        "quarter_end": _first_of_month(date(today.year, q0 + 1, 1), 3),
        "last_quarter_start": _first_of_month(date(today.year, q0 + 1, 1), -3),
        "year_start": date(today.year, 1, 1),
        "next_year_start": date(today.year + 1, 1, 1),
        "week_start": today - timedelta(days=today.weekday()),
        "next_week_start": today - timedelta(days=today.weekday()) + timedelta(days=7),
        "last_week_start": today - timedelta(days=today.weekday()) - timedelta(days=7),
    }
    return named.get(t)


def expected_filters(filters: Mapping[str, Any], tz: ZoneInfo, today: date) -> dict[str, Any]:
    """The expectation with its tokens resolved: dates as 'YYYY-MM-DD', times as aware datetimes (midnight in the
    org's time zone), '@europe' as the country list."""
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if isinstance(value, str) and value.startswith("@"):
            d = resolve_token(value, today)
            if d is None:
                raise ValueError(f"unknown token {value}")
            out[key] = d.isoformat() if key in DATE_KEYS else datetime(d.year, d.month, d.day, tzinfo=tz)
        elif isinstance(value, list) and "@europe" in value:
            out[key] = sorted({*EUROPE, *(v for v in value if v != "@europe")})
        else:
            out[key] = value
    return out


def normal_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """What interpret_query returned, comparable with expected_filters: timestamps parsed, numbers as numbers."""
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if key in TIME_KEYS and isinstance(value, str):
            out[key] = datetime.fromisoformat(value)
        elif isinstance(value, float) and value.is_integer():
            out[key] = int(value)
        else:
            out[key] = value
    return out


@dataclass
class QuestionResult:
    q: str
    exact: bool
    want: dict[str, Any]
    got: dict[str, Any]
    tag: str | None = None
    diff: list[str] = field(default_factory=list)


def interpret_questions(
    conn: psycopg.Connection[Any],
    org: uuid.UUID = SEED_ORG,
    questions: Sequence[dict[str, Any]] | None = None,
) -> list[QuestionResult]:
    """Each question interpreted in ``org`` (seeded), compared with what a person expects."""
    qs = load_questions() if questions is None else questions
    tz_name = SEED_TIME_ZONE if _has_column(conn, "crm.org", "time_zone") else "UTC"
    tz = ZoneInfo(tz_name)
    out = []
    for item in qs:
        row = conn.execute(
            "SELECT crm.interpret_query(%s, %s), (now() AT TIME ZONE %s)::date",
            (str(org), item["q"], tz_name),
        ).fetchone()
        assert row is not None
        got_doc: dict[str, Any] = row[0]
        today: date = row[1]
        want = {
            "subject": item["subject"],
            "filters": expected_filters(item["filters"], tz, today),
            "text": item["text"],
            "not_understood": item["not_understood"],
        }
        got = {
            "subject": got_doc.get("subject", "contacts"),
            "filters": normal_filters(got_doc.get("filters") or {}),
            "text": got_doc.get("text", ""),
            "not_understood": got_doc.get("not_understood", []),
        }
        diff = [k for k in want if want[k] != got[k]]
        out.append(QuestionResult(item["q"], not diff, want, got, item.get("tag"), diff))
    return out


def question_report(conn: psycopg.Connection[Any], show_misses: bool = False) -> dict[str, Any]:
    seed_org(conn)
    results = interpret_questions(conn)
    issue = [r for r in results if r.tag == "issue"]
    out: dict[str, Any] = {
        "questions": len(results),
        "exact": sum(r.exact for r in results),
        "exact_rate": round(sum(r.exact for r in results) / len(results), 3),
        "issue_six_exact": f"{sum(r.exact for r in issue)}/{len(issue)}",
    }
    if show_misses:
        out["misses"] = [
            {
                "q": r.q,
                "diff": r.diff,
                "want": {k: r.want[k] for k in r.diff},
                "got": {k: r.got[k] for k in r.diff},
            }
            for r in results
            if not r.exact
        ]
    return out


def holdout_path(eval_dir: Path = EVAL) -> Path | None:
    """The current hold-out questions: the highest-numbered ``questions_holdout<N>.jsonl`` in ``eval_dir``."""
    return _highest_numbered(eval_dir, "questions_holdout", ".jsonl")


def holdout_report(
    conn: psycopg.Connection[Any], path: Path | None = None, seed: bool = True
) -> dict[str, Any]:
    """The hold-out questions (never used for tuning) compared as :func:`interpret_questions` compares the
    development set; every mismatch is listed (the set is measured, not tuned on). ``path``: the file (default
    :func:`holdout_path`; none: an empty report). ``seed=False`` when :func:`question_report` already seeded the org
    in this database."""
    path = path if path is not None else holdout_path()
    if path is None:
        return {"file": None, "count": 0, "exact": 0, "rate": 0.0, "mismatches": []}
    if seed:
        seed_org(conn)
    results = interpret_questions(conn, questions=load_questions(path))
    exact = sum(r.exact for r in results)
    return {
        "file": path.name,
        "count": len(results),
        "exact": exact,
        "rate": round(exact / len(results), 3) if results else 0.0,
        "mismatches": [
            {"q": r.q, "diff": r.diff, "expected": r.want, "got": r.got} for r in results if not r.exact
        ],
    }


def min_precision_recall(part: Mapping[str, Any]) -> float | None:
    """The lowest precision or recall of any group in one part of the company report (None: no such set)."""
    if "per_group" not in part:
        return None
    return float(min(min(g["precision"], g["recall"]) for g in part["per_group"].values()))


def print_table(figures: Mapping[str, Any]) -> None:
    """Per group: support, precision and recall on the development rows and on the blind company set (when there is
    one); then the questions."""
    cg = figures["company_groups"]
    ho = cg["holdout"].get("per_group")
    print(f"{'group':<22} {'n':>4} {'P':>6} {'R':>6}   {'n_ho':>4} {'P_ho':>6} {'R_ho':>6}")
    for g, s in cg["dev"]["per_group"].items():
        blind = f"   {ho[g]['support']:>4} {ho[g]['precision']:>6.3f} {ho[g]['recall']:>6.3f}" if ho else ""
        print(f"{g:<22} {s['support']:>4} {s['precision']:>6.3f} {s['recall']:>6.3f}{blind}")
    d = cg["dev"]
    print(f"companies ({COMPANIES.name}): micro P {d['micro_precision']:.3f} R {d['micro_recall']:.3f}")
    if ho:
        b = cg["holdout"]
        print(f"blind companies ({b['file']}): micro P {b['micro_precision']:.3f} R {b['micro_recall']:.3f}")
        if "agreed_labels" in b:
            a = b["agreed_labels"]
            print(
                f"  on the labels both annotators gave alike ({a['labels_disagreed']} of "
                f"{a['labels_agreed'] + a['labels_disagreed']} differ): micro P {a['micro_precision']:.3f} "
                f"R {a['micro_recall']:.3f}, {len(a['groups_below_target'])} groups below target"
            )
        if "second_reader" in b:
            r = b["second_reader"]
            print(
                f"  a second reader's labels against the first: micro P {r['micro_precision']:.3f} "
                f"R {r['micro_recall']:.3f}, {len(r['groups_below_target'])} groups below target"
            )
    q = figures["questions"]
    print(
        f"questions: {q['exact']}/{q['questions']} exact ({q['exact_rate']:.1%}); the issue's: {q['issue_six_exact']}"
    )
    h = figures.get("questions_holdout")
    if h is not None:
        print(f"hold-out questions ({h['file']}): {h['exact']}/{h['count']} exact ({h['rate']:.1%})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench.common import LoadWatch, add_load_args, bench_database, write_results

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--show-misses", action="store_true", help="list the tuning rows and questions it gets wrong"
    )
    ap.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    ap.add_argument(
        "--holdout",
        type=Path,
        default=None,
        metavar="FILE",
        help="the hold-out questions to measure (default: the current blind set, holdout_path())",
    )
    ap.add_argument(
        "--company-holdout",
        type=Path,
        default=None,
        metavar="FILE",
        help="the blind companies to measure, columns of companies.csv (default: company_holdout_path())",
    )
    ap.add_argument(
        "--spend-holdout",
        action="store_true",
        help="also write the hold-out mismatches, questions and companies (whoever reads them has spent the set: merge "
        "it and write another)",
    )
    add_load_args(ap)
    args = ap.parse_args(argv)
    # precision, recall and exact rates do not depend on the machine's load (no timings here): recorded, never refused
    load = LoadWatch.begin(args, check=False)
    load.allow_busy = True
    with (
        bench_database("crmindex_bench_quality", settings={"shared_buffers": "128MB"}) as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        figures = {
            "company_groups": company_report(
                conn,
                args.show_misses,
                args.company_holdout if args.company_holdout is not None else company_holdout_path(),
                args.spend_holdout,
            ),
            "questions": question_report(conn, args.show_misses),
        }
        # question_report seeded the org
        figures["questions_holdout"] = holdout_report(conn, args.holdout, seed=False)
    # whoever reads a hold-out miss has spent the set: the committed figures keep the rate only, unless asked
    if not args.spend_holdout:
        misses = figures["questions_holdout"].pop("mismatches", [])
        figures["questions_holdout"]["mismatches_withheld"] = len(misses)
    summary = {
        # companies.csv (development rows) and the blind company set (company_groups.holdout.file; None: none)
        "min_precision_recall_dev": min_precision_recall(figures["company_groups"]["dev"]),
        "min_precision_recall_holdout": min_precision_recall(figures["company_groups"]["holdout"]),
        "groups_below_target_dev": figures["company_groups"]["dev"]["groups_below_target"],
        "groups_below_target_holdout": figures["company_groups"]["holdout"].get("groups_below_target"),
        "company_holdout_file": figures["company_groups"]["holdout"]["file"],
        "question_exact_rate": figures["questions"]["exact_rate"],
        "issue_six": figures["questions"]["issue_six_exact"],
        "holdout_question_exact": f"{figures['questions_holdout']['exact']}/{figures['questions_holdout']['count']}",
        "holdout_question_exact_rate": figures["questions_holdout"]["rate"],
    }
    print_table(figures)
    print(json.dumps(figures if args.show_misses else summary, indent=2, default=str))
    if not args.no_write:
        print(f"written {write_results('search_quality', figures, load)}")
    return figures


if __name__ == "__main__":
    main()
