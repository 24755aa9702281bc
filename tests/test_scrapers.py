"""Parsers and normalization against the real-world pathologies (sources.md §4), with
hand-checked expectations; the reconstructed CAC pages against the captured CSV rows."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.errors import ConfigError, ParseError
from models.numbers import chinese_number
from models.schedule import (
    HealthChange,
    expected_within,
    health_change,
    next_check_at,
    quiet_change,
)
from models.sources import parse_sources_document
from models.timeutil import describe_duration
from scrapers.cac import extract_dates, parse_cac_article, parse_cac_list
from scrapers.charset import detect_charset
from scrapers.federal_register import parse_documents, search_url
from scrapers.html_list import parse_html_list
from scrapers.normalize import canonical_url, detect_language, external_id, plain_text
from scrapers.rss import parse_feed

DATA = Path(__file__).parent / "data"
H: dict[str, str] = {}


def rss(
    items: str, *, decl: str = '<?xml version="1.0" encoding="utf-8"?>', extra: str = ""
) -> str:
    return f'{decl}<rss version="2.0"{extra}><channel><title>t</title>{items}</channel></rss>'


# ---------------------------------------------------------------- encodings


def test_gb2312_declared_only_in_the_prolog_reads_gbk_characters() -> None:
    # 镕 and 喆 are GBK-only: a strict gb2312 decoder fails on them.
    body = rss(
        "<item><title>朱镕基 与 陶喆</title><link>http://x.cn/1</link></item>",
        decl='<?xml version="1.0" encoding="gb2312"?>',
    ).encode("gb18030")
    assert [i.title for i in parse_feed(body, H).items] == ["朱镕基 与 陶喆"]


def test_a_bom_and_junk_before_the_declaration() -> None:
    body = (
        b"\xef\xbb\xbf"
        + b"\n\n  "
        + rss("<item><title>A</title><link>http://x/1</link></item>").encode()
    )
    assert [i.title for i in parse_feed(body, H).items] == ["A"]
    junk = (
        b"Warning: something in /var/www/feed.php\n" + rss("<item><title>B</title></item>").encode()
    )
    assert [i.title for i in parse_feed(junk, H).items] == ["B"]


@pytest.mark.parametrize(
    "artefact",
    [
        # MS Word's namespace PI, pasted into article HTML by many CMSs
        '<?xml:namespace prefix = o ns="urn:schemas-microsoft-com:office:office" /><o:p></o:p>',
        '<pre><?xml version="1.0"?><config/></pre>',  # an article about XML quoting some
    ],
)
def test_an_xml_pi_inside_an_item_of_a_feed_without_declaration_is_content(artefact: str) -> None:
    """Like China Daily's feeds, no XML declaration; an item's CDATA holds ``<?xml…``: every
    item is read (the text before it was cut as junk and the whole feed refused)."""
    second = f"<description><![CDATA[<p>{artefact}正文</p>]]></description>"
    items = "".join(
        f"<item><title>T{i}</title><link>https://x.cn/{i}</link>{second if i == 2 else ''}</item>"
        for i in (1, 2, 3)
    )
    for prolog in ("", '\n<?xml-stylesheet type="text/xsl" href="/rss.xsl"?>'):
        body = rss(items, decl=prolog).encode()
        assert [i.title for i in parse_feed(body, H).items] == ["T1", "T2", "T3"]
    junk = b"<br />\n<b>Warning</b>: header already sent in /var/www/feed.php<br />\n"
    declared = junk + rss(items).encode()  # junk before a real declaration is still dropped
    assert [i.title for i in parse_feed(declared, H).items] == ["T1", "T2", "T3"]


def test_a_utf8_bom_wins_over_a_latin1_header_on_pages_and_feeds() -> None:
    """A UTF-8 page or feed with a BOM that the server labels iso-8859-1 (a default charset in
    its config): the titles read as written, not as mojibake (the BOM is the bytes' own word)."""
    title = "国家互联网信息办公室关于发布2025年生成式人工智能服务已备案信息的公告"
    latin1 = {"Content-Type": "text/html; charset=iso-8859-1"}
    page = (
        '<html><head><meta charset="utf-8"></head><body><div id="loadingInfoPage"><li><h5>'
        f'<a href="//www.cac.gov.cn/2026-01/09/c_1769688009588554.htm" title="{title}">x</a>'
        '</h5><div class="times">2026-01-09</div></li></div></body></html>'
    )
    listed = parse_cac_list(
        b"\xef\xbb\xbf" + page.encode(),
        latin1,
        url="https://www.cac.gov.cn/wxzw/wxfb/A093702index_1.htm",
    )
    assert [i.title for i in listed.items] == [title]
    feed = rss(f"<item><title>{title}</title><link>https://x.cn/1</link></item>")
    parsed = parse_feed(
        b"\xef\xbb\xbf" + feed.encode(), {"Content-Type": "text/xml; charset=latin1"}
    )
    assert [i.title for i in parsed.items] == [title]


def test_gbk_html_without_any_declaration_is_detected() -> None:
    text = "国家互联网信息办公室关于发布生成式人工智能服务已备案信息的公告"
    page = f"<html><body><p>{text}</p></body></html>"
    assert detect_charset(page.encode("gbk"), {}, markup="html") == "gb18030"
    assert (
        detect_charset(page.encode("gbk"), {"Content-Type": "text/html; charset=GB2312"})
        == "gb18030"
    )


# ---------------------------------------------------------------- dates


def test_naive_dates_are_read_in_the_source_timezone_and_flagged() -> None:
    body = rss(
        "<item><title>a</title><link>http://x/1</link><pubDate>2015-03-02 16:12:54</pubDate></item>"
    )
    item = parse_feed(body.encode(), H, timezone="Asia/Shanghai").items[0]
    assert item.published_at == datetime(2015, 3, 2, 8, 12, 54, tzinfo=UTC)
    assert item.fields["date_zone_assumed"] == "Asia/Shanghai"
    item = parse_feed(body.encode(), H, timezone="America/New_York").items[0]
    assert item.published_at == datetime(2015, 3, 2, 21, 12, 54, tzinfo=UTC)


def test_missing_dates_are_left_to_first_seen_and_flagged() -> None:
    item = parse_feed(
        rss("<item><title>a</title><link>http://x/1</link></item>").encode(), H
    ).items[0]
    assert item.published_at is None
    assert item.published_at_guessed


def test_rfc822_with_an_offset_is_exact() -> None:
    body = rss("<item><title>a</title><pubDate>Fri, 01 May 2026 00:00:00 +0800</pubDate></item>")
    item = parse_feed(body.encode(), H, timezone="America/New_York").items[0]
    assert item.published_at == datetime(2026, 4, 30, 16, 0, tzinfo=UTC)
    assert "date_zone_assumed" not in item.fields


# ---------------------------------------------------------------- text and links


def test_double_escaped_entities_and_escaped_html() -> None:
    body = rss(
        "<item><title>VA&amp;amp;#39;s data &amp;#8226; more</title>"
        "<description>&lt;p&gt;Hello&lt;br /&gt;world&amp;amp;nbsp;!&lt;/p&gt;"
        "&lt;script&gt;x()&lt;/script&gt;</description></item>"
    )
    item = parse_feed(body.encode(), H).items[0]
    assert item.title == "VA's data • more"
    assert item.summary == "Hello world !"


def test_relative_links_resolve_against_xml_base_or_the_feed_url() -> None:
    body = rss(
        '<item xml:base="https://example.org/news/"><title>a</title><link>story/1?utm_source=rss#top</link></item>'
        "<item><title>b</title><link>/abs/2</link></item>"
    )
    items = parse_feed(body.encode(), H, url="https://feeds.example.com/x/feed.xml").items
    assert [i.url for i in items] == [
        "https://example.org/news/story/1#top",  # the fragment is published; the tracker is not
        "https://feeds.example.com/abs/2",
    ]


def test_unstable_guids_fall_back_to_the_link_then_a_hash() -> None:
    body = rss(
        "<item><title>a</title><guid>1</guid><link>http://x.org/a?utm_medium=rss</link></item>"
        "<item><title>b</title><guid isPermaLink='false'>CBMibEFVX3lx</guid><link>http://x.org/b</link></item>"
        "<item><title>c</title><guid>https://www.scmp.com/c?utm_source=rss_feed</guid></item>"
        "<item><title>d</title></item>"
    )
    ids = [i.external_id for i in parse_feed(body.encode(), H).items]
    # a guid is the identity exactly as given (issue 12: rewriting it merged distinct entries)
    assert ids[:3] == [
        "http://x.org/a",
        "CBMibEFVX3lx",
        "https://www.scmp.com/c?utm_source=rss_feed",
    ]
    assert ids[3].startswith("sha256:")
    assert ids[3] == external_id(guid=None, url=None, title="d", published=None)


def test_a_guid_repeated_within_the_feed_gives_way_to_the_links() -> None:
    body = rss(
        "<item><title>a</title><guid>https://site.example/</guid><link>http://x.org/a</link></item>"
        "<item><title>b</title><guid>https://site.example/ </guid><link>http://x.org/b</link></item>"
        "<item><title>c</title><guid>tag:x,2026:c</guid><link>http://x.org/c</link></item>"
    )
    ids = [i.external_id for i in parse_feed(body.encode(), H).items]
    assert ids == ["http://x.org/a", "http://x.org/b", "tag:x,2026:c"]


def test_atom_and_rdf_feeds() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><id>tag:x,2026:1</id><title>Atom one</title><link href="https://x.org/1"/>
    <updated>2026-05-01T10:00:00Z</updated></entry></feed>"""
    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://x.org/"><title>t</title></channel>
    <item rdf:about="https://x.org/2"><title>RDF two</title><link>https://x.org/2</link></item></rdf:RDF>"""
    (a,) = parse_feed(atom, H).items
    assert (a.external_id, a.title, a.published_at) == (
        "tag:x,2026:1",
        "Atom one",
        datetime(2026, 5, 1, 10, tzinfo=UTC),
    )
    assert [i.title for i in parse_feed(rdf, H).items] == ["RDF two"]


def test_not_a_feed_is_a_parse_error_not_an_empty_feed() -> None:
    with pytest.raises(ParseError, match="HTML page"):
        parse_feed(b"<html><body>Access Denied</body></html>", {"Content-Type": "text/html"})
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(b'{"error": "nope"}', H)
    with pytest.raises(ParseError, match="root element"):
        parse_feed(b"<?xml version='1.0'?><error>quota</error>", H)
    assert parse_feed(rss("").encode(), H).items == ()  # a valid feed with nothing in it


def test_a_feed_cut_off_in_transfer_loses_only_the_entry_it_ends_in() -> None:
    """A proxy served part of the feed: wherever the cut falls in the last entry, that entry is
    left for the next poll (its link and title alone were stored, undated, and the whole entry
    again under its guid); the complete ones are read, and a cut inside the first is an error."""
    items = "".join(
        f"<item><title>T{i}</title><link>https://x.org/{i}</link>"
        f"<pubDate>Mon, 27 Jul 2026 0{i}:00:00 GMT</pubDate><guid>https://x.org/?p={i}</guid>"
        f"<description><![CDATA[<p>About T{i}</p>]]></description></item>"
        for i in (1, 2)
    )
    whole = rss(items)
    second, end = whole.index("<item><title>T2"), whole.index("</channel>")
    for cut in range(second + 1, end):
        parsed = parse_feed(whole[:cut].encode(), H)
        assert [(i.external_id, i.title) for i in parsed.items] == [("https://x.org/?p=1", "T1")], (
            whole[second:cut]
        )
        assert parsed.skipped == (1 if cut >= second + len("<item>") else 0)
    assert [i.title for i in parse_feed(whole[:end].encode(), H).items] == ["T1", "T2"]
    with pytest.raises(ParseError, match="cut off"):
        parse_feed(whole[: whole.index("<guid>https://x.org/?p=1")].encode(), H)
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<entry><id>tag:x,2026:1</id><title>One</title></entry>"
        "<entry><title>Two</title><link href="
    )
    assert [i.title for i in parse_feed(atom.encode(), H).items] == ["One"]


