"""The trackers' background writer: the training hands records over and never waits; nothing kept is lost.

The "tracker" here is a small in-process one: a list that refuses connections while ``down`` is set, as a server
that went away does. The real trackers, MLflow and TensorBoard, are in their own test files.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from altametris.sara.plugins._background import BackgroundWriter

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pytest


class Tracker:
    """Receives chunks of records; refuses connections while ``down``; rejects the record ``"bad"``."""

    def __init__(self, *, per_request: int = 1000) -> None:
        self.received: list[object] = []
        self.requests = 0
        self.down = threading.Event()
        self.gate = threading.Event()  # cleared: every request hangs until it is set (a slow server)
        self.gate.set()
        self.tried_while_down = threading.Event()
        self.per_request = per_request

    def send(self, records: Sequence[object]) -> int:
        self.gate.wait()
        if self.down.is_set():
            self.tried_while_down.set()
            raise ConnectionRefusedError("connection refused")
        if records[0] == "bad":
            raise ValueError("invalid name 'bad'")
        taken = list(records[: self.per_request])
        if "bad" in taken:
            taken = taken[: taken.index("bad")]
        self.requests += 1
        self.received += taken
        return len(taken)


def writer(tracker: Tracker, **options: float) -> BackgroundWriter[object]:
    settings: dict[str, float] = {"max_pending": 1000, "flush_timeout": 10.0, "max_backoff": 0.05}
    settings.update(options)
    return BackgroundWriter(
        "test_tracker",
        tracker.send,
        retryable=lambda error: isinstance(error, OSError),
        max_pending=int(settings["max_pending"]),
        flush_timeout=settings["flush_timeout"],
        max_backoff=settings["max_backoff"],
    )


def test_records_reach_the_tracker_in_order_batched_into_few_requests() -> None:
    tracker = Tracker(per_request=100)
    tracker.gate.clear()  # the first request waits: the others pile up meanwhile
    background = writer(tracker)
    for index in range(500):
        assert background.put(index)
    tracker.gate.set()
    assert background.close() is True
    assert tracker.received == list(range(500))
    assert tracker.requests <= 6  # one for the first record, then chunks of 100
    assert background.sent == 500


def test_put_returns_at_once_while_the_tracker_hangs() -> None:
    tracker = Tracker()
    tracker.gate.clear()
    background = writer(tracker, flush_timeout=0.2)
    for index in range(50):
        assert background.put(index)  # never waits for the hung request
    assert background.pending == 50
    assert background.close() is False  # gave up after flush_timeout: the request still hangs
    tracker.gate.set()


def test_an_unreachable_tracker_costs_one_warning_and_no_record(caplog: pytest.LogCaptureFixture) -> None:
    tracker = Tracker()
    tracker.down.set()
    background = writer(tracker)
    with caplog.at_level(logging.WARNING, logger="altametris.sara.plugins"):
        for index in range(10):
            background.put(index)
        assert tracker.tried_while_down.wait(10)
        for index in range(10, 20):
            background.put(index)
        tracker.down.clear()  # back
        assert background.close() is True
    assert tracker.received == list(range(20))
    assert background.outages == 1
    messages = [record.getMessage() for record in caplog.records]
    assert len([text for text in messages if "unreachable" in text]) == 1
    assert "ConnectionRefusedError: connection refused" in messages[0]
    assert any("answers again" in text for text in messages)


def test_past_max_pending_new_rows_are_dropped_and_counted_but_kept_records_never(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = Tracker()
    tracker.gate.clear()
    background = writer(tracker, max_pending=5)
    assert background.put("start", keep=True)
    accepted = [background.put(index) for index in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert background.put("end", keep=True)
    tracker.gate.set()
    with caplog.at_level(logging.WARNING, logger="altametris.sara.plugins"):
        assert background.close() is False
    assert tracker.received == ["start", 0, 1, 2, 3, 4, "end"]
    assert background.dropped == 3
    assert "3 record(s) dropped" in caplog.text
    assert "max_pending=5" in caplog.text


def test_close_waits_at_most_flush_timeout_and_says_what_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    tracker = Tracker()
    tracker.down.set()  # never comes back
    background = writer(tracker, flush_timeout=0.3)
    for index in range(7):
        background.put(index)
    with caplog.at_level(logging.WARNING, logger="altametris.sara.plugins"):
        assert background.close() is False
    assert tracker.received == []
    assert "7 record(s) not sent within flush_timeout=0.3 s" in caplog.text
    assert background.put(8) is False  # closed: nothing more is taken


def test_a_refused_record_is_dropped_with_one_warning_and_the_next_ones_go_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = Tracker()
    tracker.gate.clear()
    background = writer(tracker)
    for record in [1, "bad", 2, "bad", 3]:
        background.put(record)
    with caplog.at_level(logging.WARNING, logger="altametris.sara.plugins"):
        tracker.gate.set()
        assert background.close() is True
    assert tracker.received == [1, 2, 3]
    assert background.refused == 2
    assert caplog.text.count("refused a record (ValueError: invalid name 'bad')") == 1
