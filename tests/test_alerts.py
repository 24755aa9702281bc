"""Alert planning rules (pure): first polls, digest themes, mute, quiet hours, bursts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.alerts import (
    AlertPlan,
    BurstPolicy,
    EventDelivered,
    ItemMatch,
    NewItem,
    Queued,
    SubscriberInfo,
    SubscriptionInfo,
    ThemeInfo,
    plan_alerts,
)
from models.localtime import parse_quiet_hours, quiet_hours_end

NOW = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)  # 10:00 in New York, 23:00 in Shanghai
EXPORT = ThemeInfo(1, "export-controls", "US export controls")
CHINA_AI = ThemeInfo(2, "china-ai-rules", "China AI rules")
LLMS = ThemeInfo(3, "china-llms", "Chinese foundation models", priority="digest")
THEMES = {t.id: t for t in (EXPORT, CHINA_AI, LLMS)}


def plan(
    items: list[NewItem],
    matches: list[tuple[int, int]],
    subscribers: list[SubscriberInfo],
    subscriptions: list[SubscriptionInfo],
    *,
    recent: dict[int, int] | None = None,
    policy: BurstPolicy | None = None,
    queued: dict[int, Queued] | None = None,
) -> AlertPlan:
    return plan_alerts(
        items=items,
        matches=[ItemMatch(i, t) for i, t in matches],
        themes=THEMES,
        subscribers={s.id: s for s in subscribers},
        subscriptions=subscriptions,
        recent_instant=recent or {},
        policy=policy or BurstPolicy(max_alerts=5, window=timedelta(minutes=10)),
        now=NOW,
        queued=queued,
    )


def test_one_alert_per_chat_and_item_naming_every_matching_theme() -> None:
    result = plan(
        [NewItem(10)],
        [(10, 1), (10, 2)],
        [SubscriberInfo(1, 111), SubscriberInfo(2, 222)],
        [SubscriptionInfo(1, 1), SubscriptionInfo(1, 2), SubscriptionInfo(2, 2)],
    )
    assert [(a.subscriber_id, a.item_id, a.theme_ids) for a in result.alerts] == [
        (1, 10, (1, 2)),
        (2, 10, (2,)),
    ]
    assert all(a.send_at == NOW for a in result.alerts)


def test_first_poll_items_are_never_alerted() -> None:
    result = plan(
        [NewItem(10, from_first_poll=True), NewItem(11)],
        [(10, 1), (11, 1)],
        [SubscriberInfo(1, 111)],
        [SubscriptionInfo(1, 1)],
    )
    assert [a.item_id for a in result.alerts] == [11]
    assert result.skipped["first_poll"] == 1


@pytest.mark.parametrize(
    ("subscriber", "subscription", "theme", "reason"),
    [
        (SubscriberInfo(1, 111), SubscriptionInfo(1, 1, mode="digest"), 1, "digest"),
        (SubscriberInfo(1, 111), SubscriptionInfo(1, 3), 3, "digest"),
        (
            SubscriberInfo(1, 111, muted_until=NOW + timedelta(hours=1)),
            SubscriptionInfo(1, 1),
            1,
            "muted",
        ),
        (SubscriberInfo(1, 111, active=False), SubscriptionInfo(1, 1), 1, "inactive"),
    ],
    ids=["subscription-digest", "theme-digest", "muted", "inactive"],
)
def test_no_instant_alert(
    subscriber: SubscriberInfo, subscription: SubscriptionInfo, theme: int, reason: str
) -> None:
    result = plan([NewItem(10)], [(10, theme)], [subscriber], [subscription])
    assert result.alerts == ()
    assert result.folds == ()
    assert result.skipped == {reason: 1}


def test_an_expired_mute_no_longer_silences() -> None:
    muted = SubscriberInfo(1, 111, muted_until=NOW - timedelta(seconds=1))
    result = plan([NewItem(10)], [(10, 1)], [muted], [SubscriptionInfo(1, 1)])
    assert [a.item_id for a in result.alerts] == [10]


def test_quiet_hours_hold_the_alert_until_they_end_in_the_subscribers_zone() -> None:
    # 23:00 in Shanghai: inside 22:00-07:00, which ends at 07:00 local = 23:00 UTC
    night_owl = SubscriberInfo(1, 111, timezone="Asia/Shanghai", quiet_hours="22:00-07:00")
    # 10:00 in New York: outside 22:00-07:00
    awake = SubscriberInfo(2, 222, timezone="America/New_York", quiet_hours="22:00-07:00")
    result = plan(
        [NewItem(10)],
        [(10, 1)],
        [night_owl, awake],
        [SubscriptionInfo(1, 1), SubscriptionInfo(2, 1)],
    )
    send_at = {a.subscriber_id: a.send_at for a in result.alerts}
    assert send_at == {1: datetime(2026, 1, 15, 23, 0, tzinfo=UTC), 2: NOW}


def test_quiet_hours_let_through_the_themes_the_chat_chose() -> None:
    """Rule 7: export controls come at any hour; China AI rules wait for 07:00 in Shanghai; an
    event of both comes now; a summary waits unless every event in it may come."""
    night_owl = SubscriberInfo(1, 111, timezone="Asia/Shanghai", quiet_hours="22:00-07:00")
    subs = [SubscriptionInfo(1, 1, through_quiet=True), SubscriptionInfo(1, 2)]
    morning = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
    result = plan(
        [NewItem(10), NewItem(11), NewItem(12)],
        [(10, 1), (11, 2), (12, 1), (12, 2)],
        [night_owl],
        subs,
    )
    assert {a.item_id: a.send_at for a in result.alerts} == {10: NOW, 11: morning, 12: NOW}
    assert result.skipped["held_quiet_hours"] == 1

    def burst(matches: list[tuple[int, int]], queued: int = 0) -> AlertPlan:
        return plan(
            [NewItem(i) for i, _ in matches],
            matches,
            [night_owl],
            subs,
            policy=BurstPolicy(max_alerts=2, window=timedelta(minutes=10)),
            queued={1: Queued(queued)},
        )

    (fold,) = burst([(20, 1), (21, 1), (22, 1)]).folds
    assert (fold.send_at, fold.release) == (NOW, False)
    # what goes now and what waits for 07:00 are counted apart, and never summed up together
    mixed = burst([(20, 1), (21, 1), (22, 2)])
    assert {a.item_id: a.send_at for a in mixed.alerts} == {20: NOW, 21: NOW, 22: morning}
    # with an alert waiting for 07:00 already, the held one goes in the release summary
    waits = burst([(20, 1), (22, 2)], queued=1)
    assert {a.item_id: a.send_at for a in waits.alerts} == {20: NOW}
    (fold,) = waits.folds
    assert (fold.item_ids, fold.send_at, fold.release) == ((22,), morning, True)


def test_a_noisy_sources_matches_wait_for_the_digest_of_chats_that_have_one() -> None:
    """Rule 3: an item from a source set to the digest alerts a chat without a digest (nothing
    is lost), not one with a digest; an item of an event already alerted is still an update."""
    reader = SubscriberInfo(1, 111, digest=True)
    no_digest = SubscriberInfo(2, 222)
    result = plan_alerts(
        items=[
            NewItem(10, digest_only=True),
            NewItem(11),
            NewItem(12, event_id=7, digest_only=True),
        ],
        matches=[ItemMatch(i, 1) for i in (10, 11, 12)],
        themes=THEMES,
        subscribers={1: reader, 2: no_digest},
        subscriptions=[SubscriptionInfo(1, 1), SubscriptionInfo(2, 1)],
        recent_instant={},
        policy=BurstPolicy(),
        now=NOW,
        delivered={(1, 7): EventDelivered("event:7")},
    )
    assert sorted((a.subscriber_id, a.item_id) for a in result.alerts) == [
        (1, 11),
        (2, 10),
        (2, 11),
        (2, 12),
    ]
    assert [(u.subscriber_id, u.item_ids) for u in result.updates] == [(1, (12,))]
    assert result.skipped["source_digest"] == 1


def test_a_wary_sources_unsure_matches_wait_for_digests_and_its_sure_ones_still_alert() -> None:
    """Rule 3, feedback's lever: when subscribers judged a source's unsure matches of a theme
    mostly wrong, its next unsure match of that theme waits for the digest of a chat that has
    one; a sure match of the same theme, another theme's match, a chat without a digest and
    an update of an event already alerted are untouched."""
    reader = SubscriberInfo(1, 111, digest=True)
    no_digest = SubscriberInfo(2, 222)
    wary = frozenset({1})
    result = plan_alerts(
        items=[
            NewItem(10, wary_themes=wary),
            NewItem(11, wary_themes=wary),
            NewItem(12, wary_themes=wary),
            NewItem(13, event_id=7, wary_themes=wary),
        ],
        matches=[
            ItemMatch(10, 1, sure=False),
            ItemMatch(11, 1, sure=True),
            ItemMatch(12, 2, sure=False),
            ItemMatch(13, 1, sure=False),
        ],
        themes=THEMES,
        subscribers={1: reader, 2: no_digest},
        subscriptions=[SubscriptionInfo(s, t) for s in (1, 2) for t in (1, 2)],
        recent_instant={},
        policy=BurstPolicy(),
        now=NOW,
        delivered={(1, 7): EventDelivered("event:7")},
    )
    assert sorted((a.subscriber_id, a.item_id) for a in result.alerts) == [
        (1, 11),
        (1, 12),
        (2, 10),
        (2, 11),
        (2, 12),
        (2, 13),
    ]
    assert [(u.subscriber_id, u.item_ids) for u in result.updates] == [(1, (13,))]
    assert result.skipped["wary_source"] == 1


def test_a_burst_folds_into_one_summary_keeping_the_window_at_the_limit() -> None:
    """The day BIS adds 140 entities: 4 alerts and one summary of the other 136."""
    items = [NewItem(i) for i in range(1, 141)]
    result = plan(
        items,
        [(i.id, 1) for i in items],
        [SubscriberInfo(1, 111), SubscriberInfo(2, 222)],
        [SubscriptionInfo(1, 1), SubscriptionInfo(2, 1)],
        recent={2: 3},
    )
    by_chat = {s: [a.item_id for a in result.alerts if a.subscriber_id == s] for s in (1, 2)}
    assert by_chat == {1: [1, 2, 3, 4], 2: [1]}
    folds = {f.subscriber_id: f.item_ids for f in result.folds}
    assert folds == {1: tuple(range(5, 141)), 2: tuple(range(2, 141))}


def test_a_chat_already_at_its_limit_gets_one_summary() -> None:
    result = plan(
        [NewItem(1), NewItem(2)],
        [(1, 1), (2, 1)],
        [SubscriberInfo(1, 111)],
        [SubscriptionInfo(1, 1)],
        recent={1: 9},
    )
    assert result.alerts == ()
    assert [f.item_ids for f in result.folds] == [(1, 2)]


def test_up_to_the_limit_nothing_is_folded() -> None:
    result = plan(
        [NewItem(i) for i in range(1, 6)],
        [(i, 1) for i in range(1, 6)],
        [SubscriberInfo(1, 111)],
        [SubscriptionInfo(1, 1)],
    )
    assert len(result.alerts) == 5
    assert result.folds == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("22:00-07:00", True),
        ("7:30-8:00", True),
        ("25:00-07:00", False),
        ("08:00-08:00", False),
        ("<script>", False),
        ("", False),
        (None, False),
    ],
)
def test_quiet_hours_parsing(text: str | None, expected: bool) -> None:
    assert (parse_quiet_hours(text) is not None) is expected


def test_quiet_hours_within_one_day_and_an_unknown_zone_falls_back_to_utc() -> None:
    now = datetime(2026, 1, 15, 13, 30, tzinfo=UTC)
    assert quiet_hours_end("13:00-14:00", "Not/AZone", now) == datetime(
        2026, 1, 15, 14, 0, tzinfo=UTC
    )
    assert quiet_hours_end("14:00-15:00", "UTC", now) is None
    # a region's folder of zones is no zone either (ZoneInfo fails to open it as a file)
    assert quiet_hours_end("13:00-14:00", "America", now) == datetime(
        2026, 1, 15, 14, 0, tzinfo=UTC
    )


def test_old_news_re_served_by_a_feed_is_not_alerted() -> None:
    """Author and tag feeds serve stories for years; an old story first seen today is not news.
    A guessed date (None here) is taken as fresh."""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    items = [
        NewItem(10, published_at=datetime(2020, 12, 21, 12, 39, tzinfo=UTC)),
        NewItem(11, published_at=now - timedelta(hours=5)),
        NewItem(12, published_at=None),
    ]
    result = plan_alerts(
        items=items,
        matches=[ItemMatch(i, 1) for i in (10, 11, 12)],
        themes={1: ThemeInfo(1, "export-controls", "Export controls")},
        subscribers={1: SubscriberInfo(1, 42)},
        subscriptions=[SubscriptionInfo(1, 1)],
        recent_instant={},
        policy=BurstPolicy(),
        now=now,
        max_age=timedelta(days=3),
    )
    assert [a.item_id for a in result.alerts] == [11, 12]
    assert result.skipped["old_news"] == 1


def test_sure_only_chats_get_sure_matches_at_once_and_updates_to_alerted_events() -> None:
    """/alerts sure with a digest: an unsure match waits for the digest, unless its event was
    already alerted to the chat (then it is an update like any new source); without a digest
    it alerts as before."""
    picky = SubscriberInfo(1, 111, digest=True, sure_only=True)
    no_digest = SubscriberInfo(2, 222, sure_only=True)
    subs = [SubscriptionInfo(1, 1), SubscriptionInfo(2, 1)]
    result = plan_alerts(
        items=[NewItem(10), NewItem(11), NewItem(12, event_id=7)],
        matches=[ItemMatch(i, 1, sure=i == 10) for i in (10, 11, 12)],
        themes=THEMES,
        subscribers={1: picky, 2: no_digest},
        subscriptions=subs,
        recent_instant={},
        policy=BurstPolicy(),
        now=NOW,
        delivered={(1, 7): EventDelivered("event:7"), (2, 7): EventDelivered("event:7")},
    )
    assert sorted((a.subscriber_id, a.item_id) for a in result.alerts) == [
        (1, 10),
        (2, 10),
        (2, 11),
    ]
    assert sorted((u.subscriber_id, u.item_ids) for u in result.updates) == [
        (1, (12,)),
        (2, (12,)),
    ]
    assert result.skipped["not_sure"] == 1


def test_a_forum_chat_gets_each_theme_in_the_topic_it_routed_it_to() -> None:
    """Rule 9: an alert goes to the topic of its first theme that has one; a summary only
    when all of it belongs to one topic; a chat without topics gets everything in itself."""
    forum, plain = SubscriberInfo(1, -100111), SubscriberInfo(2, 222)
    subs = [
        SubscriptionInfo(1, 1, topic_id=7),  # export controls → topic 7
        SubscriptionInfo(1, 2),  # China AI rules → General
        SubscriptionInfo(2, 1),
        SubscriptionInfo(2, 2),
    ]
    result = plan(
        [NewItem(10), NewItem(11), NewItem(12)],
        [(10, 1), (11, 2), (12, 1), (12, 2)],
        [forum, plain],
        subs,
    )
    where = {(a.subscriber_id, a.item_id): a.topic for a in result.alerts}
    assert where == {
        (1, 10): 7,
        (1, 11): None,
        (1, 12): 7,  # both themes: the one with a topic decides
        (2, 10): None,
        (2, 11): None,
        (2, 12): None,
    }

    def folded(items: list[int], matches: list[tuple[int, int]]) -> int | None:
        burst = plan(
            [NewItem(i) for i in items],
            matches,
            [forum],
            subs[:2],
            policy=BurstPolicy(max_alerts=2, window=timedelta(minutes=10)),
        )
        (fold,) = burst.folds
        assert len(fold.item_ids) == len(items) - 1
        return fold.topic

    assert folded([20, 21, 22], [(20, 1), (21, 1), (22, 1)]) == 7
    assert folded([20, 21, 22], [(20, 1), (21, 1), (22, 2)]) is None  # one event is General's
