"""File-system safety in one place: checksums, atomic writes, directory publishing, locks.

Everything that writes a result other programs read (model bundles, batch results, reports)
goes through here, so the rules are the same everywhere:

- a file is written under a temporary name, fsynced, renamed over its target with
  ``os.replace`` and its directory fsynced: readers see the old file or the new one;
- a directory is published by renaming a complete temporary directory into place; when
  something is already there it is first moved aside (``.NAME.old-*``) and removed only after
  the new one is in place; :func:`recover_dir` completes or undoes a publish that a crash
  interrupted between the two renames;
- temporary names carry the writer's pid (``.NAME.tmp-<pid>-<rand>``) and the writer holds an
  advisory lock (``flock``) on what it is building, so leftovers of dead processes can be
  recognised and removed (:func:`remove_stale`) without touching a live writer's work or
  anything that does not follow these name patterns;
- :func:`check_output_dir` refuses to replace a directory that holds anything this program did
  not publish there itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

try:  # POSIX advisory locks; elsewhere locking is a no-op (publishing stays atomic)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: How long a writer waits for another writer's publish lock before giving up (seconds).
LOCK_TIMEOUT = 120.0

#: ``.NAME.<tag>-<pid>-<hex>`` (pid optional: names written by older versions have none).
_AUX = re.compile(r"^\.(?P<name>.+)\.(?P<tag>tmp|old)-(?:(?P<pid>\d+)-)?(?P<rand>[0-9a-f]+)$")

#: Leftovers without a pid in their name are removed only once this old (seconds).
_NO_PID_GRACE = 60.0


class OutputDirError(ValueError):
    """An output path holds something this command did not write (refused without force)."""


def as_path(value, what: str = "path") -> Path:
    """``value`` as a Path: a str or path-like, not empty (``TypeError``/``ValueError`` naming
    ``what`` otherwise)."""
    if isinstance(value, Path):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or Path), got {type(value).__name__}")
    if not str(os.fspath(value)).strip():
        raise ValueError(f"{what} is an empty string, not a path")
    return Path(value)


# ---------------------------------------------------------------------- checksums
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- durability
def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and directory under ``root`` (before it is published)."""
    root = Path(root)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in sorted([root, *(p for p in root.rglob("*") if p.is_dir())], reverse=True):
        fsync_dir(d)


def aux_name(path: str | Path, tag: str) -> Path:
    """``.NAME.<tag>-<pid>-<rand>`` next to ``path``: a name :func:`remove_stale` knows."""
    path = Path(path)
    return path.parent / f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------- atomic files
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds the file written
    there is fsynced and renamed over ``path`` (then the directory is fsynced). On failure the
    temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = aux_name(path, "tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj, **dump_kwargs) -> None:
    """Write ``obj`` as JSON atomically (``dump_kwargs`` as :func:`json.dumps`)."""
    dump_kwargs.setdefault("indent", 1)
    dump_kwargs.setdefault("sort_keys", True)
    atomic_write_text(path, json.dumps(obj, **dump_kwargs))


# ---------------------------------------------------------------------- locks
def _lock_fd(path: Path, shared: bool, blocking: bool) -> int | None:
    """An fd of ``path`` holding a flock, or None when the lock is taken (non-blocking) or
    ``path`` is gone. Without flock support (Windows) nothing is locked: -1 stands for the
    lock while ``path`` exists."""
    if fcntl is None:  # pragma: no cover - publishing stays atomic, only clean-up is less careful
        return -1 if path.exists() else None
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as e:  # a file system without flock (some network mounts): no locking
        log.debug("flock %s: %s (continuing without a lock)", path, e)
    return fd


def release(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)  # closing the last fd of the open file description drops the flock


def try_lock(path: str | Path, *, shared: bool = False) -> int | None:
    """Non-blocking flock of a file or directory: its fd, or None when another process holds
    a conflicting lock (or ``path`` is gone). Release with :func:`release`."""
    return _lock_fd(Path(path), shared, blocking=False)


@contextlib.contextmanager
def locked(path: str | Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive flock on the directory ``path`` (waiting up to ``timeout`` s)."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while True:
        fd = _lock_fd(path, shared=False, blocking=False)
        if fd is not None:
            break
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "directory to lock is missing", str(path))
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{path}: another process holds its publish lock for over {timeout:.0f} s"
            )
        time.sleep(0.01)
    try:
        yield
    finally:
        release(fd)


@contextlib.contextmanager
def building(path: str | Path) -> Iterator[Path]:
    """Create the directory ``path`` and hold an exclusive lock on it while the block runs, so
    :func:`remove_stale` leaves it alone. The directory is removed if the block fails."""
    path = Path(path)
    path.mkdir()
    fd = try_lock(path)
    try:
        yield path
    except BaseException:
        remove(path)
        raise
    finally:
        release(fd)


