"""The Federal Register's public inspection desk (``kind: public_inspection``): the listing and
document-text parsers (pure), polling through a loopback server (SQLite and PostgreSQL), the
alert a subscriber reads, and end to end: a BIS rule alerted from its inspection copy, then its
publication the next day as an update replying to that alert."""

from __future__ import annotations

import copy
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from delivery.render import SourceLine, also_text, fact_lines
from models.errors import ParseError
from models.events import EventItem, group
from models.fields import ItemFields
from models.sources import SourceSpec
from pipeline.polling import STATUS_OK
from scrapers.public_inspection import (
    parse_document_text,
    parse_public_inspection,
    read_listing,
    text_url,
    with_text,
)
from tests.fakes.feeds import FeedServer, Route
from tests.fakes.telegram import RunningFake
from tests.procs import running_service
from tests.test_e2e import Chat, service_env, wait_for
from tests.test_polling import (
    World,
    add_sources,
    items_of,
    poller,
    server,
    services,
    source_row,
)

__all__ = ["server", "services"]  # fixtures

DATA = Path(__file__).parent / "data" / "federal_register"
LISTING = DATA / "fr_public_inspection_current_reconstructed.json"
TEXT = DATA / "fr_public_inspection_2025-05427_reconstructed.txt"
EVERY_FIELD = DATA / "fr_documents_bis_every_field_reconstructed.json"
API = "https://www.federalregister.gov/api/v1/public-inspection-documents/current.json"
JSON = {"content-type": "application/json"}


def listing(**changes: Any) -> dict[str, Any]:
    page: dict[str, Any] = json.loads(LISTING.read_text(encoding="utf-8"))
    page.update(changes)
    return page


def body(page: dict[str, Any]) -> bytes:
    return json.dumps(page).encode()


# --- the listing ------------------------------------------------------------------------------


def test_the_listing_keeps_the_watched_agencys_documents_only() -> None:
    parsed = parse_public_inspection(LISTING.read_bytes(), JSON, url=API)
    assert [i.external_id for i in parsed.items] == ["2025-05427", "2025-05461", "2025-05475"]
    assert parsed.skipped == 1  # a BIS entry without a document number
    rule, order, _ = parsed.items
    assert rule.title == "Additions to the Entity List"
    assert rule.published_at == datetime(2025, 3, 27, 12, 45, tzinfo=UTC)  # filed 08:45 EDT
    assert not rule.date_only
    assert rule.fields["publishes_on"] == "2025-03-28"
    assert rule.fields["document_number"] == "2025-05427"
    assert "special_filing" not in rule.fields
    assert order.fields["special_filing"] is True
    assert order.fields["publishes_on"] == "2025-03-31"
    assert order.fields["editorial_note"].startswith("This document was filed as a special")


def test_agencies_and_types_choose_the_documents() -> None:
    raw = LISTING.read_bytes()
    rules = parse_public_inspection(raw, JSON, types=["RULE"])
    assert [i.external_id for i in rules.items] == ["2025-05427"]
    epa = parse_public_inspection(raw, JSON, agencies=["environmental-protection-agency"])
    assert [i.title for i in epa.items] == [
        "Air Plan Approval; Ohio; Second Period Regional Haze Plan"
    ]
    # An agency the API lists by name only is matched by its name, slugified.
    itc = parse_public_inspection(raw, JSON, agencies=["international-trade-commission"])
    assert [i.title for i in itc.items] == ["Sunshine Act Meetings"]


def test_an_empty_issue_is_an_empty_listing_and_errors_say_what_came() -> None:
    assert parse_public_inspection(b'{"count": 0, "results": []}', JSON).items == ()
    with pytest.raises(ParseError, match="HTML/XML page"):
        parse_public_inspection(b"<html><body>Request blocked</body></html>", {})
    with pytest.raises(ParseError, match="refused the search"):
        parse_public_inspection(b'{"errors": {"conditions": "invalid date"}}', JSON)
    with pytest.raises(ParseError, match="not JSON"):
        parse_public_inspection(b'{"count": 3, "results": [', JSON)


