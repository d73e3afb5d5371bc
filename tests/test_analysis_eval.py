"""The detector replayed over the labelled development stream, and the keyword baseline beside it."""

from __future__ import annotations

import json
from functools import lru_cache

import pytest

from monitor.analysis.evaluate import (
    EvalReport,
    format_report,
    format_sweep,
    load_stream,
    sweep,
)
from tests.analysis_fixtures import detector, eval_file, seed_documents, seed_facts

pytestmark = pytest.mark.slow


@lru_cache(maxsize=1)
def _report() -> EvalReport:
    stream = load_stream(eval_file("dev_stream.jsonl"))
    from monitor.analysis.evaluate import evaluate

    return evaluate(stream, detector(), seed_facts(), baseline=True, seed_documents=list(seed_documents()))


def test_no_alert_on_same_story_articles() -> None:
    assert _report().same_story_alerts == 0


def test_relevance_meets_the_bar() -> None:
    assert _report().relevance.f1 >= 0.90


def test_detector_is_far_above_the_keyword_baseline() -> None:
    report = _report()
    assert report.baseline is not None
    assert report.alerts.f1 >= report.baseline.alerts.f1 + 0.15


def test_alert_quality_floor() -> None:
    # A floor against regressions, at what the detector reaches on the dev stream.
    report = _report()
    assert report.alerts.f1 >= 0.90 and report.alerts.precision >= 0.90


def test_report_explains_every_miss_and_false_alarm() -> None:
    report = _report()
    text = format_report(report)
    for article in [*report.misses, *report.false_alarms]:
        assert article.title in text and article.reason
    data = report.to_json()
    json.dumps(data)
    assert {"alerts", "relevance", "new_items", "same_story_alerts", "misses", "false_alarms", "baseline"} <= set(data)
    assert set(data["new_items"]) == {"countries", "targets", "denials"}


def test_sweep_moves_precision_and_recall() -> None:
    stream = load_stream(eval_file("dev_stream.jsonl"))[:20]
    rows = sweep(stream, detector(), list(seed_documents()), relevance_thresholds=(0.40, 0.60), target_match_thresholds=(0.72,))
    assert len(rows) == 2
    assert rows[0].relevance_recall >= rows[1].relevance_recall
    assert "relevance" in format_sweep(rows)
