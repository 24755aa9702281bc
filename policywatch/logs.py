"""Logging: structlog over the standard library, console or JSON, with secrets redacted.

Records from PTB, httpx, APScheduler and SQLAlchemy go through the same formatter and the same
redaction. httpx logs full request URLs at INFO, and Telegram URLs contain the bot token, so
httpx and httpcore are raised to WARNING and every rendered line is scrubbed anyway.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_PATTERNS = (
    # bot tokens, bare or inside a Bot API URL path
    (re.compile(r"(bot)?\d{3,}:[A-Za-z0-9_-]{8,}"), r"\1<redacted-token>"),
    # passwords in URLs: scheme://user:password@host
    (re.compile(r"(\w+://[^:/@\s]+):[^@/\s]+@"), r"\1:<redacted>@"),
)


def redact(text: str) -> str:
    """Remove bot tokens and URL passwords from ``text``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact(value)
        elif isinstance(value, BaseException):
            event[key] = redact(repr(value))
    return event


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog and the standard library once, at start-up."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick still running when its next run is due is skipped on purpose (max_instances=1);
    # APScheduler reports each skip as a warning, which is noise for us.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
