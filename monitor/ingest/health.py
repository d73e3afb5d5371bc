"""A feed's state after a refresh: validators, errors, the operator's notices, the next poll.

A feed failing for poll.failing_alert_after raises one outbox alert about itself ("Feed failing"),
and one more when it recovers; otherwise a failure only backs the feed off. The rows changed here
are the ones the feeds repository loaded, in the refresh's own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor import outbox
from monitor.config import PollSettings
from monitor.ingest.fetch import FetchKind, FetchOutcome
from monitor.ingest.parse import ParsedFeed
from monitor.ingest.schedule import Outcome, adapt_interval_s, failure_delay_s, next_poll_delay_s
from monitor.redact import redact_text
from monitor.store.models import Feed

logger = logging.getLogger(__name__)

# The longest operator alert title.
NOTICE_TITLE_MAX = 500


def apply_outcome(
    session: Session,
    feed: Feed,
    kind: Outcome,
    outcome: FetchOutcome,
    parsed: ParsedFeed | None,
    new_entries: int,
    error: str | None,
    poll: PollSettings,
    now: datetime,
    alert_channels: Sequence[str],
) -> str | None:
    """The feed's new state and next poll time; returns "failing"/"recovered" when it alerted."""
    feed.last_polled_at = now
    feed.last_status = status_label(kind)
    feed.last_http_status = outcome.status
    alert = None
    if kind in (FetchKind.NEW_CONTENT, FetchKind.NOT_MODIFIED):
        first_success = feed.last_success_at is None
        feed.consecutive_errors = 0
        feed.last_error = None
        feed.last_success_at = now
        # Validators only from a body we could use, so a fixed feed is never hidden behind a 304.
        feed.etag = outcome.etag
        feed.last_modified = outcome.last_modified
        if outcome.moved_to:
            feed.url = outcome.moved_to
        if parsed is not None:
            feed.entries_seen = len(parsed.entries)
        alert = _recovered(session, feed, now, alert_channels)
        if poll.is_adaptive and not feed.interval_s:
            feed.adaptive_interval_s = adapt_interval_s(
                feed.adaptive_interval_s, new_entries, poll, first=first_success
            )
    else:
        alert = failed(session, feed, error or f"fetch: {kind}", poll, now, alert_channels)
        if kind is not FetchKind.RETRY_LATER:
            forget_validators(feed)
    delay = next_poll_delay_s(
        kind,
        interval_s=feed.interval_s,
        errors=feed.consecutive_errors,
        poll=poll,
        retry_after_s=outcome.retry_after_s,
        max_age_s=outcome.max_age_s,
        adaptive_interval_s=feed.adaptive_interval_s,
    )
    feed.next_poll_at = now + timedelta(seconds=delay)
    return alert


def apply_crash(
    session: Session, feed: Feed, error: str, poll: PollSettings, now: datetime, alert_channels: Sequence[str]
) -> None:
    """A refresh that crashed (a database error, a bug): counted as a failure like any other."""
    failed(session, feed, error, poll, now, alert_channels)
    forget_validators(feed)
    feed.last_status = str(FetchKind.ERROR)
    feed.last_polled_at = now
    feed.next_poll_at = now + timedelta(seconds=failure_delay_s(feed.consecutive_errors, poll))


def failed(
    session: Session, feed: Feed, error: str, poll: PollSettings, now: datetime, alert_channels: Sequence[str]
) -> str | None:
    """Count a failure; a feed failing for poll.failing_alert_after alerts the operator once."""
    feed.consecutive_errors = (feed.consecutive_errors or 0) + 1
    feed.last_error = error
    if feed.failing_since is None:
        feed.failing_since = now
    if feed.failing_alerted or now - feed.failing_since < timedelta(seconds=poll.failing_alert_after):
        return None
    feed.failing_alerted = True
    since = feed.failing_since.strftime("%Y-%m-%d %H:%M UTC")
    # Shown to people on every channel: a key quoted in the error is masked (the URL is, in feed_notice).
    title = f"Feed failing: {feed.name} (since {since}: {redact_text(error)})"
    outbox.add_alerts(
        session, outbox.feed_notice(feed.name, feed.url, title[:NOTICE_TITLE_MAX], now), alert_channels, None, now
    )
    logger.warning("feed failing: operator alerted", extra={"feed_id": feed.id, "error": error})
    return "failing"


def forget_validators(feed: Feed) -> None:
    # A failed poll forgets the ETag and Last-Modified: if they were the cause, the next poll
    # asks without them; if not, it costs one full GET. (A 429 or 503 keeps them: the server
    # only asked us to wait.)
    feed.etag = None
    feed.last_modified = None


def _recovered(session: Session, feed: Feed, now: datetime, alert_channels: Sequence[str]) -> str | None:
    alerted = feed.failing_alerted
    feed.failing_since = None
    feed.failing_alerted = False
    if not alerted:
        return None
    notice = outbox.feed_notice(feed.name, feed.url, f"Feed recovered: {feed.name}", now)
    outbox.add_alerts(session, notice, alert_channels, None, now)
    logger.info("feed recovered: operator alerted", extra={"feed_id": feed.id})
    return "recovered"


def status_label(kind: Outcome) -> str:
    # What `monitor feeds` shows: "ok" for a body we used, otherwise the outcome's own name.
    return "ok" if kind is FetchKind.NEW_CONTENT else str(kind)
