"""Scoring the detector on labelled streams (format: shared/eval/README.md), and a keyword baseline.

Each stream is replayed in order through the real detector, starting from the seed knowledge base and
learning from every article it judges relevant, exactly as the service would. Several streams are
scored independently (each from the seeds afresh) and pooled by summing their counts; `cross_validate`
chooses thresholds on all files but one and scores the one left out with them.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import annotated_types
from pydantic import TypeAdapter, ValidationError

from monitor.analysis.detector import ArticleInput, Detector, seed_knowledge
from monitor.analysis.gazetteer import Gazetteer, default_gazetteer
from monitor.analysis.knowledge import Fact, KnowledgeBase
from monitor.analysis.seeds import SeedDocument
from monitor.analysis.text import fold
from monitor.config import AnalysisSettings


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


def load_streams(paths: Sequence[Path]) -> dict[str, list[StreamRecord]]:
    """Every file read (and checked) up front, keyed by file name, or by path where names clash."""
    if len(set(paths)) < len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise StreamError(f"{twice}: given twice")
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return {name: load_stream(path) for name, path in zip(names, paths, strict=True)}


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
        analysis.teach(kb, source_ref=record.url, published=record.published)
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


# ----- several files ----------------------------------------------------------------------------


def evaluate_files(
    streams: Mapping[str, Sequence[StreamRecord]],
    detector: Detector,
    seed_facts: Sequence[Fact],
    *,
    baseline: bool = False,
    seed_documents: list[SeedDocument] | None = None,
) -> dict[str, EvalReport]:
    """One report per file; each replay starts from the seeds, never from another file's knowledge."""
    return {
        name: evaluate(records, detector, seed_facts, baseline=baseline, seed_documents=seed_documents)
        for name, records in streams.items()
    }


def pool(reports: Sequence[EvalReport], name: str | None = None) -> EvalReport:
    """Counts summed over files, so that P, R and F1 weigh every article alike (not every file)."""
    if not reports:
        raise ValueError("nothing to pool")
    kinds = {kind: sum((r.kinds[kind] for r in reports), Score()) for kind in reports[0].kinds}
    baselines = [r.baseline for r in reports if r.baseline is not None]
    return EvalReport(
        name or f"{reports[0].name}, pooled over {len(reports)} files",
        sum((r.alerts for r in reports), Score()),
        sum((r.relevance for r in reports), Score()),
        kinds,
        sum(r.same_story_alerts for r in reports),
        [a for r in reports for a in r.articles],
        pool(baselines) if len(baselines) == len(reports) else None,
    )


def files_json(reports: Mapping[str, EvalReport]) -> dict[str, Any]:
    return {
        "files": {name: report.to_json() for name, report in reports.items()},
        "pooled": pool(list(reports.values())).summary_json(),
    }


def format_files(reports: Mapping[str, EvalReport]) -> str:
    parts = [f"#### {name}\n{format_report(report)}" for name, report in reports.items()]
    if len(reports) > 1:  # one file's pooled figures are its own: printed once
        parts.append(f"#### pooled over {len(reports)} files\n{format_summary(pool(list(reports.values())))}")
    return "\n\n".join(parts)


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


def detector_with(detector: Detector, settings: AnalysisSettings) -> Detector:
    """The same model, corpus and extractor judging with other settings (the one place variants are built)."""
    return Detector(detector.embedder, detector.corpus, settings, detector.extractor)


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
            variant = detector_with(detector, settings)
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


# ----- leave-one-file-out cross-validation of the thresholds -------------------------------------

# A grid point: (setting name, value) pairs, hashable so that reports can be stored by it.
Point = tuple[tuple[str, float], ...]

DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "relevance_threshold": (0.40, 0.43, 0.47, 0.50, 0.53),
    "target_match_threshold": (0.66, 0.72, 0.78),
}


class GridError(ValueError):
    """A --grid option names no tunable setting or gives a value the setting does not allow."""


def tunable_settings() -> dict[str, Any]:
    """The plain float settings of AnalysisSettings (durations are floats too, but pace the service)."""
    return {
        name: info
        for name, info in AnalysisSettings.model_fields.items()
        if info.annotation is float and all(isinstance(m, annotated_types.BaseMetadata) for m in info.metadata)
    }


