"""Reading the plans of nested statements (those a function runs) from a test: auto_explain, sent to the client."""

from __future__ import annotations

import json
from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]


def explain_nested(db: Conn, match: str = "contact_index", *, analyze: bool = False) -> list[dict[str, Any]]:
    """The plans (auto_explain's JSON) of every statement run from now on in this session, nested ones included,
    whose text holds ``match``; with ``analyze``, actual rows, loops and buffers too. The list fills as they run;
    ``SET auto_explain.log_min_duration = -1`` stops it."""
    plans: list[dict[str, Any]] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        if '"Plan"' in text and match in text:
            plans.append(json.loads(text[text.index("{") :]))

    db.add_notice_handler(keep)
    db.execute("LOAD 'auto_explain'")
    settings = [
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_format", "json"),
        ("auto_explain.log_level", "notice"),
    ]
    if analyze:
        settings += [("auto_explain.log_analyze", "on"), ("auto_explain.log_buffers", "on")]
    for setting, value in settings:
        db.execute("SELECT set_config(%s, %s, false)", (setting, value))
    return plans


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan node and every node under it."""
    return [plan] + [n for c in plan.get("Plans", []) for n in plan_nodes(c)]
