"""What every source kind shares: the state a poll starts from, what it returns, the protocol a
kind implements, and the plain conditional GET most kinds use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from models.csl import CslSnapshot
from models.items import ItemData
from scrapers.http import Fetcher, FetchResult

P = TypeVar("P")

KnownIds = Callable[[Sequence[str]], Awaitable[set[str]]]
"""Given external ids, return those already stored for this source (a port to storage)."""


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source as a poll sees it: its declaration and what the last poll left behind."""

    name: str
    kind: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    cursor: Mapping[str, Any] | None = None
    first_poll: bool = False


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parser's output: items, entries skipped as unusable, and a next page if any."""

    items: tuple[ItemData, ...]
    skipped: int = 0
    next_page: str | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """One poll of one source. ``not_modified``: the server said 304 (nothing to store).
    ``snapshot``: a source that publishes a whole list each time (``kind: csl``); the pipeline
    diffs it against the stored one and stores the changes as items."""

    items: tuple[ItemData, ...] = ()
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    cursor: Mapping[str, Any] | None = None
    skipped: int = 0
    requests: int = 1
    warnings: tuple[str, ...] = ()
    snapshot: CslSnapshot | None = None  # a whole list (kind csl): diffed against the last one


class SourceKind(Protocol):
    """A kind of source: it fetches (I/O) and parses (pure functions of bytes + headers)."""

    kind: ClassVar[str]

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult: ...


async def conditional_get(fetcher: Fetcher, state: SourceState, *, accept: str) -> FetchResult:
    """GET the source URL with the validators the last poll stored."""
    return await fetcher.get(
        state.url,
        source=state.name,
        etag=state.etag,
        last_modified=state.last_modified,
        accept=accept,
    )


async def fetch_parsed(
    fetcher: Fetcher,
    state: SourceState,
    *,
    accept: str,
    parse: Callable[..., P],
    **options: Any,
) -> tuple[FetchResult, P] | PollResult:
    """A conditional GET of the source URL, then ``parse(body, headers, url=final_url,
    **options)`` in the fetcher's parser pool; a 304 is the ``PollResult`` to return as it is."""
    result = await conditional_get(fetcher, state, accept=accept)
    if result.not_modified:
        return PollResult(not_modified=True, etag=result.etag, last_modified=result.last_modified)
    parsed = await fetcher.cpu.run(
        parse, result.body, dict(result.headers), url=result.final_url, **options
    )
    return result, parsed


async def poll_one_page(
    fetcher: Fetcher,
    state: SourceState,
    *,
    accept: str,
    parse: Callable[..., Parsed],
    **options: Any,
) -> PollResult:
    """The whole poll of a single-page source (``fetch_parsed``): its items."""
    fetched = await fetch_parsed(fetcher, state, accept=accept, parse=parse, **options)
    if isinstance(fetched, PollResult):
        return fetched
    result, parsed = fetched
    return PollResult(
        items=parsed.items,
        etag=result.etag,
        last_modified=result.last_modified,
        skipped=parsed.skipped,
    )


def option_str(options: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = options.get(key, default)
    return value if isinstance(value, str) and value else default


def option_list(options: Mapping[str, Any], key: str, default: Sequence[str]) -> list[str]:
    value = options.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return list(default)


def option_int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
