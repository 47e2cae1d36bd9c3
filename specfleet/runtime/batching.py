"""Group commit for SQS batch calls.

Job threads call ``submit(item)`` and block until their item went out in a
batch call. Whoever arrives while no call is in progress sends everything
pending (up to the batch size); the others wait for that call or the next.
Under load, deletes and status sends from many concurrent jobs share one
request per ten messages instead of one each; a short linger (only while
other jobs are still finishing) keeps the first job from going alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Sequence[T]],
        key: Callable[[T], Hashable],
        size: int = 10,
        linger_s: float = 0.0,
        outstanding: Callable[[], int] | None = None,
    ):
        #: ``flush`` sends a batch and returns the items that failed.
        self._flush = flush
        self._key = key
        self._size = size
        self._pending: list[T] = []
        self._results: dict[Hashable, BaseException | bool] = {}
        self._busy = False
        self._cv = threading.Condition()
        #: ``outstanding()`` counts items that may still be submitted soon
        #: (including those pending). While fewer are pending, wait up to
        #: ``linger_s`` for a fuller batch: one call for ten jobs instead of
        #: one for the first and one for the other nine.
        self._linger_s = linger_s
        self._outstanding = outstanding or (lambda: 0)

    def submit(self, item: T) -> bool:
        """Send ``item`` in some batch; True if it was accepted."""
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[T]) -> list[bool]:
        """Send ``items`` (in one or more batches); raise if a batch call failed."""
        keys = [self._key(i) for i in items]
        with self._cv:
            self._pending.extend(items)
            self._cv.notify_all()
            while not all(k in self._results for k in keys):
                if not self._busy:
                    if self._linger_s and len(self._pending) < min(self._size, self._outstanding()):
                        deadline = time.monotonic() + self._linger_s
                        while len(self._pending) < min(self._size, self._outstanding()) and not self._busy:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            self._cv.wait(left)
                        if self._busy or all(k in self._results for k in keys):
                            continue
                    self._busy = True
                    batch, self._pending = self._pending[: self._size], self._pending[self._size :]
                    self._cv.release()
                    try:
                        try:
                            failed = {self._key(i) for i in self._flush(batch)}
                            outcome: dict[Hashable, BaseException | bool] = {
                                self._key(i): self._key(i) not in failed for i in batch
                            }
                        except BaseException as err:  # every waiter in the batch sees the error
                            outcome = {self._key(i): err for i in batch}
                    finally:
                        self._cv.acquire()
                        self._busy = False
                    self._results.update(outcome)
                    self._cv.notify_all()
                else:
                    self._cv.wait()
            results = [self._results.pop(k) for k in keys]
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [bool(r) for r in results]
