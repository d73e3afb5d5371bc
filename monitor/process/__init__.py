"""The process job: claim new articles, analyse them, commit what they teach with their alerts."""

from monitor.process.orchestrator import ProcessReport, process_articles

__all__ = ["ProcessReport", "process_articles"]
