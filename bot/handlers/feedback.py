"""The feedback buttons under alerts (👍 / 👎 / "wrong theme"). The answer is a toast only the
person who pressed sees; nothing about one chat's feedback is shown to anyone else."""

from __future__ import annotations

from dataclasses import replace

from telegram import Update

from bot.context import BotContext
from bot.handlers.base import ensure_subscriber
from models.feedback import UP, WRONG, parse_feedback_callback


async def on_feedback(ctx: BotContext, update: Update) -> None:
    query = update.callback_query
    if query is None:
        return
    press = parse_feedback_callback(query.data or "")
    message = query.message
    chat = message.chat if message is not None else None
    if press is None or chat is None:
        await query.answer("This button is no longer valid.")
        return
    now = ctx.clock()
    async with ctx.db.transaction() as uow:
        sub = await ensure_subscriber(uow, chat, query.from_user, now)
        if press.theme_id is not None and press.verdict != WRONG:
            # a digest entry's 👍 / 👎: the theme it is listed under, an unsure match (only
            # unsure entries carry them)
            theme = await uow.feedback.matched_theme(press.item_id, press.theme_id)
            themes = [replace(theme, sure=False)] if theme is not None else []
        else:
            themes = await uow.feedback.alert_themes(press.item_id, sub.id)
            if press.verdict == WRONG:
                themes = [t for t in themes if t.id == press.theme_id]
        if not themes:
            answer = "This item no longer matches that theme; nothing was recorded."
        else:
            changed = await uow.feedback.record(
                subscriber_id=sub.id,
                user_id=query.from_user.id,
                item_id=press.item_id,
                theme_ids=[t.id for t in themes],
                verdict=press.verdict,
                now=now,
                sure={t.id: t.sure for t in themes},
            )
            named = press.theme_id is not None  # "wrong theme", a digest entry's 👍 / 👎
            about = f"about {themes[0].title}" if named else "relevant"
            if not changed:
                answer = "Already noted, thank you."
            elif press.verdict == UP:
                answer = f"Thanks: noted as {about}."
            else:
                answer = f"Thanks: noted as not {about}."
    await query.answer(answer[:200])
