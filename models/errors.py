"""The PolicyWatch exception tree.

    PolicyWatchError
    ├── ConfigError        a bad setting or config file; carries every problem found
    ├── SourceError        carries the source name
    │   ├── FetchError     transport or HTTP status; .retry_after, .permanent
    │   └── ParseError     a response that cannot be read as the expected format
    └── RuleError          a watchlist term or rule that does not parse

Adapters wrap third-party exceptions (``raise FetchError(...) from exc``) so the core never
catches httpx, SQLAlchemy or telegram types. "Not modified" and "entry skipped" are results,
not exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PolicyWatchError(Exception):
    """Root of every error PolicyWatch raises on purpose."""


class ConfigError(PolicyWatchError):
    """One or more problems in settings or a config file, all reported at once."""

    def __init__(self, problems: Sequence[str], *, origin: str = "configuration") -> None:
        self.problems = tuple(problems)
        self.origin = origin
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {origin}:\n{listing}")


class SourceError(PolicyWatchError):
    """A problem with one source; the others go on."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling (parsers run in workers)
        return (type(self), (self.source, self.message))


class FetchError(SourceError):
    """The source could not be fetched (network, HTTP status, size or content type)."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(source, message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_fetch_error,
            (type(self), self.source, self.message, self.retry_after, self.permanent, self.status),
        )


def _rebuild_fetch_error(
    cls: type[FetchError],
    source: str,
    message: str,
    retry_after: float | None,
    permanent: bool,
    status: int | None,
) -> FetchError:
    return cls(source, message, retry_after=retry_after, permanent=permanent, status=status)


class ParseError(SourceError):
    """The response could not be read as the expected format (or parsed to nothing)."""


class RuleError(PolicyWatchError):
    """A watchlist term or rule that does not parse; the message says where."""
