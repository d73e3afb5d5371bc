"""The desk's pages and API over HTTP at a year's volume, SQLite beside PostgreSQL in one run.

    python bench/desk.py                               # 100,000 articles, 5,000 alerts, 20,000 facts
    python bench/desk.py --articles 10000 --alerts 500 --facts 2000 --rounds 20   # while developing
    python bench/desk.py --backends postgresql --postgres postgresql+psycopg://postgres@host/db

Fills each database once (bench/desk_fill.py; kept for the next run, `--refill` to start over),
serves the real application (create_app, start_server: uvicorn on this machine) with a logged-in
session for the pages and an API token for the API, and asks every route ROUNDS times, the routes
taking turns so that the machine's noise falls on all alike. /healthz is the baseline: the same
server, the same client, no database. Prints p50 and p95 per route, p95 over the baseline's p95,
and whether p95 is under the goal (150 ms). A route that answers 404 is not written yet: skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from desk_fill import Filled, Volume, fill
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from monitor.config import DeskUser, WebSettings
from monitor.desk.app import create_app
from monitor.desk.auth import hash_password
from monitor.desk.context import DeskContext
from monitor.desk.ops import ops_router
from monitor.desk.server import RunningServer, start_server
from monitor.metrics import Metrics
from monitor.store.db import SessionFactory, make_engine, make_session_factory, upgrade
from monitor.store.models import Article, utcnow
from monitor.store.tokens import create_token, revoke_token

GOAL_MS = 150.0
USER, PASSWORD = "bench", "bench-password"
DEFAULT_SQLITE = Path("/tmp/desk-bench/desk.db")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test_d_bench"


# --- the database -------------------------------------------------------------------------------


def _reset(url: str) -> None:
    """An empty database at URL: the SQLite file removed, or PostgreSQL's schema dropped (the
    database created first when missing)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first():
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = create_engine(parsed)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _manifest(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(f"{parsed.database}.json")
    return DEFAULT_SQLITE.parent / f"{parsed.database}.json"


def prepare(url: str, volume: Volume, refill: bool) -> tuple[Engine, Filled, float | None]:
    """The engine on a database holding VOLUME (filled now unless a previous run left it); what
    was made; the seconds filling took (None when reused)."""
    manifest = _manifest(url)
    if not refill and manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved["volume"] == asdict(volume):
            engine = make_engine(url)
            upgrade(engine)  # a migration written since the fill (an index) is applied to it
            with engine.connect() as connection:
                if connection.scalar(select(func.count()).select_from(Article)) == volume.articles:
                    return engine, Filled(**saved["filled"]), None
            engine.dispose()
    _reset(url)
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    filled = fill(make_session_factory(engine), volume)
    if engine.dialect.name == "postgresql":
        # What autovacuum does in a running service soon after a bulk load: the planner's statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    took = time.perf_counter() - started
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"volume": asdict(volume), "filled": asdict(filled)}))
    return engine, filled, took


# --- the server ---------------------------------------------------------------------------------


class Served:
    """The application on its own event loop in a thread, as the service runs it on its loop."""

    def __init__(self, sessions: SessionFactory) -> None:
        web = WebSettings(users=[DeskUser(name=USER, password_hash=hash_password(PASSWORD))], session_secret="b" * 32)

        async def checks() -> dict[str, bool]:
            return {"database": True}

        app = create_app(DeskContext(web, sessions), ops=ops_router(Metrics(), checks))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(start_server(app, "127.0.0.1", 0, max_connections=64), self.loop)
        self.server: RunningServer = started.result(30)
        self.base = f"http://127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def api_token(sessions: SessionFactory) -> str:
    with sessions.begin() as session:
        revoke_token(session, USER, utcnow())
        session.flush()
        return create_token(session, USER, utcnow())


def logged_in(base: str) -> httpx.Client:
    """A client with an analyst's session cookie, logged in through the login form."""
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if found is None:
        raise RuntimeError("the login page carries no CSRF token")
    answer = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf_token": found.group(1), "next": "/"}
    )
    if answer.status_code != 303:
        raise RuntimeError(f"login failed: {answer.status_code}")
    return client


# --- the routes ---------------------------------------------------------------------------------


@dataclass
class Route:
    label: str
    paths: list[str]  # taken in turn (the alert page: different alerts)
    api: bool
    status: str = "ok"


def _cursor_parameter(client: httpx.Client) -> str | None:
    """The name /api/alerts takes its cursor by, from the OpenAPI document."""
    document = client.get("/openapi.json").json()
    operation = document.get("paths", {}).get("/api/alerts", {}).get("get", {})
    names = [parameter["name"] for parameter in operation.get("parameters", [])]
    return next((name for name in ("cursor", "next", "after", "before", "before_id") if name in names), None)


def _deep_cursor(client: httpx.Client, parameter: str, pages: int) -> str | None:
    """The cursor PAGES pages down /api/alerts: a keyset page must cost the same as the first."""
    cursor = None
    for _ in range(pages):
        answer = client.get("/api/alerts", params={parameter: cursor} if cursor else None)
        if answer.status_code != 200:
            return None
        cursor = answer.json().get("next")
        if cursor is None:
            return None
    return str(cursor)


