"""The detector replayed over the labelled development streams, the keyword baseline beside it,
pooled figures over several files and leave-one-file-out cross-validation of the thresholds."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor.analysis.detector import seed_knowledge
from monitor.analysis.evaluate import (
    ArticleResult,
    EvalReport,
    GridError,
    Point,
    Score,
    choose_point,
    detector_with,
    evaluate,
    evaluate_files,
    files_json,
    format_report,
    format_sweep,
    load_stream,
    parse_grid,
    pool,
    select_folds,
    sweep,
)
from monitor.cli import main
from tests.analysis_fixtures import detector, eval_file, seed_documents, seed_facts

REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def _report() -> EvalReport:
    stream = load_stream(eval_file("dev_stream.jsonl"))
    return evaluate(stream, detector(), seed_facts(), baseline=True, seed_documents=list(seed_documents()))


@pytest.mark.slow
def test_no_alert_on_same_story_articles() -> None:
    assert _report().same_story_alerts == 0


@pytest.mark.slow
def test_relevance_meets_the_bar() -> None:
    assert _report().relevance.f1 >= 0.90


@pytest.mark.slow
def test_detector_is_far_above_the_keyword_baseline() -> None:
    report = _report()
    assert report.baseline is not None
    assert report.alerts.f1 >= report.baseline.alerts.f1 + 0.15


@pytest.mark.slow
def test_alert_quality_floor() -> None:
    # A floor against regressions, a little under what the parse-based detector reaches on the dev
    # stream (F1 0.72, P 0.74). The rule-based extractor it replaced reached 0.97 here because its
    # cue lists were written for these 54 articles, and 0.74 out of file; the figures to quote are
    # the out-of-file ones of `monitor eval --cross` over the five streams (README).
    report = _report()
    assert report.alerts.f1 >= 0.68 and report.alerts.precision >= 0.70


@pytest.mark.slow
def test_report_explains_every_miss_and_false_alarm() -> None:
    report = _report()
    text = format_report(report)
    for article in [*report.misses, *report.false_alarms]:
        assert article.title in text and article.reason
    data = report.to_json()
    json.dumps(data)
    assert {"alerts", "relevance", "new_items", "same_story_alerts", "misses", "false_alarms", "baseline"} <= set(data)
    assert set(data["new_items"]) == {"countries", "targets", "denials"}


@pytest.mark.slow
def test_sweep_moves_precision_and_recall() -> None:
    """Each row is the stream replayed with its own thresholds: the figures of a replay with them."""
    stream = load_stream(eval_file("dev_stream.jsonl"))[:20]
    documents = list(seed_documents())
    rows = sweep(stream, detector(), documents, relevance_thresholds=(0.40, 0.60), target_match_thresholds=(0.72,))
    assert [(r.relevance_threshold, r.target_match_threshold) for r in rows] == [(0.40, 0.72), (0.60, 0.72)]
    strict = detector_with(detector(), detector().settings.model_copy(update={"relevance_threshold": 0.60}))
    replay = evaluate(stream, strict, seed_knowledge(strict, documents))
    figures = (replay.alerts.precision, replay.alerts.recall, replay.relevance.precision, replay.relevance.recall)
    assert (
        rows[1].alert_precision,
        rows[1].alert_recall,
        rows[1].relevance_precision,
        rows[1].relevance_recall,
    ) == tuple(round(f, 4) for f in figures)
    # On these articles the stricter relevance threshold loses relevant ones: a sweep that did not
    # apply the threshold would give both rows the same figures.
    assert rows[0].relevance_recall > rows[1].relevance_recall
    assert "relevance" in format_sweep(rows)


# ----- several files: pooled figures ----------------------------------------------------------


def _article(ref: str) -> ArticleResult:
    return ArticleResult(ref, "", False, False, False, False, 0.0, None, None, "")


def _made(name: str, alerts: tuple[int, int, int], *, seed: int = 0, articles: int = 3) -> EvalReport:
    """A report with hand-set counts; SEED varies the other figures from file to file."""
    kinds = {k: Score(seed + i, seed * 2 + i, seed + 2 * i) for i, k in enumerate(("countries", "targets", "denials"))}
    articles_ = [_article(f"{name}-{i}") for i in range(articles)]
    return EvalReport(name, Score(*alerts), Score(seed + 5, seed, 1), kinds, seed, articles_)


def _counts(score: Score) -> tuple[int, int, int]:
    return (score.true_positive, score.false_positive, score.false_negative)


def test_pooled_figures_are_the_sums_over_the_files() -> None:
    reports = [_made("a", (9, 0, 1), seed=1, articles=4), _made("b", (1, 3, 6), seed=2, articles=2)]
    reports[0].baseline, reports[1].baseline = _made("a0", (2, 2, 8)), _made("b0", (0, 1, 7))
    pooled = pool(reports)
    assert _counts(pooled.alerts) == (10, 3, 7)
    assert _counts(pooled.relevance) == (6 + 7, 1 + 2, 2)
    for kind in ("countries", "targets", "denials"):
        assert _counts(pooled.kinds[kind]) == tuple(map(sum, zip(*(_counts(r.kinds[kind]) for r in reports))))
    assert pooled.same_story_alerts == 3 and len(pooled.articles) == 6
    assert pooled.baseline is not None and _counts(pooled.baseline.alerts) == (2, 3, 15)
    # Pooled F1 comes from the summed counts, not from averaging the files' F1s.
    assert pooled.alerts.f1 == pytest.approx(2 * 10 / (2 * 10 + 3 + 7))
    assert pooled.alerts.f1 != pytest.approx((reports[0].alerts.f1 + reports[1].alerts.f1) / 2)


def test_json_of_several_files_keeps_each_files_report_and_adds_the_pooled_one() -> None:
    reports = {"a.jsonl": _made("detector", (4, 1, 0), seed=1), "b.jsonl": _made("detector", (2, 0, 3), seed=3)}
    data = json.loads(json.dumps(files_json(reports)))
    assert set(data) == {"files", "pooled"}
    assert data["files"]["b.jsonl"] == json.loads(json.dumps(reports["b.jsonl"].to_json()))
    assert {k: data["pooled"]["alerts"][k] for k in ("tp", "fp", "fn")} == {"tp": 6, "fp": 1, "fn": 3}
    assert data["pooled"]["same_story_alerts"] == 4 and data["pooled"]["article_count"] == 6


# ----- cross-validation: choosing thresholds on the other files -------------------------------

P40: Point = (("relevance_threshold", 0.40),)
P47: Point = (("relevance_threshold", 0.47),)
P53: Point = (("relevance_threshold", 0.53),)
DEFAULTS = {"relevance_threshold": 0.47}


def test_the_point_chosen_for_a_held_out_file_is_the_best_on_the_other_files() -> None:
    alerts = {
        P40: {"a": Score(10, 0, 0), "b": Score(2, 5, 5), "c": Score(3, 3, 3)},
        P47: {"a": Score(1, 5, 9), "b": Score(8, 1, 1), "c": Score(7, 1, 1)},
        P53: {"a": Score(6, 2, 2), "b": Score(6, 2, 2), "c": Score(1, 0, 9)},
    }
    # Over all three files P40 is best (F1 0.65, 0.64, 0.61): a fold that peeked at its held-out
    # file would pick P40 in every fold.
    # Without a: b+c give P40 0.39, P47 0.88, P53 0.52.
    assert choose_point(alerts, "a", DEFAULTS) == P47
    # Without b: a+c give P40 0.81, P47 0.50, P53 0.52.
    assert choose_point(alerts, "b", DEFAULTS) == P40
    # Without c: a+b give P40 0.71, P47 0.53, P53 0.75.
    assert choose_point(alerts, "c", DEFAULTS) == P53


def test_a_tie_goes_to_the_point_nearest_the_defaults() -> None:
    same = {"a": Score(5, 1, 1), "b": Score(4, 2, 0)}
    alerts = {P40: same, P53: same, P47: same}
    assert choose_point(alerts, "a", DEFAULTS) == P47
    assert choose_point({P40: same, P53: same}, "a", {"relevance_threshold": 0.52}) == P53
    # Different counts, the same F1: a tie as well.
    scaled = {P40: {"a": Score(3, 1, 1)}, P53: {"a": Score(6, 2, 2)}}
    assert choose_point(scaled, "b", {"relevance_threshold": 0.5}) == P53


def test_folds_score_each_held_out_file_with_the_point_chosen_without_it() -> None:
    table = {
        P40: {"a": _made("detector", (10, 0, 0)), "b": _made("detector", (2, 5, 5))},
        P47: {"a": _made("detector", (1, 5, 9)), "b": _made("detector", (8, 1, 1))},
    }
    folds = {f.held_out: f for f in select_folds(table, DEFAULTS)}
    assert set(folds) == {"a", "b"}
    # a is scored with what is best on b, and b with what is best on a: the worse choice for each.
    assert folds["a"].point == P47 and _counts(folds["a"].report.alerts) == (1, 5, 9)
    assert folds["b"].point == P40 and _counts(folds["b"].report.alerts) == (2, 5, 5)
    assert _counts(folds["a"].trained) == (8, 1, 1)
    assert _counts(pool([f.report for f in folds.values()]).alerts) == (3, 10, 14)


def test_grid_options_accept_only_float_settings_of_analysis() -> None:
    grid = parse_grid(["relevance_threshold=0.4,0.47", "target_match_threshold=0.72", "relevance_threshold=0.5,0.4"])
    assert grid == {"relevance_threshold": (0.4, 0.47, 0.5), "target_match_threshold": (0.72,)}
    for option, named in [
        ("relevance_treshold=0.4", "relevance_treshold"),
        ("batch_size=8", "batch_size"),  # an int
        ("process_interval=5", "process_interval"),  # a duration, not a detector setting
        ("relevance_threshold=1.5", "relevance_threshold=1.5"),
        ("relevance_threshold=high", "relevance_threshold=high"),
        ("relevance_threshold=", "relevance_threshold"),
    ]:
        with pytest.raises(GridError, match=re.escape(named)):
            parse_grid([option])


def _config(tmp_path: Path, seeds: Path = REPO / "seeds") -> Path:
    path = tmp_path / "monitor.yaml"
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'eval.db'}",
        "seeds_dir": str(seeds),
        "cache_dir": str(tmp_path / "cache"),
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _stream(tmp_path: Path, name: str, lines: int) -> Path:
    """The first LINES records of the dev stream (a prefix: its "new" labels stay right)."""
    path = tmp_path / name
    path.write_text("\n".join(eval_file("dev_stream.jsonl").read_text(encoding="utf-8").splitlines()[:lines]) + "\n")
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cross", "A"], "--cross needs at least 2 stream files"),
        (["--cross", "A", "B", "--grid", "relevance_treshold=0.4"], "--grid relevance_treshold: unknown setting"),
        (["A", "B", "--grid", "relevance_threshold=0.4"], "--grid needs --cross"),
        (["A", "B", "--cross", "--sweep"], "--cross and --sweep"),
    ],
)
def test_eval_refuses_bad_option_combinations_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    files = {"A": str(_stream(tmp_path, "a.jsonl", 2)), "B": str(_stream(tmp_path, "b.jsonl", 3))}
    config = _config(tmp_path, seeds=tmp_path / "no-seeds")
    result = CliRunner().invoke(main, ["eval", *[files.get(a, a) for a in args], "--config", str(config)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_a_broken_line_in_any_file_is_named_before_the_model_loads(tmp_path: Path) -> None:
    good = _stream(tmp_path, "good.jsonl", 2)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a1", "title": "T", "text": "x"}\n{"title": "no id"}\n', encoding="utf-8")
    config = _config(tmp_path, seeds=tmp_path / "no-seeds")  # loading the model would fail on this
    for args in (["eval", str(good), str(broken)], ["eval", "--cross", str(good), str(broken)]):
        result = CliRunner().invoke(main, [*args, "--config", str(config)])
        assert result.exit_code == 2
        assert f"{broken}:2: not a stream record" in result.output and "seeds_dir" not in result.output


# ----- the same with the model -------------------------------------------------------------------


@pytest.mark.slow
def test_each_file_is_replayed_from_the_seeds_afresh() -> None:
    stream = load_stream(eval_file("dev_stream.jsonl"))[:10]
    reports = evaluate_files({"first": stream, "again": stream}, detector(), seed_facts())
    alone = evaluate(stream, detector(), seed_facts())
    # Had the second replay kept the first one's knowledge, its alerts would be gone.
    assert alone.alerts.true_positive >= 2
    for report in reports.values():
        assert _counts(report.alerts) == _counts(alone.alerts)
        assert [a.alert for a in report.articles] == [a.alert for a in alone.articles]


def _alert_counts(section: str) -> tuple[int, int, int]:
    found = re.search(r"^alerts +P .*\(tp (\d+), fp (\d+), fn (\d+)\)$", section, re.MULTILINE)
    assert found, section
    return (int(found[1]), int(found[2]), int(found[3]))


@pytest.mark.slow
def test_cross_validation_through_the_cli(tmp_path: Path, exported_models: Path) -> None:
    files = {"short.jsonl": _stream(tmp_path, "short.jsonl", 5), "long.jsonl": _stream(tmp_path, "long.jsonl", 10)}
    # 0.60 first: choosing by grid order instead of by score would show (0.60 misses alerts here).
    args = ["eval", "--cross", *map(str, files.values()), "--grid", "relevance_threshold=0.60,0.40"]
    result = CliRunner().invoke(main, [*args, "--config", str(_config(tmp_path))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "grid point 2/2: relevance_threshold=0.4" in result.output  # progress, on stderr
    text = result.stdout
    assert "OUT-OF-FILE" in text
    body, pooled = text.split("#### OUT-OF-FILE", 1)
    sections = dict(re.findall(r"^#### held out: (\S+)\n(.*?)(?=^#### |\Z)", body, re.MULTILINE | re.DOTALL))
    assert set(sections) == set(files)
    assert _alert_counts(pooled) == tuple(map(sum, zip(*(_alert_counts(s) for s in sections.values()))))

    base = detector()
    scored = {
        (value, name): evaluate(load_stream(path), variant, seed_knowledge(variant, list(seed_documents())))
        for value in (0.40, 0.60)
        for variant in [detector_with(base, base.settings.model_copy(update={"relevance_threshold": value}))]
        for name, path in files.items()
    }
    for held_out, section in sections.items():
        chosen = float(re.search(r"chosen on the other files: relevance_threshold=([\d.]+)", section)[1])
        other = next(name for name in files if name != held_out)
        # Best alert F1 on the other file; on a tie, 0.40 (nearer the default 0.47).
        best = max((0.40, 0.60), key=lambda v: (round(scored[(v, other)].alerts.f1, 9), -abs(v - 0.47)))
        assert chosen == best
        assert _alert_counts(section) == _counts(scored[(chosen, held_out)].alerts)