def parse_grid(options: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """`NAME=V1,V2` options into a grid; a name given twice gets the values of both."""
    fields = tunable_settings()
    grid: dict[str, tuple[float, ...]] = {}
    for option in options:
        key, _, values = (part.strip() for part in option.partition("="))
        if key not in fields:
            raise GridError(f"--grid {key}: unknown setting (float settings of analysis: {', '.join(fields)})")
        checker = TypeAdapter(Annotated[(float, *fields[key].metadata)])
        parsed: list[float] = []
        for value in filter(None, (v.strip() for v in values.split(","))):
            try:
                parsed.append(checker.validate_python(float(value)))
            except ValidationError as exc:
                raise GridError(f"--grid {key}={value}: {exc.errors()[0]['msg']}") from None
            except ValueError:
                raise GridError(f"--grid {key}={value}: not a number") from None
        if not parsed:
            raise GridError(f"--grid {key}: no values (write {key}=0.4,0.5)")
        grid[key] = tuple(dict.fromkeys(grid.get(key, ()) + tuple(parsed)))
    return grid


def grid_points(grid: Mapping[str, Sequence[float]]) -> list[Point]:
    names = list(grid)
    return [tuple(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def describe(point: Point) -> str:
    return " ".join(f"{name}={value:g}" for name, value in point)


def evaluate_grid(
    streams: Mapping[str, Sequence[StreamRecord]],
    detector: Detector,
    documents: list[SeedDocument],
    points: Sequence[Point],
    *,
    progress: Callable[[int, Point], None] | None = None,
) -> dict[Point, dict[str, EvalReport]]:
    """Every grid point on every file, once: folds choose among these stored reports."""
    table: dict[Point, dict[str, EvalReport]] = {}
    for index, point in enumerate(points):
        if progress is not None:
            progress(index, point)
        variant = detector_with(detector, detector.settings.model_copy(update=dict(point)))
        table[point] = evaluate_files(streams, variant, seed_knowledge(variant, documents))
    return table


def _distance(point: Point, defaults: Mapping[str, float]) -> float:
    return math.dist([value for _, value in point], [defaults[name] for name, _ in point])


def choose_point(alerts: Mapping[Point, Mapping[str, Score]], held_out: str, defaults: Mapping[str, float]) -> Point:
    """The point with the best pooled alert F1 on every file but HELD_OUT; ties go to the point
    nearest DEFAULTS, then to the earlier one."""

    def rank(item: tuple[int, Point]) -> tuple[float, float, int]:
        index, point = item
        trained = sum((score for name, score in alerts[point].items() if name != held_out), Score())
        # Equal counts can give F1s that differ in the last bits; they are a tie.
        return (-round(trained.f1, 9), _distance(point, defaults), index)

    return min(enumerate(alerts), key=rank)[1]


@dataclass(frozen=True)
class Fold:
    held_out: str
    point: Point
    trained: Score  # pooled alerts of the chosen point on the other files
    report: EvalReport  # the held-out file, scored with the chosen point


@dataclass(frozen=True)
class CrossValidation:
    grid: dict[str, tuple[float, ...]]
    folds: list[Fold]

    @property
    def pooled(self) -> EvalReport:
        """The out-of-file figures: every file scored with thresholds it had no say in."""
        return pool([f.report for f in self.folds], f"detector, out-of-file, pooled over {len(self.folds)} files")


def select_folds(table: Mapping[Point, Mapping[str, EvalReport]], defaults: Mapping[str, float]) -> list[Fold]:
    alerts = {point: {name: r.alerts for name, r in reports.items()} for point, reports in table.items()}
    files = list(next(iter(table.values())))
    folds = []
    for held_out in files:
        point = choose_point(alerts, held_out, defaults)
        trained = sum((s for name, s in alerts[point].items() if name != held_out), Score())
        report = replace(table[point][held_out], name="detector, out-of-file")
        folds.append(Fold(held_out, point, trained, report))
    return folds


def cross_validate(
    streams: Mapping[str, Sequence[StreamRecord]],
    detector: Detector,
    documents: list[SeedDocument],
    grid: Mapping[str, Sequence[float]] = DEFAULT_GRID,
    *,
    baseline: bool = False,
    progress: Callable[[int, Point], None] | None = None,
) -> CrossValidation:
    """Leave one file out: thresholds chosen on the others, the file left out scored with them."""
    if len(streams) < 2:
        raise ValueError("cross-validation needs at least 2 stream files")
    table = evaluate_grid(streams, detector, documents, grid_points(grid), progress=progress)
    defaults = {name: float(getattr(detector.settings, name)) for name in grid}
    folds = select_folds(table, defaults)
    if baseline:
        folds = _with_keyword_baselines(folds, streams, detector, documents)
    return CrossValidation({name: tuple(values) for name, values in grid.items()}, folds)


def _with_keyword_baselines(
    folds: Sequence[Fold], streams: Mapping[str, Sequence[StreamRecord]], detector: Detector, documents: list[SeedDocument]
) -> list[Fold]:
    # The keyword rules have no thresholds: every file's baseline is out-of-file already.
    countries = kb_seed_countries(seed_knowledge(detector, documents))
    out = []
    for f in folds:
        rules = evaluate_keyword_baseline(streams[f.held_out], seed_documents=documents, seed_facts=countries)
        out.append(replace(f, report=replace(f.report, baseline=rules)))
    return out


def cross_json(cross: CrossValidation) -> dict[str, Any]:
    return {
        "grid": cross.grid,
        "folds": {
            f.held_out: {
                "chosen": dict(f.point),
                "chosen_on_other_files": {"alerts": f.trained.to_json()},
                "out_of_file": f.report.to_json(),
            }
            for f in cross.folds
        },
        "out_of_file_pooled": cross.pooled.summary_json(),
    }


def format_cross(cross: CrossValidation) -> str:
    grid = ", ".join(f"{name} in ({', '.join(f'{v:g}' for v in values)})" for name, values in cross.grid.items())
    parts = [f"leave-one-file-out over {len(cross.folds)} files; grid: {grid}"]
    for f in cross.folds:
        parts.append(
            f"#### held out: {f.held_out}\n"
            f"chosen on the other files: {describe(f.point)} (their pooled alert F1 {f.trained.f1:.2f})\n"
            f"{format_report(f.report)}"
        )
    parts.append(f"#### OUT-OF-FILE figures (quote these)\n{format_summary(cross.pooled)}")
    return "\n\n".join(parts)


# ----- the report as text -----------------------------------------------------------------------


def _score_line(label: str, score: Score) -> str:
    return f"{label:<22} P {score.precision:.2f}  R {score.recall:.2f}  F1 {score.f1:.2f}  (tp {score.true_positive}, fp {score.false_positive}, fn {score.false_negative})"


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
