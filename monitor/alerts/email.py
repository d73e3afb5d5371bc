"""Email: each alert as a multipart message (plain text and HTML) over SMTP, or, with
``alerts.email.digest``, every alert of a period in one message with its "also reported by" lines."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from monitor.alerts.channel import DELIVERED, ERROR_BODY_MAX, OneByOne, permanent, retry
from monitor.alerts.console import console_text
from monitor.alerts.escaping import clean, clip, html_text, prefix, safe_url, similarity_note, title_of, when
from monitor.config import EmailChannelSettings
from monitor.outbox import AlertContent, AlsoReported, Delivery, DeliveryStatus, FindingView, Payload

SUBJECT_TITLE_MAX = 120

# --- one alert ------------------------------------------------------------------------------------


def email_subject(content: AlertContent) -> str:
    subject = f"{prefix(content.test)}{clean(content.headline())} — {clip(title_of(content), SUBJECT_TITLE_MAX)}"
    # "=?utf-8?q?=0D=0ABcc:...?=" in a title is an RFC 2047 encoded word: Python's email package
    # before 3.11.10 (CVE-2024-6923) decodes it while folding and writes the CRLF it hides into
    # the header block. A space breaks the syntax and leaves the words readable.
    return subject.replace("=?", "= ?")


def _mail_domain(sender: str, domain_hint: str | None) -> str:
    domain = (domain_hint or sender.rpartition("@")[2]).strip().lower()
    domain = re.sub(r"[^a-z0-9.-]", "", domain)
    return domain or "monitor.invalid"


def _html_link(item: AlertContent | AlsoReported) -> str:
    url = safe_url(item.article_url)
    title = html_text(title_of(item), 500)
    return f'<a href="{html.escape(url, quote=True)}">{title}</a>' if url else title


def _html_finding(finding: FindingView) -> str:
    if finding.closest_known:
        source = f" from {html_text(finding.closest_source)}" if finding.closest_source else ""
        closest = (
            f"Closest known: <b>{html_text(finding.closest_known)}</b>{source}{similarity_note(finding.similarity)}"
        )
    else:
        closest = "Closest known: nothing similar known"
    reason = f"<br><i>{html_text(finding.reason)}</i>" if finding.reason else ""
    return (
        f"<h3>{html_text(finding.headline())}</h3>"
        f'<blockquote style="border-left:3px solid #ccc;margin:0;padding-left:8px">'
        f"{html_text(finding.evidence)}</blockquote>"
        f"<p>{closest}{reason}</p>"
    )


def _html_alert(content: AlertContent) -> str:
    """An alert as the inside of an HTML body (a message of its own, or a part of a digest)."""
    allegation = content.closest_allegation
    closest = (
        f"<p><b>Closest known allegation</b> ({html_text(allegation.source)}, score {allegation.score:.2f})"
        f"</p><blockquote>{html_text(allegation.sentence)}</blockquote>"
        if allegation
        else "<p><b>Closest known allegation:</b> none</p>"
    )
    test = "<p><b>TEST</b>: sent by <code>monitor test-alert</code>.</p>" if content.test else ""
    review = safe_url(content.review_url)
    link = f'<p><a href="{html.escape(review, quote=True)}">Review on the desk</a></p>' if review else ""
    return (
        f"{test}<h2>{html_text(content.headline())}</h2>{link}"
        + "".join(_html_finding(finding) for finding in content.findings)
        + f"<hr><p><b>{_html_link(content)}</b><br>Feed: {html_text(content.feed)} · Published: "
        f"{when(content.published)} · Relevance: {content.relevance:.2f}</p>{closest}"
    )


def _html_page(body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif">{body}</body></html>'
    )


def _message(
    subject: str, sender: str, to: list[str], message_id: str, domain: str, now: datetime | None
) -> EmailMessage:
    # The default policy encodes non-ASCII headers (RFC 2047) and rejects header injection.
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id
    message["List-Id"] = f"Monitor alerts <alerts.{domain}>"
    # RFC 3834: autoresponders must not answer this mail.
    message["Auto-Submitted"] = "auto-generated"
    return message


def email_message(
    content: AlertContent,
    *,
    sender: str,
    to: list[str],
    alert_id: int,
    domain_hint: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message; its Message-ID is stable so a re-send is a duplicate."""
    domain = _mail_domain(sender, domain_hint)
    # A real alert keeps one Message-ID across retries so mail systems drop duplicates; a test
    # alert gets a fresh one, or a second `monitor test-alert` would be dropped as a duplicate.
    message_id = make_msgid(f"test-alert-{alert_id}", domain) if content.test else f"<alert-{alert_id}@{domain}>"
    message = _message(email_subject(content), sender, to, message_id, domain, now)
    message["X-Monitor-Alert-Id"] = str(alert_id)
    message.set_content(console_text(content))
    message.add_alternative(_html_page(_html_alert(content)), subtype="html")
    return message


# --- a digest -------------------------------------------------------------------------------------


def digest_subject(items: list[Payload]) -> str:
    findings = sum(len(item.findings) for item in items if isinstance(item, AlertContent))
    also = sum(1 for item in items if isinstance(item, AlsoReported))
    parts = [f"{findings} new finding{'s' if findings != 1 else ''}"] if findings else []
    if also:
        parts.append(f"{also} also reported")
    return "[monitor] Digest: " + ", ".join(parts or ["nothing new"])


