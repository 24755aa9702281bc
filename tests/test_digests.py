"""Digest schedules in IANA zones across DST, and what a digest contains."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from models.digests import DigestEntry, build_digest, next_digest_at
from models.fields import fields_from_json
from models.views import ItemRow

NY = "America/New_York"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_daily_digest_keeps_its_local_time_across_dst() -> None:
    """08:00 in New York is 13:00 UTC before the spring change and 12:00 after it."""
    times = []
    after = at(2026, 3, 6, 14, 0)
    for _ in range(4):
        found = next_digest_at(
            mode="daily", digest_time="08:00", weekday=None, timezone=NY, after=after
        )
        assert found is not None
        times.append(found)
        after = found
    assert times == [
        at(2026, 3, 7, 13),
        at(2026, 3, 8, 12),
        at(2026, 3, 9, 12),
        at(2026, 3, 10, 12),
    ]


def test_a_time_in_the_spring_gap_is_sent_just_after_it_and_fall_back_sends_once() -> None:
    gap = next_digest_at(
        mode="daily", digest_time="02:30", weekday=None, timezone=NY, after=at(2026, 3, 8, 5)
    )
    assert gap == at(2026, 3, 8, 7, 30)  # 03:30 EDT: 02:30 does not exist that day
    first = next_digest_at(
        mode="daily", digest_time="01:30", weekday=None, timezone=NY, after=at(2026, 11, 1, 4)
    )
    assert first == at(2026, 11, 1, 5, 30)  # 01:30 EDT, the first of the two
    assert first is not None
    after_first = next_digest_at(
        mode="daily", digest_time="01:30", weekday=None, timezone=NY, after=first
    )
    assert after_first == at(2026, 11, 2, 6, 30)  # not 01:30 EST the same night


def test_weekly_on_the_chosen_weekday_in_the_subscribers_zone() -> None:
    # Monday 09:00 in Shanghai is Monday 01:00 UTC; asked on Monday 02:00 UTC → next week
    result = next_digest_at(
        mode="weekly",
        digest_time="09:00",
        weekday=0,
        timezone="Asia/Shanghai",
        after=at(2026, 1, 12, 2),
    )
    assert result == at(2026, 1, 19, 1)


@pytest.mark.parametrize(
    ("mode", "digest_time", "timezone", "expected"),
    [
        ("off", "08:00", NY, None),
        ("daily", "not a time", "UTC", at(2026, 1, 16, 8)),  # default 08:00
        ("daily", "08:00", "Not/AZone", at(2026, 1, 16, 8)),  # UTC
    ],
)
def test_bad_or_missing_settings(
    mode: str, digest_time: str, timezone: str, expected: datetime | None
) -> None:
    result = next_digest_at(
        mode=mode,
        digest_time=digest_time,
        weekday=None,
        timezone=timezone,
        after=at(2026, 1, 15, 9),
    )
    assert result == expected


def entry(item_id: int, theme_id: int, matched_at: datetime, **fields: str) -> DigestEntry:
    return DigestEntry(
        item_id=item_id,
        theme_id=theme_id,
        matched_at=matched_at,
        item=ItemRow(
            id=item_id,
            title=f"item {item_id}",
            url=None,
            source_name="src",
            source_kind="federal_register",
            published_at=matched_at,
            fields=fields_from_json(fields),
        ),
    )


def test_groups_by_theme_since_the_last_digest_with_upcoming_dates() -> None:
    until = at(2026, 3, 10, 12)
    since = until - timedelta(days=1)
    entries = [
        entry(1, 1, until - timedelta(hours=1)),
        entry(2, 1, until - timedelta(hours=2)),
        entry(3, 2, until - timedelta(hours=3)),
        entry(4, 2, since),  # at the previous digest: already sent
        entry(5, 9, until),  # a theme the subscriber does not follow
    ]
    upcoming = [
        entry(6, 1, until - timedelta(days=30), effective_on="2026-03-12"),
        entry(7, 1, until - timedelta(days=30), comments_close_on="2026-03-17T23:59:00"),
        entry(8, 1, until - timedelta(days=30), effective_on="2026-03-18"),  # 8 days: too far
        entry(9, 1, until - timedelta(days=30), effective_on="2026-03-09"),  # past
        entry(10, 1, until - timedelta(days=30), effective_on="soon"),
    ]
    digest = build_digest(
        entries=entries,
        theme_titles={1: "Export controls", 2: "China AI"},
        since=since,
        until=until,
        upcoming_candidates=upcoming,
        timezone=NY,
    )
    assert [(g.theme_title, [e.item_id for e in g.items]) for g in digest.groups] == [
        ("Export controls", [1, 2]),
        ("China AI", [3]),
    ]
    assert digest.event_count == 3
    assert [(u.on, u.what, u.entry.item_id) for u in digest.upcoming] == [
        (date(2026, 3, 12), "effective", 6),
        (date(2026, 3, 17), "comments close", 7),
    ]
    assert not digest.is_empty


def test_an_event_is_marked_unsure_only_when_no_match_of_it_is_sure() -> None:
    until = at(2026, 3, 10, 12)
    hour = timedelta(hours=1)
    entries = [
        replace(entry(1, 1, until - hour), layer="model"),  # alone: unsure
        replace(entry(2, 1, until - 2 * hour), layer="rules"),  # the model judges 1: unsure
        replace(
            entry(
                3,
                1,
                until - 3 * hour,
            ),
            layer="model",
            event_id=30,
        ),
        replace(entry(4, 1, until - 3 * hour), layer="both", event_id=30),  # a sure source
        replace(entry(5, 2, until - hour), layer="rules"),  # no model judges 2: sure
    ]
    digest = build_digest(
        entries=entries,
        theme_titles={1: "Export controls", 2: "China AI"},
        since=until - timedelta(days=1),
        until=until,
        upcoming_candidates=[],
        timezone=NY,
        judged={1},
    )
    assert {g.theme_title: g.unsure for g in digest.groups} == {
        "Export controls": frozenset({1, 2}),
        "China AI": frozenset(),
    }