# ---------------------------------------------------------------------- directories
def remove(path: str | Path) -> None:
    """Remove a file, link or directory tree (missing is fine)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def aux_dirs(path: str | Path, tag: str) -> list[Path]:
    """Entries ``.NAME.<tag>-*`` next to ``path`` that follow our naming, oldest first."""
    path = Path(path)
    out = []
    with contextlib.suppress(OSError):
        for p in path.parent.iterdir():
            m = _AUX.match(p.name)
            if m and m["name"] == path.name and m["tag"] == tag:
                out.append(p)
    return sorted(out, key=_mtime)


def _mtime(p: Path) -> float:
    try:
        return p.lstat().st_mtime
    except OSError:
        return 0.0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(p: Path) -> bool:
    """Whether an aux entry (``.NAME.tmp-*`` / ``.NAME.old-*``) belongs to no live writer: its
    pid is dead (or it has none and is older than a minute) and nobody holds its lock."""
    m = _AUX.match(p.name)
    if m is None:
        return False
    if m["pid"] is not None:
        if _pid_alive(int(m["pid"])):
            return False
    elif time.time() - _mtime(p) < _NO_PID_GRACE:
        return False
    if p.is_dir():
        fd = try_lock(p)
        if fd is None:
            return not p.exists()
        release(fd)
    return True


def remove_stale(path: str | Path) -> list[Path]:
    """Remove temporary directories of dead writers next to ``path`` (``.NAME.tmp-*``); call it
    holding the parent's publish lock, after :func:`recover_dir` (which owns the
    ``.NAME.old-*`` copies). Returns what was removed."""
    removed = []
    for p in aux_dirs(path, "tmp"):
        if is_stale(p):
            log.info("removing %s, left by an interrupted run", p)
            remove(p)
            removed.append(p)
    return removed


def replace_dir(src: str | Path, dest: str | Path) -> None:
    """Move the complete directory ``src`` to ``dest``. Whatever is at ``dest`` is first moved
    aside to ``.NAME.old-*`` and removed once ``src`` is in place; if the second rename fails
    it is moved back. A crash between the two renames is repaired by :func:`recover_dir`.
    Call it holding the parent's publish lock."""
    src, dest = Path(src), Path(dest)
    old = None
    if dest.exists() or dest.is_symlink():
        old = aux_name(dest, "old")
        os.rename(dest, old)
    try:
        os.rename(src, dest)
    except BaseException:
        if old is not None:
            os.rename(old, dest)
        raise
    fsync_dir(dest.parent)
    if old is not None:
        remove(old)


def recover_dir(dest: str | Path, pending: Iterable[Path] = ()) -> str | None:
    """Repair a publish interrupted between its two renames; returns what was done.

    When ``dest`` is missing and a ``.NAME.old-*`` copy exists, the first complete replacement
    in ``pending`` is moved into place (the publish is completed), else the newest old copy is
    moved back (it is undone). Once ``dest`` is in place, old copies are removed. Call it
    holding the parent's publish lock.
    """
    dest = Path(dest)
    olds = aux_dirs(dest, "old")
    if not olds:
        return None
    action = None
    if not (dest.exists() or dest.is_symlink()):
        new = next(iter(pending), None)
        if new is not None:
            log.warning("%s: completing an interrupted publish from %s", dest, new.name)
            os.rename(new, dest)
            action = "completed"
        else:
            log.warning("%s: restoring the previous version after an interrupted publish", dest)
            os.rename(olds.pop(), dest)
            action = "restored"
        fsync_dir(dest.parent)
    for old in olds:
        remove(old)
    return action or "cleaned"


# ---------------------------------------------------------------------- output guard
def check_output_dir(
    path: str | Path,
    *,
    recognise: Callable[[Path], bool],
    what: str,
    force: bool = False,
    allow: Callable[[str], bool] = lambda name: False,
) -> str:
    """May a command publish ``what`` at ``path``? Returns ``"absent"``, ``"empty"``,
    ``"ours"`` (``recognise(path)``: it holds what this command publishes) or ``"forced"``.

    Anything else (a file, a folder with other content) raises :class:`OutputDirError` unless
    ``force``: a user's folder is never replaced by accident. Entries for which ``allow``
    is true (our own leftovers) do not count as content.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return "absent"
    if path.is_dir():
        try:
            names = [n for n in os.listdir(path) if not allow(n)]
        except OSError as e:
            raise OutputDirError(f"{path}: cannot read the output directory ({e})") from e
        if not names:
            return "empty"
        if recognise(path):
            return "ours"
        held = f"holds {len(names)} entr{'y' if len(names) == 1 else 'ies'} "
        held += f"({', '.join(sorted(names)[:3])}{', ...' if len(names) > 3 else ''})"
    else:
        held = "is a file"
    if force:
        log.warning("%s %s that is not %s: replacing it (force)", path, held, what)
        return "forced"
    raise OutputDirError(
        f"{path} {held} and is not {what}; refusing to replace it. Choose an empty or new "
        "path, or pass --force (force=True) to replace it"
    )
