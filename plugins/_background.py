"""A background writer for the plugins that talk to an experiment tracker: the training never waits for it.

The training thread hands records to :meth:`BackgroundWriter.put`, which only appends them to a bounded in-memory
queue (a lock and a ``deque``: about a microsecond, whatever the tracker does). One daemon thread drains the queue in
order, handing the records to the plugin's ``send`` function in chunks; ``send`` makes one request to the tracker and
says how many of the leading records it consumed, so a chunk that fails is never half-counted.

What happens when the tracker is unreachable or slow, the guarantees of every plugin built on this module:

* ``send`` raising an error that ``retryable`` accepts (a refused connection, a timeout, a server error) leaves the
  records queued: the worker retries the same records after 0.5 s, then 1, 2, 4 s, ... up to ``max_backoff``
  seconds between tries, for as long as the training runs. One warning is logged per outage, and one line when the
  tracker answers again, with how long it was away and how many records waited;
* records are kept in memory meanwhile, up to ``max_pending`` of them; past that, new droppable records (metric rows)
  are dropped and counted, never the records the plugin marks ``keep=True`` (a run's start and end, its parameters),
  and the count is logged when the writer closes;
* :meth:`BackgroundWriter.close` (at ``on_train_end`` and ``on_exception``) waits at most ``flush_timeout``
  seconds for the queue to drain: a tracker that comes back within the training or within that delay receives every
  record kept; what is still queued afterwards is counted in a warning and left behind (the thread is a daemon, so it
  never holds up the process's exit);
* an error that ``retryable`` refuses (the tracker rejected the records: a bad name, a conflicting value) drops
  those records with one warning per distinct cause, and the writer goes on with the next ones;
* nothing raises into the training thread: ``put`` never blocks, ``close`` is bounded by ``flush_timeout``.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

from altametris.sara.core.messages import describe_error, one_line

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__: list[str] = []

_logger = logging.getLogger("altametris.sara.plugins")

Record = TypeVar("Record")

Send = Callable[["Sequence[Record]"], int]
"""Makes one request with the leading records of the sequence (never empty); returns how many it consumed (>= 1)."""

FIRST_BACKOFF = 0.5
"""Seconds before the first retry of a failed request; the delay doubles at each failure up to ``max_backoff``."""


_USER_INFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/?#]*@", re.IGNORECASE)
"""The ``user:password@`` of a URI (up to its last ``@`` before the path: a password may hold an unquoted ``@``)."""
_TOKEN = re.compile(
    r"([?&;][^\s=&#]*(?:token|key|secret|passw|pwd|sig|auth|credential|session)[^\s=&#]*=)[^\s&#'\"]+",
    re.IGNORECASE,
)
"""A query parameter of a URI that holds a secret: ``?token=...``, ``&api_key=...``, ``&X-Amz-Signature=...``."""


def redact(text: object) -> str:
    """``text`` with the user info (``user:password@``) and the tokens of every URI in it replaced by ``***``.

    Every message SARA's trackers log, warn or raise goes through it, the text of the tracker library's own
    exceptions included (MLflow quotes its tracking URI, credentials and all).

    Example:
        >>> redact("API request to http://alice:S3cret@host:5000/api?token=abc&x=1 failed")
        'API request to http://***@host:5000/api?token=***&x=1 failed'
    """
    return _TOKEN.sub(r"\1***", _USER_INFO.sub(r"\1***@", str(text)))


def describe(error: BaseException) -> str:
    """``"ConnectionError: text"`` on one line, at most 300 characters, secrets in URIs redacted (before the cut)."""
    return one_line(redact(describe_error(error)), 300)


class BackgroundWriter(Generic[Record]):
    """An ordered queue of records that one daemon thread sends to a tracker, retrying while it is unreachable.

    Args:
        name: who writes, for the messages (the plugin's name and where it writes).
        send: makes one request with the leading records of the sequence it is given and returns how many of them it
            consumed (at least one). It runs in the worker thread only.
        retryable: whether an error of ``send`` means "try again later" (unreachable, slow) rather than "refused".
        max_pending: how many droppable records may wait in memory.
        max_chunk: the most records handed to one ``send`` call.
        flush_timeout: the most seconds :meth:`close` waits for the queue to drain.
        max_backoff: the longest wait, in seconds, between two tries of a failed request.
    """

    def __init__(
        self,
        name: str,
        send: Send[Record],
        *,
        retryable: Callable[[BaseException], bool],
        max_pending: int,
        max_chunk: int = 1000,
        flush_timeout: float,
        max_backoff: float = 5.0,
    ) -> None:
        self.name = name
        self._send = send
        self._retryable = retryable
        self.max_pending = max_pending
        self.max_chunk = max_chunk
        self.flush_timeout = flush_timeout
        self.max_backoff = max_backoff
        self._queue: collections.deque[tuple[Record, bool]] = collections.deque()
        self._droppable = 0
        self._lock = threading.Lock()
        self._has_records = threading.Condition(self._lock)  # the worker waits on it for records
        self._progress = threading.Condition(self._lock)  # close() waits on it for the queue to drain
        self._closed = threading.Event()  # cuts the worker's wait between two tries short, once
        self._closing = False
        self.dropped = 0
        """Droppable records refused because ``max_pending`` were already waiting."""
        self.refused = 0
        """Records the tracker refused (an error that ``retryable`` does not accept)."""
        self.sent = 0
        """Records sent."""
        self.outages = 0
        """How many times the tracker became unreachable."""
        self._refusals: set[str] = set()
        self._backoff = FIRST_BACKOFF
        self._down_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"sara-{name}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records waiting to be sent (including those of a request in flight)."""
        with self._lock:
            return len(self._queue)

    def put(self, record: Record, *, keep: bool = False) -> bool:
        """Queue ``record``; never blocks. Returns ``False`` when it was dropped (``max_pending`` reached).

        Args:
            record: what to send.
            keep: never drop it, whatever the queue holds (a run's start or end).
        """
        with self._lock:
            if self._closing:
                return False
            if not keep:
                if self._droppable >= self.max_pending:
                    self.dropped += 1
                    return False
                self._droppable += 1
            self._queue.append((record, keep))
            self._has_records.notify()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for every record queued so far to be sent (or refused).

        Returns:
            Whether the queue drained in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(left)
            return True

    def close(self) -> bool:
        """Wait at most ``flush_timeout`` seconds for every queued record to be sent, then stop the worker.

        Returns:
            Whether everything was sent; what was not is counted in a warning.
        """
        deadline = time.monotonic() + self.flush_timeout
        with self._lock:
            self._closing = True
            self._has_records.notify()
        self._closed.set()
        with self._lock:
            while self._queue and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._progress.wait(left)
            left_behind = len(self._queue)
            self._queue.clear()
            self._droppable = 0
            self._has_records.notify()
        if left_behind:
            _logger.warning(
                "%s: %d record(s) not sent within flush_timeout=%g s (the tracker did not answer in time); "
                "they are lost",
                self.name,
                left_behind,
                self.flush_timeout,
            )
        if self.dropped:
            _logger.warning(
                "%s: %d record(s) dropped while the tracker was unreachable, past max_pending=%d waiting in memory",
                self.name,
                self.dropped,
                self.max_pending,
            )
        return not left_behind and not self.dropped

    # -- the worker thread -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            chunk = self._take()
            if chunk is None:
                return
            try:
                consumed = max(1, min(len(chunk), int(self._send(chunk))))
            except Exception as error:
                if self._retryable(error):
                    self._wait_after(error)
                    continue
                consumed = 1  # refused: drop the first record alone, and say why once per cause
                self._refuse(error)
            else:
                self._recovered(consumed)
            with self._lock:
                for _ in range(consumed):
                    if not self._queue:  # close() gave up and cleared the queue meanwhile
                        break
                    _, keep = self._queue.popleft()
                    if not keep:
                        self._droppable -= 1
                self._progress.notify_all()

    def _take(self) -> list[Record] | None:
        """The next records to send, left in the queue until sent; ``None`` once closing with nothing left."""
        with self._lock:
            while not self._queue and not self._closing:
                self._has_records.wait()
            if not self._queue:
                return None
            return [record for record, _ in _first(self._queue, self.max_chunk)]

    def _wait_after(self, error: BaseException) -> None:
        """The tracker did not answer: say so once per outage, and wait before the next try."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            _logger.warning(
                "%s: the tracker is unreachable (%s); the training goes on, and the records are kept "
                "(up to max_pending=%d) and sent when it answers again",
                self.name,
                describe(error),
                self.max_pending,
            )
        if self._closed.is_set():
            time.sleep(self._backoff)
        elif self._closed.wait(self._backoff):  # close() was called meanwhile: try once more at once
            self._backoff = FIRST_BACKOFF
            return
        self._backoff = min(self._backoff * 2, self.max_backoff)

    def _refuse(self, error: BaseException) -> None:
        self.refused += 1
        cause = describe(error)
        if cause not in self._refusals:
            self._refusals.add(cause)
            _logger.warning("%s: the tracker refused a record (%s); it is dropped", self.name, cause)

    def _recovered(self, consumed: int) -> None:
        self.sent += consumed
        self._backoff = FIRST_BACKOFF
        if self._down_since is not None:
            _logger.warning(
                "%s: the tracker answers again after %.1f s; the records kept meanwhile are being sent",
                self.name,
                time.monotonic() - self._down_since,
            )
            self._down_since = None


def _first(queue: collections.deque[tuple[Record, bool]], count: int) -> list[tuple[Record, bool]]:
    """The first ``count`` items of ``queue``, left in place."""
    if len(queue) <= count:
        return list(queue)
    items = []
    for item in queue:
        items.append(item)
        if len(items) == count:
            break
    return items
