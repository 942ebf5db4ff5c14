"""``altametris.sara.core.files``: the one ``write_atomic`` and the one-writer lock, on real file systems.

A full disk is a real 64 KB tmpfs (``small_disk``), a second writer a real process.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from altametris.sara.core.files import FileLockedError, WriterLock, temporary_sibling, write_atomic

if TYPE_CHECKING:
    from pathlib import Path


def test_write_atomic_writes_bytes_text_or_chunks_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, b"bytes\n")
    assert target.read_bytes() == b"bytes\n"
    write_atomic(target, "text é\n")
    assert target.read_text(encoding="utf-8") == "text é\n"
    write_atomic(target, (chunk for chunk in ["a,", b"b\n", "c\n"]), fsync=True)
    assert target.read_text(encoding="utf-8") == "a,b\nc\n"
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]


def test_a_temporary_is_a_hidden_sibling_private_to_the_process(tmp_path: Path) -> None:
    assert temporary_sibling(tmp_path / "m.csv") == tmp_path / f".m.csv.{os.getpid()}.tmp"


def test_write_atomic_on_a_full_disk_leaves_the_previous_file_whole_and_no_temporary(small_disk: Path) -> None:
    target = small_disk / "state.json"
    write_atomic(target, '{"epoch": 1}\n')
    with pytest.raises(OSError, match="No space left on device") as full:
        write_atomic(target, "x" * 200_000)  # three times the disk
    assert full.value.errno == errno.ENOSPC
    assert target.read_text() == '{"epoch": 1}\n'
    assert [path.name for path in small_disk.iterdir()] == ["state.json"]


def test_a_failure_while_the_chunks_are_made_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "m.csv"
    target.write_text("old\n")

    def chunks() -> object:
        yield "new\n"
        raise ValueError("the source broke")

    with pytest.raises(ValueError, match="the source broke"):
        write_atomic(target, chunks())  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["m.csv"]


HOLD = """\
import sys, time
from altametris.sara.core.files import WriterLock
lock = WriterLock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(3600)
"""


def test_a_lock_held_by_a_live_process_is_refused_naming_its_pid_and_a_sigkill_releases_it(tmp_path: Path) -> None:
    path = tmp_path / ".m.csv.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(FileLockedError) as refused:
            WriterLock.acquire(path)
        assert refused.value.pid == holder.pid
        assert str(refused.value) == f"{path} is held by process {holder.pid}"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert path.exists()  # a killed holder leaves its file, unlocked
    lock = WriterLock.acquire(path)
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not path.exists()
    lock.release()  # twice is nothing


def test_within_one_process_the_lock_is_shared_and_the_last_release_removes_the_file(tmp_path: Path) -> None:
    """A notebook that trains again after an interrupted training is not refused because of its own callbacks."""
    path = tmp_path / ".lock"
    first = WriterLock.acquire(path)
    second = WriterLock.acquire(path)
    first.release()
    assert path.exists()
    assert not first.held
    assert second.held
    second.release()
    assert not path.exists()


def test_a_lock_file_removed_by_its_releasing_holder_is_never_held_by_two(tmp_path: Path) -> None:
    """A writer that opened the file just before its holder removed it must not think it holds the lock."""
    path = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        stale = os.open(path, os.O_RDWR)  # what this writer opened just before the holder released it
        path.unlink()  # the holder's release: unlink, then unlock (here, at its death)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    try:
        lock = WriterLock.acquire(path)  # locks the stale file first, sees it is gone from the path, takes the new one
        assert os.fstat(stale).st_ino != os.stat(path).st_ino
        assert path.read_text() == f"{os.getpid()}\n"
        lock.release()
    finally:
        os.close(stale)


def test_a_lock_in_a_read_only_folder_is_an_os_error() -> None:
    with pytest.raises(OSError):  # noqa: PT011 - which one depends on the system (EROFS, EACCES, ENOENT)
        WriterLock.acquire("/proc/.sara-test.lock")
