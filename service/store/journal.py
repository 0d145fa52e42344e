"""A durable local journal for writes the database could not take in time.

Append-only JSON lines, fsync'd before the caller answers, each line carrying a digest of its own
content. Each process appends to a segment file of its own, holding an exclusive ``flock`` only
while it writes; the replayer takes the same lock on every segment it drains, so it never reads
half a write, and a writer that finds its segment taken starts a new one instead of waiting. A
line cut short by a crash fails its digest and is skipped: the call that wrote it never got its
answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
REPLAY_LOCK = ".replay.lock"
HEADROOM_BYTES = 16 * 1024  # room for a few records: below it, readiness counts the journal full
REJECTED = "rejected.ndjson"  # records the database refused for good, kept for an operator


class JournalUnavailable(Exception):
    """The journal cannot take a record (full, unwritable); the only case a call must fail."""


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    data: dict[str, Any]


def _digest(kind: str, key: str, data: dict[str, Any]) -> str:
    canonical = json.dumps([kind, key, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _line(entry: Entry) -> bytes:
    record = {"kind": entry.kind, "key": entry.key, "data": entry.data,
              "sum": _digest(entry.kind, entry.key, entry.data)}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _parse(line: bytes) -> Entry | None:
    try:
        raw = json.loads(line)
        entry = Entry(str(raw["kind"]), str(raw["key"]), dict(raw["data"]))
        if raw.get("sum") != _digest(entry.kind, entry.key, entry.data):
            return None
        return entry
    except (ValueError, KeyError, TypeError):
        return None


class Journal:
    """Segments under ``directory``; ``max_bytes`` caps the journal's total size on disk."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segment: Path | None = None
        self._pid = -1

    def append(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """Write one record durably, or raise JournalUnavailable."""
        line = _line(Entry(kind, key, data))
        with self._lock:
            try:
                if self.size() + len(line) > self.max_bytes:
                    raise JournalUnavailable(f"journal full ({self.max_bytes} bytes)")
                self._write(line)
            except OSError as exc:
                raise JournalUnavailable(f"journal not writable ({type(exc).__name__})") from exc

    def _write(self, line: bytes) -> None:
        """Append under the segment's lock; a segment the replayer holds or deleted is replaced."""
        for _ in range(3):
            path = self._own_segment()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._segment = None
                    continue
                if not _same_file(fd, path):  # drained and deleted between open and lock
                    self._segment = None
                    continue
                if os.write(fd, line) != len(line):
                    raise OSError("short write to the journal")
                os.fsync(fd)
                return
            finally:
                os.close(fd)
        raise OSError("no journal segment could be locked")

    def _own_segment(self) -> Path:
        if self._segment is None or self._pid != os.getpid():
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(6).hex()}{SUFFIX}"
            self._segment, self._pid = self.directory / name, os.getpid()
            fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            _fsync_directory(self.directory)
        return self._segment

    def set_aside(self, entries: list[Entry]) -> None:
        """Keep records the database refused for good where an operator finds them, out of replay."""
        if not entries:
            return
        with open(self.directory / REJECTED, "ab") as handle:
            for entry in entries:
                handle.write(_line(entry))
            handle.flush()
            os.fsync(handle.fileno())

    def _segments(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        except FileNotFoundError:
            return []

    def size(self) -> int:
        total = 0
        for path in self._segments():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def depth(self) -> int:
        """Records waiting in every segment on this disk, whoever wrote them."""
        count = 0
        for path in self._segments():
            with contextlib.suppress(FileNotFoundError):
                count += path.read_bytes().count(b"\n")
        return count

    def writable(self) -> bool:
        """True while the journal has room for a few more records."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        if not self.directory.is_dir() or not os.access(self.directory, os.W_OK):
            return False
        return self.size() + HEADROOM_BYTES <= self.max_bytes

    def drain(self, apply: Callable[[list[Entry]], int]) -> int:
        """Hand the records of every segment not being written to ``apply`` in one call, then
        delete those segments. Returns how many records ``apply`` says it wrote.

        One replayer at a time per journal directory; ``apply`` must be idempotent, since a crash
        between ``apply`` and the deletion replays the same records again. An exception from
        ``apply`` leaves every segment in place.
        """
        if not self._segments():
            return 0
        with _locked(self.directory / REPLAY_LOCK) as replaying:
            if not replaying:
                return 0
            claimed: list[tuple[Path, int]] = []
            try:
                for path in self._segments():
                    fd = _claim(path)
                    if fd is not None:
                        claimed.append((path, fd))
                entries: list[Entry] = []
                for path, fd in claimed:
                    read, damaged = _read(fd)
                    if damaged:
                        log.warning("journal %s: %d damaged line(s) skipped", path.name, damaged)
                    entries.extend(read)
                written = apply(entries) if entries else 0
                for path, _fd in claimed:
                    path.unlink(missing_ok=True)
                if claimed:
                    _fsync_directory(self.directory)
                return written
            finally:
                for _path, fd in claimed:
                    os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _claim(path: Path) -> int | None:
    """The segment's descriptor with its lock held, or None while it is being written or gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same_file(fd, path):
        os.close(fd)
        return None
    return fd


class _locked:
    """A non-blocking exclusive lock on ``path``; the context value says whether it was had."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> bool:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _read(fd: int) -> tuple[list[Entry], int]:
    with os.fdopen(os.dup(fd), "rb") as handle:
        handle.seek(0)
        lines = handle.read().split(b"\n")
    entries: list[Entry] = []
    damaged = 0
    for line in lines:
        if not line.strip():
            continue
        entry = _parse(line)
        if entry is None:
            damaged += 1
        else:
            entries.append(entry)
    return entries, damaged


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
