"""Scores and reports: precision and recall counts, one article's result, a stream's report, the
matching of predicted new items with the gold ones, and the report as text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.analysis.text import fold


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

    def __add__(self, other: Score) -> Score:
        return Score(
            self.true_positive + other.true_positive,
            self.false_positive + other.false_positive,
            self.false_negative + other.false_negative,
        )

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

    def summary_json(self) -> dict[str, Any]:
        """The figures without the per-article detail (for pooled reports)."""
        out: dict[str, Any] = {
            "name": self.name,
            "article_count": len(self.articles),
            "alerts": self.alerts.to_json(),
            "relevance": self.relevance.to_json(),
            "new_items": {kind: score.to_json() for kind, score in self.kinds.items()},
            "same_story_alerts": self.same_story_alerts,
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.summary_json()
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


# ----- the report as text -----------------------------------------------------------------------


def _score_line(label: str, score: Score) -> str:
    counts = f"tp {score.true_positive}, fp {score.false_positive}, fn {score.false_negative}"
    return f"{label:<22} P {score.precision:.2f}  R {score.recall:.2f}  F1 {score.f1:.2f}  ({counts})"


def _summary_lines(report: EvalReport) -> list[str]:
    lines = [f"== {report.name}: {len(report.articles)} articles"]
    lines.append(_score_line("alerts", report.alerts))
    lines.append(_score_line("relevance", report.relevance))
    for kind, score in report.kinds.items():
        lines.append(_score_line(f"new {kind}", score))
    lines.append(f"alerts on same-story articles: {report.same_story_alerts}")
    return lines


def _versus_baseline(report: EvalReport, baseline: EvalReport) -> str:
    return f"detector alert F1 {report.alerts.f1:.2f} vs keyword baseline {baseline.alerts.f1:.2f}"


def format_summary(report: EvalReport) -> str:
    """The figures alone: pooled reports would otherwise list every file's misses a second time."""
    lines = _summary_lines(report)
    if report.baseline is not None:
        lines += ["", *_summary_lines(report.baseline), _versus_baseline(report, report.baseline)]
    return "\n".join(lines)


def format_report(report: EvalReport) -> str:
    lines = _summary_lines(report)
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
        lines.append(_versus_baseline(report, report.baseline))
    return "\n".join(lines)
