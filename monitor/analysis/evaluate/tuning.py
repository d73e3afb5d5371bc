"""Tuning the thresholds: a sweep of the two main ones, and leave-one-file-out cross-validation."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

import annotated_types
from pydantic import TypeAdapter, ValidationError

from monitor.analysis.detector import Detector, seed_knowledge
from monitor.analysis.evaluate.baseline import evaluate_keyword_baseline
from monitor.analysis.evaluate.replay import evaluate, evaluate_files, kb_seed_countries, pool
from monitor.analysis.evaluate.scores import EvalReport, Score, format_report, format_summary
from monitor.analysis.evaluate.stream import StreamRecord
from monitor.analysis.seeds import SeedDocument
from monitor.config import AnalysisSettings

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
            f"  {row.relevance_threshold:.2f}     {row.target_match_threshold:.2f}  |  "
            f"{row.alert_precision:.2f}  {row.alert_recall:.2f}  {row.alert_f1:.2f} |"
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
    folds: Sequence[Fold],
    streams: Mapping[str, Sequence[StreamRecord]],
    detector: Detector,
    documents: list[SeedDocument],
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
