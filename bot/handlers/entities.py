"""Organisations: ``/entity <name>`` (which US screening lists name it, since when, under which
notice) and ``/watch org add|remove|list`` (editors watch organisations for a theme; every chat
for itself, a group by its admins). Replies are built in ``bot.replies``."""

from __future__ import annotations

import re
from dataclasses import replace

from bot import replies
from bot.commands import EDITOR
from bot.handlers.base import (
    Call,
    RefusedError,
    Reply,
    UsageError,
    allowed,
    role_of,
    theme_or_error,
)
from delivery.telegram_html import esc
from models.orgnames import EditorsNames, known_with, parse_org
from models.views import ThemeView

MAX_QUERY = 200
MAX_NAME = 200
MAX_ALIASES = 20
MAX_KNOWN_GROUPS = 1000  # editors' /names groups: each lookup reads them all
_SEPARATORS = re.compile(r"\s*[;|；]\s*")


async def cmd_entity(call: Call) -> Reply:
    query = call.rest.strip()
    if not query:
        raise UsageError("Which organisation? E.g. /entity Huawei or /entity 华为.")
    if len(query) > MAX_QUERY:
        raise UsageError(f"That name is too long (at most {MAX_QUERY} characters).")
    if not parse_org(query).tokens:
        raise UsageError(f"<code>{esc(query[:60])}</code> has no letters or digits.")
    chat = await call.uow.subscribers.get_by_chat(call.chat.id)
    answer = await call.ctx.entities.lookup(
        call.uow, query, subscriber_id=chat.id if chat is not None else None
    )
    first, *rest = replies.entity_reply(query, answer, chat.timezone if chat else "UTC")
    return Reply(first, more=tuple(rest))


def _names(text: str) -> tuple[str, list[str]]:
    parts = [p.strip() for p in _SEPARATORS.split(text) if p.strip()]
    if not parts:
        msg = (
            "Give the organisation's name, then any aliases after ; e.g. "
            "<code>Zhipu AI; 智谱; Beijing Zhipu Huazhang Technology</code>."
        )
        raise UsageError(msg)
    if len(parts) > MAX_ALIASES + 1:
        raise UsageError(f"At most {MAX_ALIASES} aliases.")
    for part in parts:
        if len(part) > MAX_NAME:
            raise UsageError(f"A name is at most {MAX_NAME} characters.")
        if not parse_org(part).tokens:
            raise UsageError(f"<code>{esc(part[:60])}</code> has no letters or digits.")
    name, *aliases = parts
    return name, list(dict.fromkeys(a for a in aliases if a.casefold() != name.casefold()))


async def _theme_for_editors(call: Call, slug: str) -> ThemeView:
    role = await role_of(call.ctx, call.uow, call.user)
    if not allowed(role, EDITOR):
        msg = "Sorry, watching an organisation for a theme is only for editors and admins."
        raise RefusedError(msg)
    return await theme_or_error(call.uow, slug)


async def cmd_watch_org(call: Call) -> Reply:
    """``/watch org add|remove|list [theme:<slug>] <name>[; alias…]``."""
    words = call.rest.split(maxsplit=2)[1:]  # after "org"
    sub = words[0].lower() if words else ""
    rest = words[1] if len(words) > 1 else ""
    if len(words) > 2:
        rest = f"{rest} {words[2]}"
    slug: str | None = None
    if rest.lower().startswith("theme:"):
        head, _, rest = rest.partition(" ")
        slug = head[len("theme:") :].lower()
        if not slug:
            raise UsageError("Name the theme: theme:&lt;slug&gt;.")
    rest = rest.strip()
    if sub not in {"add", "remove", "list"}:
        raise UsageError("Choose /watch org add, remove or list.")
    watched = call.uow.watched
    if sub == "list":
        if rest:
            raise UsageError("/watch org list takes at most a theme:&lt;slug&gt;.")
        sub_view = await call.subscriber()
        mine = await watched.of_subscriber(sub_view.id)
        if slug is not None:
            listed = await theme_or_error(call.uow, slug)
            themes = [o for o in await watched.of_enabled_themes() if o.theme_id == listed.id]
        else:
            themes = await watched.of_enabled_themes()
        whose = call.say("Your", "This chat's")
        first, *more = replies.watched_orgs_reply(mine, themes, whose=whose)
        return Reply(first, more=tuple(more))
    name, aliases = _names(rest)
    theme: ThemeView | None = None
    if slug is not None:
        theme = await _theme_for_editors(call, slug)
        owner = {"theme_id": theme.id}
        where = f"the <b>{esc(theme.slug)}</b> theme"
    else:  # the chat's own: in a group, its admins change it, as its subscriptions
        await call.require_chat_admin()
        owner = {"subscriber_id": (await call.subscriber()).id}
        where = call.say("your watch list", "this chat's watch list")
    if sub == "remove":
        removed = await watched.remove(name=name, **owner)
        if removed is None:
            raise UsageError(f"<code>{esc(name)}</code> is not on {where}; see /watch org list.")
        if theme is not None:
            before = {"name": removed.name, "aliases": list(removed.aliases)}
            await call.audit(
                "watch.org.remove", "watched_org", f"{theme.slug}:{removed.name}", before, None
            )
        return Reply(f"Stopped watching <b>{esc(removed.name)}</b> in {where}.")
    view, created = await watched.add(
        name=name,
        aliases=aliases,
        user_id=call.user.id if call.user else None,
        now=call.now,
        **owner,
    )
    if theme is not None:
        after = {"name": view.name, "aliases": list(view.aliases)}
        await call.audit("watch.org.add", "watched_org", f"{theme.slug}:{view.name}", None, after)
    also = f" (also {esc('; '.join(view.aliases))})" if view.aliases else ""
    if created:
        return Reply(
            f"Watching <b>{esc(view.name)}</b>{also} in {where}: screening-list changes and "
            "items that name it will be alerts."
        )
    names = esc("; ".join(view.names))
    return Reply(f"<b>{esc(view.name)}</b> was already watched in {where}; its names: {names}.")


