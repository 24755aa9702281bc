"""Commands for editors and admins: watchlists (``/watch``) and themes (``/theme``).

Rules are checked with the real rule parser before anything is stored, and tried on recent
items with the real classifier (``/watch test``). Every edit is a chat edit (re-seeding leaves
it alone) and is audited.
"""

from __future__ import annotations

from typing import Any

from bot import replies
from bot.commands import EDITOR
from bot.handlers import learning
from bot.handlers.base import (
    Call,
    RefusedError,
    Reply,
    UsageError,
    allowed,
    role_of,
    split_rest,
    theme_or_error,
)
from bot.handlers.entities import cmd_watch_org
from delivery.telegram_html import esc
from models.matching import check_rule, disambiguated_name, scope_body
from models.sources import ORIGIN_CHAT
from models.themes import PRIORITIES, SLUG_RE
from models.views import ThemeView

MAX_RULE = 500  # theme_rules.rule is VARCHAR(500)
MAX_TITLE = 200
DRY_RUN_DAYS = 30
DRY_RUN_EXAMPLES = 5


def _check_rule_text(rule: str) -> None:
    if not rule:
        raise UsageError("Give a term or rule.")
    if len(rule) > MAX_RULE:
        msg = f"That rule is too long ({len(rule)} characters; at most {MAX_RULE})."
        raise UsageError(msg)
    problem = check_rule(rule)
    if problem:
        raise UsageError(f"That rule does not parse: {esc(problem)}")


async def cmd_watch(call: Call) -> Reply:
    if [w.lower() for w in call.rest.split(maxsplit=1)[:1]] == ["org"]:
        return await cmd_watch_org(call)  # everyone, for themselves; editors for themes
    if not allowed(await role_of(call.ctx, call.uow, call.user), EDITOR):
        raise RefusedError("Sorry, /watch is only for editors and admins.")
    sub, slug, rule = split_rest(call.rest, 3)
    sub = sub.lower()
    rule = rule.strip()
    if sub == "list":
        if rule:
            raise UsageError("/watch list takes at most one theme.")
        themes = [await theme_or_error(call.uow, slug)] if slug else await call.uow.themes.enabled()
        listing = {t.slug: [r.rule for r in await call.uow.themes.rules(t.id)] for t in themes}
        first, *rest = replies.watch_list_reply(listing)
        return Reply(first, more=tuple(rest))
    if sub == "stats":
        if rule:
            raise UsageError("/watch stats takes at most one theme.")
        return await learning.cmd_stats(call, slug)
    if sub == "model":
        return await learning.cmd_model(call, slug, rule)
    if sub not in {"add", "remove", "test"}:
        raise UsageError("Choose list, add, remove or test (or stats, model).")
    if not slug:
        raise UsageError("Name a theme.")
    theme = await theme_or_error(call.uow, slug)
    if sub == "remove":
        return await _remove(call, theme, rule)
    _check_rule_text(rule)
    name = disambiguated_name(rule)
    note = None if name is None else replies.disambiguation_note(theme.slug, name)
    if scope_body(rule) is not None:
        note = replies.scope_note(theme.slug)
    if sub == "test":
        result = await call.ctx.classifier.dry_run(
            call.uow, theme.slug, rule, call.now, DRY_RUN_DAYS, DRY_RUN_EXAMPLES
        )
        return Reply(replies.dry_run_reply(theme.slug, rule, result, DRY_RUN_DAYS, note))
    before = await call.uow.themes.add_rule(
        theme.id, rule, user_id=call.user.id if call.user else None, now=call.now
    )
    if before is not None and before.enabled:
        return Reply(f"<code>{esc(rule)}</code> is already on the {esc(theme.slug)} watchlist.")
    await call.audit(
        "watch.add",
        "theme_rule",
        f"{theme.slug}:{rule}",
        {"rule": rule, "enabled": False} if before is not None else None,
        {"rule": rule, "enabled": True, "origin": ORIGIN_CHAT},
    )
    added = f"Added <code>{esc(rule)}</code> to <b>{esc(theme.slug)}</b>."
    return Reply(added if note is None else f"{added}\n{note}")


async def _remove(call: Call, theme: ThemeView, rule: str) -> Reply:
    if not rule:
        raise UsageError("Give the term or rule to remove.")
    removed = await call.uow.themes.remove_rule(theme.id, rule)
    if removed is None:
        msg = (
            f"<code>{esc(rule[:100])}</code> is not on the {esc(theme.slug)} watchlist; "
            f"see /watch list {esc(theme.slug)}."
        )
        raise UsageError(msg)
    await call.audit(
        "watch.remove",
        "theme_rule",
        f"{theme.slug}:{removed.rule}",
        {"rule": removed.rule, "enabled": True, "origin": removed.origin},
        {"rule": removed.rule, "enabled": False, "origin": ORIGIN_CHAT},
    )
    return Reply(f"Removed <code>{esc(removed.rule)}</code> from <b>{esc(theme.slug)}</b>.")


def _theme_state(theme: ThemeView) -> dict[str, Any]:
    return {
        "title": theme.title,
        "priority": theme.priority,
        "enabled": theme.enabled,
        "origin": theme.origin,
    }


async def cmd_theme(call: Call) -> Reply:
    sub, slug, rest = split_rest(call.rest, 3)
    sub, slug, rest = sub.lower(), slug.lower(), rest.strip()
    if sub not in {"add", "remove", "priority"}:
        raise UsageError("Choose add, remove or priority.")
    if not slug:
        raise UsageError("Name a theme.")
    themes = call.uow.themes
    if sub == "add":
        if not SLUG_RE.match(slug):
            msg = f"<code>{esc(slug[:60])}</code> is not a slug (1-48 of a-z, 0-9 and -)."
            raise UsageError(msg)
        if not rest:
            raise UsageError("Give the theme a title.")
        if len(rest) > MAX_TITLE:
            msg = f"That title is too long ({len(rest)} characters; at most {MAX_TITLE})."
            raise UsageError(msg)
        existing = await themes.get(slug)
        if existing is not None and existing.enabled:
            raise UsageError(f"The theme <code>{esc(slug)}</code> already exists.")
        added = await themes.add_from_chat(slug, rest, call.now)
        before = _theme_state(existing) if existing is not None else None
        await call.audit("theme.add", "theme", slug, before, _theme_state(added))
        return Reply(
            f"Theme <b>{esc(rest)}</b> (<code>{esc(slug)}</code>) added; "
            f"add terms with /watch add {esc(slug)} &lt;term&gt;."
        )
    theme = await theme_or_error(call.uow, slug)
    if sub == "remove":
        if rest:
            raise UsageError("/theme remove takes only the slug.")
        after = await themes.update_from_chat(slug, call.now, enabled=False)
        assert after is not None
        await call.audit("theme.remove", "theme", slug, _theme_state(theme), _theme_state(after))
        return Reply(f"Theme <b>{esc(theme.title)}</b> removed (its items and history are kept).")
    if rest not in PRIORITIES:
        raise UsageError(f"<code>{esc(rest[:20])}</code> is not instant or digest.")
    after = await themes.update_from_chat(slug, call.now, priority=rest)
    assert after is not None
    await call.audit("theme.priority", "theme", slug, _theme_state(theme), _theme_state(after))
    return Reply(f"<b>{esc(theme.title)}</b> is now {esc(rest)}.")