def test_document_texts_are_read_from_the_register_or_the_listings_own_host_only() -> None:
    page = listing()
    order, notice = page["results"][2], page["results"][4]  # BIS's 2025-05461 and 2025-05475
    order["raw_text_url"] = "https://attacker.example/steal.txt"
    notice["raw_text_url"] = "javascript:alert(1)"
    found = read_listing(body(page), JSON, url=API)
    assert found.texts == {
        "2025-05427": "https://www.federalregister.gov/public-inspection/raw_text/2025-05427.txt"
    }
    refused = {i.external_id: i.fields.get("raw_text_error") for i in found.parsed.items}
    assert refused["2025-05461"] == "its text URL is not on federalregister.gov: not read"
    assert refused["2025-05427"] is None
    assert text_url("http://127.0.0.1:8080/t.txt", {"127.0.0.1"}) == "http://127.0.0.1:8080/t.txt"
    assert text_url("http://127.0.0.1:8080/t.txt") is None


# --- the document's text ----------------------------------------------------------------------


def test_a_filed_text_gives_the_summary_action_dates_and_rin() -> None:
    facts = parse_document_text(TEXT.read_bytes(), {"content-type": "text/plain"})
    assert facts.summary.startswith("In this rule, the Bureau of Industry and Security (BIS)")
    assert "Export Administration Regulations (EAR)" in facts.summary  # "Adminis-\ntration"
    assert facts.summary.endswith("under the destinations of China (11) and Taiwan (1).")
    assert facts.action == "Final rule."
    assert facts.dates == "This rule is effective March 25, 2025."
    assert facts.rins == ("0694-AJ96",)
    assert facts.dockets == ("Docket No. 250324-0047",)


def test_an_html_text_reads_the_same_and_a_text_without_sections_is_refused() -> None:
    html = (
        b"<html><body><p><b>ACTION:</b> Final rule.</p><p><b>SUMMARY:</b> BIS adds 3 entities "
        b"in China to the Entity List.</p><p><b>DATES:</b> Effective on publication.</p></body>"
        b"</html>"
    )
    facts = parse_document_text(html, {"content-type": "text/html"})
    assert (facts.action, facts.summary) == (
        "Final rule.",
        "BIS adds 3 entities in China to the Entity List.",
    )
    with pytest.raises(ParseError, match="no SUMMARY, ACTION or RIN"):
        parse_document_text(b"%PDF-1.7 \x00\x01 binary", {})


def test_the_listing_keeps_its_facts_and_gains_the_texts() -> None:
    (rule, *_) = parse_public_inspection(LISTING.read_bytes(), JSON).items
    merged = with_text(rule, parse_document_text(TEXT.read_bytes(), {}))
    assert merged.summary.startswith("In this rule")
    assert merged.fields["action"] == "Final rule."
    assert merged.fields["regulation_id_numbers"] == ["0694-AJ96"]
    assert merged.fields["publishes_on"] == "2025-03-28"
    assert merged.fields["filed_at"] == rule.fields["filed_at"]


# --- what a subscriber reads ------------------------------------------------------------------


def test_the_alert_says_it_is_before_publication_and_when_it_will_be_published() -> None:
    (_, order, _) = parse_public_inspection(LISTING.read_bytes(), JSON).items
    lines = fact_lines(order.fields)
    assert (
        "⏳ Before publication: on public inspection · special filing · to be published 2025-03-31"
    ) in lines
    assert any("Filed copy (PDF)" in line for line in lines)
    assert not any("Legal text" in line for line in lines)
    # a listing without its filing time is still a copy before publication
    untimed = ItemFields(document_number="2025-05475", publishes_on="2025-03-28")
    assert fact_lines(untimed) == [
        "⏳ Before publication: on public inspection · to be published 2025-03-28"
    ]


def test_an_update_names_the_inspection_copy_and_the_publication_apart() -> None:
    (rule, *_) = parse_public_inspection(LISTING.read_bytes(), JSON).items
    assert rule.published_at is not None
    inspection = SourceLine("fr-bis-inspection", rule.url, rule.published_at, False, rule.fields)
    published = SourceLine(
        "fr-bis",
        "https://www.federalregister.gov/d/2025-05427",
        datetime(2025, 3, 28, 4, tzinfo=UTC),
        True,
        ItemFields(document_number="2025-05427", publication_date="2025-03-28"),
    )
    text = also_text([inspection, published], "America/New_York")
    assert "fr-bis-inspection</a> on public inspection 2025-03-27" in text
    assert "fr-bis</a> published 2025-03-28" in text


