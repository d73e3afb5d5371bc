"""Can the monitor still write? A database that answers SELECT 1 may still refuse every write.

A SQLite file on a disk that is full or was remounted read-only answers reads and fails each
commit: the service looks alive while it stores nothing. PostgreSQL tells whether it takes writes
(a standby, or default_transaction_read_only).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

# Written and removed by each probe: enough to need a block of the disk.
_PROBE = b"monitor readiness probe\n" * 64


def _folder_problem(folder: Path, min_free_bytes: int) -> str | None:
    try:
        stats = os.statvfs(folder)
    except OSError as exc:
        return f"storage: {folder}: {exc.strerror or exc}"
    if stats.f_flag & os.ST_RDONLY:
        return f"storage: {folder} is on a read-only file system"
    free = stats.f_bavail * stats.f_frsize
    if free < min_free_bytes:
        return f"storage: {folder} has {free} bytes free (less than http.min_free_bytes, {min_free_bytes})"
    try:
        # The kernel's own answer (full disk, read-only mount, permissions), not a guess from stats.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".monitor-probe-") as probe:
            probe.write(_PROBE)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return f"storage: cannot write in {folder}: {exc.strerror or exc}"
    return None


def storage_problem(engine: Engine, min_free_bytes: int = 0) -> str | None:
    """Why the database cannot take writes now, or None. Blocking: run it in a thread."""
    url = make_url(engine.url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        database = Path(url.database).resolve()
        problem = _folder_problem(database.parent, min_free_bytes)
        if problem is None and database.exists() and not os.access(database, os.W_OK):
            problem = f"storage: {database} is not writable"
        return problem
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            if connection.scalar(text("SELECT pg_is_in_recovery()")):
                return "storage: the PostgreSQL server is a standby (read-only)"
            if connection.scalar(text("SHOW transaction_read_only")) == "on":
                return "storage: the PostgreSQL session is read-only (default_transaction_read_only)"
    return None
