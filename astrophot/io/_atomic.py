# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The one mechanism for writing files: owned temporaries, publication, locks, stale clean-up.

A temporary is created beside its target as
``.<target name>.[<tag>.]<host>.<pid>.<random>.aptmp``, so a later write (or
`clean_stale_temporaries` when a night run starts) can tell whose it is and
remove it only when that process is dead on this host. Publication is one
``os.replace`` (or ``os.link`` when the name must not exist yet, which fails
instead of replacing: no check-then-act window). Writers of one target are
serialised by `target_lock` (an ``flock`` the kernel releases when a process
dies, so a lock is never stale).
"""

import contextlib
import errno
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path

__all__ = [
    "TMP_SUFFIX",
    "atomic_path",
    "clean_stale_temporaries",
    "owned_temporary",
    "parse_temporary",
    "publish",
    "safe_unlink",
    "target_lock",
    "write_bytes_atomic",
    "write_text_atomic",
]

log = logging.getLogger(__name__)

TMP_SUFFIX = ".aptmp"
LOCK_SUFFIX = ".aplock"
#: The longest file name most file systems take (bytes).
_NAME_MAX = 255
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_TMP = re.compile(
    r"^\.(?P<target>.+?)\.(?:(?P<tag>[0-9a-f]{32})\.)?(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}"
    + re.escape(TMP_SUFFIX)
    + "$"
)
#: asdf's own temporaries (from writes given a path) carry no owner: removed only when this old.
ASDF_TMP_AGE = 3600.0


def owned_temporary(target, tag=None):
    """A fresh temporary path beside ``target`` naming this host and process (not created)."""
    target = Path(target)
    middle = f"{tag}." if tag else ""
    tail = f".{middle}{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    name = target.name
    room = _NAME_MAX - 1 - len(tail.encode())
    while len(name.encode()) > room:  # a long name: its start still says whose temporary it is
        name = name[:-1]
    return target.with_name(f".{name}{tail}")


def parse_temporary(path):
    """``(target name, tag, host, pid)`` of an astrophot temporary, or None for any other name."""
    match = _TMP.match(Path(path).name)
    if not match:
        return None
    return match["target"], match["tag"], match["host"], int(match["pid"])


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_dead(path):
    """True when ``path`` is an astrophot temporary whose process is gone (on this host)."""
    parsed = parse_temporary(path)
    if parsed is None:
        return False
    _, _, host, pid = parsed
    return host == _HOST and not _pid_alive(pid)


def safe_unlink(path):
    """Remove ``path`` if it exists; a failure is logged, never raised (it must not mask another error)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("could not remove %s (%s)", path, exc)


def publish(tmp, target, *, overwrite):
    """
    Move the complete temporary ``tmp`` to ``target`` in one step.

    With ``overwrite=False`` the name is taken with ``os.link``, which fails
    with `FileExistsError` when ``target`` exists (even one created a moment
    ago by another process); the temporary is then removed.
    """
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) or isinstance(
            exc, FileExistsError
        ):
            raise
        # a file system without hard links: an exclusive create as the guard, then the rename
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        os.replace(tmp, target)
        return
    safe_unlink(tmp)


@contextlib.contextmanager
def target_lock(target, *, timeout=120.0):
    """
    Hold the write lock of ``target`` (``.<name>.aplock`` beside it) for the block.

    The lock is an ``flock``: the kernel drops it when its process dies, so it
    is never stale. The lock file is removed on release; a waiter that locked
    a file removed meanwhile tries again.
    """
    import fcntl

    lock = Path(target).with_name(f".{Path(target).name}{LOCK_SUFFIX}")
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target}: another writer has held its lock for {timeout:g} s") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder before us removed this file: lock the new one
    try:
        yield
    finally:
        safe_unlink(lock)
        os.close(fd)


def _stale(directory, target_name=None):
    for entry in Path(directory).glob(f".*{TMP_SUFFIX}"):
        parsed = parse_temporary(entry)
        if parsed is None or (target_name is not None and parsed[0] != target_name):
            continue
        if owner_dead(entry):
            yield entry, parsed


def clean_stale_temporaries(directory, *, target=None, recover=None, keep=()):
    """
    Remove astrophot temporaries in ``directory`` whose writer process is dead.

    Parameters
    ----------
    directory : path-like
    target : path-like, optional
        Only the temporaries of this target.
    recover : callable, optional
        ``recover(temporary, target_path, tag) -> bool``: given first each
        stale temporary; True means it was used (e.g. a sidecar completing a
        published pair), so it is not removed.
    keep : iterable of path-like, optional
        Temporaries of the calling write itself, never touched.

    Returns
    -------
    list of `pathlib.Path`
        The temporaries removed (asdf's own ``.asdf_tmp*`` older than an hour too).
    """
    directory = Path(directory)
    name = None if target is None else Path(target).name
    removed = []
    keep = {Path(p).name for p in keep}
    for entry, (target_name, tag, _, _) in list(_stale(directory, name)):
        if entry.name in keep:
            continue
        if recover is not None and recover(entry, directory / target_name, tag):
            continue
        safe_unlink(entry)
        removed.append(entry)
    if target is None:
        removed.extend(_remove_unheld_locks(directory))
        now = time.time()
        for entry in directory.glob(".asdf_tmp*"):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > ASDF_TMP_AGE:
                    safe_unlink(entry)
                    removed.append(entry)
    if removed:
        log.info(
            "removed %d stale temporar%s in %s", len(removed), "y" if len(removed) == 1 else "ies", directory
        )
    return removed


def _remove_unheld_locks(directory):
    """Remove lock files (``.<name>.aplock``) that no process holds (their writer was killed)."""
    import fcntl

    removed = []
    for entry in directory.glob(f".*{LOCK_SUFFIX}"):
        try:
            fd = os.open(entry, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live writer holds it
            continue
        try:
            # removed while locked: a waiter that then locks it sees another inode and tries again
            safe_unlink(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_path(path, *, overwrite=True):
    """
    Yield an owned temporary path beside ``path``; on success it is published as ``path``.

    Whatever fails inside the block (or an interruption) removes the
    temporary and leaves ``path`` as it was; stale temporaries of ``path``
    left by dead processes are removed first. With ``overwrite=False`` an
    existing ``path`` is a `FileExistsError` at publication.
    """
    path = Path(path)
    clean_stale_temporaries(path.parent, target=path)
    tmp = owned_temporary(path)
    try:
        yield tmp
        publish(tmp, path, overwrite=overwrite)
    finally:
        safe_unlink(tmp)


def write_text_atomic(path, text, *, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding=encoding)


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
