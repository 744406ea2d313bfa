"""Progress through many items: a tqdm bar on a terminal, a line each tenth of the way in logs
(DVC captures a stage's output, where a bar's carriage returns would be noise)."""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator


def progress(items: Iterable, desc: str, total: int | None = None) -> Iterator:
    if total is None:
        items = list(items)
        total = len(items)
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, total=total, leave=False)
        return
    every = max(1, math.ceil(total / 10))
    for done, item in enumerate(items, 1):
        yield item
        if done % every == 0 or done == total:
            print(f"{desc}: {done}/{total}", file=sys.stderr, flush=True)
