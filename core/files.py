"""Writing files safely: whole files replaced atomically, and one writer per file.

* :func:`write_atomic` writes a file through a temporary sibling and :func:`os.replace`: a reader, or a process
  killed at any moment, sees the previous file or the new one, complete, never a mix; on a failure (a full disk, say)
  the temporary is removed and the previous file is left as it was.
* :class:`WriterLock` is an advisory lock (:func:`fcntl.flock`) on a lock file next to what it guards, naming the
  process that holds it. The kernel releases it when that process ends, however it ends: a killed run never blocks
  its resume. Two live trainings writing one file would lose rows silently; the second one is refused instead.

* :class:`AnnouncingSaver` is a trainer's ``save_checkpoint``: it notes each file written, for the trainer's
  ``on_checkpoint_save`` once the hook that saved returned; a callback that renames the file it asked for (the
  ``checkpoint`` built-in writes a temporary sibling, then moves it) calls :func:`checkpoint_renamed`, so that the
  announcement names the final file.

Plugin authors who write files may use them (the built-in writers, the demo and the bridges do).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
import time
from typing import TYPE_CHECKING, Callable, Union

from .exceptions import SaraError

if TYPE_CHECKING:
    from collections.abc import Iterable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, every writer proceeds
    fcntl = None  # type: ignore[assignment]
_FLOCK: bool = fcntl is not None

__all__ = [
    "AnnouncingSaver",
    "FileLockedError",
    "WriterLock",
    "checkpoint_renamed",
    "temporary_sibling",
    "write_atomic",
]

Data = Union[bytes, str, "Iterable[bytes | str]"]
"""What :func:`write_atomic` writes: bytes, text (encoded), or chunks of either, written in order."""


def temporary_sibling(target: str | os.PathLike[str]) -> pathlib.Path:
    """A temporary path in ``target``'s directory, private to this process: ``.name.<pid>.tmp``."""
    path = pathlib.Path(target)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: str | os.PathLike[str], data: Data, *, fsync: bool = False, encoding: str = "utf-8") -> None:
    r"""Write ``data`` to ``path`` through a temporary sibling and :func:`os.replace`: complete, or the previous file.

    Args:
        path: the file to write; its folder must exist.
        data: bytes, text (encoded with ``encoding``), or an iterable of chunks of either (a file streamed as it is
            read, say).
        fsync: flush the temporary to disk before the replace, for files that must survive a power loss.
        encoding: the encoding of text.

    Raises:
        OSError: the file could not be written (the temporary is removed, the previous file is untouched).

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp(), "state.json")
        >>> write_atomic(target, '{"epoch": 3}\n')
        >>> target.read_text()
        '{"epoch": 3}\n'
    """
    target = pathlib.Path(path)
    temporary = temporary_sibling(target)
    chunks = [data] if isinstance(data, (bytes, str)) else data
    try:
        with open(temporary, "wb") as file:
            for chunk in chunks:
                file.write(chunk.encode(encoding) if isinstance(chunk, str) else chunk)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


class FileLockedError(SaraError, BlockingIOError):
    """Another live process holds a :class:`WriterLock`: ``.path`` (the lock file) and ``.pid`` (``None`` if unknown).

    The caller turns it into the library error of its place (a plugin's ``TrainingError``, the demo's
    ``ConfigError``), naming what it guards.
    """

    def __init__(self, path: pathlib.Path, pid: int | None) -> None:
        self.holder = "another process" if pid is None else f"process {pid}"
        """Who holds it, in words: ``process 1234``."""
        super().__init__(f"{path} is held by {self.holder}")
        self.path = path
        self.pid = pid


