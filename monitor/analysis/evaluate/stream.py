"""The labelled streams (format: shared/eval/README.md): one record per article, with its gold labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.analysis.detector import ArticleInput


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
