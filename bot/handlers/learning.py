"""``/watch stats`` and ``/watch model`` for editors: feedback precision per theme, layer and
rule, and each theme's learned model (show versions, turn off/on, roll back). Audited."""

from __future__ import annotations

from bot import learning_replies
from bot.handlers.base import INTEGER_MAX, Call, Reply, UsageError, number_in, theme_or_error
from delivery.telegram_html import esc
from models.db.learned import newer_than_active
from models.feedback import tally
from pipeline.planning import wary_sources

MODEL_ACTIONS = ("on", "off", "rollback", "use")


async def cmd_stats(call: Call, slug: str) -> Reply:
    theme = (await theme_or_error(call.uow, slug)).slug if slug else None
    stats = tally(await call.uow.feedback.votes())
    switches = await call.uow.learned.model_switches()
    versions = await call.uow.learned.versions()  # without weights
    active = {v.slug: v.version for v in versions if v.active}
    unused: dict[str, int] = {}
    for held_slug, version in newer_than_active(versions):
        unused[held_slug] = max(version, unused.get(held_slug, version))
    policy = call.ctx.config.wary
    wary = await wary_sources(call.uow, policy, call.now)
    first, *rest = learning_replies.stats_reply(
        stats,
        switches,
        active,
        theme=theme,
        unused=unused,
        wary=wary,
        explore_every=policy.explore_every,
    )
    return Reply(first, more=tuple(rest))


async def cmd_model(call: Call, slug: str, action: str) -> Reply:
    if not slug:
        raise UsageError("Name a theme.")
    theme = await theme_or_error(call.uow, slug)
    learned = call.uow.learned
    verb, *args = action.lower().split() or [""]
    if not verb:
        on = (await learned.model_switches()).get(theme.slug, True)
        versions = await learned.versions(theme.slug)
        return Reply(learning_replies.versions_reply(theme.slug, on, versions))
    if verb not in MODEL_ACTIONS:
        raise UsageError("Choose on, off, rollback or use &lt;version&gt;.")
    wanted: int | None = None  # the version of "use"
    if verb == "use":
        wanted = number_in(args[0].removeprefix("v"), INTEGER_MAX) if len(args) == 1 else None
        if wanted is None:
            raise UsageError(
                f"Name one stored version: /watch model {esc(theme.slug)} use 3 "
                f"(/watch model {esc(theme.slug)} lists them)."
            )
    elif args:
        raise UsageError(f"/watch model {esc(theme.slug)} {verb} takes nothing more.")
    if verb in {"rollback", "use"}:
        before = await learned.active_version(theme.id)
        if wanted is not None:
            now_active = wanted if await learned.activate(theme.id, wanted) else None
            if now_active is None:
                raise UsageError(
                    f"The {esc(theme.slug)} model has no version {wanted}: "
                    f"/watch model {esc(theme.slug)} lists the stored ones."
                )
        else:
            now_active = await learned.rollback(theme.id)
            if now_active is None:
                raise UsageError(f"The {esc(theme.slug)} model has no older version to go back to.")
        await call.audit(
            f"model.{verb}",
            "theme_model",
            theme.slug,
            {"version": before.version} if before else None,
            {"version": now_active},
        )
        earlier = f" (was {before.version})" if before and before.version != now_active else ""
        return Reply(f"The {esc(theme.slug)} model now uses version {now_active}{earlier}.")
    on = verb == "on"
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
