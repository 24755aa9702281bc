"""A fake Telegram Bot API server on a loopback socket, speaking the real HTTP protocol.

``POST /bot<token>/<method>`` with form-encoded (or JSON) parameters, answered with Telegram's
envelopes: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}`` with the HTTP status equal to the error code, so PTB maps errors exactly as it
does against Telegram (429 → RetryAfter, 403 → Forbidden, 400 + migrate_to_chat_id →
ChatMigrated, 5xx → NetworkError).

Flood limits are enforced like Telegram's: at most ``overall_per_second`` sends in any 1-second
window, one send per private chat per ``per_chat_interval`` seconds, and ``group_per_minute``
per group or channel in any 60-second window. A send over a limit gets 429 with retry_after.

Tests drive it from Python (it runs in a thread): ``push_text`` queues an incoming command for
``getUpdates``; ``block``, ``migrate``, ``fail_next`` inject faults; ``sent``/``calls`` record.
"""

from __future__ import annotations

import email
import email.policy
import json
import math
import re
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

TOKEN = "123456:TEST-token_for-fake-bot-api"
BOT_ID = 123456
BOT_USERNAME = "policywatch_test_bot"
JSON_FIELDS = {
    "reply_markup",
    "commands",
    "allowed_updates",
    "link_preview_options",
    "scope",
    "entities",
    "reply_parameters",
}


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    reply_markup: Any
    at: float
    reply_to: int | None = None  # the message this one replies to
    topic: int | None = None  # the forum topic (message_thread_id) it went to


@dataclass
class SentDocument:
    chat_id: int
    filename: str
    data: bytes
    caption: str | None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class _Fault:
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    chat_id: int | None = None


