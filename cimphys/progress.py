"""A progress bar on a terminal, silence when output is piped."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Context manager that draws ``label [#####     ] 12/40 3.1 s`` on stderr.

    It draws only when stderr is a terminal (or ``enabled=True``), so logs and pipes stay clean.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool | None = None, stream=None):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self._start = time.perf_counter()

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def advance(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        self._draw()

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        elapsed = time.perf_counter() - self._start
        bar = "#" * filled + " " * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:.1f} s")
        self.stream.flush()
