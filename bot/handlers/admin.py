"""Commands for admins: sources, roles, statistics and broadcasts. Every change is audited."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

from bot import replies
from bot.commands import EDITOR
from bot.handlers.base import (
    AfterFetch,
    Call,
    RefusedError,
    Reply,
    UsageError,
    number_in,
    source_or_error,
    theme_or_error,
)
from delivery.notices import enqueue_broadcast
from delivery.telegram_html import clip, esc
from models.sources import ALERT_CHOICES, ALERTS_DIGEST, NAME_RE, ORIGIN_CHAT
from models.timeutil import describe_duration
from models.views import SourceView, ThemeList
from pipeline.polling import Trial, try_source
from scrapers.http import check_target
from scrapers.registry import source_kinds

MAX_BROADCAST_TEXT = 3500
MAX_URL = 2000
DEFAULT_SOURCE_INTERVAL = 900


def default_source_name(url: str) -> str:
    host = (urlsplit(url).hostname or "source").lower()
    name = re.sub(r"[^a-z0-9_.-]+", "-", host.removeprefix("www.")).strip("-._")
    return (name or "source")[:56]


async def cmd_source(call: Call) -> Reply | AfterFetch[Trial]:
    args = call.args
    sub = args[0].lower() if args else ""
    if sub == "list" and len(args) == 1:
        rows = await call.uow.sources.all()
        return Reply(replies.sources_reply(rows, await call.zone(), detailed=True))
    if sub == "add" and len(args) in (3, 4):
        return await _source_add(call, args[1], args[2], args[3] if len(args) == 4 else None)
    if sub in {"pause", "resume"} and len(args) == 2:
        source = await source_or_error(call.uow, args[1])
        after = await call.uow.sources.set_enabled(source.name, sub == "resume", call.now)
        assert after is not None
        await call.audit(
            f"source.{sub}",
            "source",
            source.name,
            {"enabled": source.enabled, "origin": source.origin},
            {"enabled": after.enabled, "origin": ORIGIN_CHAT},
        )
        return Reply(
            f"Source <b>{esc(source.name)}</b> {'resumed' if after.enabled else 'paused'}."
        )
    if sub in ALERT_CHOICES and len(args) == 3:
        return await _source_theme_alerts(call, args[1], args[2], sub == ALERTS_DIGEST)
    if sub in ALERT_CHOICES and len(args) == 2:
        source = await source_or_error(call.uow, args[1])
        changed = await call.uow.sources.set_alerts(source.name, sub, call.now)
        assert changed is not None
        await call.audit(
            "source.alerts",
            "source",
            source.name,
            {"alerts": source.alerts, "origin": source.origin},
            {"alerts": changed.alerts, "origin": ORIGIN_CHAT},
        )
        if sub == ALERTS_DIGEST:
            return Reply(
                f"Matches from <b>{esc(source.name)}</b> now wait for the digest of every chat "
                "that has one (chats without a digest still get them at once). "
                f"/source instant {esc(source.name)} undoes it."
            )
        return Reply(f"Matches from <b>{esc(source.name)}</b> alert at once again.")
    if sub in {"trust", "untrust"} and len(args) == 3:
        return await _source_trust(call, args[1], args[2], sub == "trust")
    if sub == "expect" and len(args) == 3:
        return await _source_expect(call, args[1], args[2].lower())
    raise UsageError(
        "Choose list, add, pause, resume, digest, instant, trust, untrust or expect, with their "
        "arguments."
    )


async def _source_theme_alerts(call: Call, name: str, slug: str, digest: bool) -> Reply:
    """``/source digest|instant <name> <theme>``: one theme's matches from a source to digests
    or back (a feed noisy for one theme only)."""
    source = await source_or_error(call.uow, name)
    theme = await theme_or_error(call.uow, slug)
    if source.alerts == ALERTS_DIGEST:
        raise UsageError(
            f"All matches from <b>{esc(source.name)}</b> wait for digests: "
            f"/source instant {esc(source.name)} first."
        )
    await _list_theme(call, source, theme.slug, "digest_themes", digest, "source.digest_theme")
    if digest:
        return Reply(
            f"<b>{esc(theme.slug)}</b> matches from <b>{esc(source.name)}</b> now wait for the "
            "digest of every chat that has one (chats without a digest still get them at once). "
            f"/source instant {esc(source.name)} {esc(theme.slug)} undoes it."
        )
    return Reply(f"<b>{esc(theme.slug)}</b> matches from <b>{esc(source.name)}</b> alert at once.")


async def _list_theme(
    call: Call, source: SourceView, slug: str, column: ThemeList, listed: bool, action: str
) -> None:
    """Put a theme in one of a source's per-theme lists or take it out, audited."""
    changed = await call.uow.sources.set_theme_listed(source.name, column, slug, listed, call.now)
    assert changed is not None
    await call.audit(
        action,
        "source",
        source.name,
        {column: list(getattr(source, column)), "origin": source.origin},
        {column: list(getattr(changed, column)), "origin": ORIGIN_CHAT},
    )


