"""The detector replayed over a stream, as the service would run it, and over several files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor.analysis.detector import Detector
from monitor.analysis.evaluate.baseline import evaluate_keyword_baseline
from monitor.analysis.evaluate.scores import (
    ArticleResult,
    EvalReport,
    Score,
    _add_items,
    _match_targets,
    _same_name,
    _tally,
    format_report,
    format_summary,
)
from monitor.analysis.evaluate.stream import StreamRecord
from monitor.analysis.knowledge import Fact, KnowledgeBase
from monitor.analysis.seeds import SeedDocument

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
        for kind, gold_items in (
            ("country", gold_new.get("countries") or []),
            ("denial", gold_new.get("denials") or []),
        ):
            predicted = list(dict.fromkeys(by_kind[kind]))
            hit_p = sum(1 for p in predicted if any(_same_name(p, g) for g in gold_items))
            hit_g = sum(1 for g in gold_items if any(_same_name(p, g) for p in predicted))
            _add_items(
                kinds["countries" if kind == "country" else "denials"], hit_p, len(predicted), hit_g, len(gold_items)
            )
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
        report.baseline = evaluate_keyword_baseline(
            stream, seed_documents=seed_documents, seed_facts=kb_seed_countries(seed_facts)
        )
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
