"""Real servers that stand in for Slack and an SMTP relay in tests.

SlackReceiver is an HTTP server on 127.0.0.1 that accepts incoming-webhook POSTs the way Slack
does (it rejects payloads that break Block Kit limits) and can be scripted to fail. SmtpReceiver
is aiosmtpd's Controller with a handler that records envelopes and can refuse the next messages.

    with SlackReceiver() as slack, SmtpReceiver() as smtp:
        slack.script([500, 200])          # first POST answered 500, the next 200
        smtp.refuse(451, times=1)         # first message refused with 451 at DATA
        ...                               # settings use slack.url and smtp.port
        assert len(slack.messages) == 1   # POSTs Slack accepted (answered 2xx)
        assert smtp.messages[0].message["Subject"]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from monitor.outbox import AlertContent, ClosestAllegation, FindingView


@cache
def ssl_context() -> ssl.SSLContext:
    """One CA store for the clients tests make: httpx loads one for each client otherwise (some 50
    ms). They speak plain HTTP to local servers; this is what httpx would load, only loaded once."""
    return httpx.create_ssl_context()


# --- Slack ----------------------------------------------------------------------------------

# What Slack's incoming webhooks answer, as plain text bodies.
SLACK_BODIES = {
    200: "ok",
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
    503: "service_unavailable",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``delay_s`` holds the answer back; ``close`` sends none at all."""

    status: int = 200
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    close: bool = False

    @classmethod
    def of(cls, item: int | Reply) -> Reply:
        if isinstance(item, Reply):
            return item
        # Slack always sends Retry-After with a 429.
        return cls(item, headers={"Retry-After": "1"} if item == 429 else {})

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls(delay_s=seconds)

    @classmethod
    def drop(cls) -> Reply:
        return cls(close=True)


@dataclass(frozen=True)
class SlackPost:
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int | None  # None: the connection was closed without an answer
    received_at: float  # time.monotonic() when the request arrived
    answer: str | None = None  # the body answered, when it was not Slack's usual one


def slack_rejection(payload: Any) -> str | None:
    """Why Slack would refuse this webhook payload (the body of its 400), or None."""
    if not isinstance(payload, dict):
        return "invalid_payload"
    blocks = payload.get("blocks")
    if not payload.get("text") and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    try:
        for raw in blocks:
            block = Block.parse(raw)
            if block is None:
                return "invalid_blocks"
            block.validate_json()
    except (SlackObjectFormationError, KeyError, TypeError, AttributeError):
        return "invalid_blocks"
    return None


class _SlackHandler(BaseHTTPRequestHandler):
    server: _SlackServer

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = receiver._answer(self.path, headers, body, parsed)
        post = SlackPost(
            path=self.path,
            headers=headers,
            body=body,
            json=parsed,
            status=None if reply.close else reply.status,
            received_at=time.monotonic(),
            answer=reply.body,
        )
        receiver._record_request(post)
        if reply.delay_s and receiver._stopping.wait(reply.delay_s):
            return  # shutting down: give up on the answer
        if reply.close:
            self.close_connection = True
            return
        if 200 <= reply.status < 300 and receiver._accepted(reply):
            # Recorded before answering, as Slack posts a message even if the client has gone,
            # and so that a test never sees the answer before the message.
            receiver._record_message(post)
        text = (reply.body if reply.body is not None else SLACK_BODIES.get(reply.status, "error")).encode()
        content_type = "application/json" if text.startswith(b"{") else "text/plain"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(text)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(text)
        except OSError:
            pass  # the client gave up (it timed out while we hung)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _SlackServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: SlackReceiver


