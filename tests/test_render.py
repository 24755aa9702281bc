"""Rendering: hostile text is escaped, messages stay within 4,096, digests split between items.

Every rendered message is also checked against the fake Bot API's HTML validator, the same
check that answers "can't parse entities" when a send would fail.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from delivery.render import (
    MAX_CALLBACK_DATA,
    UNSURE_MARK,
    AlertView,
    ThemeMatch,
    render_alert,
    render_digest,
    render_fold,
)
from delivery.telegram_html import MAX_MESSAGE, paginate, plain_text, utf16_len
from models.digests import Digest, DigestEntry, DigestGroup, UpcomingDate
from models.fields import fields_from_json
from models.views import ItemRow
from tests.fakes.telegram import _check_html

PUBLISHED = datetime(2026, 3, 28, 14, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> AT&T <b>unclosed & "quoted" </i>'


def view(**over: object) -> AlertView:
    base: dict[str, object] = {
        "title": "Additions to the Entity List",
        "url": "https://www.federalregister.gov/d/2025-05157",
        "source_name": "Federal Register (BIS)",
        "published_at": PUBLISHED,
        "summary": "BIS adds 80 entries to the Entity List.",
        "fields": {
            "document_type": "Rule",
            "effective_on": "2025-03-25",
            "comments_close_on": "2025-04-30",
        },
        "themes": (ThemeMatch("export-controls", "US export controls", ("Entity List",)),),
    }
    base.update(over)
    return AlertView(**base)  # type: ignore[arg-type]


def assert_valid(text: str) -> None:
    assert _check_html(text) is None, _check_html(text)
    assert 0 < utf16_len(text) <= MAX_MESSAGE


def test_alert_shows_title_source_local_date_themes_terms_facts_and_link() -> None:
    msg = render_alert(view(), "America/New_York")
    text = msg["text"]
    assert_valid(text)
    assert '<a href="https://www.federalregister.gov/d/2025-05157">' in text
    assert "Federal Register (BIS) · 2026-03-28 10:30 EDT" in text
    assert "US export controls — matched: <i>Entity List</i>" in text
    assert "\nRule\nEffective 2025-03-25 · Comments close 2025-04-30\n" in text
    assert msg["parse_mode"] == "HTML"


def test_an_alert_shows_a_term_once_and_not_again_inside_a_longer_one() -> None:
    # As a filing notice matched China AI rules' nested watchlist terms (seen in `make run`).
    themes = (
        ThemeMatch(
            "china-ai-rules",
            "China AI rules",
            ("生成式人工智能服务已备案", "生成式人工智能", "人工智能", "备案", "CAC"),
        ),
        ThemeMatch(
            "export-controls",
            "US export controls",
            ("Entity List", "entity list additions", "ENTITY LIST", "BIS", "Entity List"),
        ),
    )
    text = render_alert(view(themes=themes), "UTC")["text"]
    assert_valid(text)
    assert "China AI rules — matched: <i>生成式人工智能服务已备案, CAC</i>" in text
    assert "US export controls — matched: <i>entity list additions, BIS</i>" in text


def test_alert_buttons_mute_and_unsubscribe_within_64_bytes() -> None:
    slug = "a" * 48  # the longest slug
    msg = render_alert(view(themes=(ThemeMatch(slug, "Long", ("x",)),)), "UTC")
    assert msg["reply_markup"] is not None
    buttons = [b for row in msg["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons] == [f"mute:{slug}", f"unsub:{slug}"]
    assert all(len(b["callback_data"].encode()) <= MAX_CALLBACK_DATA for b in buttons)


def test_feedback_buttons_only_where_the_alert_names_a_theme_to_judge() -> None:
    """👍 / 👎 judge an alert's themes: an alert of a chat's own watched organisations (no
    theme) offers none, since a press there would judge nothing."""

    def datas(themes: tuple[ThemeMatch, ...]) -> list[str]:
        markup = render_alert(view(themes=themes, item_id=42), "UTC")["reply_markup"]
        rows = markup["inline_keyboard"] if markup is not None else []
        return [b["callback_data"] for row in rows for b in row]

    theme = ThemeMatch("export-controls", "US export controls", ("Entity List",), id=7)
    watch = ThemeMatch("", "Your watched organisations", ("Huawei",))
    assert datas((theme,))[:3] == ["fb:u:42", "fb:d:42", "fb:w:42:7"]
    assert datas((watch, theme))[:3] == ["fb:u:42", "fb:d:42", "fb:w:42:7"]
    assert not [d for d in datas((watch,)) if d.startswith("fb:")]


def test_hostile_text_is_escaped_everywhere() -> None:
    msg = render_alert(
        view(
            title=HOSTILE,
            source_name=HOSTILE,
            summary=HOSTILE,
            url='https://example.com/?a=1&b="><script>',
            fields={"document_type": HOSTILE},
            themes=(ThemeMatch("t", HOSTILE, (HOSTILE,)),),
        ),
        "UTC",
    )
    text = msg["text"]
    assert_valid(text)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "AT&amp;T" in text
    assert plain_text(text).count('<script>alert("x")</script>') >= 4


def test_a_javascript_url_is_not_linked() -> None:
    text = render_alert(view(url="javascript:alert(1)"), "UTC")["text"]
    assert "<a " not in text
    assert_valid(text)


@pytest.mark.parametrize("char", ["长", "&", '"', "😀"])
def test_huge_titles_stay_within_the_limit(char: str) -> None:
    msg = render_alert(
        view(title=char * 10_000, summary=char * 10_000, source_name=char * 500), "UTC"
    )
    assert_valid(msg["text"])


def test_fold_lists_what_fits_and_counts_the_rest() -> None:
    views = [view(title=f"实体清单新增条目 {i} " + "长" * 150) for i in range(140)]
    msg = render_fold(views, "Asia/Shanghai", 10)
    text = msg["text"]
    assert_valid(text)
    assert text.startswith("<b>140 more matching events</b>")
    listed = text.count("• ")
    assert 5 < listed < 140
    assert f"… and {140 - listed} more: see /latest" in text


def entry(i: int, theme_id: int, title: str, **fields: str) -> DigestEntry:
    return DigestEntry(
        item_id=i,
        theme_id=theme_id,
        matched_at=PUBLISHED,
        item=ItemRow(
            id=i,
            title=title,
            url=f"https://www.cac.gov.cn/2026-01/09/c_{i}.htm",
            source_name="CAC 网信发布",
            source_kind="cac",
            published_at=PUBLISHED - timedelta(hours=i),
            fields=fields_from_json(fields),
        ),
    )


def test_a_long_chinese_digest_splits_between_items_and_never_inside_a_tag() -> None:
    title = "国家互联网信息办公室关于发布生成式人工智能服务已备案信息的公告" * 4
    items = tuple(entry(i, 1, f"{title} {i} <b>&") for i in range(120))
    digest = Digest(
        since=PUBLISHED - timedelta(days=1),
        until=PUBLISHED,
        groups=(DigestGroup(1, "China AI rules", items),),
        upcoming=(UpcomingDate(date(2026, 3, 30), "effective", entry(999, 1, "出口管制")),),
    )
    messages = render_digest(digest, "Asia/Shanghai", "daily")
    assert len(messages) > 3
    for msg in messages:
        assert_valid(msg["text"])
    joined = "\n".join(m["text"] for m in messages)
    for i in range(120):  # every item, once, whole
        assert joined.count(f"{title} {i} &lt;b&gt;&amp;</a>") == 1
    assert messages[1]["text"].startswith("<b>China AI rules</b> (120) (continued)")
    assert messages[0]["text"].startswith("<b>Daily digest · 2026-03-28</b> (Asia/Shanghai)")
    assert "120 events in 1 theme" in messages[0]["text"]
    assert "<b>Upcoming (next 7 days)</b>" in messages[-1]["text"]
    assert "2026-03-30 effective: <a" in messages[-1]["text"]


def test_a_digests_unsure_entries_are_numbered_with_buttons_in_their_own_message() -> None:
    """Entries only one layer matched are numbered; each message carries 👍 / 👎 for the
    numbered entries it shows, naming the entry's item and theme, and no others."""
    title = "国家互联网信息办公室关于发布生成式人工智能服务已备案信息的公告" * 4
    items = tuple(entry(i, 1, f"{title} {i}") for i in range(1, 61))
    unsure = frozenset(range(2, 61, 3))  # 20 of the 60
    digest = Digest(
        since=PUBLISHED - timedelta(days=1),
        until=PUBLISHED,
        groups=(DigestGroup(7, "China AI rules", items, unsure=unsure),),
        upcoming=(),
    )
    messages = render_digest(digest, "Asia/Shanghai", "daily")
    assert len(messages) > 2
    assert "👍 / 👎 with its number below" in messages[0]["text"]
    seen: list[int] = []
    for msg in messages:
        assert_valid(msg["text"])
        markup = msg["reply_markup"]
        shown = [n for n in range(1, 21) if f"{UNSURE_MARK}{n} <a" in msg["text"]]
        datas = [
            b["callback_data"]
            for row in (markup or {"inline_keyboard": []})["inline_keyboard"]
            for b in row
        ]
        texts = [
            b["text"] for row in (markup or {"inline_keyboard": []})["inline_keyboard"] for b in row
        ]
        assert texts == [f"{m} {n}" for n in shown for m in ("👍", "👎")]
        item_of = {n: sorted(unsure)[n - 1] for n in shown}
        assert datas == [f"fb:{v}:{item_of[n]}:7" for n in shown for v in ("u", "d")]
        assert all(len(d.encode()) <= 64 for d in datas)
        assert all(len(row) <= 4 for row in (markup or {"inline_keyboard": []})["inline_keyboard"])
        seen.extend(shown)
    assert seen == list(range(1, 21))  # every unsure entry once, in order


