"""A progress bar on a terminal for long runs; silent when piped."""

from __future__ import annotations

import sys
import time
from types import TracebackType


class Progress:
    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.done = label, total, 0
        self.enabled = enabled and total >= 200
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def tick(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        width = 30
        filled = width * self.done // max(self.total, 1)
        sys.stderr.write(f"\r{self.label:10} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total}")
        sys.stderr.flush()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
