"""A real HTTP server on 127.0.0.1 for feed tests, with routes set per test.

    with FeedServer() as server:
        server.set_feed("/feed.xml", rss_document([FeedItem("Hello", link="http://x/1")]))
        url = server.url("/feed.xml")
        ...
        assert server.requests_for("/feed.xml")[0].headers["user-agent"]

Each route answers GET (and HEAD). Unknown paths get 404. Requests are recorded with lower-case
header names. Handlers run in daemon threads, so a hanging route never blocks shutdown.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    target: str  # as sent, query included
    headers: dict[str, str]  # lower-case names


@dataclass
class _Route:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0
    # When set, the body is sent as these chunks with no Content-Length (ends at close).
    chunks: Iterable[bytes] | None = None


class FeedServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server((host, 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FeedServer:
        if self._thread is None:
            # A short poll interval: stop() waits up to one interval, and a run starts this server
            # some 150 times.
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- routes

    def set_feed(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = RSS_TYPE,
        etag: bool | str = True,
        last_modified: bool | str = True,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        status: int = 200,
        delay_s: float = 0.0,
    ) -> None:
        """Serve a document; with etag/last_modified, a matching conditional GET gets 304.

        Calling it again with another body is how a test changes the items between polls: the
        automatic ETag and Last-Modified change with the body. delay_s makes each answer slow.
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        previous = self._routes.get(path)
        route_headers = [("Content-Type", content_type), *(headers or {}).items()]
        if gzip:
            data = gzip_module.compress(data)
            route_headers.append(("Content-Encoding", "gzip"))
        self._set(
            path,
            _Route(
                status=status,
                headers=route_headers,
                body=data,
                etag=_etag(etag, data),
                last_modified=_last_modified(last_modified, data, previous),
                delay_s=delay_s,
            ),
        )

    def set_response(
        self,
        path: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        *,
        delay_s: float = 0.0,
    ) -> None:
        """Answer with exactly this status, headers and body (429 + Retry-After, 410, 500...)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self._set(path, _Route(status=status, headers=list((headers or {}).items()), body=data, delay_s=delay_s))

    def set_redirect(self, path: str, location: str, status: int = 301) -> None:
        """Redirect to another path on this server or to an absolute URL."""
        target = self.url(location) if location.startswith("/") else location
        self.set_response(path, status, {"Location": target})

    def set_hang(self, path: str, seconds: float = 30.0) -> None:
        """Say nothing for `seconds` (until the server stops), then answer 200 with an empty body."""
        self.set_response(path, 200, {"Content-Type": RSS_TYPE}, b"", delay_s=seconds)

    def set_stream(self, path: str, chunk: bytes, repeat: int, *, content_type: str = RSS_TYPE) -> None:
        """Send `chunk` `repeat` times without a Content-Length: a body of unannounced size."""
        self._set(
            path,
            _Route(headers=[("Content-Type", content_type)], chunks=_repeat(chunk, repeat)),
        )

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    def _set(self, path: str, route: _Route) -> None:
        with self._lock:
            self._routes[path] = route

    def _route(self, path: str) -> _Route | None:
        with self._lock:
            return self._routes.get(path)

    # -- what clients sent

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    @property
    def max_in_flight(self) -> int:
        """The most requests this server was answering at the same moment."""
        with self._lock:
            return self._max_in_flight

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when a poll opens dozens at once.
    request_queue_size = 256


def _repeat(chunk: bytes, count: int) -> Iterable[bytes]:
    return [chunk] * count


def _etag(etag: bool | str, data: bytes) -> str | None:
    if etag is True:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
    return etag or None


def _last_modified(value: bool | str, data: bytes, previous: _Route | None) -> str | None:
    if isinstance(value, str):
        return value
    if not value:
        return None
    # The same body keeps its date; a new body is modified now.
    if previous is not None and previous.body == data and previous.last_modified:
        return previous.last_modified
    return format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=True)


def _not_modified(route: _Route, headers: Mapping[str, str]) -> bool:
    if route.status != 200:
        return False
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None and route.etag:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or route.etag.removeprefix("W/") in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since and route.last_modified:
        try:
            return parsedate_to_datetime(if_modified_since) >= parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return if_modified_since == route.last_modified
    return False


def _handler_class(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            server._enter()
            try:
                self._respond(send_body)
            finally:
                server._leave()

        def _respond(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            headers = {name.lower(): value for name, value in self.headers.items()}
            server._record(RecordedRequest(self.command, path, self.path, headers))
            route = server._route(path)
            if route is None:
                self._send(404, [("Content-Type", "text/plain")], b"not found", send_body)
                return
            if route.delay_s and server._stopping.wait(route.delay_s):
                return
            validators = [("ETag", route.etag)] if route.etag else []
            if route.last_modified:
                validators.append(("Last-Modified", route.last_modified))
            if _not_modified(route, headers):
                self._send(304, validators, b"", send_body)
            elif route.chunks is not None:
                self._send_chunks(route, send_body)
            else:
                self._send(route.status, [*route.headers, *validators], route.body, send_body)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, send_body: bool) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body and body:
                self._write(body)

        def _send_chunks(self, route: _Route, send_body: bool) -> None:
            self.send_response(route.status)
            for name, value in route.headers:
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if send_body:
                for chunk in route.chunks or ():
                    if not self._write(chunk):
                        break

        def _write(self, data: bytes) -> bool:
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return False  # the client gave up (size cap, timeout): expected in tests
            return True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class FeedItem:
    title: str
    link: str | None = None
    guid: str | None = None
    description: str | None = None
    pub_date: datetime | str | None = None
    # Full text (content:encoded in RSS, <content> in Atom).
    content: str | None = None
    guid_is_permalink: bool = False


def rss_document(
    items: Iterable[FeedItem],
    *,
    title: str = "Test feed",
    link: str = "http://example.com/",
    encoding: str = "utf-8",
    declared_encoding: str | None = None,
) -> bytes:
    """An RSS 2.0 document encoded in `encoding`, declaring `declared_encoding` (default: the same).

    Text is escaped, so HTML in a description arrives as escaped markup, as in most real feeds.
    """
    parts = [
        f'<?xml version="1.0" encoding="{declared_encoding or encoding}"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        "<channel>",
        f"<title>{escape(title)}</title><link>{escape(link)}</link><description>Test</description>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link is not None:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            permalink = "true" if item.guid_is_permalink else "false"
            parts.append(f'<guid isPermaLink="{permalink}">{escape(item.guid)}</guid>')
        if item.description is not None:
            parts.append(f"<description>{escape(item.description)}</description>")
        if item.content is not None:
            parts.append(f"<content:encoded>{escape(item.content)}</content:encoded>")
        if item.pub_date is not None:
            parts.append(f"<pubDate>{escape(_rfc822(item.pub_date))}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode(encoding)


def atom_document(
    items: Iterable[FeedItem],
    *,
    title: str = "Test feed",
    link: str = "http://example.com/",
    feed_id: str = "urn:test:feed",
    updated: datetime | None = None,
) -> bytes:
    """An Atom 1.0 document (UTF-8); guid becomes <id>, pub_date <published> and <updated>."""
    stamp = _iso(updated or datetime(2024, 1, 1, tzinfo=UTC))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title>",
        f'<link rel="alternate" href="{escape(link)}"/>',
        f"<id>{escape(feed_id)}</id><updated>{stamp}</updated>",
    ]
    for item in items:
        parts.append("<entry>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link is not None:
            parts.append(f'<link rel="alternate" href="{escape(item.link)}"/>')
        if item.guid is not None:
            parts.append(f"<id>{escape(item.guid)}</id>")
        if item.pub_date is not None:
            when = item.pub_date if isinstance(item.pub_date, str) else _iso(item.pub_date)
            parts.append(f"<published>{escape(when)}</published><updated>{escape(when)}</updated>")
        if item.description is not None:
            parts.append(f'<summary type="html">{escape(item.description)}</summary>')
        if item.content is not None:
            parts.append(f'<content type="html">{escape(item.content)}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def _rfc822(value: datetime | str) -> str:
    return value if isinstance(value, str) else format_datetime(value.astimezone(UTC), usegmt=True)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
