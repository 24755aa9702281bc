"""Real feeds from the public corpora of feed libraries (``tests/data/feeds/``, provenance in
``tests/data/PROVENANCE.md``): each case is one of the defects ``bench/feed_corpus.py`` counted
over the whole corpora. Identity is the guid as given; links keep their query as published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery.render import fact_lines
from models.errors import ParseError
from models.items import ItemData
from models.sources import SourceSpec
from scrapers.federal_register import document_item, parse_documents
from scrapers.normalize import canonical_url, detect_language, plain_text
from scrapers.rss import parse_feed
from tests.conftest import Database

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def parse(name: str, **options: str) -> list[dict[str, object]]:
    items = parse_feed((FEEDS / name).read_bytes(), {}, **options).items
    return [
        {
            "id": i.external_id,
            "title": i.title,
            "url": i.url,
            "language": i.language,
            "published_at": i.published_at,
            "zone": i.fields.get("date_zone_assumed"),
        }
        for i in items
    ]


def test_guids_that_differ_only_in_their_fragment_stay_distinct() -> None:
    """Scripting News gives each post of a day the day's page with a #fragment: three posts,
    three identities (all of them collapsed onto one before, and two were never stored)."""
    items = parse("scripting_news_fragments.rss")
    assert [i["id"] for i in items] == [
        "http://scripting.com/2017/06/26.html#a080605",
        "http://scripting.com/2017/06/26.html#a010633",
        "http://scripting.com/2017/06/26.html#a090616",
    ]
    assert items[0]["url"] == "http://scripting.com/2017/06/26.html#a080605"


def test_links_keep_their_query_as_published() -> None:
    (item,) = parse("link_query_variable.xml")
    assert item["url"] == "http://example/?a=1&b=2&c"


@pytest.mark.parametrize(
    ("published", "kept"),
    [
        ("https://example.org/feed?rss", "https://example.org/feed?rss"),
        ("https://example.org/a?path=a/b/c&id=7", "https://example.org/a?path=a/b/c&id=7"),
        ("https://example.org/a?q=%E4%B8%AD+x", "https://example.org/a?q=%E4%B8%AD+x"),
        ("https://example.org/a?utm_source=rss&id=7&fbclid=x", "https://example.org/a?id=7"),
        ("HTTPS://Example.ORG:443/a?B=1&a=2", "https://example.org/a?B=1&a=2"),
    ],
)
def test_only_tracking_parameters_leave_a_link(published: str, kept: str) -> None:
    assert canonical_url(published) == kept


def test_a_plain_text_title_keeps_its_angle_brackets() -> None:
    (item,) = parse("atom_title_text_plain_brackets.xml")
    assert item["title"] == "History of the <blink> tag"


def test_escaped_brackets_in_an_rss_title_are_text() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><item>'
        "<title>&lt;DVD版&gt; 機動戦士ガンダム</title><link>https://example.jp/1</link>"
        "</item></channel></rss>"
    ).encode()
    (item,) = parse_feed(body, {}).items
    assert item.title == "<DVD版> 機動戦士ガンダム"


def test_character_references_without_a_semicolon_are_decoded() -> None:
    assert plain_text("Caf&#233 &#8212 done") == "Café — done"
    assert plain_text("na&#xEF;ve &#xE9 x", markup=False) == "naïve é x"
    assert plain_text("AT&T and R&D") == "AT&T and R&D"


def test_a_namespace_prefixed_root_is_a_feed() -> None:
    items = parse("rss2_prefixed_root.xml")
    assert [i["title"] for i in items] == ["Test Item - - RSS2.0 w/ NS no default NS"]


def test_drupals_htmllat1_doctype_is_not_refused() -> None:
    assert parse("drupal_htmllat1_doctype.xml") == []


def test_a_doctype_declaring_its_own_entities_is_still_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "expand me">]>'
        b"<rss><channel><item><title>&x;</title></item></channel></rss>"
    )
    with pytest.raises(ParseError, match="entit"):
        parse_feed(body, {})


@pytest.mark.parametrize(
    "prolog",
    [
        "<!--" + "x" * 70_000 + "-->",  # 70 KB of comment first: only 64 KB were looked at
        "<?pi " + "x" * 70_000 + "?>",
        # inside the DOCTYPE, what ends it or opens the root in a comment, a string or a PI
        f'<!--{"x" * 70_000}--><!DOCTYPE rss SYSTEM "a]><rss>" [<!-- ]><rss> --><?p ]> ?>'
        '<!ATTLIST rss v CDATA "]><rss>">',
    ],
)
def test_entity_declarations_are_refused_however_long_the_prolog(prolog: str) -> None:
    """Nested entities expand to gigabytes (a 2 MB feed took 87 s and 2 GB): refused wherever
    the prolog declares them, not only in its first 64 KB."""
    entities = '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    doctype = f"<!DOCTYPE rss [{entities}]>" if "DOCTYPE" not in prolog else f"{entities}]>"
    body = (
        f'<?xml version="1.0"?>{prolog}{doctype}<rss version="2.0"><channel><item>'
        "<title>t</title><description>&b;</description></item></channel></rss>"
    )
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(body.encode(), {})


def test_a_long_harmless_prolog_is_read() -> None:
    drupal = (FEEDS / "drupal_htmllat1_doctype.xml").read_text()
    padded = drupal.replace("<!DOCTYPE", "<!--" + "x" * 70_000 + "--><!DOCTYPE", 1)
    assert parse_feed(padded.encode(), {}).items == ()


def test_japanese_is_not_labelled_chinese_nor_read_in_china_time() -> None:
    (item,) = parse("japanese_eucjp.xml")
    assert item["title"] == "ゲーム三昧な正月"
    assert item["language"] == "ja"
    assert detect_language("生成式人工智能服务管理暂行办法") == "zh"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><item>'
        "<title>ゲーム三昧な正月</title><link>https://example.jp/1</link>"
        "<pubDate>2007-01-03 10:00:00</pubDate></item></channel></rss>"
    ).encode()
    (dated,) = parse_feed(body, {}).items
    assert dated.fields.get("date_zone_assumed") == "Asia/Tokyo"
    assert dated.published_at == datetime(2007, 1, 3, 1, 0, tzinfo=UTC)


def test_the_federal_registers_error_message_is_kept() -> None:
    body = json.dumps({"status": 400, "message": "Invalid search: conditions[agencies]"})
    with pytest.raises(ParseError, match=r"Invalid search: conditions\[agencies\]"):
        parse_documents(body.encode(), {})


def test_a_cfr_reference_without_a_part_is_not_printed_as_part_zero() -> None:
    item = document_item(
        {
            "document_number": "2026-1",
            "title": "Grants",
            "cfr_references": [{"chapter": 0, "title": 2}, {"title": 15, "part": 744}],
        }
    )
    assert item is not None
    assert item.fields.get("cfr_references") == ["2 CFR", "15 CFR 744"]
    assert "2 CFR; 15 CFR 744" in " ".join(fact_lines(item.fields))


async def test_items_stored_under_the_old_ids_are_adopted_not_duplicated(db: Database) -> None:
    """Before issue 12 a URL guid lost its tracking parameters and its fragment. Upgrading
    must not store (and alert) those items a second time: the store renames the old rows."""
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel>'
        "<item><title>SCMP story</title><guid>https://www.scmp.com/c?utm_source=rss_feed</guid>"
        "</item>"
        + (FEEDS / "scripting_news_fragments.rss").read_text(encoding="utf-8").split("<channel>")[1]
    ).replace("</rss>", "")
    items = parse_feed((body + "</rss>").encode(), {}).items
    async with db.transaction() as uow:
        await uow.sources.sync_from_config(
            [SourceSpec(name="s", kind="rss", url="https://e.org/f", interval_seconds=60)], NOW
        )
        source = await uow.sources.get("s")
        assert source is not None
        old = [  # as the old release stored them: the same entries under the old ids
            ItemData(external_id="https://www.scmp.com/c", title="SCMP story"),
            ItemData(external_id="http://scripting.com/2017/06/26.html", title=items[1].title),
        ]
        await uow.items.store(source.id, old, NOW)
    async with db.transaction() as uow:
        result = await uow.items.store(source.id, items, NOW)
        stored = await uow.items.known_external_ids(source.id, [i.external_id for i in items])
    assert stored == {i.external_id for i in items}
    # the SCMP story and the first Scripting News post were stored already; two posts are new
    assert [i.external_id for i in result.new] == [
        "http://scripting.com/2017/06/26.html#a010633",
        "http://scripting.com/2017/06/26.html#a090616",
    ]


def guid_feed(*entries: tuple[str, str, str]) -> bytes:
    """(title, link, guid) entries."""
    items = "".join(
        f'<item><title>{t}</title><link>{link}</link><guid isPermaLink="false">{g}</guid>'
        "<pubDate>Tue, 01 Dec 2026 08:00:00 GMT</pubDate></item>"
        for t, link, g in entries
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


H20 = ("Nvidia H20 export licences", "https://news.example/a", "tag:news.example,2026:1")
ASCEND = ("Huawei Ascend 910C", "https://news.example/b", "tag:news.example,2026:2")
SMIC = ("SMIC 5 nm yields", "https://news.example/c", "tag:news.example,2026:3")


@pytest.mark.parametrize(
    "odd_poll",
    [
        (H20, H20, ASCEND),  # one story listed twice (featured and latest)
        (H20, (SMIC[0], SMIC[1], H20[2]), ASCEND),  # a CMS bug: a new story given H20's guid
    ],
    ids=["listed-twice", "guid-shared-once"],
)
async def test_a_guid_shared_in_one_poll_stores_no_story_twice(
    db: Database, odd_poll: tuple[tuple[str, str, str], ...]
) -> None:
    async with db.transaction() as uow:
        await uow.sources.sync_from_config(
            [SourceSpec(name="s", kind="rss", url="https://e.org/f", interval_seconds=60)], NOW
        )
        source = await uow.sources.get("s")
        assert source is not None
        new: list[list[str]] = []
        for document in (
            guid_feed(H20, ASCEND),
            guid_feed(*odd_poll),
            guid_feed(H20, SMIC, ASCEND),
        ):
            result = await uow.items.store(source.id, parse_feed(document, {}).items, NOW)
            new.append(sorted(i.title for i in result.new))
    assert new[0] == [ASCEND[0], H20[0]]
    assert H20[0] not in new[1] + new[2]  # never stored again
    assert sum(SMIC[0] in titles for titles in new) == 1
