"""Scoring the detector on a labelled stream (format: shared/eval/README.md), and a keyword baseline.

The stream is replayed in order through the real detector, starting from the seed knowledge base and
learning from every article it judges relevant, exactly as the service would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.analysis.detector import ArticleInput, Detector, seed_knowledge
from monitor.analysis.gazetteer import Gazetteer, default_gazetteer
from monitor.analysis.knowledge import Fact, KnowledgeBase
from monitor.analysis.seeds import SeedDocument
from monitor.analysis.text import fold


class StreamError(Exception):
    """The stream file cannot be scored; the message names the line and the problem."""


@dataclass(frozen=True)
class StreamRecord:
    id: str
    title: str
    text: str
    url: str
    published: datetime | None
    outlet: str
    gold: dict[str, Any]

    def article(self) -> ArticleInput:
        return ArticleInput(title=self.title, text=self.text, url=self.url, published=self.published)


def load_stream(path: Path) -> list[StreamRecord]:
    records: list[StreamRecord] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            published = raw.get("published")
            records.append(
                StreamRecord(
                    id=str(raw["id"]),
                    title=raw.get("title") or "",
                    text=raw.get("text") or "",
                    url=raw.get("url") or str(raw["id"]),
                    published=datetime.fromisoformat(published) if published else None,
                    outlet=raw.get("outlet") or "",
                    gold=raw.get("gold") or {},
                )
            )
        except (json.JSONDecodeError, KeyError, ValueError, AttributeError) as exc:
            raise StreamError(f"{path}:{number}: not a stream record ({exc})") from None
    return records


@dataclass
class Score:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        due = self.true_positive + self.false_negative
        return self.true_positive / due if due else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.true_positive,
            "fp": self.false_positive,
            "fn": self.false_negative,
        }


@dataclass
class ArticleResult:
    id: str
    title: str
    gold_alert: bool
    alert: bool
    gold_relevant: bool
    relevant: bool
    relevance: float
    same_story_as: str | None
    gold_same_story_as: str | None
    reason: str
    findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EvalReport:
    name: str
    alerts: Score
    relevance: Score
    kinds: dict[str, Score]
    same_story_alerts: int
    articles: list[ArticleResult]
    baseline: EvalReport | None = None

    @property
    def misses(self) -> list[ArticleResult]:
        return [a for a in self.articles if a.gold_alert and not a.alert]

    @property
    def false_alarms(self) -> list[ArticleResult]:
        return [a for a in self.articles if a.alert and not a.gold_alert]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "alerts": self.alerts.to_json(),
            "relevance": self.relevance.to_json(),
            "new_items": {kind: score.to_json() for kind, score in self.kinds.items()},
            "same_story_alerts": self.same_story_alerts,
            "misses": [_brief(a) for a in self.misses],
            "false_alarms": [_brief(a) for a in self.false_alarms],
            "articles": [asdict(a) for a in self.articles],
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_json()
        return out


def _brief(result: ArticleResult) -> dict[str, Any]:
    return {"id": result.id, "title": result.title, "reason": result.reason, "findings": result.findings}


# ----- matching predicted new items with the gold ones ----------------------------------------


def _same_name(predicted: str, gold: str) -> bool:
    a, b = fold(predicted), fold(gold)
    return a == b or (bool(a) and bool(b) and (set(a.split()) <= set(b.split()) or set(b.split()) <= set(a.split())))


def _match_targets(predicted: list[str], gold: list[str], similar: Callable[[str, str], float]) -> tuple[int, int]:
    """(predicted items that name a gold target, gold targets named); wording may differ."""

    def same(p: str, g: str) -> bool:
        words_p, words_g = set(fold(p).split()), set(fold(g).split())
        overlap = len(words_p & words_g) / max(1, min(len(words_p), len(words_g)))
        return overlap >= 0.5 or similar(p, g) >= 0.6

    hit_predicted = sum(1 for p in predicted if any(same(p, g) for g in gold))
    hit_gold = sum(1 for g in gold if any(same(p, g) for p in predicted))
    return hit_predicted, hit_gold


def _add_items(score: Score, hit_predicted: int, predicted: int, hit_gold: int, gold: int) -> None:
    score.true_positive += hit_gold
    score.false_negative += gold - hit_gold
    score.false_positive += predicted - hit_predicted


def _tally(score: Score, predicted: bool, gold: bool) -> None:
    if predicted and gold:
        score.true_positive += 1
    elif predicted:
        score.false_positive += 1
    elif gold:
        score.false_negative += 1


# ----- the detector on the stream ---------------------------------------------------------------


def evaluate(
    stream: Sequence[StreamRecord],
    detector: Detector,
    seed_facts: Iterable[Fact],
    *,
    baseline: bool = False,
    seed_documents: list[SeedDocument] | None = None,
) -> EvalReport:
    kb = KnowledgeBase(seed_facts)
    ref_to_id = {r.url: r.id for r in stream}
    alerts, relevance = Score(), Score()
    kinds = {"countries": Score(), "targets": Score(), "denials": Score()}
    results: list[ArticleResult] = []
    same_story_alerts = 0

    def similar(a: str, b: str) -> float:
        vectors = detector.embedder.embed([a, b])
        return float(vectors[0] @ vectors[1])

    for record in stream:
        analysis = detector.analyze(record.article(), kb)
        kb.learn(analysis, source_ref=record.url, published=record.published)
        gold = record.gold
        gold_new = gold.get("new") or {}
        alert = analysis.alert
        _tally(alerts, alert, bool(gold.get("alert")))
        _tally(relevance, analysis.relevant, bool(gold.get("relevant")))
        if alert and gold.get("same_story_as"):
            same_story_alerts += 1
        by_kind = {k: [f.value for f in analysis.findings if f.kind == k] for k in ("country", "target", "denial")}
        for kind, gold_items in (("country", gold_new.get("countries") or []), ("denial", gold_new.get("denials") or [])):
            predicted = list(dict.fromkeys(by_kind[kind]))
            hit_p = sum(1 for p in predicted if any(_same_name(p, g) for g in gold_items))
            hit_g = sum(1 for g in gold_items if any(_same_name(p, g) for p in predicted))
            _add_items(kinds["countries" if kind == "country" else "denials"], hit_p, len(predicted), hit_g, len(gold_items))
        gold_targets = gold_new.get("targets") or []
        hit_p, hit_g = _match_targets(by_kind["target"], gold_targets, similar)
        _add_items(kinds["targets"], hit_p, len(by_kind["target"]), hit_g, len(gold_targets))
        results.append(
            ArticleResult(
                id=record.id,
                title=record.title,
                gold_alert=bool(gold.get("alert")),
                alert=alert,
                gold_relevant=bool(gold.get("relevant")),
                relevant=analysis.relevant,
                relevance=round(analysis.relevance, 4),
                same_story_as=ref_to_id.get(analysis.same_story_as or "", analysis.same_story_as),
                gold_same_story_as=gold.get("same_story_as"),
                reason=analysis.reason,
                findings=[
                    {
                        "kind": f.kind,
                        "value": f.value,
                        "evidence": f.evidence,
                        "closest": f.closest.value if f.closest else None,
                        "similarity": f.similarity,
                        "reason": f.reason,
                    }
                    for f in analysis.findings
                ],
            )
        )
    report = EvalReport("detector", alerts, relevance, kinds, same_story_alerts, results)
    if baseline:
        report.baseline = evaluate_keyword_baseline(stream, seed_documents=seed_documents, seed_facts=kb_seed_countries(seed_facts))
    return report


def kb_seed_countries(seed_facts: Iterable[Fact]) -> list[str]:
    return [f.value for f in seed_facts if f.kind == "country"]


# ----- the keyword baseline -------------------------------------------------------------------

# What users type into a feed reader's keyword alert: interference or hacking words, election words,
# and a country name nobody has alerted on yet.
_INTERFERENCE_WORDS = re.compile(r"\b(interfer\w*|meddl\w*|influence operation\w*|disinformation|hack\w*|cyber\w*|phishing|breach\w*)\b", re.IGNORECASE)
_ELECTION_WORDS = re.compile(r"\b(election\w*|elector\w*|vote\w*|voting|voters?|ballots?|campaign\w*|polls?|candidates?)\b", re.IGNORECASE)


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
        _add_items(kinds["countries"], hit, len(fresh), sum(1 for c in gold_countries if c in fresh), len(gold_countries))
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
                reason=f"keywords matched; new country names: {', '.join(fresh)}" if alert else ("keywords matched, no new country name" if relevant else "keywords not matched"),
                findings=[{"kind": "country", "value": c, "evidence": "", "closest": None, "similarity": None, "reason": "country name not seen before"} for c in fresh],
            )
        )
    return EvalReport("keyword baseline", alerts, relevance, kinds, same_story_alerts, results)


# ----- threshold sweep ------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRow:
    relevance_threshold: float
    target_match_threshold: float
    alert_precision: float
    alert_recall: float
    alert_f1: float
    relevance_precision: float
    relevance_recall: float
    same_story_alerts: int


def sweep(
    stream: Sequence[StreamRecord],
    detector: Detector,
    documents: list[SeedDocument],
    *,
    relevance_thresholds: Sequence[float] = (0.40, 0.45, 0.50, 0.55, 0.60),
    target_match_thresholds: Sequence[float] = (0.60, 0.66, 0.72, 0.78, 0.84),
) -> list[SweepRow]:
    """Alert and relevance precision/recall as the two main thresholds move (the others held)."""
    rows: list[SweepRow] = []
    for target_threshold in target_match_thresholds:
        for relevance_threshold in relevance_thresholds:
            settings = detector.settings.model_copy(
                update={"relevance_threshold": relevance_threshold, "target_match_threshold": target_threshold}
            )
            variant = Detector(detector.embedder, detector.corpus, settings, detector.extractor)
            report = evaluate(stream, variant, seed_knowledge(variant, documents))
            rows.append(
                SweepRow(
                    relevance_threshold,
                    target_threshold,
                    round(report.alerts.precision, 4),
                    round(report.alerts.recall, 4),
                    round(report.alerts.f1, 4),
                    round(report.relevance.precision, 4),
                    round(report.relevance.recall, 4),
                    report.same_story_alerts,
                )
            )
    return rows


def format_sweep(rows: Sequence[SweepRow]) -> str:
    lines = ["relevance  target  |  alert P   R     F1   | relevance P   R   | same-story alerts"]
    for row in rows:
        lines.append(
            f"  {row.relevance_threshold:.2f}     {row.target_match_threshold:.2f}  |  {row.alert_precision:.2f}  {row.alert_recall:.2f}  {row.alert_f1:.2f} |"
            f"   {row.relevance_precision:.2f}  {row.relevance_recall:.2f}   | {row.same_story_alerts}"
        )
    return "\n".join(lines)


# ----- the report as text -----------------------------------------------------------------------


def _score_line(label: str, score: Score) -> str:
    return f"{label:<22} P {score.precision:.2f}  R {score.recall:.2f}  F1 {score.f1:.2f}  (tp {score.true_positive}, fp {score.false_positive}, fn {score.false_negative})"


def format_report(report: EvalReport) -> str:
    lines = [f"== {report.name}: {len(report.articles)} articles"]
    lines.append(_score_line("alerts", report.alerts))
    lines.append(_score_line("relevance", report.relevance))
    for kind, score in report.kinds.items():
        lines.append(_score_line(f"new {kind}", score))
    lines.append(f"alerts on same-story articles: {report.same_story_alerts}")
    if report.misses:
        lines.append("-- missed alerts")
        for a in report.misses:
            lines.append(f"  {a.id} {a.title}\n      why: {a.reason}")
    if report.false_alarms:
        lines.append("-- false alarms")
        for a in report.false_alarms:
            lines.append(f"  {a.id} {a.title}\n      why: {a.reason}")
            for f in a.findings:
                lines.append(f"      new {f['kind']}: {f['value']} - {f['reason']}")
    if report.baseline is not None:
        lines.append("")
        lines.append(format_report(report.baseline))
        lines.append(f"detector alert F1 {report.alerts.f1:.2f} vs keyword baseline {report.baseline.alerts.f1:.2f}")
    return "\n".join(lines)
