"""Shared by the service benches: a config for `monitor run` against local servers, and its RSS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_config(
    folder: Path,
    feed_urls: list[str],
    *,
    interval_s: float,
    backend: str,
    slack_url: str | None = None,
    http_port: int | None = None,
) -> Path:
    """A config for `monitor run`: SQLite in FOLDER, these feeds, console off, Slack if given, the
    operations endpoint on 127.0.0.1:HTTP_PORT if given."""
    config = {
        "database_url": f"sqlite:///{folder / 'monitor.db'}",
        "seeds_dir": str(ROOT / "seeds"),
        "cache_dir": str(ROOT / "data" / "cache"),
        "log_level": "WARNING",
        "poll": {"interval": interval_s, "concurrency": 50, "per_host_concurrency": 50},
        "feeds": [{"name": f"feed {i}", "url": url} for i, url in enumerate(feed_urls)],
        "alerts": {
            "console": {"enabled": False},
            "slack": {"enabled": bool(slack_url), "webhook_url": slack_url or ""},
            "dispatch_interval": 1.0,
        },
        "analysis": {"backend": backend, "process_interval": 1.0},
        "http": {"enabled": http_port is not None, "host": "127.0.0.1", "port": http_port or 0},
    }
    path = folder / "monitor.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int, name: str, **labels: str) -> float | None:
    """One sample's value from the service's /metrics; None while it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:  # a child that exited between listing and reading
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every process below PID (the parse workers of `monitor run`)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """RSS of PID, and of PID with all its descendants (pages they share are counted in each)."""
    own = rss_mb(pid)
    return own, own + sum(rss_mb(child) for child in descendants(pid))


def stop_service(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
