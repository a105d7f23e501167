"""What one process shares between the stages it runs: loaded models (`ProcessCache`) and
torch's thread count (`torch_threads`).

A worker (a Dask process, the flow's own process, a test session) serves many videos; it
loads each model once and keeps it here, keyed by the settings the model depends on.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class ProcessCache:
    """Objects built once per process and key (a model, a stage holding models).

    Concurrent callers of one key wait for one build; other keys build meanwhile. With
    `max_size`, the least recently used entries beyond it are forgotten (a long-lived process
    that sees many settings, e.g. a test session, does not keep them all).
    """

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = max_size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._build_locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()`'s object for this key, built on the first call. A build that raises
        stores nothing: the next call tries again."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._build_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            obj = build()
            with self._lock:
                self._items[key] = obj
                self._build_locks.pop(key, None)
                while self.max_size is not None and len(self._items) > self.max_size:
                    self._items.popitem(last=False)
            return obj

    def clear(self) -> None:
        """Forget every object (frees memory; tests)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` torch intra-op threads, then restore the process's setting (`None` or
    n <= 0: leave it as it is)."""
    if n is None or n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