class SlackReceiver:
    """A Slack-compatible incoming webhook on 127.0.0.1 with a random port."""

    API_PATH = "/api/chat.postMessage"

    def __init__(
        self,
        path: str = "/services/T0000TEST/B0000TEST/secrettoken",
        bot_token: str = "xoxb-test-token",
    ) -> None:
        self.path = path
        self.bot_token = bot_token
        self._ts = 0
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._requests: list[SlackPost] = []
        self._messages: list[SlackPost] = []
        self._stopping = threading.Event()
        self._server: _SlackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SlackReceiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    @property
    def api_url(self) -> str:
        """The Web API base URL (chat.postMessage answers like Slack's, with a ts)."""
        return self.url.rsplit(self.path, 1)[0] + "/api/"

    @property
    def requests(self) -> list[SlackPost]:
        """Every POST received, whatever it was answered."""
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[SlackPost]:
        """POSTs answered 2xx: what Slack would have shown in the channel."""
        with self._lock:
            return list(self._messages)

    def script(self, replies: Iterable[int | Reply]) -> None:
        """Answer the next POSTs with these, in order; after them, 200 ok (if the payload is valid)."""
        with self._lock:
            self._script.extend(Reply.of(item) for item in replies)

    def start(self) -> SlackReceiver:
        self._server = _SlackServer(("127.0.0.1", 0), _SlackHandler)
        self._server.receiver = self
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that are hanging on purpose
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SlackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, path: str, headers: Mapping[str, str], body: bytes, payload: Any) -> Reply:
        if path == self.API_PATH:
            return self._api_reply(headers, payload)
        return self._next_reply(path, payload)

    def _accepted(self, reply: Reply) -> bool:
        """A 2xx that Slack would have shown (the Web API says ok: false with a 200)."""
        return not (reply.body or "").startswith('{"ok": false')

    def _next_reply(self, path: str, payload: Any) -> Reply:
        if path != self.path:
            return Reply(404)
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None and not 200 <= scripted.status < 300:
            return scripted
        rejection = slack_rejection(payload)
        if rejection is not None:
            return Reply(400, body=rejection)
        return scripted or Reply()

    def _api_reply(self, headers: Mapping[str, str], payload: Any) -> Reply:
        def api(ok: bool, status: int = 200, reply: Reply | None = None, **fields: Any) -> Reply:
            body = json.dumps({"ok": ok, **fields})
            base = reply or Reply(status)
            return Reply(
                base.status,
                body=body,
                headers=base.headers,
                delay_s=base.delay_s,
                close=base.close,
            )

        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None and not 200 <= scripted.status < 300:
            error = {429: "ratelimited"}.get(scripted.status, SLACK_BODIES.get(scripted.status, "error"))
            return api(False, reply=scripted, error=error)
        if headers.get("authorization") != f"Bearer {self.bot_token}":
            return api(False, error="invalid_auth")
        if not isinstance(payload, dict) or not payload.get("channel"):
            return api(False, error="channel_not_found")
        rejection = slack_rejection({k: v for k, v in payload.items() if k in ("text", "blocks")})
        if rejection is not None:
            return api(False, error=rejection)
        with self._lock:
            self._ts += 1
            ts = f"{1_700_000_000 + self._ts}.{self._ts:06d}"
        return api(True, reply=scripted, channel=payload["channel"], ts=ts, message={"ts": ts})

    def _record_request(self, post: SlackPost) -> None:
        with self._lock:
            self._requests.append(post)

    def _record_message(self, post: SlackPost) -> None:
        with self._lock:
            self._messages.append(post)


# --- a generic signed webhook -----------------------------------------------------------------


class WebhookReceiver(SlackReceiver):
    """A JSON webhook endpoint that checks the monitor's HMAC signature the way a user's would.

    A POST whose X-Monitor-Signature does not match HMAC-SHA256(secret, "TIMESTAMP." + body), or
    whose X-Monitor-Timestamp is more than ``max_age_s`` from now, is answered 401 and not kept.
    """

    def __init__(
        self,
        secret: str = "webhook-secret",
        path: str = "/hooks/monitor",
        max_age_s: float = 300,
    ) -> None:
        super().__init__(path=path)
        self.secret = secret
        self.max_age_s = max_age_s

    def _answer(self, path: str, headers: Mapping[str, str], body: bytes, payload: Any) -> Reply:
        if path != self.path:
            return Reply(404, body="not found")
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None and not 200 <= scripted.status < 300:
            return scripted
        problem = self.verify(headers, body)
        if problem:
            return Reply(401, body=problem)
        return scripted or Reply(200, body="ok")

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str | None:
        """Why this request is not authentic, or None."""
        timestamp = headers.get("x-monitor-timestamp", "")
        signature = headers.get("x-monitor-signature", "")
        if not timestamp.isdigit():
            return "missing timestamp"
        if abs((now or time.time()) - int(timestamp)) > self.max_age_s:
            return "stale timestamp"
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(signature, expected):
            return "bad signature"
        return None


# --- a TCP link that can be cut (a database that goes away) -----------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to a real server; ``cut()`` drops every connection and refuses new
    ones (they are closed as soon as accepted), ``restore()`` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self.cut()
        self._listener.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --- SMTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # the message as received, before any header the server would add
    login: str | None  # the user that authenticated, if any
    received_at: float  # time.monotonic()

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


Stage = Literal["mail", "rcpt", "data"]


