"""Word weights learned from the development companies, for the groups whose vocabulary is too wide to list by hand.

``tech`` ("the product is technology") is named in a company's description by hundreds of words (platform, app,
cloud, online, data, sensors, drones...), and the hand-written keywords of migrations 0019-0021 reach it by the
product nouns they list: on blind sets, a quarter of the tech companies were missed (tests/eval/README.md). This
module fits, for such a group, a logistic model with non-negative weights on the single words of what the
classifier reads (the description and tags, else the name and domain; crm.industry_text_terms), on the hand-made
labels of the development sets only (``companies.csv`` and the spent set 3; never the blind set), with an L1
penalty so that only words that earn it keep a weight. A word's weight is scaled to the classifier's evidence
(a company is in a group at 1: weight / -bias, times ``SCALE``, a little under the model's own threshold; none
above ``MAX_WEIGHT``: no learned word decides alone) and written by migration 0021 (section H26W) into
``crm.industry_learned_word``. The classifier reads them as a channel of their own (crm.company_industry_groups):
the learned words of a group that a company's text has, summed, add 1 to the group's evidence when they reach 1 and
nothing otherwise, so they never tip the hand-written keywords' partial evidence, and a negative keyword ("veterinary")
still outweighs them.

    python -m bench.learned_weights            # prints the migration's VALUES for the learned words

Pure Python and deterministic (no random start, a fixed number of Adam steps): the migration's rows are what this
prints (tests/test_learned_weights.py).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from bench.search_quality import EVAL, Company, load_companies

# the development sets (the blind set is never read here)
TRAIN_SETS = (EVAL / "companies.csv", EVAL / "companies_holdout3.csv")
GROUPS = ("tech",)
LAMBDA = 0.0003  # L1 penalty per word
STEPS = 400
LEARNING_RATE = 0.05
MIN_COUNT = 2  # a word seen in fewer training companies gets no weight
SCALE = 0.8  # a learned word's share of the evidence a company needs
MIN_WEIGHT = 0.02  # weights below are dropped
MAX_WEIGHT = 0.9  # no learned word decides alone (crm.industry_learned_word: weight < 1)

# Words that say nothing of what a company does, never given a weight however they fall in the training set: function
# words of the languages descriptions come in, verbs of any sentence, and (from the database) place names and
# demonyms: "a marketplace where..." must not make "where" a sign of technology.
_FUNCTION_WORDS = """
    a about across after all also an and any are around as at be been being best both but by can could do does
    each either every for from get gets give gives go has have help helping helps her his how if in into is it its
    just let lets like made make makes many more most much must my new next no not now of off on one only or other
    our out over own per run runs same see so some such than that the their them then there these they this those
    through to too two under up upon us use used uses using very via was way we well were what when where which
    while who whose why will with within without world would you your
    al als am an auf aus bei das dem den der des die ein eine einer fur im ist mit nach oder sich sie und von vor
    zu zum zur au aux avec ce dans de des du en et la le les leur par pour qui sur un une con del el en las los
    para por que su sus un una y da do dos em na no nos o os e het een en van voor met op te bij och av att fra
    med pa til
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())

# The single words the classifier reads of each company: the description (its own name masked) and tags, else the
# name and domain (crm.company_industry_groups' first reading).
_TERMS = """
SELECT CASE WHEN cardinality(d.t) > 0 THEN d.t ELSE
    crm.industry_text_terms(concat_ws(' . ', t.name, translate(crm.norm_domain(t.domain), '.-', '  '))) END
FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (name text, domain text, description text, tags text[]))
    WITH ORDINALITY AS t (name, domain, description, tags, ord)
CROSS JOIN LATERAL (
    SELECT crm.norm_text(left(t.description, 4000)) AS desc_norm, crm.industry_name_pattern(t.name) AS pattern
) AS n
CROSS JOIN LATERAL (
    SELECT crm.industry_text_terms(concat_ws(
        ' . ',
        CASE WHEN n.pattern IS NULL OR n.desc_norm IS NULL THEN n.desc_norm
            ELSE regexp_replace(n.desc_norm, n.pattern, ' . ', 'g') END,
        array_to_string(t.tags, ' . ')
    )) AS t
) AS d
ORDER BY t.ord
"""


def company_words(conn: psycopg.Connection[Any], companies: Sequence[Company]) -> list[frozenset[str]]:
    """The single words (no runs of two or three) the classifier reads of each company, in order."""
    rows = conn.execute(
        _TERMS,
        (
            json.dumps(
                [
                    {"name": c.name, "domain": c.domain, "description": c.description, "tags": list(c.tags)}
                    for c in companies
                ]
            ),
        ),
    ).fetchall()
    return [frozenset(t for t in (r[0] or []) if " " not in t) for r in rows]


def fit(
    examples: Sequence[tuple[frozenset[str], bool]],
    *,
    lam: float = LAMBDA,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    min_count: int = MIN_COUNT,
) -> tuple[float, dict[str, float]]:
    """Logistic regression with non-negative word weights and an L1 penalty (Adam, full batch, from zero): returns
    the bias and the words with a weight above zero."""
    counts = Counter(w for words, _ in examples for w in words)
    vocab = sorted(w for w, n in counts.items() if n >= min_count)
    index = {w: i for i, w in enumerate(vocab)}
    rows = [[index[w] for w in sorted(words) if w in index] for words, _ in examples]
    ys = [1.0 if y else 0.0 for _, y in examples]
    n = len(examples)
    mean = sum(ys) / n
    bias = math.log((mean + 1e-3) / (1 - mean + 1e-3))
    w = [0.0] * len(vocab)
    m_w, v_w = [0.0] * len(vocab), [0.0] * len(vocab)
    m_b = v_b = 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        grad = [0.0] * len(vocab)
        grad_b = 0.0
        for feats, y in zip(rows, ys, strict=True):
            z = bias + sum(w[i] for i in feats)
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            e = (p - y) / n
            grad_b += e
            for i in feats:
                grad[i] += e
        c1, c2 = 1 - b1**step, 1 - b2**step
        for i in range(len(vocab)):
            g = grad[i] + lam
            m_w[i] = b1 * m_w[i] + (1 - b1) * g
            v_w[i] = b2 * v_w[i] + (1 - b2) * g * g
            w[i] = max(0.0, w[i] - learning_rate * (m_w[i] / c1) / (math.sqrt(v_w[i] / c2) + eps))
        m_b = b1 * m_b + (1 - b1) * grad_b
        v_b = b2 * v_b + (1 - b2) * grad_b * grad_b
        bias -= learning_rate * (m_b / c1) / (math.sqrt(v_b / c2) + eps)
    return bias, {vocab[i]: w[i] for i in range(len(vocab)) if w[i] > 1e-4}


def evidence_weights(
    bias: float, weights: dict[str, float], *, scale: float | None = None
) -> dict[str, float]:
    """A fitted model's words as keyword weights: the model says yes at bias + sum >= 0, the classifier at evidence
    >= 1, so a word's weight is its share of -bias (times ``scale``), rounded to 3 places, the small ones dropped."""
    scale = SCALE if scale is None else scale
    if bias >= 0:
        raise ValueError("the group is the majority of the training companies: no threshold to scale to")
    out = {t: min(MAX_WEIGHT, round(scale * v / -bias, 3)) for t, v in weights.items()}
    return {t: v for t, v in sorted(out.items()) if v >= MIN_WEIGHT}


_PLACES = """
SELECT DISTINCT w
FROM (
    SELECT jsonb_object_keys(crm.place_country_names()) UNION ALL SELECT jsonb_object_keys(crm.place_demonyms())
    UNION ALL SELECT jsonb_object_keys(crm.place_regions()) UNION ALL SELECT jsonb_object_keys(crm.place_subdivisions())
    UNION ALL SELECT jsonb_object_keys(crm.place_cities())
) AS p (k)
CROSS JOIN LATERAL unnest(crm.industry_text_terms(p.k)) AS t (w)
WHERE strpos(t.w, ' ') = 0
"""


def content_word(word: str, places: frozenset[str]) -> bool:
    """Whether a word may carry a learned weight: not a function word, a number, a place or a token of one or two
    letters (but "ai")."""
    return (
        (len(word) > 2 or word == "ai")
        and not word.isdigit()
        and word not in FUNCTION_WORDS
        and word not in places
    )


def learn(conn: psycopg.Connection[Any], groups: Sequence[str] = GROUPS) -> dict[str, dict[str, float]]:
    """Per group, the learned word weights from the development sets."""
    companies = [c for path in TRAIN_SETS for c in load_companies(path)]
    places = frozenset(str(r[0]) for r in conn.execute(_PLACES))
    words = [frozenset(w for w in ws if content_word(w, places)) for ws in company_words(conn, companies)]
    out: dict[str, dict[str, float]] = {}
    for group in groups:
        bias, weights = fit([(ws, group in c.groups) for ws, c in zip(words, companies, strict=True)])
        out[group] = evidence_weights(bias, weights)
    return out


def sql_values(learned: dict[str, dict[str, float]]) -> str:
    """The migration's VALUES rows: (group, word, weight), one a line, sorted (as sqlfluff lays them out)."""
    return ",\n".join(
        f"('{g}', '{t}', {v:.3f})" for g in sorted(learned) for t, v in sorted(learned[g].items())
    )


def main() -> None:
    from bench.common import bench_database

    with (
        bench_database("crmindex_learn", settings={"shared_buffers": "128MB"}) as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        learned = learn(conn)
    sys.stdout.write(sql_values(learned) + "\n")
    for g, ws in learned.items():
        print(f"-- {g}: {len(ws)} words", file=sys.stderr)


if __name__ == "__main__":
    main()