async def _source_trust(call: Call, name: str, slug: str, trusted: bool) -> Reply:
    """``/source trust|untrust <name> <theme>``: a source's unsure matches of a theme alert at
    once whatever subscribers' feedback says (wary sources, ``/watch stats``), or not."""
    source = await source_or_error(call.uow, name)
    theme = await theme_or_error(call.uow, slug)
    await _list_theme(call, source, theme.slug, "trusted_themes", trusted, "source.trust_theme")
    if trusted:
        return Reply(
            f"Unsure <b>{esc(theme.slug)}</b> matches from <b>{esc(source.name)}</b> alert at "
            "once, whatever subscribers' feedback says of them. "
            f"/source untrust {esc(source.name)} {esc(theme.slug)} undoes it."
        )
    return Reply(
        f"Unsure <b>{esc(theme.slug)}</b> matches from <b>{esc(source.name)}</b> wait for "
        "digests again when subscribers' feedback says they are mostly wrong."
    )


async def _source_expect(call: Call, name: str, period: str) -> Reply:
    source = await source_or_error(call.uow, name)
    try:
        changed = await call.uow.sources.set_expectation(source.name, period, call.now)
    except ValueError as exc:
        raise UsageError(f"{esc(str(exc))}, or off.") from None
    assert changed is not None
    await call.audit(
        "source.expect",
        "source",
        source.name,
        {"expect_new_within": _period(source.expected_within), "origin": source.origin},
        {"expect_new_within": period, "origin": ORIGIN_CHAT},
    )
    if changed.expected_within is None:
        return Reply(f"<b>{esc(source.name)}</b> will not be reported quiet.")
    return Reply(
        f"Admins will hear when <b>{esc(source.name)}</b> brings nothing new for more than "
        f"{describe_duration(changed.expected_within)} while its polls succeed."
    )


def _period(span: timedelta | None) -> str:
    return "off" if span is None else f"{int(span.total_seconds())}s"


async def _source_add(
    call: Call, kind: str, url: str, name: str | None
) -> Reply | AfterFetch[Trial]:
    kinds = source_kinds()
    if kind not in kinds:
        msg = f"Unknown kind <code>{esc(kind[:32])}</code>. Kinds: {esc(', '.join(kinds))}."
        raise UsageError(msg)
    if len(url) > MAX_URL:
        raise UsageError(f"That URL is too long (at most {MAX_URL:,} characters).")
    target = await check_target(
        url, allow_private=call.ctx.config.allow_private_sources, resolve=call.ctx.resolve
    )
    if target.problem:
        hint = (
            " Private and local addresses are polled only when the operator sets "
            "<code>POLICYWATCH_ALLOW_PRIVATE_SOURCES=true</code>."
            if target.private
            else ""
        )
        raise UsageError(f"That URL is refused: {esc(target.problem)}.{hint}")
    if name is not None and not NAME_RE.match(name):
        msg = f"<code>{esc(name[:70])}</code> is not a source name (1-64 of a-z 0-9 _ . -)."
        raise UsageError(msg)
    await _free_name(call, url, name)  # refuse a taken name before trying the URL
    fetcher = call.ctx.fetcher
    if fetcher is None:
        return await _add_source(call, None, kind=kind, url=url, name=name)
    # The try runs between two transactions (up to 20 s); the second one adds the source.
    return AfterFetch(
        fetch=partial(try_source, fetcher, kind, url, call.now),
        finish=partial(_add_source, kind=kind, url=url, name=name),
    )


async def _free_name(call: Call, url: str, name: str | None) -> str:
    """``name`` if no source has it, else a UsageError; with no name, the URL's host with the
    first free suffix."""
    if name is None:
        base = default_source_name(url)
        taken = await call.uow.sources.names_starting(base)
        name, suffix = base, 2
        while name in taken:
            name = f"{base}-{suffix}"
            suffix += 1
    if await call.uow.sources.get(name) is not None:
        raise UsageError(f"A source named <code>{esc(name)}</code> already exists.")
    return name


async def _add_source(
    call: Call, trial: Trial | None, *, kind: str, url: str, name: str | None
) -> Reply:
    found = ""
    if trial is not None:
        if trial.error is not None:
            raise RefusedError(
                f"I tried {esc(clip(url, 200))} once: {esc(clip(trial.error, 300))}\n"
                "The source was not added."
            )
        found = f" I tried it once: {replies.trial_summary(trial, await call.zone())}"
    chosen = await _free_name(call, url, name)  # again: another admin may have added it meanwhile
    await call.uow.sources.add_from_chat(
        name=chosen,
        kind=kind,
        url=url,
        options={},
        interval_seconds=DEFAULT_SOURCE_INTERVAL,
        now=call.now,
    )
    await call.audit(
        "source.add", "source", chosen, None, {"kind": kind, "url": url, "enabled": True}
    )
    return Reply(
        f"Source <b>{esc(chosen)}</b> added ({esc(kind)}); it will be polled now and every "
        f"{DEFAULT_SOURCE_INTERVAL // 60} minutes.{found}"
    )


async def cmd_admin(call: Call) -> Reply:
    args = [a.lower() for a in call.args]
    if not args or args[0] not in {"grant", "revoke"}:
        raise UsageError("Choose grant or revoke.")
    user_id = number_in(args[1]) if len(args) >= 2 else None
    if user_id is None:
        raise UsageError("Give a numeric Telegram user id.")
    subscribers = call.uow.subscribers
    if args[0] == "grant":
        if len(args) != 3 or args[2] != EDITOR:
            raise UsageError("Only the editor role can be granted.")
        before = await subscribers.grant_editor(user_id, call.now)
        await call.audit(
            "role.grant",
            "subscriber",
            str(user_id),
            {"role": before} if before is not None else None,
            {"role": EDITOR},
        )
        return Reply(f"User {user_id} is now an editor.")
    if len(args) != 2:
        raise UsageError("/admin revoke takes only the user id.")
    revoked = await subscribers.revoke_editor(user_id, call.now)
    if revoked is None:
        return Reply(f"User {user_id} is not an editor.")
    await call.audit(
        "role.revoke", "subscriber", str(user_id), {"role": revoked}, {"role": "subscriber"}
    )
    return Reply(f"User {user_id} is no longer an editor.")


async def cmd_stats(call: Call) -> Reply:
    return Reply(replies.stats_reply(await call.uow.queries.stats(call.now)))


async def cmd_broadcast(call: Call) -> Reply:
    text = call.rest
    if not text:
        raise UsageError("What should I send?")
    if len(text) > MAX_BROADCAST_TEXT:
        msg = f"That message is too long ({len(text)} characters; at most {MAX_BROADCAST_TEXT})."
        raise UsageError(msg)
    # The message identity makes a repeat impossible even if Telegram redelivers the update.
    key = f"broadcast:{call.chat.id}:{call.message.message_id}"
    ids = await enqueue_broadcast(call.uow, f"📢 {esc(text)}", key, call.now)
    await call.audit("broadcast", "broadcast", key, None, {"text": text, "recipients": len(ids)})
    return Reply(f"Broadcast queued for {len(ids)} chats.")
