"""Typed settings from environment variables (and an optional ``.env``).

``load_settings()`` is called once, by the composition root (the CLI); nothing here runs at
import time. A bad value fails at start with a message naming the variable. The bot token is a
``SecretStr`` and never appears in ``repr`` or logs.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.db.engine import PoolConfig
from models.errors import ConfigError
from models.timeutil import parse_duration

TELEGRAM_DEFAULT_BASE_URL = "https://api.telegram.org/bot"
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
MIN_DB_CONNECTIONS = 4


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Settings(BaseSettings):
    """Every deployment setting. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, case_sensitive=False, populate_by_name=False
    )

    database_url: str = Field(
        default="sqlite:///./var/policywatch.db",
        validation_alias=AliasChoices("POLICYWATCH_DATABASE_URL"),
    )
    # One process's connections (``models.db.engine.PoolConfig``): on PostgreSQL every worker
    # may hold size + overflow of them, within the server's max_connections (100 by default).
    db_pool_size: int = Field(
        default=5, ge=1, le=1000, validation_alias=AliasChoices("POLICYWATCH_DB_POOL_SIZE")
    )
    db_max_overflow: int = Field(
        default=10, ge=0, le=1000, validation_alias=AliasChoices("POLICYWATCH_DB_MAX_OVERFLOW")
    )
    db_pool_timeout: Duration = Field(
        default=timedelta(seconds=30), validation_alias=AliasChoices("POLICYWATCH_DB_POOL_TIMEOUT")
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    telegram_api_base_url: str = Field(
        default=TELEGRAM_DEFAULT_BASE_URL, validation_alias=AliasChoices("TELEGRAM_API_BASE_URL")
    )
    sources_file: Path = Field(
        default=Path("config/sources.yaml"),
        validation_alias=AliasChoices("POLICYWATCH_SOURCES_FILE"),
    )
    themes_file: Path = Field(
        default=Path("config/themes.yaml"), validation_alias=AliasChoices("POLICYWATCH_THEMES_FILE")
    )
    admin_ids: Annotated[frozenset[int], NoDecode, BeforeValidator(_split_ids)] = Field(
        default=frozenset(), validation_alias=AliasChoices("POLICYWATCH_ADMIN_IDS")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias=AliasChoices("POLICYWATCH_LOG_LEVEL")
    )
    log_json: bool = Field(default=False, validation_alias=AliasChoices("POLICYWATCH_LOG_JSON"))
    http_user_agent: str = Field(
        default="PolicyWatch/0.1 (policy-event tracker; +https://github.com/policywatch)",
        validation_alias=AliasChoices("POLICYWATCH_HTTP_USER_AGENT"),
    )
    allow_private_sources: bool = Field(
        default=False, validation_alias=AliasChoices("POLICYWATCH_ALLOW_PRIVATE_SOURCES")
    )
    send_rate: float = Field(
        default=25.0, gt=0, le=30, validation_alias=AliasChoices("POLICYWATCH_SEND_RATE")
    )
    source_tick: Duration = Field(
        default=timedelta(seconds=5), validation_alias=AliasChoices("POLICYWATCH_SOURCE_TICK")
    )
    outbox_tick: Duration = Field(
        default=timedelta(seconds=1), validation_alias=AliasChoices("POLICYWATCH_OUTBOX_TICK")
    )
    digest_tick: Duration = Field(
        default=timedelta(seconds=30), validation_alias=AliasChoices("POLICYWATCH_DIGEST_TICK")
    )
    alert_max_age: Duration | None = Field(
        default=timedelta(days=3), validation_alias=AliasChoices("POLICYWATCH_ALERT_MAX_AGE")
    )
    health_addr: str | None = Field(
        default=None, validation_alias=AliasChoices("POLICYWATCH_HEALTH_ADDR")
    )
    retention_unmatched: Duration | None = Field(
        default=timedelta(days=30), validation_alias=AliasChoices("POLICYWATCH_RETENTION_UNMATCHED")
    )
    retention_deliveries: Duration | None = Field(
        default=None, validation_alias=AliasChoices("POLICYWATCH_RETENTION_DELIVERIES")
    )
    retention_audit: Duration | None = Field(
        default=None, validation_alias=AliasChoices("POLICYWATCH_RETENTION_AUDIT")
    )
    train_interval: Duration | None = Field(
        default=timedelta(days=1), validation_alias=AliasChoices("POLICYWATCH_TRAIN_INTERVAL")
    )
    encoder: Literal["e5", "off"] = Field(
        default="e5", validation_alias=AliasChoices("POLICYWATCH_ENCODER")
    )
    encoder_threads: int | None = Field(
        default=None, ge=1, le=64, validation_alias=AliasChoices("POLICYWATCH_ENCODER_THREADS")
    )
    feedback_min_votes: int = Field(
        default=3, ge=1, le=1000, validation_alias=AliasChoices("POLICYWATCH_FEEDBACK_MIN_VOTES")
    )
    wary_min_alerts: int = Field(
        default=5, ge=0, le=10000, validation_alias=AliasChoices("POLICYWATCH_WARY_MIN_ALERTS")
    )
    wary_floor: float = Field(
        default=0.5, gt=0, le=1, validation_alias=AliasChoices("POLICYWATCH_WARY_FLOOR")
    )
    wary_window_days: int = Field(
        default=90, ge=1, le=3650, validation_alias=AliasChoices("POLICYWATCH_WARY_WINDOW_DAYS")
    )
    wary_explore_every: int = Field(
        default=4,
        ge=0,
        le=1000,
        validation_alias=AliasChoices("POLICYWATCH_WARY_EXPLORE_EVERY"),
    )
    http_connect_timeout: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_CONNECT_TIMEOUT")
    )
    http_read_timeout: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_READ_TIMEOUT")
    )
    http_total_timeout: float = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_TOTAL_TIMEOUT")
    )
    http_max_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_MAX_BYTES")
    )
    http_max_connections: int = Field(
        default=20, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_MAX_CONNECTIONS")
    )
    http_per_host: int = Field(
        default=2, gt=0, validation_alias=AliasChoices("POLICYWATCH_HTTP_PER_HOST")
    )
    parse_workers: int = Field(
        default=1, ge=0, le=8, validation_alias=AliasChoices("POLICYWATCH_PARSE_WORKERS")
    )
    demo: bool = Field(default=True, validation_alias=AliasChoices("POLICYWATCH_DEMO"))
    bot_concurrency: int = Field(
        default=64, ge=1, le=1024, validation_alias=AliasChoices("POLICYWATCH_BOT_CONCURRENCY")
    )
    chat_burst: int = Field(
        default=10, ge=1, le=1000, validation_alias=AliasChoices("POLICYWATCH_CHAT_BURST")
    )
    chat_per_minute: float = Field(
        default=30.0, gt=0, le=6000, validation_alias=AliasChoices("POLICYWATCH_CHAT_PER_MINUTE")
    )
    poll_concurrency: int = Field(
        default=16, gt=0, validation_alias=AliasChoices("POLICYWATCH_POLL_CONCURRENCY")
    )
    source_timeout: Duration = Field(
        default=timedelta(seconds=120), validation_alias=AliasChoices("POLICYWATCH_SOURCE_TIMEOUT")
    )
    source_max_backoff: Duration = Field(
        default=timedelta(hours=6), validation_alias=AliasChoices("POLICYWATCH_SOURCE_MAX_BACKOFF")
    )
    source_failing_after: int = Field(
        default=3, gt=0, validation_alias=AliasChoices("POLICYWATCH_SOURCE_FAILING_AFTER")
    )
    outbox_lease: Duration = Field(
        default=timedelta(seconds=60), validation_alias=AliasChoices("POLICYWATCH_OUTBOX_LEASE")
    )
    outbox_batch: int = Field(
        default=200, ge=1, le=5000, validation_alias=AliasChoices("POLICYWATCH_OUTBOX_BATCH")
    )
    send_max_in_flight: int = Field(
        default=8, ge=1, le=64, validation_alias=AliasChoices("POLICYWATCH_SEND_MAX_IN_FLIGHT")
    )
    send_max_attempts: int = Field(
        default=8, ge=1, le=100, validation_alias=AliasChoices("POLICYWATCH_SEND_MAX_ATTEMPTS")
    )
    send_retry_base: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias=AliasChoices("POLICYWATCH_SEND_RETRY_BASE"),
    )
    burst_max_alerts: int = Field(
        default=5, ge=2, le=1000, validation_alias=AliasChoices("POLICYWATCH_BURST_MAX_ALERTS")
    )
    burst_window: Duration = Field(
        default=timedelta(minutes=10), validation_alias=AliasChoices("POLICYWATCH_BURST_WINDOW")
    )
    worker_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        validation_alias=AliasChoices("POLICYWATCH_WORKER_ID"),
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from models.db.engine import normalize_database_url

        try:
            normalize_database_url(value)
        except Exception as exc:
            msg = f"not a usable database URL ({exc})"
            raise ValueError(msg) from None
        return value

    @field_validator("wary_explore_every")
    @classmethod
    def _check_explore(cls, value: int) -> int:
        if value == 1:
            msg = (
                "POLICYWATCH_WARY_EXPLORE_EVERY must be 0 (no exploring) or at least 2: with 1 "
                "every match would alert, which is POLICYWATCH_WARY_MIN_ALERTS=0"
            )
            raise ValueError(msg)
        return value

    @field_validator("db_max_overflow")
    @classmethod
    def _check_pool(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("db_pool_size")
        if size is not None and size + value < MIN_DB_CONNECTIONS:
            msg = (
                f"POLICYWATCH_DB_POOL_SIZE + POLICYWATCH_DB_MAX_OVERFLOW must be at least "
                f"{MIN_DB_CONNECTIONS} (got {size} + {value}): a worker that sends to Telegram "
                "and polls it keeps one connection for each of those two locks"
            )
            raise ValueError(msg)
        return value

    @field_validator("db_pool_timeout")
    @classmethod
    def _check_pool_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            msg = "must be longer than 0s"
            raise ValueError(msg)
        return value

    @property
    def db_pool(self) -> PoolConfig:
        return PoolConfig(
            self.db_pool_size, self.db_max_overflow, self.db_pool_timeout.total_seconds()
        )

    @field_validator("telegram_bot_token", mode="before")
    @classmethod
    def _check_token(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not _TOKEN_RE.match(text.strip()):
            msg = "does not look like a bot token (expected <digits>:<letters, digits, _ or ->)"
            raise ValueError(msg)
        return text.strip()

    @field_validator("telegram_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            msg = "must be an http(s) URL such as https://api.telegram.org/bot"
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("health_addr")
    @classmethod
    def _check_health_addr(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        host, sep, port = value.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            msg = "must be host:port, e.g. 0.0.0.0:8080"
            raise ValueError(msg)
        return value.strip()

    @property
    def console_demo(self) -> bool:
        """Without a bot token (and unless ``POLICYWATCH_DEMO=false``): the built-in demo source
        and a console chat following every theme (``policywatch.seeding``)."""
        return self.demo and self.telegram_bot_token is None

    @property
    def health_host_port(self) -> tuple[str, int] | None:
        if self.health_addr is None:
            return None
        host, _, port = self.health_addr.rpartition(":")
        return host.strip("[]"), int(port)

    @field_validator(
        "retention_unmatched",
        "retention_deliveries",
        "retention_audit",
        "train_interval",
        mode="before",
    )
    @classmethod
    def _keep_forever(cls, value: Any) -> Any:
        """``0``, ``off`` or ``never`` keeps things forever."""
        if isinstance(value, str) and value.strip().lower() in {"0", "off", "never", "forever", ""}:
            return None
        if value == 0:
            return None
        return value

    @field_validator("http_user_agent")
    @classmethod
    def _check_user_agent(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "\r\n"):
            msg = "must be one non-empty line"
            raise ValueError(msg)
        return value.strip()


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read settings from the environment (and ``env_file`` when it exists).

    Raises ConfigError naming each bad variable; values of secrets are never echoed.
    """
    kwargs: dict[str, Any] = {}
    if env_file is not None and Path(env_file).is_file():
        kwargs["_env_file"] = env_file
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = error["loc"][0] if error["loc"] else "?"
            problems.append(f"{_variable_name(str(loc))}: {error['msg']}")
        raise ConfigError(problems, origin="settings") from None


def _variable_name(loc: str) -> str:
    field = Settings.model_fields.get(loc)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        first = field.validation_alias.choices[0]
        return str(first)
    return loc