def test_a_digest_of_many_short_unsure_entries_keeps_each_keyboard_small() -> None:
    """Short entries would fit a hundred to a message; Telegram refuses a keyboard that big,
    so a message holds at most 20 numbered entries (40 buttons) and the rest go on."""
    items = tuple(
        DigestEntry(
            item_id=i,
            theme_id=1,
            matched_at=PUBLISHED,
            item=ItemRow(i, f"AI {i}", None, "x", "rss", PUBLISHED),
        )
        for i in range(1, 151)
    )
    digest = Digest(
        since=PUBLISHED - timedelta(days=1),
        until=PUBLISHED,
        groups=(DigestGroup(1, "China AI rules", items, unsure=frozenset(range(1, 151))),),
        upcoming=(),
    )
    messages = render_digest(digest, "UTC", "daily")
    counts = [
        sum(len(row) for row in (m["reply_markup"] or {"inline_keyboard": []})["inline_keyboard"])
        for m in messages
    ]
    assert max(counts) == 40
    assert sum(counts) == 300  # every entry judged once


def test_an_empty_digest_says_so() -> None:
    digest = Digest(since=PUBLISHED, until=PUBLISHED, groups=(), upcoming=())
    [msg] = render_digest(digest, "Bad/Zone", "weekly")
    assert msg["text"].startswith("<b>Weekly digest · 2026-03-28</b> (UTC)")
    assert "Nothing new matched your themes." in msg["text"]
    assert_valid(msg["text"])


def test_pages_break_between_lines_and_keep_every_line() -> None:
    lines = [f"line {n} " + "字" * 300 for n in range(40)]
    out = paginate(lines, limit=1000)
    assert all(len(page) <= 1000 for page in out)
    assert [line for page in out for line in page.split("\n")] == lines
    assert paginate([]) == [""]
    # only a line longer than a page is cut, and it says so
    assert paginate(["x" * 50], limit=20) == ["x" * 19 + "…"]
