"""Running pure parsers off the event loop, in worker processes.

feedparser and HTML parsing are CPU work: a 2 MB feed blocks the loop that also answers the
bot. ``ParserPool`` runs a parser (a pure, module-level function of bytes and plain arguments)
in a worker process, which also puts a second core to work while the main process stores and
classifies. With ``workers=0`` it runs the function inline (the tests' default). A worker that
dies (a hostile document exhausting memory) breaks only that call's pool: it is rebuilt. A
worker whose parent dies without closing the pool (SIGKILL, the OOM killer) exits within a
second instead of lingering: it holds its own end of the task pipe, so it would never see EOF.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


PARENT_CHECK = 1.0  # seconds between a worker's checks that its parent is alive


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a daemon thread ends the worker once it is orphaned."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class ParserPool:
    """``await pool.run(parse_feed, body, headers, url=...)`` runs it in a worker process."""

    def __init__(self, workers: int = 0) -> None:
        if workers < 0:
            msg = "workers must be 0 (inline) or more"
            raise ValueError(msg)
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # "spawn": the service has threads and an event loop; forking those is unsafe.
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._executor

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.workers == 0:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await loop.run_in_executor(self._pool(), call)
        except BrokenProcessPool:
            self.close()  # the next call starts a fresh pool
            raise

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
