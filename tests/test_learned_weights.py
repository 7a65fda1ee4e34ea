"""Learned words of an industry group (bench/learned_weights.py, migration 0021 H26W): the learner, the rows the
migration holds, and how crm.company_industry_groups reads them (a channel of their own: 1 when a group's words in
the text reach 1 together, nothing otherwise)."""

from __future__ import annotations

import psycopg
import pytest

from bench.learned_weights import (
    MAX_WEIGHT,
    SCALE,
    content_word,
    evidence_weights,
    fit,
    learn,
    sql_values,
)

Conn = psycopg.Connection[tuple[object, ...]]


def test_fit_weighs_the_words_that_tell_the_group_apart() -> None:
    # 'cloud' is in every positive and no negative; 'bakery' only in negatives; 'team' in both alike
    pos = [frozenset({"cloud", "team", f"p{i % 3}"}) for i in range(30)]
    neg = [frozenset({"bakery", "team", f"n{i % 3}"}) for i in range(60)] + [frozenset({"team"})] * 30
    bias, weights = fit([(w, True) for w in pos] + [(w, False) for w in neg])
    assert bias < 0
    assert weights["cloud"] > 1.0
    assert "bakery" not in weights  # non-negative: evidence against is the hand-written keywords' job
    assert weights.get("team", 0.0) < 0.1 * weights["cloud"]
    # scaled to the classifier's evidence (1 puts a company in the group): a share of -bias, capped below 1
    scaled = evidence_weights(bias, weights)
    assert scaled["cloud"] == min(MAX_WEIGHT, round(SCALE * weights["cloud"] / -bias, 3)) > 0.5
    assert evidence_weights(-1.0, {"x": 5.0, "y": 0.01}) == {"x": MAX_WEIGHT}  # capped; the smallest dropped
    with pytest.raises(ValueError, match="majority"):
        evidence_weights(0.5, weights)


def test_content_words_only() -> None:
    places = frozenset({"berlin", "france"})
    assert content_word("platform", places) and content_word("ai", places)
    for word in ("where", "und", "berlin", "france", "24", "ab"):
        assert not content_word(word, places), word


def test_sql_values_are_the_migration_rows() -> None:
    learned = {"tech": {"cloud": 0.9, "app": 0.25}, "ai": {"model": 0.5}}
    assert sql_values(learned) == "('ai', 'model', 0.500),\n('tech', 'app', 0.250),\n('tech', 'cloud', 0.900)"


def test_the_migration_holds_what_the_learner_prints(db: Conn) -> None:
    """The rows of crm.industry_learned_word are bench/learned_weights.py's output on the committed development sets
    (to the third decimal the migration stores): rerun it after the sets or the learner change."""
    rows = db.execute("SELECT group_name, word, weight FROM crm.industry_learned_word").fetchall()
    stored: dict[str, dict[str, float]] = {}
    for g, w, v in rows:
        stored.setdefault(str(g), {})[str(w)] = float(v)  # type: ignore[arg-type]
    learned = learn(db)
    assert set(stored) == set(learned) == {"tech"}
    for g, words in learned.items():
        # words at the edge of MIN_WEIGHT may fall either side by a rounding; every other word is there
        assert {w for w, v in words.items() if v >= 0.025} <= set(stored[g])
        assert {w for w, v in stored[g].items() if v >= 0.025} <= set(words)
        for w in set(words) & set(stored[g]):
            assert abs(words[w] - stored[g][w]) <= 0.002, (g, w)
    assert len(stored["tech"]) >= 100 and all(0 < v < 1 for v in stored["tech"].values())


def _groups(db: Conn, name: str, description: str) -> set[str]:
    row = db.execute("SELECT crm.company_industry_groups(NULL, %s, NULL, %s)", (name, description)).fetchone()
    assert row is not None
    return set(row[0])  # type: ignore[call-overload]


def test_learned_words_count_when_they_reach_one_together(db: Conn) -> None:
    db.execute("DELETE FROM crm.industry_learned_word")
    db.execute(
        "INSERT INTO crm.industry_learned_word (group_name, word, weight) VALUES"
        " ('tech', 'zorblax', 0.6), ('tech', 'quuxify', 0.5), ('healthcare', 'zorblax', 0.6), ('healthcare', 'quuxify', 0.5)"
    )
    assert "tech" not in _groups(db, "Acme", "Acme sells zorblax kits.")  # 0.6: nothing
    assert {"tech", "healthcare"} <= _groups(
        db, "Acme", "Acme sells zorblax kits that quuxify."
    )  # 1.1: the group
    # below 1 they do not tip the keywords' partial evidence: 'platform' alone is no tech company either
    base = _groups(db, "Acme", "Acme runs a platform.")
    assert _groups(db, "Acme", "Acme runs a zorblax platform.") == base
    # a negative keyword still outweighs them (veterinary care is not healthcare)
    assert "healthcare" not in _groups(db, "Acme", "Veterinary zorblax kits that quuxify.")
    # and the groups follow a change of the learned words (the taxonomy's fingerprint)
    before = db.execute("SELECT crm.industry_taxonomy_fingerprint()").fetchone()
    db.execute("DELETE FROM crm.industry_learned_word WHERE word = 'quuxify'")
    assert db.execute("SELECT crm.industry_taxonomy_fingerprint()").fetchone() != before
    assert "tech" not in _groups(db, "Acme", "Acme sells zorblax kits that quuxify.")


def test_learned_weights_are_checked(db: Conn) -> None:
    for word, weight in (("zorblax", 1.0), ("zorblax", 0.0), ("two words", 0.5)):
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(
                "INSERT INTO crm.industry_learned_word (group_name, word, weight) VALUES ('tech', %s, %s)",
                (word, weight),
            )