def routes(filled: Filled, api: httpx.Client) -> list[Route]:
    kind, country = filled.kind_country
    until = (datetime.now(UTC) - timedelta(days=300)).date().isoformat()
    step = max(1, len(filled.alert_ids) // 20)
    alerts = [f"/alerts/{alert_id}" for alert_id in filled.alert_ids[::step]] or ["/alerts/1"]
    found = [
        Route("/healthz (baseline)", ["/healthz"], api=True),
        Route("/alerts", ["/alerts"], api=False),
        Route(f"/alerts?kind={kind}&country={country}", [f"/alerts?kind={kind}&country={country}"], api=False),
        # A country no finding names: every alert is looked at before the page comes back empty.
        Route("/alerts?country=Atlantis (none)", ["/alerts?country=Atlantis"], api=False),
        Route("/alerts?status=dead", ["/alerts?status=dead"], api=False),
        Route("/alerts/{id}", alerts, api=False),
        Route("/articles", ["/articles"], api=False),
        Route(f"/articles?q={filled.rare_word}", [f"/articles?q={filled.rare_word}"], api=False),
        Route(f"/articles?q={filled.common_word} (in most)", [f"/articles?q={filled.common_word}"], api=False),
        Route("/articles?verdict=relevant", ["/articles?verdict=relevant"], api=False),
        # A search narrowed by date: the search's hits are read newest first and filtered, so
        # words common in older articles only cost the most.
        Route(
            f"/articles?q={filled.rare_word}&until=-300d", [f"/articles?q={filled.rare_word}&until={until}"], api=False
        ),
        Route("/knowledge", ["/knowledge"], api=False),
        Route(f"/knowledge?q={filled.fact_word}", [f"/knowledge?q={filled.fact_word}"], api=False),
        Route("/feeds", ["/feeds"], api=False),
        Route("/api/alerts", ["/api/alerts"], api=True),
        Route("/api/facts", ["/api/facts"], api=True),
        Route(f"/api/articles?q={filled.rare_word}", [f"/api/articles?q={filled.rare_word}"], api=True),
    ]
    parameter = _cursor_parameter(api)
    cursor = _deep_cursor(api, parameter, 20) if parameter else None
    deep = Route("/api/alerts?next (20 pages down)", [], api=True)
    if cursor is None:
        deep.status = "skipped: no cursor parameter or no 20th page"
    else:
        deep.paths = [str(httpx.URL("/api/alerts", params={parameter: cursor}))]
    found.insert(next(i for i, r in enumerate(found) if r.label == "/api/alerts") + 1, deep)
    return found


def measure(routes: list[Route], pages: httpx.Client, api: httpx.Client, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per request, route by route, the routes taking turns each round."""
    live = []
    for route in routes:
        if not route.paths:
            continue
        client = api if route.api else pages
        codes = {client.get(path).status_code for path in route.paths[:3]}  # and warms it
        if codes == {404}:
            route.status = "skipped: 404 (not written yet)"
        elif codes != {200}:
            route.status = f"skipped: status {sorted(codes)}"
        else:
            live.append(route)
    timings: dict[str, list[float]] = {route.label: [] for route in live}
    for turn in range(rounds):
        for route in live:
            client = api if route.api else pages
            path = route.paths[turn % len(route.paths)]
            started = time.perf_counter()
            answer = client.get(path)
            timings[route.label].append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                route.status = f"status {answer.status_code} in round {turn}"
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def report(database: str, routes: list[Route], timings: dict[str, list[float]]) -> list[str]:
    base = timings.get(routes[0].label)
    base95 = p95(base) if base else float("nan")
    lines = [f"{'route':52s} {'p50 ms':>8s} {'p95 ms':>8s} {'p95/base':>9s}  p95<{GOAL_MS:.0f}ms"]
    for route in routes:
        values = timings.get(route.label)
        if not values:
            lines.append(f"{route.label:52s} {route.status}")
            continue
        high = p95(values)
        ok = "yes" if high < GOAL_MS else "NO"
        note = "" if route.status == "ok" else f"  ({route.status})"
        lines.append(
            f"{route.label:52s} {statistics.median(values):8.1f} {high:8.1f} {high / base95:8.1f}x  {ok}{note}"
        )
    return [f"== {database}", *lines]


def run(url: str, volume: Volume, rounds: int, refill: bool) -> list[str]:
    engine, filled, took = prepare(url, volume, refill)
    sessions = make_session_factory(engine)
    header = f"{engine.dialect.name}: {volume.articles:,} articles, {len(filled.alert_ids):,} alerted, "
    header += f"{volume.facts:,} facts; " + (f"filled in {took:.0f} s" if took is not None else "filled before")
    served = Served(sessions)
    if served.server.sock.proto != socket.IPPROTO_TCP:
        # asyncio sets TCP_NODELAY only on sockets accepted from one made with proto IPPROTO_TCP;
        # without it a keep-alive answer in two writes waits for the client's delayed ACK (~40 ms).
        header += "\nWARNING: the listening socket's proto is not IPPROTO_TCP: Nagle adds ~40 ms per request"
    try:
        api = httpx.Client(base_url=served.base, timeout=60, headers={"Authorization": f"Bearer {api_token(sessions)}"})
        pages = logged_in(served.base)
        chosen = routes(filled, api)
        timings = measure(chosen, pages, api, rounds)
        api.close()
        pages.close()
    finally:
        served.stop()
        engine.dispose()
    return report(header, chosen, timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sqlite", type=Path, default=DEFAULT_SQLITE, help="the SQLite file (kept between runs)")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL database URL (its schema is replaced)"
    )
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--alerts", type=int, default=5_000)
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--refill", action="store_true", help="fill again even when a previous run's data fits")
    args = parser.parse_args()
    print(f"command: {' '.join(['python', *sys.argv])}", flush=True)
    volume = Volume(
        articles=args.articles,
        alerts=args.alerts,
        facts=args.facts,
        matches=args.facts * 3 // 2,
        feedback=max(1, args.alerts // 10),
    )
    urls = {"sqlite": f"sqlite:///{args.sqlite}", "postgresql": args.postgres}
    for backend in args.backends.split(","):
        lines = run(urls[backend.strip()], volume, args.rounds, args.refill)
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
