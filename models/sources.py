"""Source declarations: what to poll, how often, and how to read it.

``parse_sources_document`` validates the already-loaded ``sources.yaml`` document (a mapping)
and returns every problem at once, naming the entry and the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from models.configdoc import entries
from models.errors import ConfigError
from models.schedule import EXPECT_OPTION, HealthChange
from models.timeutil import parse_duration

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ORIGIN_CONFIG = "config"
ORIGIN_CHAT = "chat"


ALERTS_INSTANT = "instant"  # a source's matches alert at once (the default)
ALERTS_DIGEST = "digest"  # they wait for the digest of every chat that has one (models.alerts)
ALERT_CHOICES = (ALERTS_INSTANT, ALERTS_DIGEST)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One declared source: a name, a kind (the parser), a URL and a polling interval."""

    name: str
    kind: str
    url: str
    interval_seconds: int
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    alerts: str = ALERTS_INSTANT  # or ALERTS_DIGEST: its matches wait for chats' digests
    digest_themes: tuple[str, ...] = ()  # themes (slugs) whose matches from it wait for digests


@dataclass(frozen=True, slots=True)
class ClaimedSource:
    """A source leased to this worker for one poll, with what the last poll left behind."""

    id: int
    name: str
    kind: str
    url: str
    options: Mapping[str, Any]
    interval_seconds: int
    etag: str | None
    last_modified: str | None
    cursor: Mapping[str, Any] | None
    consecutive_failures: int
    first_poll: bool


MAX_ETAG = 512  # sources.etag
MAX_LAST_MODIFIED = 128  # sources.last_modified


def usable_validator(value: str | None, limit: int) -> str | None:
    """A conditional-GET validator worth keeping: a server's ETag over ``limit`` characters or
    with control characters is dropped (the next poll is unconditional), never stored."""
    if value is None or len(value) > limit or not value.isprintable():
        return None
    return value


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What a poll did, for the health fields. ``error`` is None on success; a success without
    a ``cursor`` keeps the one stored."""

    error: str | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    cursor: Mapping[str, Any] | None = None
    items: int = 0
    new: int = 0


class RecordedPoll(NamedTuple):
    """What recording a poll changed: consecutive failures before and after, and for a
    successful poll whether the source turned quiet or active (``models.schedule``), how long
    it has brought nothing new and how long it may."""

    before: int
    after: int
    quiet: HealthChange | None = None
    silent_for: timedelta | None = None
    expected: timedelta | None = None
    quiet_now: bool = False  # quiet after this poll (told now or before)


def check_http_url(url: str) -> str | None:
    """Return a problem with ``url`` (only absolute http/https URLs with a host, and a port
    from 1 to 65535 when one is given, are allowed), or None. A port out of range would only
    fail later, inside the connection."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in {"http", "https"}:
        return f"only http and https URLs are allowed, not {parts.scheme or 'a relative URL'!r}"
    if not parts.hostname:
        return "the URL has no host"
    try:
        bad_port = parts.port == 0  # None when the URL gives none
    except ValueError:  # not a number, or out of range
        bad_port = True
    if bad_port:
        return "the port must be a number from 1 to 65535"
    return None


def parse_sources_document(
    doc: Any, *, known_kinds: Collection[str] | None = None, where: str = "sources file"
) -> list[SourceSpec]:
    """Validate a loaded sources document ``{"sources": [...]}`` into specs.

    Raises ConfigError listing every problem (duplicate names, unknown kinds, bad intervals,
    bad URLs, unknown keys).
    """
    problems: list[str] = []
    specs: list[SourceSpec] = []
    for label, name, entry in entries(
        doc,
        "sources",
        key="name",
        key_pattern=NAME_RE,
        key_rule="1-64 of a-z 0-9 _ . -",
        allowed={
            "name",
            "kind",
            "url",
            "interval",
            "enabled",
            "options",
            "alerts",
            "digest_themes",
        },
        problems=problems,
        where=where,
    ):
        kind = entry.get("kind")
        if not isinstance(kind, str) or (known_kinds is not None and kind not in known_kinds):
            choices = ", ".join(sorted(known_kinds)) if known_kinds else "a kind name"
            problems.append(f"{label}.kind: unknown kind {kind!r} (expected one of: {choices})")
        url = entry.get("url")
        url_problem = check_http_url(url) if isinstance(url, str) else "must be a string"
        if url_problem:
            problems.append(f"{label}.url: {url_problem}")
        try:
            interval = int(parse_duration(entry.get("interval", "15m")).total_seconds())
        except ValueError as exc:
            problems.append(f"{label}.interval: {exc}")
            interval = 0
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{label}.enabled: must be true or false")
        alerts = entry.get("alerts", ALERTS_INSTANT)
        if alerts not in ALERT_CHOICES:
            problems.append(f"{label}.alerts: must be instant or digest, not {alerts!r}")
        digest_themes = entry.get("digest_themes", []) or []
        if not isinstance(digest_themes, list) or not all(
            isinstance(t, str) and t.strip() for t in digest_themes
        ):
            problems.append(f"{label}.digest_themes: must be a list of theme slugs")
            digest_themes = []
        options = entry.get("options", {}) or {}
        if not isinstance(options, Mapping):
            problems.append(f"{label}.options: must be a mapping")
            options = {}
        expect = options.get(EXPECT_OPTION)
        if expect is not None and expect is not False and str(expect).strip().lower() != "off":
            try:
                parse_duration(expect)
            except ValueError as exc:
                problems.append(f"{label}.options.{EXPECT_OPTION}: {exc} (or off)")
        if isinstance(kind, str) and isinstance(url, str) and interval > 0:
            specs.append(
                SourceSpec(
                    name=name,
                    kind=kind,
                    url=url,
                    interval_seconds=max(1, interval),
                    enabled=bool(enabled),
                    options=dict(options),
                    alerts=str(alerts),
                    digest_themes=tuple(dict.fromkeys(t.strip() for t in digest_themes)),
                )
            )
    if problems:
        raise ConfigError(problems, origin=where)
    return specs
