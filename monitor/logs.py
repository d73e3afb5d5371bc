"""Logging: JSON lines for machines, readable lines on a terminal, fixed keys either way."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.redact import redact_text
from monitor.terminal import strip_controls

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _shown(value: Any) -> Any:
    # Log text quotes feeds and servers: no terminal controls, no credentials in URLs.
    return strip_controls(redact_text(value)) if isinstance(value, str) else value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: _shown(value) for key, value in vars(record).items() if key not in _STANDARD}


def _message(record: logging.LogRecord) -> str:
    return strip_controls(redact_text(record.getMessage()))


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    assert record.exc_info is not None
    return strip_controls(redact_text(formatter.formatException(record.exc_info)), keep_newlines=True)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
            **_fields(record),
        }
        if record.exc_info:
            line["exc"] = _traceback(self, record)
        return json.dumps(line, default=str, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{stamp} {record.levelname:<7} {_message(record)}" + (f"  {extras}" if extras else "")
        if record.exc_info:
            text += "\n" + _traceback(self, record)
        return text


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HumanFormatter() if stream.isatty() else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "sentence_transformers", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
