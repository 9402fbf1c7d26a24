"""Send the converters' chatter (C++ logs, progress bars, warnings) to a log file.

litert-torch, coremltools and torch.onnx print hundreds of lines from Python and from C++; the
user should see one progress line per stage instead. Redirecting at the file-descriptor level is
the only way to catch the C++ half. Python warnings and log records raised inside are kept so the
manifest can record the ones that matter (e.g. coremltools' "torch version not tested").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def quiet(log_path: Path | None, messages: list[str] | None = None) -> Iterator[None]:
    """Redirect fds 1 and 2 to ``log_path`` (appending); collect warnings into ``messages``."""
    sink = messages if messages is not None else []
    handler = _ListHandler(sink)
    root = logging.getLogger()
    root.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if log_path is None:
            try:
                yield
            finally:
                root.removeHandler(handler)
                sink.extend(f"{w.category.__name__}: {w.message}" for w in caught)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
                root.removeHandler(handler)
                sink.extend(f"{w.category.__name__}: {w.message}" for w in caught)
