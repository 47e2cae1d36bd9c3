"""Group commit for SQS batch calls.

Job threads call ``submit(item)`` and block until their item went out in a
batch call. Whoever arrives while no call is in progress sends everything
pending (up to the batch size); the others wait for that call or the next.
Under load, deletes and status sends from many concurrent jobs share one
request per ten messages instead of one each, with no linger timer.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, Sequence, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(self, flush: Callable[[Sequence[T]], Sequence[T]], key: Callable[[T], Hashable], size: int = 10):
        #: ``flush`` sends a batch and returns the items that failed.
        self._flush = flush
        self._key = key
        self._size = size
        self._pending: list[T] = []
        self._results: dict[Hashable, BaseException | bool] = {}
        self._busy = False
        self._cv = threading.Condition()

    def submit(self, item: T) -> bool:
        """Send ``item`` in some batch; True if it was accepted."""
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[T]) -> list[bool]:
        """Send ``items`` (in one or more batches); raise if a batch call failed."""
        keys = [self._key(i) for i in items]
        with self._cv:
            self._pending.extend(items)
            while not all(k in self._results for k in keys):
                if not self._busy:
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
