"""End to end, the unit a subscriber sees is the event: the real ``policywatch run`` process,
two loopback feeds (one English, one Chinese) and the fake Bot API, nothing mocked.

The same story published by both feeds reaches the subscriber as one alert and then one short
update replying to it; a different story on the same beat (Nvidia's H20, a week later) gets an
alert of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.fakes.feeds import FeedServer, Route
from tests.fakes.telegram import RunningFake
from tests.procs import running_service
from tests.test_e2e import Chat, now_rfc822, rss, service_env, wait_for

USER = 4343
WEEK = 7 * 86400
RESUME_EN = "Nvidia to resume H20 AI chip sales to China after US assures licences"
RESUME_ZH = "英伟达宣布将恢复向中国销售H20芯片 美方承诺发放许可证"
SUMMONS_EN = "China summons Nvidia over H20 chip backdoor security risks"


def test_one_story_from_two_feeds_is_one_alert_and_one_threaded_update(
    tmp_path: Path, feeds: FeedServer, telegram: RunningFake
) -> None:
    old = ("Semiconductor stocks close higher", "old-1", now_rfc822(-30 * 86400))
    feeds.routes["/wire.xml"] = Route(body=rss(old), etag='"w1"')
    feeds.routes["/cn.xml"] = Route(body=rss(("半导体板块收涨", "old-2", old[2])), etag='"c1"')
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        + "".join(
            f"  - name: {name}\n    kind: rss\n    url: {feeds.url(path)}\n    interval: 1s\n"
            for name, path in (("wire", "/wire.xml"), ("xinhua-cn", "/cn.xml"))
        ),
        encoding="utf-8",
    )
    env = service_env(tmp_path, telegram, sources, POLICYWATCH_ALERT_MAX_AGE="30d")
    fake = telegram.fake
    with running_service([sys.executable, "-m", "policywatch", "run"], env) as service:
        wait_for(lambda: len({r.path for r in feeds.requests}) == 2, "the first polls")
        user = Chat(fake, USER)
        user.say("/start", expect="Welcome")
        user.say("/subscribe export-controls", expect="follow")

        def messages_about(text: str) -> list[int]:
            return [m.message_id for m in fake.messages_to(USER) if text in m.text]

        # The English wire reports the H20 resumption (a week ago): one alert.
        feeds.routes["/wire.xml"] = Route(
            body=rss((RESUME_EN, "resume-en", now_rfc822(-WEEK)), old), etag='"w2"'
        )
        wait_for(lambda: bool(messages_about(RESUME_EN)), "the alert", within=40)
        [alert] = [m for m in fake.messages_to(USER) if RESUME_EN in m.text]
        assert alert.reply_to is None

        # The Chinese outlet reports the same story: one update, a reply to that alert.
        feeds.routes["/cn.xml"] = Route(
            body=rss((RESUME_ZH, "resume-zh", now_rfc822(-WEEK + 3600))), etag='"c2"'
        )
        wait_for(
            lambda: any(m.reply_to == alert.message_id for m in fake.messages_to(USER)),
            "the threaded update",
            within=40,
        )
        [update] = [m for m in fake.messages_to(USER) if m.reply_to == alert.message_id]
        assert "also:" in update.text
        assert "xinhua-cn" in update.text
        assert RESUME_ZH not in update.text  # short: who else reported it, not the story again

        # A different story on the same beat, a week later: an alert of its own.
        feeds.routes["/wire.xml"] = Route(
            body=rss(
                (SUMMONS_EN, "summons-en", now_rfc822()),
                (RESUME_EN, "resume-en", now_rfc822(-WEEK)),
                old,
            ),
            etag='"w3"',
        )
        wait_for(lambda: bool(messages_about(SUMMONS_EN)), "the second alert", within=40)
        [second] = [m for m in fake.messages_to(USER) if SUMMONS_EN in m.text]
        assert second.reply_to is None

        timeline = user.say("/latest", expect="H20")
        assert service.stop() == 0, service.err
    sent = [
        m
        for m in fake.messages_to(USER)
        if "H20" in m.text and m.reply_to is None and "Latest in" not in m.text
    ]
    assert [m.message_id for m in sent] == [alert.message_id, second.message_id]
    # /latest shows the story once, by its newest report, naming the other source.
    assert (RESUME_EN in timeline) != (RESUME_ZH in timeline), timeline
    assert "also: " in timeline
    assert "Traceback" not in service.err, service.err
