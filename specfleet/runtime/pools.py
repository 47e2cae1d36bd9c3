"""Process pools for a job's CPU-bound work (clip rendering, spectrograms).

Ctrl-C in a terminal sends SIGINT to the whole foreground process group:
the worker (the parent) handles it — one line, its jobs handed back, the
pool shut down — so the pool's processes ignore it rather than each print a
``KeyboardInterrupt`` traceback mid-task. SIGTERM still ends them.

A new process could be hit before its initializer runs (a spawned
interpreter takes a while to import), so the pool's processes are started
with SIGINT blocked: the blocked mask survives fork and exec, a SIGINT that
arrives meanwhile stays pending, and the initializer ignores it before
unblocking.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _start_child(initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one is dropped: ignored
    if initializer is not None:
        initializer(*initargs)


def process_pool(
    processes: int,
    *,
    start_method: str = "forkserver",
    preload: Iterable[str] = (),
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    start_timeout_s: float = 300.0,
) -> ProcessPoolExecutor:
    """``processes`` processes started by ``start_method`` (never ``fork``
    from a worker: it runs threads and boto3 clients, and forking it could
    deadlock). ``preload``: modules the fork server imports once, so later
    pools start in milliseconds. ``initializer(*initargs)`` runs in each.
    Returns once every process has started and run its initializer."""
    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver" and preload:
        ctx.set_forkserver_preload(list(preload))
    pool = ProcessPoolExecutor(
        max_workers=max(1, processes), mp_context=ctx, initializer=_start_child, initargs=(initializer, initargs)
    )
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        # One task per process, submitted at once, so every process starts now
        # (inside this window) rather than on the first jobs.
        started = [pool.submit(os.getpid) for _ in range(max(1, processes))]
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    try:
        for future in started:
            future.result(timeout=start_timeout_s)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool
