"""A small thread-safe least-recently-used store for arrays derived per canvas (the folds' and
creases' blended sources): a steady expression finds its source again, and the store never
holds more than the caller's bound (each entry is a full RGBA copy of the canvas)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

import numpy as np


class Lru:
    def __init__(self) -> None:
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # sessions render in worker threads

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: Hashable, value: np.ndarray, bound: int) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used beyond ``bound``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > bound:
                self._items.popitem(last=False)