def test_canonical_urls() -> None:
    assert (
        canonical_url("//www.cac.gov.cn/2026-01/09/c_1.htm")
        == "https://www.cac.gov.cn/2026-01/09/c_1.htm"
    )
    assert (
        canonical_url("HTTPS://WWW.Example.ORG:443?utm_campaign=x&id=3&fbclid=y#f")
        == "https://www.example.org/?id=3#f"
    )
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("mailto:a@b.c") is None


def test_plain_text_and_language() -> None:
    assert plain_text("Gallium Oxide (Ga<INF>2</INF>O<INF>3</INF>)") == "Gallium Oxide (Ga2O3)"
    assert plain_text("a" * 50, limit=10) == "a" * 9 + "…"
    assert detect_language("国家互联网信息办公室关于发布 AI 公告") == "zh"
    assert detect_language("Entity List additions for China") == "en"
    assert detect_language("2026 — 12") is None


# ---------------------------------------------------------------- Federal Register


def test_federal_register_fields_and_corrections() -> None:
    doc = b"""{"count": 1, "results": [{"document_number": "C1-2025-05427",
      "title": "Additions to the Entity List",
      "type": "Rule", "action": "Final rule; correction.", "publication_date": "2025-03-28",
      "effective_on": "2025-03-25", "comments_close_on": null,
      "abstract": "Adds Ga<INF>2</INF>O<INF>3</INF>.",
      "cfr_references": [{"title": 15, "part": 744}], "regulation_id_numbers": ["0694-AJ96"],
      "docket_ids": ["Docket No. 250324-0047"], "citation": "90 FR 14046",
      "pdf_url": "https://www.govinfo.gov/content/pkg/FR-2025-03-28/pdf/2025-05427.pdf",
      "html_url": "https://www.federalregister.gov/documents/2025/03/28/C1-2025-05427/x"}]}"""
    (item,) = parse_documents(doc, H).items
    assert item.external_id == "C1-2025-05427"
    assert item.summary == "Adds Ga2O3."
    assert item.published_at == datetime(2025, 3, 28, 4, 0, tzinfo=UTC)  # midnight Eastern
    assert item.fields == {
        "document_number": "C1-2025-05427",
        "document_type": "Rule",
        "action": "Final rule; correction.",
        "citation": "90 FR 14046",
        "pdf_url": "https://www.govinfo.gov/content/pkg/FR-2025-03-28/pdf/2025-05427.pdf",
        "publication_date": "2025-03-28",
        "effective_on": "2025-03-25",
        "regulation_id_numbers": ["0694-AJ96"],
        "docket_ids": ["Docket No. 250324-0047"],
        "cfr_references": ["15 CFR 744"],
        "correction_of": "2025-05427",
    }


def test_federal_register_empty_answer_and_errors() -> None:
    empty = (
        DATA / "federal_register/fr_documents_empty_result_capture_2026-10-02.json"
    ).read_bytes()
    assert parse_documents(empty, H).items == ()
    with pytest.raises(ParseError, match="refused"):
        parse_documents(b'{"errors": {"conditions": "bad"}}', H)
    with pytest.raises(ParseError, match="HTML"):
        parse_documents(b"<html>maintenance</html>", H)
    with pytest.raises(ParseError, match="neither"):
        parse_documents(b'{"status": 404}', H)


def test_federal_register_search_url_uses_a_date_window() -> None:
    url = search_url("https://www.federalregister.gov/api/v1/documents.json", {}, date(2026, 9, 27))
    assert "conditions%5Bagencies%5D%5B%5D=industry-and-security-bureau" in url
    assert "conditions%5Bpublication_date%5D%5Bgte%5D=2026-09-27" in url
    assert "order=newest" in url
    assert "per_page=100" in url


# ---------------------------------------------------------------- CAC


def test_the_reconstructed_list_page_gives_the_captured_rows() -> None:
    body = (DATA / "cac/cac_wxfb_list_page1_reconstructed.html").read_bytes()
    items = parse_cac_list(body, H, url="https://www.cac.gov.cn/wxzw/wxfb/A093702index_1.htm").items
    with (DATA / "cac/cac_wxfb_list_index_2024-10_to_2026-02.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:20]
    assert [(i.title, i.url, i.fields["publication_date"]) for i in items] == [
        (r["title"], r["url"], r["publication_date"]) for r in rows
    ]
    assert items[0].external_id == "cac:c_1771851453192164"


def test_a_list_page_with_no_items_is_a_layout_change() -> None:
    with pytest.raises(ParseError, match="zero items"):
        parse_cac_list(
            b"<html><body><div id='other'></div></body></html>", H, url="https://www.cac.gov.cn/"
        )


@pytest.mark.parametrize(
    ("name", "published", "facts"),
    [
        (
            "genai_2025_full_year",
            "2026-01-09T10:30:00+00:00",
            {
                "services_filed_total": 748,
                "apps_registered_total": 435,
                "services_filed_new": 446,
                "apps_registered_new": 330,
                "as_of": "2025-12-31",
            },
        ),
        (
            "genai_2025q2_republished",
            "2025-07-11T12:20:00+00:00",  # not the 2025/09/26 footer
            {
                "services_filed_total": 439,
                "apps_registered_total": 236,
                "services_filed_new": 93,
                "apps_registered_new": 77,
                "as_of": "2025-06-30",
            },
        ),
        (
            "genai_2025q1",
            "2025-04-08T09:00:00+00:00",
            {"services_filed_total": 346, "apps_registered_total": 159, "as_of": "2025-03-31"},
        ),
        (
            "genai_2024",
            "2025-01-08T11:47:00+00:00",
            {
                "services_filed_total": 302,
                "apps_registered_total": 105,
                "services_filed_new": 238,
                "as_of": "2024-12-31",
            },
        ),
    ],
)
def test_genai_filing_counts_match_the_published_timeline(
    name: str, published: str, facts: dict[str, object]
) -> None:
    body = (DATA / f"cac/cac_article_{name}_reconstructed.html").read_bytes()
    item = parse_cac_article(
        body, H, url="https://www.cac.gov.cn/2026-01/09/c_1769688009588554.htm"
    )
    assert item.published_at is not None
    assert item.published_at.isoformat() == published
    fields = dict(item.fields)
    assert {k: fields[k] for k in facts} == facts
    assert item.fields["filing_kind"] == "genai"
    assert item.fields["attachments"][0]["url"].endswith(".pdf")
    assert "publishdate" not in item.summary


def test_batches_and_chinese_numerals() -> None:
    body = (DATA / "cac/cac_article_deep_synthesis_batch15_reconstructed.html").read_bytes()
    item = parse_cac_article(
        body, H, url="https://www.cac.gov.cn/2026-01/07/c_1769516642440314.htm"
    )
    assert (item.fields["filing_kind"], item.fields["batch"]) == ("deep_synthesis", 15)
    assert [chinese_number(t) for t in ("八", "十", "十五", "二十一", "一百零二")] == [
        8,
        10,
        15,
        21,
        102,
    ]


def test_only_a_measures_own_provision_dates_it_in_the_captured_pages() -> None:
    """Of the 26 captured CAC pages, the two that publish a measure carry its effective date;
    the news item and the interview about the labelling measures quote that date but are not
    the measure, so nothing would be reminded of three times."""
    path = DATA / "cac/cac_wxfb_ai_and_filing_announcements_pagetext.csv"
    csv.field_size_limit(1 << 24)
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    dated = {
        r["title"]: extract_dates(
            r["title"], r["full_text"], date.fromisoformat(r["publication_date"])
        )
        for r in rows
    }
    assert len(dated) == 26
    assert {title: facts for title, facts in dated.items() if facts} == {
        "人工智能气象应用服务办法": {"effective_on": "2025-06-01"},
        "关于印发《人工智能生成合成内容标识办法》的通知": {"effective_on": "2025-09-01"},
    }


PUBLISHED = date(2025, 3, 14)


@pytest.mark.parametrize(
    ("title", "text", "facts"),
    [
        ("某规定", "本规定自公布之日起施行。", {"effective_on": "2025-03-14"}),
        (
            "关于印发《某办法》的通知",
            "本通知自印发之日起施行。 附件 第十条 本办法自2025年9月1日起施行。",
            {"effective_on": "2025-09-01"},  # the measure's own date, not the notice's
        ),
        ("某办法", "本办法自２０２５年１０月１日起施行。", {"effective_on": "2025-10-01"}),
        ("某办法", "本办法自2025年2月30日起施行。", {}),  # no such day
        ("某办法", "《另一办法》自2024年1月1日起施行。", {}),  # another measure's date
        (
            "关于《某办法（征求意见稿）》公开征求意见的通知",
            "本办法自2026年1月1日起施行。 意见反馈截止时间为2025年4月13日。",
            {"comments_close_on": "2025-04-13"},  # a draft's date is proposed, not law
        ),
        ("某草案", "反馈意见截止日期：2025年5月6日", {"comments_close_on": "2025-05-06"}),
    ],
)
def test_chinese_effective_dates_and_comment_deadlines(
    title: str, text: str, facts: dict[str, str]
) -> None:
    assert extract_dates(title, text, PUBLISHED) == facts


def test_a_measure_in_force_on_publication_needs_the_publication_day() -> None:
    assert extract_dates("某规定", "本规定自公布之日起施行。", None) == {}


# ---------------------------------------------------------------- html_list


def test_html_list_with_selectors() -> None:
    page = """<html><body><div class="views-row">
      <h3><a href="/press-release/a?utm_source=x">Commerce revises policy</a></h3>
      <time datetime="">January 13, 2026</time><p class="teaser">Sum &amp; more</p></div>
      <div class="views-row"><h3><a href="https://www.bis.gov/b">Second</a></h3>
      <time>bad date</time></div></body></html>"""
    selectors = {
        "item": ".views-row",
        "title": "h3 a",
        "date": "time",
        "date_format": "%B %d, %Y",
        "summary": ".teaser",
    }
    items = parse_html_list(
        page.encode(),
        H,
        url="https://www.bis.gov/news-updates",
        selectors=selectors,
        timezone="America/New_York",
    ).items
    assert [(i.title, i.url, i.summary) for i in items] == [
        ("Commerce revises policy", "https://www.bis.gov/press-release/a", "Sum & more"),
        ("Second", "https://www.bis.gov/b", ""),
    ]
    assert items[0].published_at == datetime(2026, 1, 13, 5, 0, tzinfo=UTC)
    assert items[1].published_at is None
    assert items[1].published_at_guessed
    with pytest.raises(ParseError, match="zero items"):
        parse_html_list(
            page.encode(),
            H,
            url="https://www.bis.gov/",
            selectors={"item": "article", "title": "h2"},
        )
    with pytest.raises(ParseError, match="required"):
        parse_html_list(page.encode(), H, url="https://www.bis.gov/", selectors={"item": "article"})


# ---------------------------------------------------------------- schedule


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_backoff_doubles_is_capped_and_honours_retry_after() -> None:
    hour = timedelta(hours=1)
    assert next_check_at(NOW, interval=hour, failures=0, jitter=0.5) == NOW + hour
    delays = [
        next_check_at(NOW, interval=timedelta(minutes=15), failures=n, jitter=0.999999) - NOW
        for n in range(1, 8)
    ]
    assert delays[0] < delays[1] < delays[2] < delays[3]
    assert max(delays) <= timedelta(hours=6)
    assert next_check_at(
        NOW, interval=timedelta(days=1), failures=9, jitter=0.999999
    ) - NOW <= timedelta(days=1)
    retry = next_check_at(
        NOW, interval=timedelta(seconds=30), failures=1, jitter=0.0, retry_after=hour
    )
    assert retry == NOW + hour
    hostile = next_check_at(
        NOW,
        interval=timedelta(seconds=30),
        failures=1,
        jitter=0.0,
        retry_after=timedelta(days=3650),
    )
    assert hostile == NOW + timedelta(days=7)


def test_health_changes() -> None:
    assert health_change(2, 3, failing_after=3) is HealthChange.FAILING
    assert health_change(3, 4, failing_after=3) is None
    assert health_change(4, 0, failing_after=3) is HealthChange.RECOVERED
    assert health_change(1, 0, failing_after=3) is None


def test_a_source_turns_quiet_once_and_active_again() -> None:
    day = timedelta(days=1)
    added = NOW - 30 * day

    def after(last_new: datetime | None, quiet_since: datetime | None = None, new: int = 0) -> Any:
        return quiet_change(
            quiet_since=quiet_since,
            last_new=last_new,
            since=added,
            now=NOW,
            expect=3 * day,
            new=new,
        )

    assert after(NOW - 2 * day) == (None, None)  # within the period
    assert after(NOW - 4 * day) == (HealthChange.QUIET, NOW)  # told once...
    assert after(NOW - 5 * day, quiet_since=NOW - day) == (None, NOW - day)  # ...not again
    assert after(NOW - 5 * day, quiet_since=NOW - day, new=2) == (HealthChange.ACTIVE, None)
    assert after(NOW - 5 * day, new=2) == (None, None)  # new items, never quiet: nothing
    assert after(None) == (HealthChange.QUIET, NOW)  # never brought anything in 30 days
    unwatched = quiet_change(
        quiet_since=NOW - day, last_new=NOW - 9 * day, since=added, now=NOW, expect=None, new=0
    )
    assert unwatched == (None, None)  # turned off: cleared without a notice


def test_how_long_a_source_may_go_without_new_items() -> None:
    assert expected_within("rss", {}) == timedelta(days=3)
    assert expected_within("federal_register", {}) == timedelta(days=21)
    assert expected_within("rss", {"expect_new_within": "12h"}) == timedelta(hours=12)
    assert expected_within("rss", {"expect_new_within": "off"}) is None
    assert expected_within("rss", {"expect_new_within": False}) is None
    assert expected_within("demo", {}) is None
    assert expected_within("rss", {"expect_new_within": "soon"}) == timedelta(days=3)
    with pytest.raises(ConfigError, match=r"options.expect_new_within: not a duration"):
        parse_sources_document(
            {
                "sources": [
                    {
                        "name": "a",
                        "kind": "rss",
                        "url": "https://example.org/feed",
                        "options": {"expect_new_within": "soon"},
                    }
                ]
            }
        )
    assert [describe_duration(timedelta(seconds=s)) for s in (40, 90, 7200, 86400, 3 * 86400)] == [
        "40 seconds",
        "1 minute",
        "2 hours",
        "24 hours",
        "3 days",
    ]