@dataclass
class FakeBotAPI:
    """The server's state. All access is under ``lock``; use the methods, not the fields."""

    token: str = TOKEN
    overall_per_second: int = 30
    per_chat_interval: float = 1.0
    group_per_minute: int = 20
    retry_after: int = 1
    max_text_length: int = 4096
    lock: threading.Condition = field(default_factory=threading.Condition)
    calls: list[Call] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    documents: list[SentDocument] = field(default_factory=list)
    flood_errors: int = 0
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update_id: int = 1
    _next_message_id: int = 1000
    _blocked: dict[int, str] = field(default_factory=dict)
    _migrated: dict[int, int] = field(default_factory=dict)
    _faults: dict[str, deque[_Fault]] = field(default_factory=lambda: defaultdict(deque))
    _overall: deque[float] = field(default_factory=deque)
    _per_chat: dict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _commands: list[dict[str, Any]] = field(default_factory=list)
    chat_admins: dict[int, set[int]] = field(default_factory=dict)  # getChatMember: who is admin
    # forum chats: topic id → "open" | "closed" (a deleted topic is no longer listed)
    _topics: dict[int, dict[int, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ test controls

    def push_update(self, update: dict[str, Any]) -> int:
        with self.lock:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
            self._updates.append(update)
            self.lock.notify_all()
            return int(update["update_id"])

    def push_text(
        self,
        text: str,
        *,
        chat_id: int,
        user_id: int | None = None,
        chat_type: str | None = None,
        username: str = "analyst",
        topic: int | None = None,
    ) -> int:
        """Queue an incoming text message (with a bot_command entity when it starts with /);
        with ``topic``, sent in that topic of a forum (``open_topic``)."""
        user_id = user_id if user_id is not None else chat_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type or _chat_type(chat_id)}
        if chat["type"] == "private":
            chat["first_name"] = username
        else:
            chat["title"] = f"group {chat_id}"
        message: dict[str, Any] = {
            "message_id": self._take_message_id(),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": username},
            "text": text,
        }
        with self.lock:
            if chat_id in self._topics:
                chat["is_forum"] = True
        if topic is not None:
            message |= {"message_thread_id": topic, "is_topic_message": True}
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        return self.push_update({"message": message})

    def push_callback(self, data: str, *, chat_id: int, user_id: int, message_id: int) -> int:
        return self.push_update(
            {
                "callback_query": {
                    "id": f"cb{time.monotonic_ns()}",
                    "from": {"id": user_id, "is_bot": False, "first_name": "analyst"},
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time()),
                        "chat": {"id": chat_id, "type": _chat_type(chat_id)},
                        "text": "...",
                    },
                }
            }
        )

    def open_topic(self, chat_id: int, topic: int) -> None:
        """Make ``chat_id`` a forum with topic ``topic`` open for messages."""
        with self.lock:
            self._topics.setdefault(chat_id, {})[topic] = "open"

    def close_topic(self, chat_id: int, topic: int) -> None:
        with self.lock:
            self._topics[chat_id][topic] = "closed"

    def delete_topic(self, chat_id: int, topic: int) -> None:
        with self.lock:
            del self._topics[chat_id][topic]

    def block(
        self, chat_id: int, description: str = "Forbidden: bot was blocked by the user"
    ) -> None:
        with self.lock:
            self._blocked[chat_id] = description

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        with self.lock:
            self._migrated[old_chat_id] = new_chat_id

    def fail_next(
        self,
        method: str,
        status: int,
        description: str = "Internal Server Error",
        *,
        parameters: dict[str, Any] | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id``, if given) fail this way."""
        with self.lock:
            for _ in range(times):
                self._faults[method].append(_Fault(status, description, parameters, chat_id))

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        with self.lock:
            return [m for m in self.sent if m.chat_id == chat_id]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds (checked whenever the state changes)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(min(remaining, 0.05))
            return True

    @property
    def commands(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._commands)

    # ------------------------------------------------------------------ the protocol

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API call; returns (HTTP status, JSON body)."""
        now = time.monotonic()
        if method == "getUpdates":
            return self._get_updates(params)
        with self.lock:
            call = Call(method, params, now)
            self.calls.append(call)
            status, body = self._dispatch(method, params, now)
            call.status = status
            self.lock.notify_all()
            return status, body

    def _dispatch(
        self, method: str, params: dict[str, Any], now: float
    ) -> tuple[int, dict[str, Any]]:
        chat_id = _int_or_none(params.get("chat_id"))
        queue = self._faults.get(method)
        if queue:
            for fault in list(queue):
                if fault.chat_id is None or fault.chat_id == chat_id:
                    queue.remove(fault)
                    return _error(fault.status, fault.description, fault.parameters)
        if method == "getMe":
            return _ok(
                {
                    "id": BOT_ID,
                    "is_bot": True,
                    "first_name": "PolicyWatch",
                    "username": BOT_USERNAME,
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                }
            )
        if method in {"deleteWebhook", "setWebhook", "answerCallbackQuery", "deleteMessage"}:
            return _ok(True)
        if method == "getChatMember":
            user_id = _int_or_none(params.get("user_id")) or 0
            admin = user_id in self.chat_admins.get(chat_id or 0, set())
            user = {"id": user_id, "is_bot": False, "first_name": "member"}
            if admin:
                return _ok({"status": "creator", "user": user, "is_anonymous": False})
            return _ok({"status": "member", "user": user})
        if method == "setMyCommands":
            self._commands = list(params.get("commands") or [])
            return _ok(True)
        if method == "getMyCommands":
            return _ok(self._commands)
        if method in {"sendMessage", "editMessageText", "editMessageReplyMarkup"}:
            return self._send(method, params, chat_id, now)
        if method == "sendDocument":
            return self._send_document(params, chat_id)
        return _error(404, f"Not Found: method {method} is not supported by the fake")

    def _send(
        self, method: str, params: dict[str, Any], chat_id: int | None, now: float
    ) -> tuple[int, dict[str, Any]]:
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        if chat_id in self._migrated:
            return _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._blocked:
            return _error(403, self._blocked[chat_id])
        text = str(params.get("text", ""))
        if method != "editMessageReplyMarkup":
            if not text.strip():
                return _error(400, "Bad Request: message text is empty")
            if len(text.encode("utf-16-le")) // 2 > self.max_text_length:
                return _error(400, "Bad Request: message is too long")
            if params.get("parse_mode") == "HTML":
                problem = _check_html(text)
                if problem:
                    return _error(400, f"Bad Request: can't parse entities: {problem}")
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        topic = _int_or_none(params.get("message_thread_id"))
        if topic is not None:
            # the real API: a thread id that is no open topic of this forum is refused
            state = self._topics.get(chat_id, {}).get(topic)
            if state is None:
                return _error(400, "Bad Request: message thread not found")
            if state == "closed":
                return _error(400, "Bad Request: TOPIC_CLOSED")
        reply = params.get("reply_parameters")
        reply_to = _int_or_none(reply.get("message_id")) if isinstance(reply, dict) else None
        if reply_to is not None and not any(
            m.chat_id == chat_id and m.message_id == reply_to for m in self.sent
        ):
            if not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                return _error(400, "Bad Request: message to be replied not found")
            reply_to = None
        if method == "sendMessage":
            wait = self._flood_wait(chat_id, now)
            if wait:
                self.flood_errors += 1
                return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            self._overall.append(now)
            self._per_chat[chat_id].append(now)
            message_id = self._take_message_id()
            self.sent.append(
                SentMessage(
                    chat_id,
                    message_id,
                    text,
                    params.get("parse_mode"),
                    markup,
                    now,
                    reply_to,
                    topic,
                )
            )
        else:
            message_id = int(params.get("message_id", 0))
        sent: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": _chat_type(chat_id)},
            "text": text,
        }
        if topic is not None:
            sent |= {"message_thread_id": topic, "is_topic_message": True}
            sent["chat"]["is_forum"] = True
        return _ok(sent)

    def _send_document(
        self, params: dict[str, Any], chat_id: int | None
    ) -> tuple[int, dict[str, Any]]:
        document = params.get("document")
        if chat_id is None or not isinstance(document, tuple):
            return _error(400, "Bad Request: there is no document in the request")
        filename, data = document
        caption = params.get("caption")
        if caption and params.get("parse_mode") == "HTML" and (problem := _check_html(caption)):
            return _error(400, f"Bad Request: can't parse entities: {problem}")
        self.documents.append(SentDocument(chat_id, filename, data, caption))
        return _ok(
            {
                "message_id": self._take_message_id(),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": _chat_type(chat_id)},
                "document": {"file_id": "f1", "file_unique_id": "u1", "file_name": filename},
            }
        )

    def _flood_wait(self, chat_id: int, now: float) -> int:
        overall = self._overall
        while overall and now - overall[0] >= 1.0:
            overall.popleft()
        history = self._per_chat[chat_id]
        window = 60.0 if chat_id < 0 else self.per_chat_interval
        limit = self.group_per_minute if chat_id < 0 else 1
        while history and now - history[0] >= window:
            history.popleft()
        if len(overall) >= self.overall_per_second:
            return max(self.retry_after, math.ceil(1.0 - (now - overall[0])))
        if len(history) >= limit:
            return max(self.retry_after, math.ceil(window - (now - history[0])))
        return 0

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offset = _int_or_none(params.get("offset")) or 0
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 2.0)
        with self.lock:
            self.calls.append(Call("getUpdates", params, time.monotonic()))
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self.lock.wait(deadline - time.monotonic())
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            limit = _int_or_none(params.get("limit")) or 100
            return _ok(list(self._updates[:limit]))

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id


