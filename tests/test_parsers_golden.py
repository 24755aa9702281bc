"""Golden files: every captured sample (and each reconstructed CAC page) parses to its checked
expected output, stored beside it as ``<file>.expected.json`` (the ``policywatch parse`` JSON
Lines shape, as a list). Regenerate with ``POLICYWATCH_UPDATE_GOLDENS=1 pytest
tests/test_parsers_golden.py`` and review the diff before committing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from models.items import ItemData
from policywatch.parse_command import item_json, parse_file

DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("POLICYWATCH_UPDATE_GOLDENS") == "1"
FEED_URL = "https://feeds.example.org/feed.xml"

# file → (parse kind, the URL it came from, the source's timezone option)
CASES: dict[str, tuple[str, str | None, str | None]] = {
    "news/chinadaily_chinawatch_life_rss_excerpt.xml": (
        "rss",
        "https://usa.chinadaily.com.cn/chinawatch_life.xml",
        None,
    ),
    "news/feedsky_csdn_blog_rss_2009_excerpt.xml": (
        "rss",
        "http://feeds.feedsky.com/csdn.net/caimouse",
        None,
    ),
    "news/google_news_rss_search_item_capture_2026-07-27.xml": (
        "rss",
        "https://news.google.com/rss/search?q=fed",
        None,
    ),
    "news/scmp_rss_328582_author_feed_stale_items_excerpt.xml": (
        "rss",
        "https://www.scmp.com/rss/328582/feed",
        None,
    ),
    "news/scmp_rss_330096_empty_channel_description_excerpt.xml": (
        "rss",
        "https://www.scmp.com/rss/330096/feed",
        None,
    ),
    "news/scmp_rss_519756_semiconductors_geopolitics_excerpt.xml": (
        "rss",
        "https://www.scmp.com/rss/519756/feed",
        None,
    ),
    "news/tech_qq_rss_2015_gb2312.xml": ("rss", "http://tech.qq.com/", "Asia/Shanghai"),
    "feeds/atom_title_text_plain_brackets.xml": ("rss", FEED_URL, None),
    "feeds/drupal_htmllat1_doctype.xml": ("rss", FEED_URL, None),
    "feeds/japanese_eucjp.xml": ("rss", FEED_URL, None),
    "feeds/link_query_variable.xml": ("rss", FEED_URL, None),
    "feeds/rss2_prefixed_root.xml": ("rss", FEED_URL, None),
    "federal_register/fr_documents_rss_item_capture_2026-07-27.xml": (
        "rss",
        "https://www.federalregister.gov/api/v1/documents.rss",
        None,
    ),
    "federal_register/fr_bis_rule_titles_abstracts.json": ("federal_register", None, None),
    "federal_register/fr_documents_bis_results_capture_2026-10-02.json": (
        "federal_register",
        None,
        None,
    ),
    "federal_register/fr_documents_empty_result_capture_2026-10-02.json": (
        "federal_register",
        None,
        None,
    ),
    "federal_register/fr_documents_uscis_page1_capture_2026-09-13.json": (
        "federal_register",
        None,
        None,
    ),
    "federal_register/fr_documents_bis_every_field_reconstructed.json": (
        "federal_register",
        None,
        None,
    ),
    "federal_register/fr_public_inspection_current_reconstructed.json": (
        "public_inspection",
        None,
        None,
    ),
    "html_list/bis_press_releases_reconstructed.html": (
        "html_list",
        "https://www.bis.gov/news-updates/press-releases",
        "America/New_York",
    ),
    "cac/cac_wxfb_list_page1_reconstructed.html": (
        "cac_list",
        "https://www.cac.gov.cn/wxzw/wxfb/A093702index_1.htm",
        None,
    ),
    **{
        f"cac/cac_article_{name}_reconstructed.html": ("cac_article", url, None)
        for name, url in {
            "genai_2025_full_year": "https://www.cac.gov.cn/2026-01/09/c_1769688009588554.htm",
            "genai_2025q2_republished": "https://www.cac.gov.cn/2025-07/11/c_1753948489002783.htm",
            "genai_2025q1": "https://www.cac.gov.cn/2025-04/08/c_1745817775881843.htm",
            "genai_2024": "https://www.cac.gov.cn/2025-01/08/c_1738034725920930.htm",
            "deep_synthesis_batch15": "https://www.cac.gov.cn/2026-01/07/c_1769516642440314.htm",
            "blockchain_batch21": "https://www.cac.gov.cn/2026-01/15/c_1770207736136310.htm",
            "meteorology_measures": "https://www.cac.gov.cn/2025-04/30/c_1747718893685033.htm",
            "labelling_measures_notice": (
                "https://www.cac.gov.cn/2025-03/14/c_1743654684782215.htm"
            ),
            "labelling_measures_qa": "https://www.cac.gov.cn/2025-03/14/c_1743654685896173.htm",
        }.items()
    },
}


# html_list sources describe their page with CSS selectors (options.selectors)
SELECTORS: dict[str, dict[str, str]] = {
    "html_list/bis_press_releases_reconstructed.html": {
        "item": ".views-row",
        "title": "h3.title a",
        "date": "time",
        "summary": ".summary",
    },
}


def parse_case(name: str) -> list[ItemData]:
    """The items of a golden case, parsed as ``policywatch parse`` would."""
    kind, url, timezone = CASES[name]
    body = (DATA / name).read_bytes()
    return parse_file(body, kind=kind, url=url, timezone=timezone, selectors=SELECTORS.get(name))


def test_every_parser_input_has_a_golden_case() -> None:
    inputs = {
        str(p.relative_to(DATA))
        for p in DATA.rglob("*")
        if p.suffix in {".xml", ".json", ".html"}
        and not p.name.endswith((".expected.json", ".alert.html"))
    }
    assert inputs == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    path = DATA / name
    actual = [item_json(item) for item in parse_case(name)]
    expected_path = path.with_name(path.name + ".expected.json")
    if UPDATE:  # write, then skip: comparing the file just written with itself proves nothing
        expected_path.write_text(
            json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        pytest.skip(f"rewrote {expected_path.name}: review the diff before committing")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected
