"""Golden alerts: every parser sample → the alert text a subscriber would get for each item.

The chain is the production one: the parser's items, stored as the database stores their facts
(a JSON round trip read back through ``fields_from_json``), turned into an alert view by the
same function the planner uses, rendered in a subscriber's zone. A fact renamed on one side of
that chain and not the other changes these files, so the test fails.

The expected texts sit beside each sample as ``<file>.alert.html``. Regenerate with
``POLICYWATCH_UPDATE_GOLDENS=1 pytest tests/test_render_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from delivery.render import ThemeMatch, alert_view, render_alert
from delivery.telegram_html import plain_text
from models.fields import fields_from_json
from models.items import ItemData, StoredItem
from tests.fakes.telegram import _check_html
from tests.test_parsers_golden import CASES, DATA, parse_case

UPDATE = os.environ.get("POLICYWATCH_UPDATE_GOLDENS") == "1"
SEEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"
THEMES = (ThemeMatch("export-controls", "US export controls", ("Entity List", "BIS")),)
SEPARATOR = "\n\n-----\n\n"
SOURCE_NAMES = {
    "cac": "CAC 网信发布",
    "federal_register": "Federal Register (BIS)",
    "html_list": "BIS press releases",
    "news": "news feed",
    "feeds": "corpus feed",
}


def as_stored(item: ItemData, number: int, source_name: str, kind: str) -> StoredItem:
    """The item as the database hands it back: facts through a JSON round trip."""
    return StoredItem(
        id=number,
        source_id=1,
        source_name=source_name,
        source_kind=kind,
        external_id=item.external_id,
        title=item.title,
        url=item.url,
        summary=item.summary,
        language=item.language,
        published_at=item.published_at or SEEN,
        published_at_guessed=item.published_at is None or item.published_at_guessed,
        date_only=item.date_only,
        first_seen_at=SEEN,
        content_hash=item.content_hash,
        fields=fields_from_json(json.loads(json.dumps(item.fields))),
    )


def alerts_of(name: str) -> list[str]:
    kind = CASES[name][0]
    source = SOURCE_NAMES[name.split("/")[0]]
    return [
        render_alert(alert_view(as_stored(item, n, source, kind), THEMES), ZONE)["text"]
        for n, item in enumerate(parse_case(name), 1)
    ]


def alert_texts(name: str) -> str:
    """The visible text of a sample's alerts (what a Telegram client shows)."""
    return plain_text("\n".join(alerts_of(name)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_golden(name: str) -> None:
    alerts = alerts_of(name)
    for text in alerts:
        assert _check_html(text) is None, text
    actual = SEPARATOR.join(alerts) + "\n"
    path = DATA / f"{name}.alert.html"
    if UPDATE:  # write, then skip: comparing the file just written with itself proves nothing
        path.write_text(actual, encoding="utf-8")
        pytest.skip(f"rewrote {path.name}: review the diff before committing")
    assert actual == path.read_text(encoding="utf-8")


def test_every_sample_has_its_alerts_recorded() -> None:
    recorded = {
        str(p.relative_to(DATA)).removesuffix(".alert.html") for p in DATA.rglob("*.alert.html")
    }
    assert recorded == set(CASES)


def test_federal_register_alerts_show_every_fact_of_the_document() -> None:
    text = alert_texts("federal_register/fr_documents_bis_every_field_reconstructed.json")
    assert "Federal Register (BIS) · 2025-01-15\n" in text  # a date, never an invented time
    assert "Rule · Interim final rule; request for comments." in text
    assert "Effective 2025-01-13 · Comments close 2025-05-15" in text
    assert "90 FR 4544 · 15 CFR 734, 740, 742, 744, 748, 758, 762, 772, 774 · RIN 0694-AJ90" in text
    assert "Legal text (PDF)" in text
    assert "Proposed Rule · Proposed rule.\nComments close 2024-10-11" in text


def test_federal_register_captures_show_the_document_type() -> None:
    text = alert_texts("federal_register/fr_documents_bis_results_capture_2026-10-02.json")
    kinds = [line for line in text.splitlines() if line in {"Rule", "Notice"}]
    assert len(kinds) == 7
    assert "corrects 2026-16628" in text


def test_cac_genai_announcement_shows_the_counts_and_the_as_of_date() -> None:
    text = alert_texts("cac/cac_article_genai_2025_full_year_reconstructed.html")
    assert (
        "GenAI services filed: 748 (446 new) · apps registered: 435 (330 new) "
        "(as of 2025-12-31)" in text
    )
    assert "📎 国家互联网信息办公室关于发布生成式人工智能服务已备案信息的公告" in text
    assert "CAC 网信发布 · 2026-01-09 18:30 CST" in text


def test_a_chinese_measure_shows_its_own_effective_date() -> None:
    text = alert_texts("cac/cac_article_meteorology_measures_reconstructed.html")
    assert "Effective 2025-06-01" in text
    # an interview about a measure quotes its date but is not the measure: no date to remind of
    assert "Effective" not in alert_texts(
        "cac/cac_article_labelling_measures_qa_reconstructed.html"
    )


def test_cac_list_items_show_their_date_only() -> None:
    text = alert_texts("cac/cac_wxfb_list_page1_reconstructed.html")
    assert "CAC 网信发布 · 2026-02-03\n" in text
    assert "00:00" not in text


def test_deep_synthesis_batches_show_their_number() -> None:
    text = alert_texts("cac/cac_article_deep_synthesis_batch15_reconstructed.html")
    assert "Deep-synthesis algorithm filings: batch 15" in text