async def cmd_names(call: Call) -> Reply:
    """``/names <name> | added | add <name>; <other name>… | drop <name> | remove <name>``: the
    names PolicyWatch knows one organisation by (``models.orgnames.KnownOrgs``: /entity,
    watched organisations and list changes use them); editors add, drop and remove."""
    head, _, tail = call.rest.strip().partition(" ")
    action = head.lower()
    if action == "added" and not tail:
        first, *more = replies.added_names_reply(await call.uow.known.edits())
        return Reply(first, more=tuple(more))
    if action not in {"add", "drop", "remove"}:
        query = call.rest.strip()
        if not query:
            raise UsageError("Which organisation? E.g. /names 寒武纪.")
        if len(query) > MAX_QUERY:
            raise UsageError(f"That name is too long (at most {MAX_QUERY} characters).")
        return Reply(_known_reply(query, await call.uow.known.edits()))
    if not allowed(await role_of(call.ctx, call.uow, call.user), EDITOR):
        raise RefusedError(f"Sorry, /names {action} is only for editors and admins.")
    if action == "remove":
        return await _remove_name(call, tail.strip())
    edits = await call.uow.known.edits()
    if len(edits.groups) + len(edits.dropped) >= MAX_KNOWN_GROUPS:
        raise UsageError(
            f"Editors have added or dropped {len(edits.groups) + len(edits.dropped)} names "
            "or groups, the most PolicyWatch keeps: remove some first "
            "(/names remove &lt;name&gt;)."
        )
    if action == "drop":
        return await _drop_name(call, tail.strip(), edits)
    name, others = _names(tail)
    names = [name, *others]
    if len(names) < 2:
        raise UsageError(
            "Give at least two names of one organisation, separated by ; e.g. "
            "/names add 宁畅; Nettrix."
        )
    if dropped := edits.dropped_among(names):
        # A drop applies to every group, later ones too: adding the name again would do nothing
        raise UsageError(
            f"<code>{esc(dropped[0])}</code> was dropped by an editor: "
            f"/names remove {esc(dropped[0])} first."
        )
    known = known_with(edits)
    owners = sorted(known.owners(names))
    if len(owners) > 1:
        said = "; ".join(
            f"<code>{esc(next(n for n in names if p in known.known_as(n)))}</code> is a name "
            f"of {esc(known.names[p][0])}"
            for p in owners
        )
        raise UsageError(f"{said}: a name belongs to one organisation only.")
    if owners and all(known.known_as(n) == {owners[0]} for n in names):
        return Reply(_known_reply(name, edits))  # nothing new
    await call.uow.known.add(names, call.user.id if call.user else None, call.now)
    await call.audit("names.add", "known_org", name, None, {"names": names})
    added = replace(edits, groups=(*edits.groups, tuple(names)))
    return Reply(_known_reply(name, added, added_now=True))


def _known_reply(query: str, edits: EditorsNames, *, added_now: bool = False) -> str:
    """``/names``'s answer with editors' edits applied to the shipped list."""
    known = known_with(edits)
    found = [known.names[p] for p in sorted(known.known_as(query))]
    return replies.known_names_reply(query, found, edits.added(), added_now=added_now)


async def _drop_name(call: Call, name: str, edits: EditorsNames) -> Reply:
    if not name:
        raise UsageError("Which name? E.g. /names drop 海光.")
    if len(name) > MAX_QUERY:
        raise UsageError(f"That name is too long (at most {MAX_QUERY} characters).")
    known = known_with(edits)
    owners = sorted(known.known_as(name))
    if not owners:
        raise UsageError(f"<code>{esc(name)}</code> names no organisation PolicyWatch knows.")
    # ``without`` keeps each organisation at its position: what is left of the one it named
    others = known_with(replace(edits, dropped=(*edits.dropped, name))).names[owners[0]]
    await call.uow.known.drop(name, call.user.id if call.user else None, call.now)
    await call.audit("names.drop", "known_org", name, None, {"dropped": name})
    return Reply(
        f"<code>{esc(name)}</code> no longer names {esc(known.names[owners[0]][0])} "
        f"(its other names: {esc('; '.join(others[:8]) or 'none')}). "
        f"/names remove {esc(name)} undoes it."
    )


async def _remove_name(call: Call, name: str) -> Reply:
    if not name:
        raise UsageError("Which name? E.g. /names remove Nettrix.")
    taken = await call.uow.known.remove(name)
    if not taken:
        if known_with(await call.uow.known.edits()).known_as(name):
            raise UsageError(
                f"<code>{esc(name)}</code> is in the shipped list: /names drop {esc(name)} "
                "takes it out."
            )
        raise UsageError(f"<code>{esc(name)}</code> is no name an editor added or dropped.")
    await call.audit("names.remove", "known_org", name, {"names": taken}, None)
    return Reply(f"Removed {esc('; '.join(taken))} from the names editors added or dropped.")
