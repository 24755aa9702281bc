"""``/watch stats`` and ``/watch model`` for editors: feedback precision per theme, layer and
rule, and each theme's learned model (show versions, turn off/on, roll back). Audited."""

from __future__ import annotations

from bot import learning_replies
from bot.handlers.base import Call, Reply, UsageError, theme_or_error
from delivery.telegram_html import esc
from models.feedback import tally

MODEL_ACTIONS = ("on", "off", "rollback")


async def cmd_stats(call: Call, slug: str) -> Reply:
    theme = (await theme_or_error(call.uow, slug)).slug if slug else None
    stats = tally(await call.uow.feedback.votes())
    switches = await call.uow.learned.model_switches()
    active = {v.slug: v.version for v in await call.uow.learned.versions(active=True)}
    first, *rest = learning_replies.stats_reply(stats, switches, active, theme=theme)
    return Reply(first, more=tuple(rest))


async def cmd_model(call: Call, slug: str, action: str) -> Reply:
    if not slug:
        raise UsageError("Name a theme.")
    theme = await theme_or_error(call.uow, slug)
    learned = call.uow.learned
    action = action.lower()
    if not action:
        on = (await learned.model_switches()).get(theme.slug, True)
        versions = await learned.versions(theme.slug)
        return Reply(learning_replies.versions_reply(theme.slug, on, versions))
    if action not in MODEL_ACTIONS:
        raise UsageError("Choose on, off or rollback.")
    if action == "rollback":
        before = await learned.active_version(theme.id)
        now_active = await learned.rollback(theme.id)
        if now_active is None:
            raise UsageError(f"The {esc(theme.slug)} model has no older version to go back to.")
        await call.audit(
            "model.rollback",
            "theme_model",
            theme.slug,
            {"version": before.version} if before else None,
            {"version": now_active},
        )
        return Reply(f"The {esc(theme.slug)} model is back at version {now_active}.")
    on = action == "on"
    was = await learned.set_model_enabled(theme.id, on)
    if was != on:
        await call.audit(
            "model.on" if on else "model.off",
            "theme",
            theme.slug,
            {"model_enabled": was},
            {"model_enabled": on},
        )
    state = "on: rules OR model" if on else "off: its rules alone decide"
    return Reply(f"The learned model of <b>{esc(theme.slug)}</b> is {state}.")
