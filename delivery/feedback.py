"""The feedback buttons under an alert: 👍 relevant, 👎 not relevant, and "wrong theme" for each
theme the alert names (``models.feedback`` holds their callback data). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from delivery.telegram_html import clip
from models.feedback import DOWN, MAX_CALLBACK_DATA, UP, WRONG, feedback_callback
from models.outbox import InlineButton

WRONG_THEME_BUTTONS = 2


def feedback_rows(
    item_id: int, themes: Sequence[tuple[int | None, str]]
) -> list[list[InlineButton]]:
    """Button rows for an alert of ``item_id`` naming ``themes`` ((theme id, title) pairs)."""
    rows: list[list[InlineButton]] = [
        [
            {"text": "👍 Relevant", "callback_data": feedback_callback(UP, item_id)},
            {"text": "👎 Not relevant", "callback_data": feedback_callback(DOWN, item_id)},
        ]
    ]
    wrong: list[InlineButton] = []
    for theme_id, title in themes[:WRONG_THEME_BUTTONS]:
        if theme_id is None:
            continue
        data = feedback_callback(WRONG, item_id, theme_id)
        if len(data.encode()) <= MAX_CALLBACK_DATA:
            wrong.append({"text": f"Wrong theme: {clip(title, 20)}", "callback_data": data})
    if wrong:
        rows.append(wrong)
    return rows
