"""Parsers run in worker processes give the same items, and their errors cross intact."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.errors import FetchError, ParseError
from scrapers.cpu import ParserPool
from scrapers.rss import parse_feed

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "news" / "tech_qq_rss_2015_gb2312.xml"


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(1)
    yield pool
    pool.close()


async def test_a_worker_parses_like_the_loop(pool: ParserPool) -> None:
    body = SAMPLE.read_bytes()
    headers = {"content-type": "application/rss+xml"}
    inline = parse_feed(body, headers, url="http://tech.qq.com/", source="qq")
    worked = await pool.run(parse_feed, body, headers, url="http://tech.qq.com/", source="qq")
    assert worked == inline
    assert len(worked.items) == 4


async def test_a_parse_error_crosses_the_process_boundary(pool: ParserPool) -> None:
    page = b"<html><body>Access Denied</body></html>"
    with pytest.raises(ParseError) as info:
        await pool.run(parse_feed, page, {"content-type": "text/html"}, url=None, source="gov")
    assert info.value.source == "gov"
    assert info.value.message


def test_source_errors_pickle() -> None:
    error = FetchError("fr-bis", "HTTP 429", retry_after=35.0, status=429)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.message, copy.retry_after, copy.status) == (
        "fr-bis",
        "HTTP 429",
        35.0,
        429,
    )
    parse = pickle.loads(pickle.dumps(ParseError("cac", "layout changed")))
    assert str(parse) == "cac: layout changed"


CHILD = """
import asyncio, os, time
from scrapers.cpu import ParserPool

async def main() -> None:
    pool = ParserPool(1)
    print(await pool.run(os.getpid), flush=True)
    time.sleep(120)

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no time to close the pool; the orphaned worker must not linger."""
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:  # the killed parent's resource tracker complains here
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), errors.read_text()
        worker = int(line)
        assert worker != proc.pid
        assert running(worker)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 15
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(worker), f"parser worker {worker} outlived its parent"
