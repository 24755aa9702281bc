"""Settings: defaults, parsing, and errors that name the variable without echoing secrets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from models.errors import ConfigError
from policywatch.app import wary_policy
from policywatch.logs import redact
from policywatch.settings import TELEGRAM_DEFAULT_BASE_URL, load_settings

VARIABLES = (
    "POLICYWATCH_DATABASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "POLICYWATCH_SOURCES_FILE",
    "POLICYWATCH_THEMES_FILE",
    "POLICYWATCH_ADMIN_IDS",
    "POLICYWATCH_LOG_LEVEL",
    "POLICYWATCH_SEND_RATE",
    "POLICYWATCH_SOURCE_TICK",
    "POLICYWATCH_DB_POOL_SIZE",
    "POLICYWATCH_DB_MAX_OVERFLOW",
    "POLICYWATCH_DB_POOL_TIMEOUT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings(env_file=None)
    assert settings.database_url == "sqlite:///./var/policywatch.db"
    assert settings.telegram_bot_token is None
    assert settings.telegram_api_base_url == TELEGRAM_DEFAULT_BASE_URL
    assert settings.sources_file == Path("config/sources.yaml")
    assert settings.themes_file == Path("config/themes.yaml")
    assert settings.admin_ids == frozenset()
    assert settings.log_level == "INFO"
    assert settings.send_rate == 25.0


def test_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", "postgresql://pw@db:5432/pw")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:AAH-secret_token")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/bot/")
    monkeypatch.setenv("POLICYWATCH_ADMIN_IDS", " 11, 22 ,33")
    monkeypatch.setenv("POLICYWATCH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POLICYWATCH_SOURCE_TICK", "30s")
    monkeypatch.setenv("POLICYWATCH_WARY_EXPLORE_EVERY", "0")
    settings = load_settings(env_file=None)
    assert wary_policy(settings).explore_every == 0  # what the planner and /watch stats get
    assert settings.admin_ids == frozenset({11, 22, 33})
    assert settings.telegram_api_base_url == "http://127.0.0.1:8081/bot"
    assert settings.source_tick == timedelta(seconds=30)
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123456:AAH-secret_token"
    assert "secret_token" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("POLICYWATCH_ADMIN_IDS=5\nPOLICYWATCH_LOG_LEVEL=WARNING\n", encoding="utf-8")
    settings = load_settings(env_file=env)
    assert settings.admin_ids == frozenset({5})
    assert settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POLICYWATCH_ADMIN_IDS", "12,abc"),
        ("POLICYWATCH_LOG_LEVEL", "LOUD"),
        ("POLICYWATCH_DATABASE_URL", "mysql://x@y/z"),
        ("POLICYWATCH_DATABASE_URL", "not a url"),
        ("TELEGRAM_API_BASE_URL", "ftp://example.org/bot"),
        ("POLICYWATCH_SEND_RATE", "100"),
        ("POLICYWATCH_SOURCE_TICK", "soon"),
        ("POLICYWATCH_DB_POOL_SIZE", "0"),
        ("POLICYWATCH_DB_MAX_OVERFLOW", "-1"),
        ("POLICYWATCH_DB_POOL_TIMEOUT", "0s"),
        ("POLICYWATCH_WARY_EXPLORE_EVERY", "1"),  # every match would alert: say =0 of min
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert variable in str(info.value)


def test_bad_token_is_named_but_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "hunter2-is-not-a-token")
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert "TELEGRAM_BOT_TOKEN" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYWATCH_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("POLICYWATCH_ADMIN_IDS", "x")
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert "POLICYWATCH_LOG_LEVEL" in str(info.value)
    assert "POLICYWATCH_ADMIN_IDS" in str(info.value)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            "HTTP Request: POST https://api.telegram.org/bot123456:AAHsecretTOKEN_x/getMe",
            "AAHsecret",
        ),
        ("token=123456789:ABCdefGHIjkl-mno", "ABCdefGHI"),
        ("connecting to postgresql://pw:s3cr3t@db:5432/pw", "s3cr3t"),
    ],
)
def test_log_redaction(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_every_setting_is_documented_in_env_example() -> None:
    """A newcomer finds every variable in .env.example (and the main ones in README)."""
    from pydantic import AliasChoices

    from policywatch.settings import Settings

    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text(encoding="utf-8")
    missing = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        name = str(alias.choices[0])
        if name not in example:
            missing.append(name)
    assert missing == []
