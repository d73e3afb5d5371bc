"""`monitor eval`: score the detector on labelled streams."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from monitor.cli_options import command_settings, config_option


@click.command("eval")
@click.argument("streams", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--baseline", type=click.Choice(["keywords"]), default=None, help="Score a baseline beside the detector.")
@click.option("--sweep", is_flag=True, help="Show precision and recall as the main thresholds move (per file).")
@click.option(
    "--cross",
    is_flag=True,
    help="Leave one file out: thresholds chosen on the other files, the file left out scored with them "
    "(at least 2 files). The pooled out-of-file figures are the ones to quote.",
)
@click.option(
    "--grid",
    "grid_options",
    multiple=True,
    metavar="SETTING=V1,V2",
    help="With --cross: values of an analysis setting to try (repeatable); replaces the default grid "
    "(relevance_threshold x target_match_threshold).",
)
@config_option
@click.pass_context
def evaluate_stream(
    ctx: click.Context,
    streams: tuple[Path, ...],
    as_json: bool,
    baseline: str | None,
    sweep: bool,
    cross: bool,
    grid_options: tuple[str, ...],
    config_path: Path | None,
) -> None:
    """Score the detector on labelled streams (JSON lines), each from the seeds afresh, then pooled."""
    import time

    from monitor.analysis import evaluate
    from monitor.analysis.detector import seed_knowledge
    from monitor.service import build_analysis

    problem = None
    if cross and sweep:
        problem = "--cross and --sweep do not go together"
    elif cross and len(streams) < 2:
        problem = "--cross needs at least 2 stream files (each is held out in turn)"
    elif grid_options and not cross:
        problem = "--grid needs --cross"
    try:
        grid = evaluate.parse_grid(grid_options) if grid_options else evaluate.DEFAULT_GRID
    except evaluate.GridError as exc:
        problem = problem or str(exc)
    if problem:
        click.echo(f"error: {problem}", err=True)
        ctx.exit(2)
    settings = command_settings(ctx, config_path)
    try:  # every file checked before the model loads
        records = evaluate.load_streams(list(streams))
    except evaluate.StreamError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    stage = build_analysis(settings)
    if sweep:
        rows = {name: evaluate.sweep(stream, stage.detector, stage.documents) for name, stream in records.items()}
        if as_json:
            click.echo(json.dumps({"files": {n: [asdict(r) for r in rs] for n, rs in rows.items()}}, indent=2))
        else:
            click.echo("\n\n".join(f"#### {n}\n{evaluate.format_sweep(rs)}" for n, rs in rows.items()))
        return
    if cross:
        started, points = time.monotonic(), len(evaluate.grid_points(grid))

        def progress(index: int, point: evaluate.Point) -> None:
            elapsed = f"{time.monotonic() - started:.0f} s so far"
            click.echo(f"grid point {index + 1}/{points}: {evaluate.describe(point)} ({elapsed})", err=True)

        result = evaluate.cross_validate(
            records, stage.detector, stage.documents, grid, baseline=baseline == "keywords", progress=progress
        )
        out = evaluate.cross_json(result) if as_json else evaluate.format_cross(result)
        click.echo(json.dumps(out, indent=2, ensure_ascii=False) if as_json else out)
        return
    seed_facts = seed_knowledge(stage.detector, stage.documents)
    reports = evaluate.evaluate_files(
        records, stage.detector, seed_facts, baseline=baseline == "keywords", seed_documents=stage.documents
    )
    if as_json:
        click.echo(json.dumps(evaluate.files_json(reports), indent=2, ensure_ascii=False))
    else:
        click.echo(evaluate.format_files(reports))
