"""The feedback buttons under an alert: 👍 relevant, 👎 not relevant, and "wrong theme" for each
theme the alert names; under a digest message, 👍 / 👎 for each numbered (unsure) entry it
holds, for the entry's theme (``models.feedback`` holds their callback data). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    judged = [(t, title) for t, title in themes if t is not None]
    for theme_id, title in judged[:WRONG_THEME_BUTTONS]:
        data = feedback_callback(WRONG, item_id, theme_id)
        if len(data.encode()) <= MAX_CALLBACK_DATA:
            wrong.append({"text": f"Wrong theme: {clip(title, 20)}", "callback_data": data})
    if wrong:
        rows.append(wrong)
    return rows


ENTRIES_PER_ROW = 2


@dataclass(frozen=True, slots=True)
class JudgedEntry:
    """A digest entry with feedback buttons: its number in the digest, item and theme."""

    number: int
    item_id: int
    theme_id: int


def digest_feedback_rows(entries: Sequence[JudgedEntry]) -> list[list[InlineButton]]:
    """Button rows for the numbered entries of one digest message (two entries a row)."""
    buttons = [
        [
            InlineButton(
                text=f"{mark} {e.number}", callback_data=feedback_callback(v, e.item_id, e.theme_id)
            )
            for mark, v in (("👍", UP), ("👎", DOWN))
        ]
        for e in entries
    ]
    return [
        [b for pair in buttons[i : i + ENTRIES_PER_ROW] for b in pair]
        for i in range(0, len(buttons), ENTRIES_PER_ROW)
    ]
