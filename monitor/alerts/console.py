"""The console: alerts as plain text on standard output (also the text part of an email)."""

from __future__ import annotations

from typing import TextIO

from monitor.alerts.channel import DELIVERED, OneByOne, retry
from monitor.alerts.escaping import TEXT_MAX, clean, clip, prefix, safe_url, similarity_note, title_of, when
from monitor.outbox import AlertContent, Delivery, FindingView


def _finding(finding: FindingView) -> list[str]:
    lines = [f"- {clean(finding.headline())}", f"  “{clip(clean(finding.evidence), TEXT_MAX)}”"]
    if finding.closest_known:
        source = f" from {clean(finding.closest_source)}" if finding.closest_source else ""
        lines.append(f"  closest known: {clean(finding.closest_known)}{source}{similarity_note(finding.similarity)}")
    else:
        lines.append("  closest known: nothing similar known")
    if finding.reason:
        lines.append(f"  why: {clean(finding.reason)}")
    return lines


def console_text(content: AlertContent) -> str:
    """Plain text; control characters from articles are removed."""
    url = safe_url(content.article_url)
    lines = [f"{prefix(content.test)}{clean(content.headline())}", f"Article: {clip(title_of(content), 500)}"]
    if url:
        lines.append(f"  {url}")
    lines.append(
        f"  feed: {clean(content.feed)} | published: {when(content.published)} | relevance: {content.relevance:.2f}"
    )
    if review := safe_url(content.review_url):
        lines.append(f"Review: {review}")
    for finding in content.findings:
        lines += _finding(finding)
    allegation = content.closest_allegation
    if allegation:
        lines.append(f"Closest known allegation ({clean(allegation.source)}, score {allegation.score:.2f}):")
        lines.append(f"  “{clip(clean(allegation.sentence), TEXT_MAX)}”")
    else:
        lines.append("Closest known allegation: none")
    return "\n".join(lines)


class ConsoleChannel(OneByOne):
    name = "console"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        try:
            self._stream.write(console_text(content) + "\n\n")
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed stream
            return retry(f"console: {type(exc).__name__}: {exc}")
        return DELIVERED
