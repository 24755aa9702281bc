"""``policywatch parse`` and ``policywatch poll --once`` as real processes."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.feeds import FeedServer, Route, feed_server
from tests.test_cli import cli_env, policywatch

DATA = Path(__file__).parent / "data"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def test_parse_prints_json_lines(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db")
    sample = DATA / "news/tech_qq_rss_2015_gb2312.xml"
    result = policywatch(
        "parse", "--kind", "rss", "--timezone", "Asia/Shanghai", str(sample), env=env
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0]["title"] == "虚拟现实设备火了 HTC也来凑热闹"
    assert lines[0]["published_at"] == "2015-03-02T08:12:54+00:00"
    assert lines[0]["language"] == "zh"
    assert set(lines[0]) >= {
        "external_id",
        "url",
        "title",
        "summary",
        "published_at",
        "language",
        "fields",
    }


def test_parse_html_list_with_selectors(tmp_path: Path) -> None:
    page = tmp_path / "list.html"
    page.write_text(
        '<ul><li><a href="/p/1">First</a><span>2026-01-13</span></li></ul>', encoding="utf-8"
    )
    env = cli_env(f"sqlite:///{tmp_path}/pw.db")
    selectors = json.dumps({"item": "li", "title": "a", "date": "span"})
    result = policywatch(
        "parse",
        "--kind",
        "html_list",
        "--url",
        "https://www.bis.gov/news",
        "--selectors",
        selectors,
        str(page),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert (line["title"], line["url"]) == ("First", "https://www.bis.gov/p/1")


def test_parse_prints_screening_list_entries(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db")
    sample = DATA / "csl" / "csl_snapshot_2.csv"
    result = policywatch("parse", "--kind", "csl", str(sample), env=env)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    with sample.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(entries) == len(rows)
    zhipu = next(e for e in entries if e["name"] == "Beijing Zhipu Huazhang Technology Co., Ltd.")
    assert "Zhipu AI" in zhipu["alt_names"]
    assert (zhipu["federal_register_notice"], zhipu["start_date"]) == ("90 FR 4617", "2025-01-16")
    html = tmp_path / "page.html"
    html.write_bytes(b"<html><body>Access Denied</body></html>")
    refused = policywatch("parse", "--kind", "csl", str(html), env=env)
    assert refused.returncode == 1
    assert "HTML/XML page" in refused.stderr


def test_parse_reports_bad_input_clearly(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/pw.db")
    page = tmp_path / "denied.html"
    page.write_bytes(b"<html><body>Access Denied</body></html>")
    result = policywatch("parse", "--kind", "rss", str(page), env=env)
    assert result.returncode == 1
    assert "HTML page" in result.stderr
    assert "Traceback" not in result.stderr
    missing = policywatch("parse", "--kind", "rss", str(tmp_path / "nope.xml"), env=env)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    unknown = policywatch("parse", "--kind", "gopher", str(page), env=env)
    assert unknown.returncode == 2
    assert "unknown kind" in unknown.stderr


def test_poll_once_polls_every_enabled_source_and_prints_a_summary(
    tmp_path: Path, server: FeedServer
) -> None:
    server.routes["/feed"] = Route(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Entity List additions</title><link>https://example.org/1</link></item>"
        b"</channel></rss>",
        etag='"e1"',
    )
    server.routes["/broken"] = Route(b"nope", status=500)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        f"  - {{name: good, kind: rss, url: '{server.url('/feed')}', interval: 1s}}\n"
        f"  - {{name: broken, kind: rss, url: '{server.url('/broken')}', interval: 1s}}\n"
        f"  - {{name: paused, kind: rss, url: '{server.url('/feed')}', enabled: false}}\n",
        encoding="utf-8",
    )
    env = cli_env(
        f"sqlite:///{tmp_path}/pw.db",
        POLICYWATCH_SOURCES_FILE=str(sources),
        POLICYWATCH_ALLOW_PRIVATE_SOURCES="true",
    )
    assert policywatch("migrate", env=env).returncode == 0
    assert policywatch("seed", env=env).returncode == 0
    first = policywatch("poll", "--once", env=env)
    assert first.returncode == 1  # one source failed
    good = next(line for line in first.stdout.splitlines() if line.startswith("good"))
    assert "ok" in good
    assert "new=1" in good
    assert "HTTP 500" in next(
        line for line in first.stdout.splitlines() if line.startswith("broken")
    )
    assert not any(line.startswith("paused") for line in first.stdout.splitlines())
    second = policywatch("poll", "--once", env=env)
    good = next(line for line in second.stdout.splitlines() if line.startswith("good"))
    assert "not_modified" in good
    assert "new=0" in good
