"""The fetcher: polite conditional GETs over one shared ``httpx.AsyncClient``.

- One client per process, built by ``build_http_client`` from a ``FetchConfig`` (the
  composition root owns it and closes it).
- An overall concurrency cap and a per-host cap (httpx has none per host).
- Conditional GET: ``If-None-Match`` / ``If-Modified-Since`` exactly as last received; a 304
  is a result (``not_modified``), not an error.
- Only http and https, checked on every redirect hop (redirects are followed here, at most
  ``max_redirects``) by the one rule, ``check_target``: a host that does not resolve is
  refused, and so (unless ``allow_private``) is one that resolves to a private, loopback,
  multicast or otherwise non-public address in any form. The connection is then made to an
  address that was checked (``PinnedBackend``), never to a fresh DNS answer (rebinding).
- The body is streamed and aborted beyond ``max_bytes`` (after gzip decoding, so a gzip bomb
  cannot exhaust memory); the whole request has a deadline besides httpx's per-phase timeouts,
  so a server that trickles bytes cannot hold a worker.
- 429 and 503 become ``FetchError(retry_after=...)`` from ``Retry-After`` (seconds or an HTTP
  date); 4xx other than 408/429 are ``permanent``. Everything else is a retryable ``FetchError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from models.errors import FetchError
from models.netcheck import address_problem, host_problem, is_ip_literal
from models.schedule import MAX_RETRY_AFTER
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
    """The one shared client (redirects are followed by ``Fetcher`` so each hop is checked).

    Its transport connects only to addresses ``Fetcher`` checked for the request in progress
    (``PinnedBackend``): a name is never resolved a second time between check and connection.
    """
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=max(1, config.max_connections // 2),
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        transport=PinnedTransport(limits=limits, retries=1),
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
    except (OSError, TimeoutError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """What the rule says of a URL: the problem (None: it may be fetched), its host, and the
    addresses that were checked (the only ones a connection to the host may use)."""

    problem: str | None
    host: str = ""
    addresses: tuple[str, ...] = ()
    private: bool = False  # refused for a private, local or otherwise non-public host


async def check_target(url: str, *, allow_private: bool, resolve: Resolver) -> Target:
    """The one rule, for fetching (every redirect hop) and for adding a source in chat: http(s)
    only, with a host; the host must resolve (a failed lookup is refused: fail closed); and
    unless ``allow_private``, no local names and no address that is not public
    (``models.netcheck``, embedded IPv4 forms included), whatever the name resolves to."""
    problem = check_http_url(url)
    if problem is not None:
        return Target(problem)
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not allow_private and (problem := host_problem(host)) is not None:
        return Target(problem, host, private=True)
    if is_ip_literal(host):
        return Target(None, host, (host.strip("[]"),))
    addresses = tuple(await resolve(host))
    if not addresses:
        return Target(f"{host} does not resolve (DNS lookup failed)", host)
    if not allow_private:
        for address in addresses:
            if (problem := address_problem(address)) is not None:
                return Target(f"{host} resolves to {problem}", host, addresses, private=True)
    return Target(None, host, addresses)


async def target_problem(url: str, *, allow_private: bool, resolve: Resolver) -> str | None:
    """Why PolicyWatch may not fetch ``url``, or None (``check_target``\'s verdict)."""
    return (await check_target(url, allow_private=allow_private, resolve=resolve)).problem


_NO_PINS: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_PINS: contextvars.ContextVar[Mapping[str, tuple[str, ...]]] = contextvars.ContextVar(
    "policywatch_pins", default=_NO_PINS
)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects a host name only to the addresses checked for it in this task (``_PINS``), so
    a DNS answer that changed since the check (rebinding) is never used. The TLS server name
    and the Host header stay the name: httpcore takes them from the URL, not from here. A host
    with no checked address is refused (fail closed)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = host.strip("[]").rstrip(".").lower()
        addresses = _PINS.get().get(name)
        if not addresses:
            msg = f"no checked address for {host} (refused)"
            raise httpcore.ConnectError(msg)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                failure = exc
        msg = f"could not connect to {', '.join(addresses)} (checked for {host}): {failure}"
        raise httpcore.ConnectError(msg)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        msg = "unix sockets are not fetched"
        raise httpcore.ConnectError(msg)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over ``PinnedBackend`` (its connection pool is rebuilt with it)."""

    def __init__(self, *, limits: httpx.Limits, retries: int = 0) -> None:
        super().__init__(limits=limits, retries=retries, trust_env=False)
        ssl_context = httpx.create_ssl_context(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=PinnedBackend(),
        )


@contextlib.contextmanager
def pinned(target: Target) -> Iterator[None]:
    """Within this block (and this task), ``target.host`` connects only to its addresses."""
    names = {target.host}
    with contextlib.suppress(UnicodeError):
        names.add(target.host.encode("idna").decode("ascii"))  # what httpcore connects to
    token = _PINS.set({**_PINS.get(), **dict.fromkeys(names, target.addresses)})
    try:
        yield
    finally:
        _PINS.reset(token)


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
            target = await self._check_target(current, source)
            host = urlsplit(current).netloc.lower()
            semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.config.per_host))
            assert self._overall is not None
            async with self._overall, semaphore:
                with pinned(target):
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

    async def _check_target(self, url: str, source: str) -> Target:
        target = await check_target(
            url, allow_private=self.config.allow_private, resolve=self.resolve
        )
        if target.problem is not None:
            raise FetchError(source, f"refused: {target.problem}", permanent=True)
        return target


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), at most
    ``MAX_RETRY_AFTER`` (a week): a server's number is not trusted to be sane."""
    if not value:
        return None
    value = value.strip()
    cap = MAX_RETRY_AFTER.total_seconds()
    if value.isascii() and value.isdigit():
        return cap if len(value) > 12 else min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), cap)


def _status_error(source: str, response: httpx.Response) -> FetchError:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    reason = response.reason_phrase or ""
    message = f"HTTP {status} {reason}".strip()
    if retry_after is not None:
        message += f" (Retry-After {retry_after:g} s)"
    permanent = 400 <= status < 500 and status not in {408, 425, 429}
    return FetchError(source, message, retry_after=retry_after, permanent=permanent, status=status)