class _RecordingHandler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self._receiver = receiver

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        refusal = self._receiver._take_refusal("mail")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        refusal = self._receiver._take_refusal("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._receiver._take_refusal("data")
        if refusal:
            return refusal
        raw_content = envelope.original_content or envelope.content or b""
        content = raw_content if isinstance(raw_content, bytes) else raw_content.encode()
        refusal = self._receiver._refusal_for(content)
        if refusal:
            return refusal
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        raw = envelope.original_content or envelope.content or b""
        self._receiver._record(
            SmtpMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else raw.encode(),
                login=login,
                received_at=time.monotonic(),
            )
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 (aiosmtpd). With ``users``, AUTH is required (no TLS needed)."""

    def __init__(self, *, users: Mapping[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._messages: list[SmtpMail] = []
        self._refusals: deque[tuple[Stage, str]] = deque()
        self.refused: list[str] = []  # the refusals actually sent
        # Every AUTH the server received, successful or not: (login, password).
        self.auth_attempts: list[tuple[str, str]] = []
        # Messages holding one of these byte strings are refused at DATA with the reply given.
        self._content_refusals: dict[bytes, str] = {}
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[SmtpMail]:
        with self._lock:
            return list(self._messages)

    def refuse(self, code: int, times: int = 1, message: str | None = None, at: Stage = "data") -> None:
        """Answer the next ``times`` MAIL/RCPT/DATA commands (``at``) with ``code``."""
        text = message or ("Try again later" if 400 <= code < 500 else "Rejected")
        with self._lock:
            self._refusals.extend([(at, f"{code} {text}")] * times)

    def refuse_containing(self, marker: bytes, code: int = 554, message: str = "Message content rejected") -> None:
        """Refuse at DATA, every time, any message whose bytes hold MARKER (a content filter)."""
        with self._lock:
            self._content_refusals[marker] = f"{code} {message}"

    def _refusal_for(self, content: bytes) -> str | None:
        with self._lock:
            for marker, reply in self._content_refusals.items():
                if marker in content:
                    self.refused.append(reply)
                    return reply
        return None

    def start(self) -> SmtpReceiver:
        self.port = _free_port()
        self._controller = Controller(
            _RecordingHandler(self),
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate if self.users else None,
            auth_required=bool(self.users),
            auth_require_tls=False,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        with self._lock:
            self.auth_attempts.append((auth_data.login.decode(), auth_data.password.decode()))
        expected = self.users.get(auth_data.login.decode())
        ok = expected is not None and expected == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _take_refusal(self, stage: Stage) -> str | None:
        with self._lock:
            if self._refusals and self._refusals[0][0] == stage:
                reply = self._refusals.popleft()[1]
                self.refused.append(reply)
                return reply
        return None

    def _record(self, mail: SmtpMail) -> None:
        with self._lock:
            self._messages.append(mail)


# --- a realistic alert ----------------------------------------------------------------------


def alert_content(**changes: Any) -> AlertContent:
    """An alert like the detector produces: one new country, with its evidence and context."""
    content = AlertContent(
        article_title="Officials say North Korea joined efforts to sway the vote",
        article_url="https://news.example.org/2024/10/north-korea-vote",
        feed="Example Wire",
        published=datetime(2024, 10, 2, 14, 30, tzinfo=UTC),
        relevance=0.71,
        findings=[
            FindingView(
                kind="country",
                value="North Korea",
                evidence="Officials said North Korea ran accounts that targeted voters in Ohio.",
                closest_known="China",
                closest_source="seeds/002_e589ff6f7929795d.txt",
                similarity=0.62,
                reason="no known country matches",
            )
        ],
        closest_allegation=ClosestAllegation(
            source="seeds/000_15f090fb8f4a8b8a.txt",
            sentence="Russia interfered in the 2016 election through hacking and social media.",
            score=0.83,
        ),
    )
    return content.model_copy(update=changes)


# --- fixtures (import them into a test module or conftest.py) -------------------------------


@pytest.fixture
def slack_receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


# --- a receiver that answers one byte at a time -------------------------------------------------


class DripReceiver:
    """An HTTP endpoint on 127.0.0.1 that reads a request, sends a 200 head announcing BODY, then
    drips BODY one byte every ``interval_s``: never idle long enough to trip a read timeout, never
    done. ``finished`` counts the answers it completed (the client stayed to the end)."""

    def __init__(self, body: bytes = b'{"ok": true, "padding": "....."}', interval_s: float = 0.5) -> None:
        self.body = body
        self.interval_s = interval_s
        self.requests = 0
        self.finished = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/drip"

    def __enter__(self) -> DripReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        with client:
            try:
                client.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                with self._lock:
                    self.requests += 1
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                )
                for byte in self.body:
                    if self._stopping.wait(self.interval_s):
                        return
                    client.sendall(bytes([byte]))
                with self._lock:
                    self.finished += 1
            except OSError:
                return  # the client gave up: what a deadline is for
