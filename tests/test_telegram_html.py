"""The one escaper and splitter: Telegram counts UTF-16 units, and a cut never lands inside a
tag, an entity or a character; every piece it produces is HTML Telegram accepts."""

from __future__ import annotations

import random
import re

import pytest

from delivery.telegram_html import cut, esc, fit, pack, paginate, plain_text, utf16_len
from tests.fakes.telegram import _check_html

LINE = '<b>实体清单</b> <a href="https://e.org/?a=1&amp;b=2">AT&amp;T 😀😀</a> <i>x</i>'


def test_utf16_counts_what_telegram_counts() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("实体") == 2
    assert utf16_len("😀") == 2  # outside the BMP: a surrogate pair
    assert len("😀") == 1


def test_escaping_leaves_no_markup() -> None:
    assert esc('<script>"x"&') == "&lt;script&gt;&quot;x&quot;&amp;"
    assert plain_text(esc("<b>&amp;</b>")) == "<b>&amp;</b>"


@pytest.mark.parametrize("limit", range(4, utf16_len(LINE) + 2))
def test_a_cut_line_is_valid_html_within_the_limit(limit: int) -> None:
    text = cut(LINE, limit)
    assert utf16_len(text) <= limit
    assert _check_html(text) is None, text
    if utf16_len(LINE) > limit:
        assert text.endswith(("…", "…</b>", "…</a>", "…</i>"))
    else:
        assert text == LINE


def test_a_cut_never_splits_a_surrogate_pair_or_an_entity() -> None:
    for limit in range(3, 80):
        text = cut("😀" * 30 + " &amp; " * 5, limit)
        assert utf16_len(text) <= limit  # an emoji that would straddle the limit is left out
        assert re.search(r"&[#\w]*…", text) is None, text


def test_paginate_counts_utf16_and_keeps_every_line_whole() -> None:
    lines = ["😀" * 100 + f" {n}" for n in range(50)]  # 203 units each, 103 characters
    pages = paginate(lines, limit=1000)
    assert all(utf16_len(p) <= 1000 for p in pages)
    assert len(pages) == 13  # 4 lines a page by UTF-16 units (9 by characters)
    assert [line for page in pages for line in page.split("\n")] == lines


def test_fit_says_how_many_lines_it_dropped() -> None:
    lines = [f"<b>line {n}</b> " + "x" * 90 for n in range(100)]
    text = fit(lines, limit=1000)
    assert utf16_len(text) <= 1000
    kept = text.count("<b>line")
    assert text.endswith(f"… and {100 - kept} more lines")
    assert _check_html(text) is None
    assert fit(["short"]) == "short"


def test_pack_repeats_a_heading_when_a_group_runs_over() -> None:
    blocks = [(None, "<b>Head</b>")] + [
        ("<b>Head</b> (continued)", f"• {n} " + "y" * 50) for n in range(40)
    ]
    messages = pack(blocks, limit=500)
    assert len(messages) > 1
    assert all(m.startswith("<b>Head</b>") for m in messages)
    assert all(utf16_len(m) <= 500 for m in messages)


def test_random_html_lines_always_split_into_valid_messages() -> None:
    rng = random.Random(7)
    pieces = [
        "<b>粗体</b>",
        "<i>it</i>",
        "&amp;",
        "&lt;",
        "😀",
        "字",
        "a",
        " ",
        '<a href="https://x.org/">l</a>',
    ]
    for _ in range(200):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 400)))
        for page in paginate([line, line], limit=rng.randint(20, 300)):
            assert _check_html(page) is None, page
