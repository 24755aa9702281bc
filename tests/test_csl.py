"""The Consolidated Screening List: parsing the real format, the diff against the blind ground
truth (``tests/data/csl``), and the pipeline from download to stored list, event items, the
Federal Register link and alerts (SQLite and PostgreSQL, over a loopback server)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from delivery.render import AlertView, fact_lines, render_alert
from models.csl import batch_item, change_batches, diff_snapshots, list_name
from models.db.tables import (
    CslChangeRow,
    CslEntryRow,
    Delivery,
    Item,
    ItemTheme,
    Source,
    Subscriber,
    Subscription,
    Theme,
    ThemeRule,
)
from models.errors import ParseError
from models.fields import fields_from_json
from models.sources import SourceSpec
from pipeline.classification import Classifier
from pipeline.ingest import AlertPolicy, pipeline_hooks
from pipeline.polling import STATUS_FAILED, STATUS_OK, Poller
from policywatch.app import fetch_config, poll_config
from policywatch.settings import Settings
from scrapers.csl import parse_csl
from scrapers.http import Fetcher, build_http_client
from tests.conftest import Database
from tests.fakes.feeds import FeedServer, Route, feed_server
from tests.test_polling import T0, Clock, World, add_sources

DATA = Path(__file__).parent / "data" / "csl"
SNAP1 = (DATA / "csl_snapshot_1.csv").read_bytes()
SNAP2 = (DATA / "csl_snapshot_2.csv").read_bytes()
EXPECTED = json.loads((DATA / "csl_snapshot_1_to_2.diff.expected.json").read_text())


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
async def services(db: Database) -> AsyncIterator[World]:
    settings = Settings.model_validate(
        {"POLICYWATCH_DATABASE_URL": db.url, "POLICYWATCH_ALLOW_PRIVATE_SOURCES": True}
    )
    config = fetch_config(settings)
    async with build_http_client(config) as client:
        yield World(db, Fetcher(client, config), Clock(), poll_config(settings))


def test_the_real_sample_rows_parse_with_their_quirks() -> None:
    snapshot = parse_csl((DATA / "csl_consolidated_sample_rows.csv").read_bytes(), {})
    assert (len(snapshot.entries), snapshot.skipped) == (13, 0)
    cetc = next(e for e in snapshot.entries if "CETC 13" in e.name)
    assert cetc.list_name == "Entity List"
    assert cetc.alt_names[-1] == "CETC Research Institute 13"  # the leading "and " is gone
    assert len(cetc.addresses) == 3
    assert cetc.countries == ("CN",)
    assert cetc.citations == ("83 FR 37423", "87 FR 77505")
    assert cetc.start_date == "2018-08-01"
    dpl = next(e for e in snapshot.entries if e.name == "I. ASH")
    assert dpl.citations == ("67 FR 56530", "67 FR 10890", "71 FR 38843")


def test_the_diff_matches_the_blind_ground_truth() -> None:
    before, after = parse_csl(SNAP1, {}), parse_csl(SNAP2, {})
    assert (len(before.entries), len(after.entries)) == (39, 51)
    diff = diff_snapshots(before.entries, after.entries)
    assert sorted(e.entry_id for e in diff.added) == sorted(EXPECTED["added"])
    assert sorted(e.entry_id for e in diff.removed) == sorted(EXPECTED["removed"])
    assert {c.after.entry_id: list(c.columns) for c in diff.changed} == EXPECTED["changed"]
    (noise,) = EXPECTED["unchanged_noise"]  # whitespace and alias order only
    assert noise not in {c.after.entry_id for c in diff.changed}
    assert diff.unchanged == 51 - 14 - 3
    assert diff.rekeyed == ()


def _rehash_ids(body: bytes, keep: set[str]) -> bytes:
    """Snapshot 2 with a new ``_id`` for every row not in ``keep`` (trade.gov's ids churn)."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    for row in rows[1:]:
        if row[0] not in keep:
            row[0] = hashlib.sha224(row[0].encode()).hexdigest()
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def test_an_id_that_churned_is_the_same_entry_not_a_removal_and_an_addition() -> None:
    before = parse_csl(SNAP1, {})
    after = parse_csl(_rehash_ids(SNAP2, set(EXPECTED["added"])), {})
    diff = diff_snapshots(before.entries, after.entries)
    assert sorted(e.entry_id for e in diff.added) == sorted(EXPECTED["added"])
    assert sorted(e.entry_id for e in diff.removed) == sorted(EXPECTED["removed"])
    assert sorted(c.columns for c in diff.changed) == sorted(
        tuple(c) for c in EXPECTED["changed"].values()
    )
    assert len(diff.rekeyed) == 51 - 14


def test_quirks_of_the_download() -> None:
    header, first = SNAP1.split(b"\n")[:2]
    body = b"\xef\xbb\xbf" + header + b"\n" + first + b"\n\x1a"  # BOM, EOF control row
    assert len(parse_csl(body, {}).entries) == 1
    older = header.replace(b"_id,", b"", 1) + b"\n" + first.split(b",", 1)[1]  # no _id column
    (entry,) = parse_csl(older, {}).entries
    assert entry.entry_id.startswith("k:")
    assert entry.name
    document = {"sources_used": [], "results": [
        {"id": "x1", "source": "Entity List (EL) - Bureau of Industry and Security",
         "name": "Acme", "alt_names": ["A1", "A2"], "start_date": "2025-01-02",
         "addresses": [{"address": "1 Road", "city": "Beijing", "country": "CN"}]},
    ]}  # fmt: skip
    (acme,) = parse_csl(json.dumps(document).encode(), {}).entries
    assert (acme.entry_id, acme.alt_names, acme.countries) == ("x1", ("A1", "A2"), ("CN",))
    for bad in (b"<html>maintenance</html>", b"a,b,c\n1,2,3", b"", b'{"error": 1}'):
        with pytest.raises(ParseError):
            parse_csl(bad, {})


def test_an_addition_batch_is_one_event_item_linked_by_its_citation() -> None:
    diff = diff_snapshots(parse_csl(SNAP1, {}).entries, parse_csl(SNAP2, {}).entries)
    batches = change_batches(diff)
    assert [(b.change, len(b.entries), b.citation) for b in batches] == [
        ("added", 14, "90 FR 14046"),
        ("removed", 1, None),  # Entity List: Turkey
        ("removed", 1, None),  # Unverified List: China
        ("changed", 1, None),  # Zhipu: an alias, no new rule cited
        ("changed", 2, "90 FR 14046"),  # Sophgo and SMIC, revised by the same rule
    ]
    item = batch_item(batches[0], seen_at=T0)
    assert item.title.startswith(
        "14 entities added to the Entity List — China (13), Hong Kong (1): "
    )
    assert item.url == "https://www.federalregister.gov/citation/90-FR-14046"
    facts = fields_from_json(json.loads(json.dumps(item.fields)))  # as the database returns it
    assert facts["citation"] == "90 FR 14046"
    assert facts["entity_count"] == 14
    assert facts["start_date"] == "2025-03-25"
    assert facts["license_policy"] == "Presumption of denial."
    assert "Xi'an" not in item.summary
    assert "Xi?an Tianxuan" in item.summary  # shown as listed
    lines = fact_lines(facts)
    assert any("Federal Register 90 FR 14046" in line for line in lines)
    assert any("… and 6 more" in line for line in lines)
    view = AlertView(item.title, item.url, "CSL", T0, summary=item.summary, fields=facts)
    assert (
        "Entity List · 14 added · China, Hong Kong · listed from 2025-03-25"
        in render_alert(view, "UTC")["text"]
    )
    assert list_name("Specially Designated Nationals (SDN) - Treasury Department") == (
        "Specially Designated Nationals (SDN) list"
    )


def csl_source(url: str) -> SourceSpec:
    return SourceSpec(name="csl", kind="csl", url=url, interval_seconds=3600)


async def count(services: World, model: Any, *where: Any) -> int:
    async with services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_snapshots_become_a_stored_list_and_event_items(
    services: World, server: FeedServer
) -> None:
    db = services.db
    async with db.sessions.begin() as session:  # a subscriber of a theme that watches the list
        theme = Theme(slug="export-controls", title="US export controls")
        chat = Subscriber(chat_id=42, chat_type="private", user_id=42)
        session.add_all([theme, chat])
        await session.flush()
        session.add_all(
            [ThemeRule(theme_id=theme.id, rule="Entity List AND China"),
             Subscription(subscriber_id=chat.id, theme_id=theme.id)]
        )  # fmt: skip
        fr = Source(
            name="fr", kind="federal_register", url="https://fr.example/", interval_seconds=60
        )
        session.add(fr)
        await session.flush()
        session.add(
            Item(source_id=fr.id, external_id="2025-05000", title="Additions to the Entity List",
                 published_at=T0, first_seen_at=T0, content_hash="x",
                 fields={"citation": "90 FR 14046", "document_type": "Rule"})
        )  # fmt: skip
    server.routes["/csl.csv"] = Route(SNAP1, content_type="text/csv", etag='"1"')
    await add_sources(services, csl_source(server.url("/csl.csv")))
    hooks = pipeline_hooks(Classifier(), AlertPolicy(max_age=None))
    poller = Poller(db, services.fetcher, services.config, services.clock, hooks=hooks)

    (first,) = await poller.poll_due(due_only=False)
    assert (first.status, first.new) == (STATUS_OK, 0)  # history, not news
    assert await count(services, CslEntryRow) == 39
    assert await count(services, CslChangeRow) == 0

    services.clock.now = T0 + timedelta(hours=1)
    server.routes["/csl.csv"] = Route(SNAP2, content_type="text/csv", etag='"2"')
    (second,) = await poller.poll_due(due_only=False)
    assert (second.status, second.new) == (STATUS_OK, 5)
    assert await count(services, CslEntryRow, CslEntryRow.removed_at.is_(None)) == 51 - 2 + 2
    assert await count(services, CslEntryRow, CslEntryRow.removed_at.is_not(None)) == 2
    assert await count(services, CslChangeRow) == 14 + 2 + 3
    assert await count(services, CslChangeRow, CslChangeRow.item_id.is_(None)) == 0
    async with db.sessions() as session:
        added = await session.scalar(select(Item).where(Item.title.like("14 entities added%")))
        assert added is not None
        assert added.fields["fr_document_number"] == "2025-05000"
        matched = await session.scalar(select(func.count()).select_from(ItemTheme))
        alerts = (await session.scalars(select(Delivery.item_id))).all()
    assert matched
    assert added.id in alerts

    services.clock.now = T0 + timedelta(hours=2)
    server.routes["/csl.csv"] = Route(SNAP2, content_type="text/csv", etag='"3"')
    (third,) = await poller.poll_due(due_only=False)
    assert (third.status, third.new) == (STATUS_OK, 0)  # the same list again: nothing new


async def test_a_download_that_would_empty_the_list_is_refused(
    services: World, server: FeedServer
) -> None:
    server.routes["/csl.csv"] = Route(SNAP1, content_type="text/csv")
    await add_sources(services, csl_source(server.url("/csl.csv")))
    poller = Poller(services.db, services.fetcher, services.config, services.clock)
    await poller.poll_due(due_only=False)
    truncated = b"\n".join(SNAP1.split(b"\n")[:6])  # the header and five rows
    server.routes["/csl.csv"] = Route(truncated, content_type="text/csv")
    (summary,) = await poller.poll_due(due_only=False)
    assert summary.status == STATUS_FAILED
    assert "not applied" in (summary.error or "")
    assert await count(services, CslEntryRow, CslEntryRow.removed_at.is_(None)) == 39
    assert await count(services, CslChangeRow) == 0
