"""The fetcher: polite conditional GETs over one shared ``httpx.AsyncClient``.

- One client per process, built by ``build_http_client`` from a ``FetchConfig`` (the
  composition root owns it and closes it).
- An overall concurrency cap and a per-host cap (httpx has none per host).
- Conditional GET: ``If-None-Match`` / ``If-Modified-Since`` exactly as last received; a 304
  is a result (``not_modified``), not an error.
- Only http and https, checked on every redirect hop (redirects are followed here, at most
  ``max_redirects``); hosts that resolve to private or loopback addresses are refused unless
  ``allow_private`` is set.
- The body is streamed and aborted beyond ``max_bytes`` (after gzip decoding, so a gzip bomb
  cannot exhaust memory); the whole request has a deadline besides httpx's per-phase timeouts,
  so a server that trickles bytes cannot hold a worker.
- 429 and 503 become ``FetchError(retry_after=...)`` from ``Retry-After`` (seconds or an HTTP
  date); 4xx other than 408/429 are ``permanent``. Everything else is a retryable ``FetchError``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from models.errors import FetchError
from models.netcheck import address_problem, host_problem, is_ip_literal
from models.sources import check_http_url
from scrapers.cpu import ParserPool

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Fetch policy; the shell builds it from settings."""

    user_agent: str
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_connections: int = 20
    per_host: int = 2
    max_redirects: int = 5
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one GET returned. ``body`` is empty when ``not_modified``."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


def build_http_client(config: FetchConfig) -> httpx.AsyncClient:
    """The one shared client (redirects are followed by ``Fetcher`` so each hop is checked)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        limits=httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=max(1, config.max_connections // 2),
        ),
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        transport=httpx.AsyncHTTPTransport(retries=1),
        trust_env=False,
    )


Resolver = Callable[[str], Awaitable[list[str]]]
"""A host name → the addresses it resolves to (empty when it does not resolve)."""


async def resolve_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to (empty when it does not resolve within 5 s)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def target_problem(url: str, *, allow_private: bool, resolve: Resolver) -> str | None:
    """Why PolicyWatch may not fetch ``url``, or None. The one rule, for fetching (every
    redirect hop) and for adding a source in chat: http(s) only, with a host; and unless
    ``allow_private``, no local names and no address that is not public (``models.netcheck``),
    whatever the name resolves to."""
    problem = check_http_url(url)
    if problem is not None:
        return problem
    host = urlsplit(url).hostname or ""
    if allow_private:
        return None
    problem = host_problem(host)
    if problem is not None:
        return problem
    if is_ip_literal(host):
        return None
    for address in await resolve(host):
        problem = address_problem(address)
        if problem is not None:
            return f"{host} resolves to {problem}"
    return None


@dataclass(slots=True)
class Fetcher:
    """Conditional GETs with concurrency caps; see the module docstring."""

    client: httpx.AsyncClient
    config: FetchConfig
    cpu: ParserPool = field(default_factory=ParserPool)  # where source kinds run their parsers
    resolve: Resolver = resolve_host  # DNS, injectable (tests simulate rebinding)
    requests: int = 0
    _overall: asyncio.Semaphore | None = None
    _hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    async def get(
        self,
        url: str,
        *,
        source: str,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` (following redirects); raises FetchError on any failure. ``max_bytes``
        overrides the configured body limit for this request (a large download)."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        if self._overall is None:
            self._overall = asyncio.Semaphore(self.config.max_connections)
        try:
            async with asyncio.timeout(self.config.total_timeout):
                return await self._follow(url, headers, source, max_bytes)
        except TimeoutError as exc:
            msg = f"no complete answer within {self.config.total_timeout:g} s"
            raise FetchError(source, msg) from exc

    async def _follow(
        self, url: str, headers: dict[str, str], source: str, max_bytes: int | None = None
    ) -> FetchResult:
        current = url
        for _hop in range(self.config.max_redirects + 1):
            await self._check_target(current, source)
            host = urlsplit(current).netloc.lower()
            semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.config.per_host))
            assert self._overall is not None
            async with self._overall, semaphore:
                result = await self._get_once(url, current, headers, source, max_bytes)
            if isinstance(result, FetchResult):
                return result
            current = result
        msg = f"more than {self.config.max_redirects} redirects"
        raise FetchError(source, msg)

    async def _get_once(
        self,
        original: str,
        url: str,
        headers: dict[str, str],
        source: str,
        max_bytes: int | None = None,
    ) -> FetchResult | str:
        self.requests += 1
        try:
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECT_CODES:
                    location = response.headers.get("location")
                    if not location:
                        msg = f"HTTP {response.status_code} without a Location"
                        raise FetchError(source, msg, status=response.status_code)
                    return str(urljoin(url, location))
                if response.status_code == 304:
                    return FetchResult(
                        url=original,
                        final_url=url,
                        status=304,
                        headers=dict(response.headers),
                        not_modified=True,
                        etag=response.headers.get("etag") or headers.get("If-None-Match"),
                        last_modified=response.headers.get("last-modified")
                        or headers.get("If-Modified-Since"),
                    )
                if response.status_code >= 400:
                    raise _status_error(source, response)
                if response.status_code != 200:
                    msg = f"unexpected HTTP {response.status_code}"
                    raise FetchError(source, msg, status=response.status_code)
                body = await self._read_limited(response, source, max_bytes)
                return FetchResult(
                    url=original,
                    final_url=url,
                    status=200,
                    headers=dict(response.headers),
                    body=body,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
        except httpx.TimeoutException as exc:
            msg = f"timed out ({type(exc).__name__})"
            raise FetchError(source, msg) from exc
        except httpx.HTTPError as exc:
            msg = f"{type(exc).__name__}: {exc}"
            raise FetchError(source, msg) from exc

    async def _read_limited(
        self, response: httpx.Response, source: str, max_bytes: int | None = None
    ) -> bytes:
        limit = max_bytes or self.config.max_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            msg = f"the body is {int(declared)} bytes, over the {limit}-byte limit"
            raise FetchError(source, msg)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                msg = f"the body is over the {limit}-byte limit (aborted)"
                raise FetchError(source, msg)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _check_target(self, url: str, source: str) -> None:
        problem = await target_problem(
            url, allow_private=self.config.allow_private, resolve=self.resolve
        )
        if problem is not None:
            raise FetchError(source, f"refused: {problem}", permanent=True)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _status_error(source: str, response: httpx.Response) -> FetchError:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    reason = response.reason_phrase or ""
    message = f"HTTP {status} {reason}".strip()
    if retry_after is not None:
        message += f" (Retry-After {retry_after:g} s)"
    permanent = 400 <= status < 500 and status not in {408, 425, 429}
    return FetchError(source, message, retry_after=retry_after, permanent=permanent, status=status)