def test_the_inspection_copy_and_the_published_document_are_one_event() -> None:
    (rule, *_) = parse_public_inspection(LISTING.read_bytes(), JSON).items
    assert rule.published_at is not None
    filed = EventItem("pi", rule.title, rule.published_at, url=rule.url, fields=rule.fields)
    doc = json.loads(EVERY_FIELD.read_text(encoding="utf-8"))["results"][1]
    printed = EventItem(
        "fr",
        doc["title"],
        datetime(2025, 3, 28, 4, tzinfo=UTC),
        summary=doc["abstract"],
        url=doc["html_url"],
        fields=ItemFields(document_number=doc["document_number"], effective_on="2025-03-25"),
    )
    other = EventItem(
        "x",
        "Additions to the Entity List",
        datetime(2025, 3, 27, 13, tzinfo=UTC),
        fields=ItemFields(document_number="2025-05501", filed_at="2025-03-27T13:00:00+00:00"),
    )
    decisions = group([filed, other, printed])
    assert [e for e, _ in decisions] == [1, 2, 1]  # the same title, another number: apart
    assert decisions[2][1].reason == "same FR document 2025-05427"


# --- polling (SQLite and PostgreSQL) ----------------------------------------------------------


def inspection_source(server: FeedServer, **options: Any) -> SourceSpec:
    return SourceSpec(
        name="pi",
        kind="public_inspection",
        url=server.url("/api/v1/public-inspection-documents/current.json"),
        interval_seconds=900,
        options=options,
    )


def served_listing(server: FeedServer, numbers: list[str], etag: str) -> None:
    """The reconstructed listing with BIS's documents cut to ``numbers``, texts on ``server``."""
    page = listing()
    kept = []
    for raw in page["results"]:
        if raw["document_number"] in numbers or "industry" not in json.dumps(raw["agencies"]):
            raw = copy.deepcopy(raw)
            if raw["document_number"]:
                raw["raw_text_url"] = server.url(f"/text/{raw['document_number']}.txt")
            kept.append(raw)
    server.routes["/api/v1/public-inspection-documents/current.json"] = Route(
        body(listing(results=kept, count=len(kept))), content_type="application/json", etag=etag
    )


async def test_new_documents_are_stored_with_their_text_and_a_lost_text_loses_nothing(
    services: World, server: FeedServer
) -> None:
    server.routes["/text/2025-05427.txt"] = Route(TEXT.read_bytes(), content_type="text/plain")
    served_listing(server, ["2025-05475"], '"v1"')
    await add_sources(services, inspection_source(server))
    (first,) = await poller(services).poll_due(due_only=False)
    assert (first.status, first.new, first.first_poll, first.requests) == (STATUS_OK, 1, True, 1)
    assert not any(r.path.startswith("/text/") for r in server.requests)  # history: no texts

    served_listing(server, ["2025-05475", "2025-05427", "2025-05461"], '"v2"')  # 05461: 404
    (second,) = await poller(services).poll_due(due_only=False)
    assert (second.status, second.new, second.updated, second.requests) == (STATUS_OK, 1, 0, 3)
    rows = {i.external_id: i for i in await items_of(services, "pi")}
    assert rows["2025-05427"].summary.startswith("In this rule, the Bureau of Industry")
    assert rows["2025-05427"].fields["regulation_id_numbers"] == ["0694-AJ96"]
    assert rows["2025-05427"].fields["filed_at"] == "2025-03-27T12:45:00+00:00"
    assert "2025-05461" not in rows  # held back for its text: tried again next poll
    assert (await source_row(services, "pi")).etag is None  # so no 304 hides it

    (third,) = await poller(services).poll_due(due_only=False)
    assert (third.new, third.requests) == (0, 2)  # the listing, and 05461's text once more
    (fourth,) = await poller(services).poll_due(due_only=False)  # its third failed read
    assert fourth.new == 1
    rows = {i.external_id: i for i in await items_of(services, "pi")}
    assert "404" in rows["2025-05461"].fields["raw_text_error"]  # stored as listed, not lost
    assert rows["2025-05461"].title == "Order Temporarily Denying Export Privileges"
    texts = [r.path for r in server.requests if r.path.startswith("/text/")]
    assert texts.count("/text/2025-05461.txt") == 3
    assert texts.count("/text/2025-05427.txt") == 1

    (fifth,) = await poller(services).poll_due(due_only=False)  # nothing held: 304 again
    assert (fifth.new, fifth.updated, fifth.requests) == (0, 0, 1)
    assert server.requests[-1].headers["if-none-match"] == '"v2"'


