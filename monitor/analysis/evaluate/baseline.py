"""The keyword baseline: what a feed reader's keyword alert would have flagged on the same stream."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from monitor.analysis.evaluate.scores import ArticleResult, EvalReport, Score, _add_items, _tally
from monitor.analysis.evaluate.stream import StreamRecord
from monitor.analysis.gazetteer import Gazetteer, default_gazetteer
from monitor.analysis.seeds import SeedDocument

# ----- the keyword baseline -------------------------------------------------------------------

# What users type into a feed reader's keyword alert: interference or hacking words, election words,
# and a country name nobody has alerted on yet.
_INTERFERENCE_WORDS = re.compile(
    r"\b(interfer\w*|meddl\w*|influence operation\w*|disinformation|hack\w*|cyber\w*|phishing|breach\w*)\b",
    re.IGNORECASE,
)
_ELECTION_WORDS = re.compile(
    r"\b(election\w*|elector\w*|vote\w*|voting|voters?|ballots?|campaign\w*|polls?|candidates?)\b", re.IGNORECASE
)


def evaluate_keyword_baseline(
    stream: Sequence[StreamRecord],
    *,
    seed_documents: list[SeedDocument] | None = None,
    seed_facts: Iterable[str] = (),
    gazetteer: Gazetteer | None = None,
) -> EvalReport:
    gazetteer = gazetteer or default_gazetteer()
    seen: set[str] = set(seed_facts)
    for document in seed_documents or []:
        seen.update(m.country for m in gazetteer.find(document.text) if m.kind == "name")
    alerts, relevance = Score(), Score()
    kinds = {"countries": Score(), "targets": Score(), "denials": Score()}
    results: list[ArticleResult] = []
    same_story_alerts = 0
    for record in stream:
        text = f"{record.title}\n{record.text}"
        relevant = bool(_INTERFERENCE_WORDS.search(text) and _ELECTION_WORDS.search(text))
        countries = list(dict.fromkeys(m.country for m in gazetteer.find(text) if m.kind == "name"))
        fresh = [c for c in countries if c not in seen] if relevant else []
        seen.update(countries if relevant else [])
        alert = bool(fresh)
        gold = record.gold
        _tally(alerts, alert, bool(gold.get("alert")))
        _tally(relevance, relevant, bool(gold.get("relevant")))
        gold_countries = (gold.get("new") or {}).get("countries") or []
        hit = sum(1 for c in fresh if c in gold_countries)
        _add_items(
            kinds["countries"], hit, len(fresh), sum(1 for c in gold_countries if c in fresh), len(gold_countries)
        )
        for kind in ("targets", "denials"):
            _add_items(kinds[kind], 0, 0, 0, len((gold.get("new") or {}).get(kind) or []))
        if alert and gold.get("same_story_as"):
            same_story_alerts += 1
        results.append(
            ArticleResult(
                id=record.id,
                title=record.title,
                gold_alert=bool(gold.get("alert")),
                alert=alert,
                gold_relevant=bool(gold.get("relevant")),
                relevant=relevant,
                relevance=1.0 if relevant else 0.0,
                same_story_as=None,
                gold_same_story_as=gold.get("same_story_as"),
                reason=f"keywords matched; new country names: {', '.join(fresh)}"
                if alert
                else ("keywords matched, no new country name" if relevant else "keywords not matched"),
                findings=[
                    {
                        "kind": "country",
                        "value": c,
                        "evidence": "",
                        "closest": None,
                        "similarity": None,
                        "reason": "country name not seen before",
                    }
                    for c in fresh
                ],
            )
        )
    return EvalReport("keyword baseline", alerts, relevance, kinds, same_story_alerts, results)
