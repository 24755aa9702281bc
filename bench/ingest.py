"""Ingest benchmark: ``policywatch poll --once`` over 200 loopback feeds of 50 items each,
against a bare httpx + feedparser loop over the same feeds; then a second run that the server
answers with 304s.

The floor is the bare loop: one process already running, one ``httpx.AsyncClient``, each feed
fetched and parsed by ``feedparser.parse`` one after the other, nothing stored. The pipeline is
``policywatch poll --once`` as a new process on a freshly migrated and seeded SQLite database
(every item new), start-up included: fetch, parse, normalize, store, classify, plan. Both run
side by side in one benchmark run against the same loopback server. ``startup_seconds`` is the
same command on a database with no sources: what a process costs before the first fetch.

Run with ``python -m bench.ingest``. The feed server runs in its own process so it does not
compete with the measured code for the GIL. Prints lines; ``run()`` returns the headline numbers.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import feedparser
import httpx

FEEDS = 200
ITEMS = 50
ROOT = Path(__file__).resolve().parents[1]


def feed_body(index: int) -> bytes:
    start = datetime(2026, 7, 1, tzinfo=UTC)
    items = []
    for n in range(ITEMS):
        when = format_datetime(start + timedelta(minutes=index * ITEMS + n))
        items.append(
            f"<item><title>Feed {index} story {n}: export controls on advanced chips</title>"
            f"<link>https://news.example.org/{index}/{n}?utm_source=rss</link>"
            f"<guid>https://news.example.org/{index}/{n}</guid><pubDate>{when}</pubDate>"
            f"<description>&lt;p&gt;Story {n} of feed {index} about the "
            "&lt;b&gt;Entity List&lt;/b&gt;"
            " and semiconductor equipment.&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {index}</title><link>https://news.example.org/{index}</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _serve(port_out: Any, ok: Synchronized[int], not_modified: Synchronized[int]) -> None:
    bodies = {f"/feed/{i}.xml": feed_body(i) for i in range(FEEDS)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{self.path}-v1"'
            if self.headers.get("If-None-Match") == etag:
                with not_modified.get_lock():
                    not_modified.value += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with ok.get_lock():
                ok.value += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


async def bare_loop(urls: list[str]) -> int:
    """The baseline: fetch each feed with httpx and parse it with feedparser, one by one."""
    entries = 0
    async with httpx.AsyncClient() as client:
        for url in urls:
            response = await client.get(url)
            parsed: Any = feedparser.parse(
                io.BytesIO(response.content),
                response_headers={"content-type": response.headers["content-type"]},
            )
            entries += len(parsed.entries)
    return entries


def _policywatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policywatch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _count_items(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM items").fetchone()
    return int(count)


def run() -> dict[str, float]:
    ok: Synchronized[int] = multiprocessing.Value("i", 0)
    not_modified: Synchronized[int] = multiprocessing.Value("i", 0)
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports, ok, not_modified), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        urls = [f"http://127.0.0.1:{port}/feed/{i}.xml" for i in range(FEEDS)]
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            sources = Path(tmp) / "sources.yaml"
            sources.write_text(
                "sources:\n"
                + "".join(
                    f"  - {{name: feed-{i}, kind: rss, url: '{u}', interval: 1h}}\n"
                    for i, u in enumerate(urls)
                ),
                encoding="utf-8",
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYWATCH_")}
            env.update(
                POLICYWATCH_DATABASE_URL=f"sqlite:///{db}",
                POLICYWATCH_SOURCES_FILE=str(sources),
                POLICYWATCH_ALLOW_PRIVATE_SOURCES="true",
                POLICYWATCH_LOG_LEVEL="ERROR",
                POLICYWATCH_DEMO="false",
            )
            started = time.perf_counter()
            for step in ("migrate", "seed"):
                done = _policywatch(env, step)
                if done.returncode != 0:
                    raise RuntimeError(f"{step} failed: {done.stderr}")
            setup = time.perf_counter() - started

            started = time.perf_counter()
            entries = asyncio.run(bare_loop(urls))
            bare = time.perf_counter() - started
            ok.value = 0

            started = time.perf_counter()
            first = _policywatch(env, "poll", "--once")
            pipeline = time.perf_counter() - started
            if first.returncode != 0:
                raise RuntimeError(
                    f"poll --once failed: {first.stdout[-2000:]} {first.stderr[-2000:]}"
                )
            stored_first = _count_items(db)
            first_200s = ok.value

            started = time.perf_counter()
            second = _policywatch(env, "poll", "--once")
            second_time = time.perf_counter() - started
            if second.returncode != 0:
                raise RuntimeError(f"second poll failed: {second.stderr[-2000:]}")
            stored_second = _count_items(db) - stored_first
            startup = _startup_seconds(Path(tmp), env)
    finally:
        server.terminate()
        server.join()
    return {
        "feeds": FEEDS,
        "items_per_feed": ITEMS,
        "bare_entries": entries,
        "bare_seconds": bare,
        "poll_once_seconds": pipeline,
        "ratio": pipeline / bare,
        "setup_seconds": setup,
        "cold_ratio": (setup + pipeline) / bare,
        "first_run_200s": first_200s,
        "first_run_items_stored": stored_first,
        "second_run_seconds": second_time,
        "second_run_304s": not_modified.value,
        "second_run_200s": ok.value - first_200s,
        "second_run_items_stored": stored_second,
        "startup_seconds": startup,
    }


def _startup_seconds(tmp: Path, env: dict[str, str]) -> float:
    """``policywatch poll --once`` on a migrated database with no sources."""
    empty = tmp / "empty.yaml"
    empty.write_text("sources: []\n", encoding="utf-8")
    bare_env = {
        **env,
        "POLICYWATCH_DATABASE_URL": f"sqlite:///{tmp / 'startup.db'}",
        "POLICYWATCH_SOURCES_FILE": str(empty),
    }
    for step in ("migrate", "seed"):
        _policywatch(bare_env, step)
    started = time.perf_counter()
    _policywatch(bare_env, "poll", "--once")
    return time.perf_counter() - started


def main() -> None:
    numbers = run()
    print(f"ingest: {FEEDS} loopback feeds x {ITEMS} items")
    print(
        f"  bare httpx+feedparser loop: {numbers['bare_seconds']:.2f} s "
        f"({int(numbers['bare_entries'])} entries parsed)"
    )
    print(
        f"  policywatch poll --once:    {numbers['poll_once_seconds']:.2f} s "
        f"({int(numbers['first_run_items_stored'])} items stored, "
        f"{int(numbers['first_run_200s'])} requests answered 200)"
    )
    print(f"  ratio poll/bare:            {numbers['ratio']:.2f} (goal: <= 1.5)")
    print(f"  start-up alone (no sources): {numbers['startup_seconds']:.2f} s")
    print(
        f"  from an empty file (migrate + seed + poll, three processes): "
        f"{numbers['setup_seconds'] + numbers['poll_once_seconds']:.2f} s, "
        f"ratio {numbers['cold_ratio']:.2f}"
    )
    print(
        f"  second poll --once:         {numbers['second_run_seconds']:.2f} s, "
        f"{int(numbers['second_run_304s'])} answered 304, "
        f"{int(numbers['second_run_200s'])} answered 200, "
        f"{int(numbers['second_run_items_stored'])} items stored"
    )


if __name__ == "__main__":
    main()