def _follows(item: AlsoReported, limit: int) -> str:
    return f"(follows: {clip(clean(item.original_title), limit)})" if item.original_title else ""


def digest_text(items: list[Payload]) -> str:
    lines = [digest_subject(items), ""]
    for content in (item for item in items if isinstance(item, AlertContent)):
        lines += [console_text(content), ""]
    others = [item for item in items if isinstance(item, AlsoReported)]
    if others:
        lines.append("Also reported by other outlets:")
    for item in others:
        original = f" {_follows(item, 200)}" if item.original_title else ""
        lines.append(f"- Also reported by {clean(item.feed)}: {clip(title_of(item), 500)}{original}")
        if url := safe_url(item.article_url):
            lines.append(f"  {url}")
    return "\n".join(lines).rstrip()


def digest_html(items: list[Payload]) -> str:
    body = "".join(_html_alert(item) + "<hr>" for item in items if isinstance(item, AlertContent))
    others = [item for item in items if isinstance(item, AlsoReported)]
    if others:
        lines = "".join(
            f"<li>Also reported by <b>{html_text(item.feed)}</b>: {_html_link(item)}"
            + (f" <i>(follows: {html_text(item.original_title, 200)})</i>" if item.original_title else "")
            + "</li>"
            for item in others
        )
        body += f"<h2>Also reported by other outlets</h2><ul>{lines}</ul>"
    return _html_page(f"<h1>{html_text(digest_subject(items))}</h1>{body}")


def email_digest(items: list[Payload], *, sender: str, to: list[str], digest_key: str) -> EmailMessage:
    """One message listing every item; its Message-ID is stable for the same set of alerts."""
    domain = _mail_domain(sender, None)
    message = _message(digest_subject(items), sender, to, f"<digest-{digest_key}@{domain}>", domain, None)
    message["X-Monitor-Digest"] = digest_key
    message.set_content(digest_text(items))
    message.add_alternative(digest_html(items), subtype="html")
    return message


# --- sending --------------------------------------------------------------------------------------


def smtp_outcome(code: int, message: str) -> Delivery:
    error = f"email: {code} {clip(clean(message), ERROR_BODY_MAX)}".rstrip()
    # 4xx is the server saying "not now" (greylisting, full queue); 5xx is "never".
    return retry(error) if 400 <= code < 500 else permanent(error)


class EmailChannel(OneByOne):
    name = "email"

    def __init__(self, settings: EmailChannelSettings) -> None:
        if not settings.host or not settings.to or not settings.sender:
            raise ValueError("email: host, from and to are required")
        self._settings = settings
        # With a digest, "also reported by" lines go into the next digest.
        self.digest_period_s = settings.digest
        self.follows_up = settings.digest is not None

    def _tls(self) -> tuple[bool, bool | None]:
        """(use_tls, start_tls): implicit TLS, required STARTTLS, or STARTTLS when offered.

        With a password to send, STARTTLS is required unless allow_plaintext_auth says otherwise:
        "when offered" would hand the password to a server (or a man in the middle) that says
        nothing of STARTTLS.
        """
        if self._settings.ssl:
            return True, False
        return False, (True if self._settings.starttls or self._settings.requires_tls else None)

    async def send(self, alert_id: int, content: AlertContent) -> Delivery:
        s = self._settings
        return await self._transmit(email_message(content, sender=s.sender, to=s.to, alert_id=alert_id))

    async def send_digest(self, digest_key: str, items: list[Payload]) -> Delivery:
        s = self._settings
        return await self._transmit(email_digest(items, sender=s.sender, to=s.to, digest_key=digest_key))

    async def _transmit(self, message: EmailMessage) -> Delivery:
        s = self._settings
        use_tls, start_tls = self._tls()
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=s.sender,
                recipients=s.to,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                use_tls=use_tls,
                start_tls=start_tls,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: retry if any refusal was temporary.
            codes = [r.code for r in exc.recipients]
            first = exc.recipients[0] if exc.recipients else None
            code = min(codes) if codes else 550
            return smtp_outcome(code, first.message if first else "all recipients refused")
        except aiosmtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.code, exc.message)
        except aiosmtplib.SMTPTimeoutError:
            return retry(f"email: timeout after {s.timeout:g}s")
        except OSError as exc:  # refused, reset, TLS failure; aiosmtplib's disconnects are OSErrors
            return retry(f"email: connection error: {type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPException as exc:
            if s.requires_tls and not s.ssl and "STARTTLS" in exc.message.upper():
                return permanent(
                    "email: the server offers no STARTTLS, so the password was not sent "
                    "(use TLS, or set alerts.email.allow_plaintext_auth: true to log in in clear)"
                )
            # What is left: the server lacks what the settings demand (STARTTLS, AUTH, SMTPUTF8).
            # Retrying cannot fix configuration; the dead row can be requeued once it is fixed.
            return permanent(f"email: not supported: {exc.message}")
        if refused:
            # Some recipients took it: the alert is delivered; the refusals are only worth noting.
            return Delivery(
                DeliveryStatus.DELIVERED,
                "email: refused by " + ", ".join(f"{a} ({r.code})" for a, r in refused.items()),
            )
        return DELIVERED
