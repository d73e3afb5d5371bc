"""One service process per SQLite file: SQLite has no row locks to share the work safely."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url


class AlreadyRunning(Exception):
    """Another monitor process holds this SQLite database."""


class ProcessLock:
    """An exclusive, non-blocking flock on `<database>.lock`; released when the process exits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AlreadyRunning(
                f"db: {self.path.with_suffix('')} is in use by monitor process {holder}; with SQLite only one "
                "service process may run (use PostgreSQL for several replicas)"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def single_process_lock(database_url: str) -> ProcessLock | None:
    """The lock a service process must hold for this database; None where replicas are safe."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return ProcessLock(Path(url.database + ".lock"))
