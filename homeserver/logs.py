"""The server's log output: one write per batch of lines, not per line.

Every request writes an access-log line. Through the standard library's
``StreamHandler`` on ``stderr`` that is a ``write`` and a ``flush`` per line,
plus a ``getpid`` and a thread lookup for fields our format never shows: on
``GET /versions`` at 10,000 requests/s, half the server's system calls and
about a fifth of its main-thread time. :class:`BatchedStreamHandler` keeps the
formatted lines and writes them together: at once for a warning or worse, when
a batch reaches 64 KiB, and otherwise at most ``interval`` seconds late (the
next line, or :func:`flush_periodically`, or interpreter exit, flushes it).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import trio

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BATCH_BYTES = 64 * 1024
FLUSH_INTERVAL_S = 0.25


class SecondFormatter(logging.Formatter):
    """``logging.Formatter`` with the ``strftime`` of ``asctime`` done once per second."""

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self._second = -1
        self._prefix = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._prefix},{int(record.msecs):03d}"


class BatchedStreamHandler(logging.Handler):
    """A stream handler that writes lines in batches (see the module docstring)."""

    def __init__(self, stream: TextIO, interval: float = FLUSH_INTERVAL_S) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self._lines: list[str] = []
        self._size = 0
        self._since = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if not self._lines:
            self._since = time.monotonic()
        self._lines.append(line)
        self._size += len(line) + 1
        if (
            record.levelno >= logging.WARNING
            or self._size >= BATCH_BYTES
            or time.monotonic() - self._since >= self.interval
        ):
            self._write()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def flush_if_due(self) -> None:
        """Write the pending lines if the oldest has waited ``interval`` seconds."""
        if self._lines and time.monotonic() - self._since >= self.interval:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._lines)

    def _write(self) -> None:
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # A closed or broken stderr: nothing sensible is left to tell.
            pass


def configure(level: str, stream: TextIO | None = None) -> BatchedStreamHandler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in batches.

    Also stops every record from looking up its thread, process and caller,
    which our format never shows (the logging HOWTO's "Optimization" switches).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the HOWTO's documented switch for caller lookup
    handler = BatchedStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(SecondFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


async def flush_periodically(handler: BatchedStreamHandler) -> None:
    """Flush ``handler``'s lines that have waited long enough, forever."""
    while True:
        await trio.sleep(handler.interval)
        handler.flush_if_due()
