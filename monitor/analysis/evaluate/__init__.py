"""Scoring the detector on labelled streams (format: shared/eval/README.md), and a keyword baseline.

Each stream is replayed in order through the real detector, starting from the seed knowledge base and
learning from every article it judges relevant, exactly as the service would. Several streams are
scored independently (each from the seeds afresh) and pooled by summing their counts; `cross_validate`
chooses thresholds on all files but one and scores the one left out with them.
"""

from monitor.analysis.evaluate.baseline import evaluate_keyword_baseline
from monitor.analysis.evaluate.replay import evaluate, evaluate_files, files_json, format_files, kb_seed_countries, pool
from monitor.analysis.evaluate.scores import ArticleResult, EvalReport, Score, format_report, format_summary
from monitor.analysis.evaluate.stream import StreamError, StreamRecord, load_stream, load_streams
from monitor.analysis.evaluate.tuning import (
    DEFAULT_GRID,
    CrossValidation,
    Fold,
    GridError,
    Point,
    SweepRow,
    choose_point,
    cross_json,
    cross_validate,
    describe,
    detector_with,
    evaluate_grid,
    format_cross,
    format_sweep,
    grid_points,
    parse_grid,
    select_folds,
    sweep,
    tunable_settings,
)

__all__ = [
    "DEFAULT_GRID",
    "ArticleResult",
    "CrossValidation",
    "EvalReport",
    "Fold",
    "GridError",
    "Point",
    "Score",
    "StreamError",
    "StreamRecord",
    "SweepRow",
    "choose_point",
    "cross_json",
    "cross_validate",
    "describe",
    "detector_with",
    "evaluate",
    "evaluate_files",
    "evaluate_grid",
    "evaluate_keyword_baseline",
    "files_json",
    "format_cross",
    "format_files",
    "format_report",
    "format_summary",
    "format_sweep",
    "grid_points",
    "kb_seed_countries",
    "load_stream",
    "load_streams",
    "parse_grid",
    "pool",
    "select_folds",
    "sweep",
    "tunable_settings",
]