def _chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    return "supergroup" if str(chat_id).startswith("-100") else "group"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"ok": True, "result": result}


def _error(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler", "span", "tg-emoji",
}  # fmt: skip


def _check_html(text: str) -> str | None:
    """A strict subset of Telegram's HTML check: known tags, balanced, entities escaped."""
    stack: list[str] = []
    for match in re.finditer(
        r"<(/?)([a-zA-Z-]+)([^>]*)>|<|&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text
    ):
        if match.group(0) == "<":
            return "unexpected '<' (must be &lt;)"
        if match.group(0).startswith("&"):
            return "unsupported entity (must be &amp;)"
        closing, tag = match.group(1), match.group(2).lower()
        if tag not in _ALLOWED_TAGS:
            return f'unsupported start tag "{tag}"'
        if closing:
            if not stack or stack.pop() != tag:
                return f'unmatched end tag "{tag}"'
        else:
            stack.append(tag)
    if stack:
        return f'can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = self.path.strip("/").split("/")
        fake = self.server.fake
        if len(parts) != 2 or parts[0] != f"bot{fake.token}":
            self._reply(*_error(404 if len(parts) != 2 else 401, "Unauthorized"))
            return
        try:
            params = _decode(raw, self.headers.get("Content-Type", ""))
        except ValueError as exc:
            self._reply(*_error(400, f"Bad Request: {exc}"))
            return
        self._reply(*fake.handle(parts[1], params))

    do_GET = do_POST  # noqa: N815 - Telegram accepts GET as well

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """A multipart/form-data body: fields as text, files as (filename, bytes)."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw, policy=email.policy.HTTP
    )
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        raw_payload = part.get_payload(decode=True)
        payload = raw_payload if isinstance(raw_payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            params[str(name)] = (filename, payload)
        elif name in JSON_FIELDS:
            params[str(name)] = json.loads(payload)
        else:
            params[str(name)] = payload.decode("utf-8")
    return params


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "multipart/form-data" in content_type:
        return _multipart(raw, content_type)
    if "application/json" in content_type:
        value = json.loads(raw)
        if not isinstance(value, dict):
            msg = "the JSON body must be an object"
            raise ValueError(msg)
        return value
    params: dict[str, Any] = {}
    for key, values in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items():
        value = values[-1]
        if key in JSON_FIELDS:
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                msg = f"can't parse {key} JSON object"
                raise ValueError(msg) from exc
        else:
            params[key] = value
    return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeBotAPI, port: int = 0, sock: socket.socket | None = None) -> None:
        if sock is None:
            super().__init__(("127.0.0.1", port), _Handler)
        else:  # a socket bound in advance (``reserve_port``): listen on it, no race for a port
            super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()
            self.server_activate()
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away before its answer (a worker killed mid-request) is part of
        # the tests; any other error in the fake is a bug and is printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class RunningFake:
    fake: FakeBotAPI
    base_url: str  # for TELEGRAM_API_BASE_URL / ApplicationBuilder.base_url


@contextmanager
def serve_fake_bot_api(
    fake: FakeBotAPI | None = None, *, port: int = 0, sock: socket.socket | None = None
) -> Iterator[RunningFake]:
    """Run a fake Bot API on 127.0.0.1 (``port``, the socket ``sock`` bound in advance, or a
    free port) for the duration of the block."""
    fake = fake or FakeBotAPI()
    server = _Server(fake, port, sock)
    thread = threading.Thread(target=server.serve_forever, name="fake-bot-api", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield RunningFake(fake=fake, base_url=f"http://{host!s}:{port}/bot")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def reserve_port() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 and not listening: connections to it are
    refused (a Telegram that is down) until ``serve_fake_bot_api(sock=...)`` listens on it.
    No other process can take the port meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock
