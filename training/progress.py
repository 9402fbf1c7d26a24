"""Progress bars on a terminal, a few plain lines in a log.

tqdm redraws its bar with carriage returns; written to a file (``make demo > log``, CI) every
redraw becomes text, thousands of updates per run. :func:`progress_bar` returns a real tqdm bar
only when stderr is a terminal, and otherwise a :class:`LogProgress` that prints at most
``1 + 100 / every_percent`` lines per stage (start, every 25 % by default, done), each with the
count, the elapsed time and the latest postfix (e.g. the loss).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


class LogProgress:
    """The subset of tqdm's interface the project uses, as occasional log lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 disable: bool = False, every_percent: int = 25, stream: TextIO | None = None,
                 quiet_start: bool = False) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc = desc
        self.disable = disable
        self.every = max(1, every_percent)
        self.stream = stream or sys.stderr
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._next_pct = self.every
        self._closed = False
        if not disable and not quiet_start:
            self._write(f"{desc}: start" + (f" ({self.total})" if self.total else ""))

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _line(self) -> str:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {count} in {time.perf_counter() - self._start:.0f} s{post}"

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable or not self.total:
            return
        if self.n >= self.total:
            return  # the final line comes from close()
        if self.n * 100 >= self._next_pct * self.total:
            self._write(self._line())
            while self.n * 100 >= self._next_pct * self.total:
                self._next_pct += self.every

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self._closed and not self.disable:
            self._write(self._line())
        self._closed = True

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 disable: bool = False, leave: bool = True, **tqdm_kwargs: Any):
    """tqdm on a terminal, :class:`LogProgress` lines elsewhere (``leave=False``: only the end line)."""
    if on_terminal():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=disable, leave=leave, **tqdm_kwargs)
    return LogProgress(iterable, total=total, desc=desc, disable=disable,
                       every_percent=25 if leave else 1000, quiet_start=not leave)
