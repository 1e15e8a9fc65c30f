"""The batched log handler: lines arrive whole, in order, and never later than promised."""

from __future__ import annotations

import io
import logging

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from homeserver import logs


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def record(
    message: str, level: int = logging.INFO, created: float | None = None
) -> logging.LogRecord:
    rec = logging.LogRecord("plait.access", level, __file__, 1, message, None, None)
    if created is not None:
        rec.created = created
        rec.msecs = int((created - int(created)) * 1000) + 0.0
    return rec


def handler(interval: float = 60.0) -> tuple[logs.BatchedStreamHandler, CountingStream]:
    stream = CountingStream()
    h = logs.BatchedStreamHandler(stream, interval=interval)
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return h, stream


def test_info_lines_wait_then_go_out_in_one_write() -> None:
    h, stream = handler()
    for i in range(3):
        h.handle(record(f"line {i}"))
    assert stream.getvalue() == "" and h.pending == 3
    h.flush_if_due()  # not due: the interval is a minute
    assert stream.getvalue() == ""
    h.flush()
    assert stream.getvalue() == "INFO line 0\nINFO line 1\nINFO line 2\n"
    assert stream.writes == 1 and h.pending == 0


def test_a_warning_goes_out_at_once_after_the_lines_before_it() -> None:
    h, stream = handler()
    h.handle(record("quiet"))
    h.handle(record("loud", logging.WARNING))
    assert stream.getvalue() == "INFO quiet\nWARNING loud\n"
    assert h.pending == 0


def test_a_due_batch_goes_out_with_the_next_line_or_the_periodic_check() -> None:
    h, stream = handler(interval=0.0)
    h.handle(record("first"))
    assert stream.getvalue() == "INFO first\n"  # due at once with a zero interval
    h.interval = 60.0
    h.handle(record("second"))
    assert stream.getvalue() == "INFO first\n"
    h.interval = 0.0
    h.flush_if_due()
    assert stream.getvalue() == "INFO first\nINFO second\n"


def test_a_full_batch_goes_out_without_waiting() -> None:
    h, stream = handler()
    line = "x" * 1000
    for _ in range(logs.BATCH_BYTES // 1000 + 1):
        h.handle(record(line))
    assert stream.writes == 1
    assert h.pending < 5


def test_closing_the_handler_writes_what_is_pending() -> None:
    h, stream = handler()
    h.handle(record("last words"))
    logging.shutdown([lambda: h])  # as at exit: flush, then close, every handler
    assert stream.getvalue() == "INFO last words\n"


def test_a_broken_stream_does_not_raise() -> None:
    h, stream = handler()
    h.handle(record("into the void"))
    stream.close()
    h.flush()  # a closed stderr must not take the server down
    assert h.pending == 0


async def test_flush_periodically_writes_an_idle_batch() -> None:
    h, stream = handler(interval=0.01)
    h.interval = 60.0
    h.handle(record("idle"))
    h.interval = 0.01
    with trio.move_on_after(1):
        await logs.flush_periodically(h)  # runs until cancelled
    assert stream.getvalue() == "INFO idle\n"


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_second_formatter_time_is_the_standard_formatters(created: float) -> None:
    rec = record("t", created=created)
    assert logs.SecondFormatter().formatTime(rec) == logging.Formatter().formatTime(rec)


def test_second_formatter_reuses_its_second_but_not_across_seconds() -> None:
    formatter = logs.SecondFormatter()
    standard = logging.Formatter()
    for created in (1000.001, 1000.5, 1000.999, 1001.0, 999.25):
        rec = record("t", created=created)
        assert formatter.formatTime(rec) == standard.formatTime(rec)


def test_configure_installs_one_batched_handler_on_the_root() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    flags = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    srcfile = logging._srcfile
    stream = CountingStream()
    try:
        h = logs.configure("warning", stream)
        assert h in root.handlers and root.level == logging.WARNING
        logging.getLogger("plait.test").warning("hello %s", "there")
        assert stream.getvalue().endswith(" WARNING plait.test: hello there\n")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags
        logging._srcfile = srcfile


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_configure_accepts_every_configurable_level(level: str) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.configure(level, io.StringIO())
        assert root.level == logging.getLevelName(level)
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