class WriterLock:
    r"""An exclusive advisory lock on ``path`` (a lock file, created when missing) against other processes.

    The lock file holds the holder's pid, so that a refused writer can name it. The last :meth:`release` of a process
    removes the file; a process killed while it held the lock leaves the file behind, unlocked: the next writer takes
    it over. Within one process the lock is shared (each :meth:`acquire` is one more holder, each :meth:`release` one
    less): it keeps other processes out, and a notebook that trains again after an interrupted training is not
    refused because of its own abandoned callbacks.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp(), ".metrics.csv.lock")
        >>> lock = WriterLock.acquire(path)
        >>> path.read_text() == f"{os.getpid()}\n"
        True
        >>> lock.release()
        >>> path.exists()
        False
    """

    def __init__(self, path: pathlib.Path, key: str) -> None:
        self.path = path
        self._key: str | None = key

    @classmethod
    def acquire(cls, path: str | os.PathLike[str]) -> WriterLock:
        """Take the lock, or raise :class:`FileLockedError` at once (never waits) when another live process holds it.

        Raises:
            FileLockedError: another process holds it.
            OSError: the lock file cannot be created (a read-only folder, say).
        """
        lock_path = pathlib.Path(path)
        key = os.path.realpath(lock_path)
        with _GUARD:
            held = _HELD.get(key)
            if held is not None and _same_file(held[0], lock_path):
                held[1] += 1
                return cls(lock_path, key)
            fd = _lock(lock_path)
            if held is not None:  # the file this process held was removed meanwhile: this one counts now
                os.close(held[0])
            _HELD[key] = [fd, 1]
        return cls(lock_path, key)

    @property
    def held(self) -> bool:
        """Whether this holder still holds the lock (until :meth:`release`)."""
        return self._key is not None

    def release(self) -> None:
        """Stop holding the lock; the last holder of the process removes the file (nothing when already released)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[key]
            fd = held[0]
            try:
                if _same_file(fd, self.path):
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
            finally:
                os.close(fd)

    def __repr__(self) -> str:
        return f"WriterLock({str(self.path)!r}, held={self.held})"


_HELD: dict[str, list[int]] = {}
"""The locks this process holds: the lock file's real path -> [its descriptor, how many holders]."""
_GUARD = threading.Lock()


def _lock(path: pathlib.Path) -> int:
    """Open ``path`` and lock it (``flock``), or :class:`FileLockedError`; the descriptor that holds the lock."""
    if not _FLOCK:  # pragma: no cover - no advisory locks on this system
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise FileLockedError(path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file after we opened it (release() unlinks, then unlocks):
        # the lock we hold is then on a file nobody else will open. Take the one on the path instead.
        if _same_file(fd, path):
            break
        os.close(fd)
    with contextlib.suppress(OSError):  # a full disk: the lock holds, only the pid is not written
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _same_file(fd: int, path: pathlib.Path) -> bool:
    try:
        on_path, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (on_path.st_dev, on_path.st_ino) == (held.st_dev, held.st_ino)


def _holder(fd: int) -> int | None:
    """The pid written in a lock file (its holder may not have written it yet: a few tries, 0.2 s at most)."""
    for _ in range(20):
        with contextlib.suppress(OSError, ValueError):
            return int(os.pread(fd, 32, 0).decode("ascii").strip())
        time.sleep(0.01)
    return None


class AnnouncingSaver:
    """A trainer's ``save_checkpoint``: ``write(path)``, then ``path`` noted in ``written`` for ``on_checkpoint_save``.

    Example:
        >>> written = []
        >>> save = AnnouncingSaver(lambda path: None, written)
        >>> save("ckpt/.e1.ckpt.tmp")
        >>> checkpoint_renamed(save, "ckpt/.e1.ckpt.tmp", "ckpt/e1.ckpt")  # what the checkpoint callback does
        >>> written
        ['ckpt/e1.ckpt']
    """

    __slots__ = ("write", "written")

    def __init__(self, write: Callable[[str], object], written: list[str]) -> None:
        self.write = write
        self.written = written

    def __call__(self, path: str) -> object:
        """Write the checkpoint at ``path`` and note it."""
        result = self.write(path)
        self.written.append(os.fspath(path))
        return result

    def renamed(self, old: str | os.PathLike[str], new: str | os.PathLike[str]) -> None:
        """The file written at ``old`` now lives at ``new``: the announcement names ``new``."""
        old, new = os.fspath(old), os.fspath(new)
        self.written[:] = [new if path == old else path for path in self.written]


def checkpoint_renamed(save_checkpoint: object, old: str | os.PathLike[str], new: str | os.PathLike[str]) -> None:
    """Tell the trainer's ``save_checkpoint`` that the file it wrote at ``old`` was moved to ``new``.

    For a ``save_checkpoint`` that announces nothing (any plain callable), this does nothing.
    """
    renamed = getattr(save_checkpoint, "renamed", None)
    if callable(renamed):
        renamed(old, new)
