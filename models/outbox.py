"""The outbox contract: what a planned delivery holds, typed once for planners, the database and
the notifier.

A delivery's ``payload`` is an ``OutboxPayload``: the messages to send, in order, and how many
have gone (``sent``, so a crash resumes after the last one sent). A ``folded`` row carries no
messages, only the key of the burst summary that delivered its item. ``payload_from_json``
reads a stored JSON object back and drops whatever does not fit, so a malformed row fails as
"no messages" instead of crashing the notifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict, TypeGuard

HTML: Literal["HTML"] = "HTML"


class DeliveryKind(StrEnum):
    ALERT = "alert"  # one event to one chat (its first item; the others are folded rows)
    UPDATE = "update"  # new sources of an alerted event, as a reply to the alert
    BURST = "burst"  # several events folded into one summary
    HELD = "held"  # what a muted chat missed, sent when the mute ends
    DIGEST = "digest"
    NOTICE = "notice"  # to admins: a source failing, a handler error
    BROADCAST = "broadcast"
    REMINDER = "reminder"  # a document's date coming up (models.reminders)


# what a chat's quiet hours hold until they end (``models.alerts`` rule 7, ``pipeline.reminders``)
QUIET_HELD_KINDS = (
    DeliveryKind.ALERT,
    DeliveryKind.UPDATE,
    DeliveryKind.BURST,
    DeliveryKind.REMINDER,
)  # and a mute's summary, which also waits for the mute (``reschedule_quiet``)


class DeliveryStatus(StrEnum):
    """``pending`` → ``sent`` | ``failed`` | ``cancelled`` (the chat became unreachable);
    ``folded`` rows record an item delivered inside a burst summary and are never sent."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FOLDED = "folded"


class InlineButton(TypedDict):
    text: str
    callback_data: str


class InlineKeyboard(TypedDict):
    inline_keyboard: list[list[InlineButton]]


class OutgoingMessage(TypedDict):
    """One Telegram message: text (Telegram HTML when ``parse_mode`` is "HTML")."""

    text: str
    parse_mode: Literal["HTML"] | None
    reply_markup: InlineKeyboard | None


class OutboxPayload(TypedDict):
    messages: list[OutgoingMessage]
    sent: NotRequired[int]
    folded_into: NotRequired[str]  # a folded row: the key of the message that carried its item
    reply_to: NotRequired[str]  # send as a reply to this chat's delivery with that key
    topic: NotRequired[int]  # the forum topic (message_thread_id) it goes to
    # an alert: the themes it named that its item matched (what its feedback buttons judge),
    # and which of those matches were sure when it was planned (``models.alerts.is_sure``)
    themes: NotRequired[list[int]]
    sure: NotRequired[list[int]]


def html_message(text: str, keyboard: InlineKeyboard | None = None) -> OutgoingMessage:
    return {"text": text, "parse_mode": HTML, "reply_markup": keyboard}


def plain_message(text: str, keyboard: InlineKeyboard | None = None) -> OutgoingMessage:
    return {"text": text, "parse_mode": None, "reply_markup": keyboard}


def _keyboard(raw: Any) -> InlineKeyboard | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("inline_keyboard"), list):
        return None
    rows: list[list[InlineButton]] = []
    for row in raw["inline_keyboard"]:
        if not isinstance(row, list):
            continue
        buttons = [
            InlineButton(text=b["text"], callback_data=b["callback_data"])
            for b in row
            if isinstance(b, Mapping)
            and isinstance(b.get("text"), str)
            and isinstance(b.get("callback_data"), str)
        ]
        if buttons:
            rows.append(buttons)
    return {"inline_keyboard": rows} if rows else None


def message_from_json(raw: Any) -> OutgoingMessage | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        return None
    return {
        "text": raw["text"],
        "parse_mode": HTML if raw.get("parse_mode") == HTML else None,
        "reply_markup": _keyboard(raw.get("reply_markup")),
    }


def payload_from_json(raw: Any) -> OutboxPayload:
    """The payload of a stored row; malformed parts are dropped (never raised)."""
    if not isinstance(raw, Mapping):
        return {"messages": []}
    messages = raw.get("messages")
    payload: OutboxPayload = {
        "messages": [
            m
            for m in (
                message_from_json(r) for r in (messages if isinstance(messages, list) else [])
            )
            if m is not None
        ]
    }
    sent = raw.get("sent")
    if isinstance(sent, int) and not isinstance(sent, bool) and sent >= 0:
        payload["sent"] = sent
    folded = raw.get("folded_into")
    if isinstance(folded, str):
        payload["folded_into"] = folded
    reply_to = raw.get("reply_to")
    if isinstance(reply_to, str):
        payload["reply_to"] = reply_to
    topic = raw.get("topic")
    if _is_id(topic):
        payload["topic"] = topic
    themes, sure = _ids(raw.get("themes")), _ids(raw.get("sure"))
    if themes is not None:
        payload["themes"] = themes
    if sure is not None:
        payload["sure"] = sure
    return payload


MAX_THEME_IDS = 64


def _ids(raw: Any) -> list[int] | None:
    """A stored list of row ids (what is not one dropped); None when it is not a list."""
    if not isinstance(raw, list):
        return None
    return [i for i in raw[:MAX_THEME_IDS] if _is_id(i)]


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def with_topic(payload: OutboxPayload, topic: int | None) -> OutboxPayload:
    """``payload`` sent to forum topic ``topic`` (None: to the chat itself)."""
    routed: OutboxPayload = {**payload}
    routed.pop("topic", None)
    if topic is not None:
        routed["topic"] = topic
    return routed