async def test_documents_beyond_max_texts_wait_for_the_next_poll_and_a_text_that_comes_back(
    services: World, server: FeedServer
) -> None:
    served_listing(server, [], '"v1"')
    await add_sources(services, inspection_source(server, max_texts=1))
    await poller(services).poll_due(due_only=False)
    server.routes["/text/2025-05427.txt"] = Route(TEXT.read_bytes(), content_type="text/plain")
    served_listing(server, ["2025-05427", "2025-05461"], '"v2"')
    (summary,) = await poller(services).poll_due(due_only=False)
    assert (summary.new, summary.requests) == (1, 2)
    # a moment later the other document's text answers: it is stored with it
    server.routes["/text/2025-05461.txt"] = Route(TEXT.read_bytes(), content_type="text/plain")
    (later,) = await poller(services).poll_due(due_only=False)
    assert (later.new, later.requests) == (1, 2)
    rows = {i.external_id: i for i in await items_of(services, "pi")}
    assert rows["2025-05427"].summary.startswith("In this rule")
    assert rows["2025-05461"].summary.startswith("In this rule")
    assert "raw_text_error" not in rows["2025-05461"].fields


# --- end to end -------------------------------------------------------------------------------


def test_a_rule_is_alerted_from_inspection_and_its_publication_replies_to_that_alert(
    tmp_path: Path, feeds: FeedServer, telegram: RunningFake
) -> None:
    """The real ``policywatch run``, the loopback Federal Register and the fake Bot API."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    filed = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 3600))
    pi_path = "/api/v1/public-inspection-documents/current.json"
    fr_path = "/api/v1/documents.json"
    empty = b'{"count": 0, "results": []}'
    feeds.routes[pi_path] = Route(empty, content_type="application/json", etag='"p0"')
    feeds.routes[fr_path] = Route(
        b'{"description": "none", "count": 0}', content_type="application/json"
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        f"  - name: fr-bis-inspection\n    kind: public_inspection\n"
        f"    url: {feeds.url(pi_path)}\n    interval: 1s\n"
        f"  - name: fr-bis\n    kind: federal_register\n    url: {feeds.url(fr_path)}\n"
        "    interval: 1s\n",
        encoding="utf-8",
    )
    env = service_env(tmp_path, telegram, sources, POLICYWATCH_ALERT_MAX_AGE="30d")
    fake = telegram.fake
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        wait_for(
            lambda: {pi_path, fr_path} <= {r.path.split("?")[0] for r in feeds.requests},
            "the first polls",
        )
        user = Chat(fake, 5151)
        user.say("/start", expect="Welcome")
        user.say("/subscribe export-controls", expect="follow")

        # BIS files the rule for public inspection: "Additions to the Entity List" alone names
        # no country; its text does, and the alert comes from the inspection copy.
        rule = copy.deepcopy(listing()["results"][0])
        rule.update(filed_at=filed, publication_date=today, raw_text_url=feeds.url("/t.txt"))
        feeds.routes["/t.txt"] = Route(TEXT.read_bytes(), content_type="text/plain")
        feeds.routes[pi_path] = Route(
            body({"count": 1, "results": [rule]}), content_type="application/json", etag='"p1"'
        )
        wait_for(
            lambda: any("Additions to the Entity List" in m.text for m in fake.messages_to(5151)),
            "the alert from the inspection copy",
            within=40,
        )
        [alert] = [m for m in fake.messages_to(5151) if "Additions to the Entity List" in m.text]
        assert "Before publication: on public inspection" in alert.text
        assert f"to be published {today}" in alert.text
        assert "by adding 12 entities to the Entity List" in alert.text  # from its text

        # The Federal Register publishes it: one update, a reply to the alert.
        doc = json.loads(EVERY_FIELD.read_text(encoding="utf-8"))["results"][1]
        doc.update(publication_date=today, effective_on=today)
        feeds.routes[fr_path] = Route(
            body({"count": 1, "results": [doc]}), content_type="application/json"
        )
        wait_for(
            lambda: any(m.reply_to == alert.message_id for m in fake.messages_to(5151)),
            "the update on publication",
            within=40,
        )
        [update] = [m for m in fake.messages_to(5151) if m.reply_to == alert.message_id]
        assert f"fr-bis</a> published {today}" in update.text
        # /policy lists US regulatory documents by event: the rule once, both stages named
        listed = user.say("/policy us", expect="Additions to the Entity List")
        assert listed.count("Additions to the Entity List") == 1, listed
        listed_id = fake.messages_to(5151)[-1].message_id
        assert service.stop() == 0, service.err
    alerts = [
        m
        for m in fake.messages_to(5151)
        if "Entity List" in m.text and not m.reply_to and m.message_id != listed_id
    ]
    assert [m.message_id for m in alerts] == [alert.message_id]  # one event, one alert
    assert "Traceback" not in service.err, service.err
