# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Prepare an iTelescope.net download: unzip, remove spaces, fix permissions."""

import datetime
import errno
import logging
import os
import pathlib
import shutil
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass, field

from astrophot.exceptions import AstrophotError, UnsafeArchiveError
from astrophot.io._atomic import TMP_SUFFIX, owned_temporary

__all__ = [
    "PrepareError",
    "PrepareReport",
    "prepare_download",
]

log = logging.getLogger(__name__)

_DIR_BITS = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH  # 0o755
_FILE_BITS = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
_NEW_FILE_MODE = 0o644
_PARTIAL = ".astrophot-partial-"  # the temporaries of earlier versions
_MAX_NESTING = 8
_CHUNK = 1 << 20

#: Default limits against decompression bombs (`prepare_download`).
MAX_RATIO = 200.0
MAX_SIZE = 64 * 2**30
#: Entries smaller than this are not held to ``max_ratio`` (a small text of zeros is harmless).
_RATIO_FLOOR = 1 << 20
#: Spaces and control characters in names, which become ``_``.
_UNSAFE_CHARS = {c: "_" for c in range(32)} | {0x7F: "_", ord(" "): "_"}


class PrepareError(AstrophotError, OSError):
    """The download directory cannot be prepared (missing, not a directory)."""


@dataclass
class PrepareReport:
    """
    What `prepare_download` did (or, in a dry run, would do).

    Paths are absolute and name where things are after the renames (except
    the old path of a renamed item). Every list is sorted by path.

    Parameters
    ----------
    directory : `pathlib.Path`
        The directory prepared.
    dry_run : bool
        True if nothing was changed.
    permissions : list of (`pathlib.Path`, int, int)
        Path, old mode and new mode of every file or directory whose
        permission bits were widened.
    renamed : list of (`pathlib.Path`, `pathlib.Path`)
        Old and new path of every file or directory renamed to remove spaces.
    extracted : list of (`pathlib.Path`, `pathlib.Path`)
        Archive and new file for every file extracted.
    archives : list of `pathlib.Path`
        Archives whose every entry is now present beside them (extracted now
        or before); they are kept.
    skipped : list of (`pathlib.Path`, str)
        Things left alone on purpose, with the reason (a name clash, a
        duplicate entry in an archive).
    errors : list of (`pathlib.Path`, str)
        Problems: unreadable, corrupt, truncated or unsafe archives (left in
        place, nothing extracted from them), unlistable directories.
    """

    directory: pathlib.Path
    dry_run: bool = False
    permissions: list = field(default_factory=list)
    renamed: list = field(default_factory=list)
    extracted: list = field(default_factory=list)
    archives: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    @property
    def changed(self):
        """True if anything was (or, in a dry run, would be) changed."""
        return bool(self.permissions or self.renamed or self.extracted)

    @property
    def ok(self):
        """True if there were no errors."""
        return not self.errors

    def _rel(self, path):
        try:
            rel = pathlib.Path(path).relative_to(self.directory)
        except ValueError:
            return str(path)
        return str(rel) if str(rel) != "." else "."

    def format(self):
        """
        The report as text, one line per action.

        Returns
        -------
        str
            A header line, then one line per kind of action and one per item.
        """
        would = "would be " if self.dry_run else ""
        lines = [f"prepare {self.directory}" + (" (dry run: nothing changed)" if self.dry_run else "")]
        if self.permissions:
            lines.append(f"permissions {would}fixed: {len(self.permissions)}")
            lines += [f"  {self._rel(p)}: {old:o} -> {new:o}" for p, old, new in self.permissions]
        if self.renamed:
            lines.append(f"{would}renamed: {len(self.renamed)}")
            lines += [f"  {self._rel(old)} -> {self._rel(new)}" for old, new in self.renamed]
        if self.extracted:
            n_archives = len({a for a, _ in self.extracted})
            lines.append(f"files {would}extracted: {len(self.extracted)} from {n_archives} archive(s)")
            lines += [f"  {self._rel(a)}: {self._rel(p)}" for a, p in self.extracted]
        if self.archives:
            lines.append(f"archives complete (kept): {len(self.archives)}")
        if self.skipped:
            lines.append(f"skipped: {len(self.skipped)}")
            lines += [f"  {self._rel(p)}: {why}" for p, why in self.skipped]
        if self.errors:
            lines.append(f"errors: {len(self.errors)}")
            lines += [f"  {self._rel(p)}: {why}" for p, why in self.errors]
        if not (self.changed or self.skipped or self.errors):
            lines.append("nothing to do")
        return "\n".join(lines)

    def __str__(self):
        return self.format()

    def _sort(self):
        for name in ("permissions", "renamed", "extracted", "skipped", "errors"):
            getattr(self, name).sort(key=lambda item: tuple(str(x) for x in item))
        self.archives.sort()


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    dest: pathlib.Path
    is_dir: bool


def _widen_mode(path, bits, report, dry_run):
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    except OSError as exc:
        report.errors.append((path, f"cannot stat: {exc.strerror}"))
        return
    new = mode | bits
    if new == mode:
        return
    if not dry_run:
        try:
            os.chmod(path, new)
        except OSError as exc:
            report.errors.append((path, f"cannot change permissions: {exc.strerror}"))
            return
        log.info("permissions of %s: %o -> %o", path, mode, new)
    report.permissions.append((path, mode, new))


def _walk(root, report, dry_run):
    """Fix permissions top-down (so every directory can be listed) and list everything."""
    dirs, files, links = [], [], []
    stack = [root]
    while stack:
        directory = stack.pop()
        if directory != root:  # the directory given is the user's choice; only what is below it
            _widen_mode(directory, _DIR_BITS, report, dry_run)
        dirs.append(directory)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report.errors.append((directory, f"cannot list directory: {exc.strerror}"))
            continue
        for entry in entries:
            path = directory / entry.name
            if _PARTIAL in entry.name or entry.name.endswith(TMP_SUFFIX):
                continue
            if entry.is_symlink():
                links.append(path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                _widen_mode(path, _FILE_BITS, report, dry_run)
                files.append(path)
    return dirs, files, links


def _rename_spaces(root, paths, report, dry_run):
    """Rename deepest first; return {old path: new path}."""
    mapping = {}
    claimed = set()
    for path in sorted(paths, key=lambda p: (-len(p.parts), str(p))):
        if path == root or path.name == path.name.translate(_UNSAFE_CHARS):
            continue
        new = path.with_name(path.name.translate(_UNSAFE_CHARS))
        if os.path.lexists(new) or new in claimed:
            report.skipped.append((path, f"not renamed: {new.name!r} already exists"))
            continue
        if not dry_run:
            try:
                os.rename(path, new)
            except OSError as exc:
                report.errors.append((path, f"cannot rename: {exc.strerror}"))
                continue
            log.info("renamed %s -> %s", path, new)
        claimed.add(new)
        mapping[path] = new
        report.renamed.append((path, new))
    return mapping


def _mapped(path, mapping, root):
    """The path after the renames in ``mapping`` (parents renamed too)."""
    rel = path.relative_to(root)
    current = root
    original = root
    for part in rel.parts:
        original = original / part
        new = mapping.get(original)
        current = current / (new.name if new is not None else part)
    return current


def _inside(path, real_root):
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _plan(zf, archive, dest_dir, real_root, report):
    """Check every entry; raise UnsafeArchiveError for an escaping or special one."""
    entries = []
    duplicates = []
    seen = {}
    for info in zf.infolist():
        raw = info.filename
        name = raw.replace("\\", "/")
        if "\0" in name:
            raise UnsafeArchiveError(f"{archive}: entry {raw!r} has a NUL character")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchiveError(f"{archive}: entry {raw!r} has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnsafeArchiveError(f"{archive}: entry {raw!r} points outside the directory ('..')")
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(f"{archive}: entry {raw!r} is a symbolic link")
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{archive}: entry {raw!r} is a special file (mode {file_type:o})")
        if not parts:
            continue
        parts = [p.translate(_UNSAFE_CHARS) for p in parts]
        too_long = [p for p in parts if len(os.fsencode(p)) > _name_max(dest_dir)]
        if too_long:
            raise UnsafeArchiveError(
                f"{archive}: entry {raw!r} has a name of {len(os.fsencode(too_long[0]))} bytes, "
                f"longer than the file system allows ({_name_max(dest_dir)})"
            )
        dest = dest_dir.joinpath(*parts)
        if not _inside(dest, real_root):
            raise UnsafeArchiveError(
                f"{archive}: entry {raw!r} would be written outside the directory through a symbolic link"
            )
        is_dir = info.is_dir() or file_type == stat.S_IFDIR
        if dest in seen:
            if is_dir and seen[dest]:
                continue
            why = (
                f"duplicate entry {raw!r} in {archive.name} (name taken by an earlier entry; kept in archive)"
            )
            duplicates.append((dest, why))
            continue
        seen[dest] = is_dir
        entries.append(_Entry(info=info, dest=dest, is_dir=is_dir))
    report.skipped += duplicates
    return entries


def _name_max(directory):
    """Longest file name (bytes) the file system of ``directory`` takes."""
    for where in (directory, *directory.parents):
        try:
            return os.pathconf(where, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


@dataclass
class _Limits:
    """Expanded-size limits of one `prepare_download` call, nested archives included."""

    max_ratio: float
    max_size: int
    used: int = 0

    def check(self, archive, todo):
        """The reason the entries ``todo`` may not be extracted, or None (and they are counted)."""
        for entry in todo:
            info = entry.info
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR and ratio > self.max_ratio:
                return (
                    f"entry {info.filename!r} expands {ratio:.0f} times ({info.compress_size} to "
                    f"{info.file_size} bytes), more than max_ratio={self.max_ratio:g} allows: "
                    "a decompression bomb? nothing extracted"
                )
        needed = sum(e.info.file_size for e in todo)
        if self.used + needed > self.max_size:
            return (
                f"would expand to {needed} bytes ({self.used} already extracted in this run), more than "
                f"max_size={self.max_size} bytes allows; nothing extracted"
            )
        self.used += needed
        return None


def _crc32(path):
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _same_content(path, info):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != info.file_size:
        return False
    try:
        return _crc32(path) == info.CRC
    except OSError:
        return False


def _zip_mtime(info):
    try:
        return time.mktime(datetime.datetime(*info.date_time).timetuple())
    except (ValueError, OverflowError):
        return None


def _entries_to_extract(archive, entries, report, on_disk):
    """The file entries not yet on disk; clashes and differing files are reported as skipped."""
    todo = []
    for entry in entries:
        where = on_disk(entry.dest)
        if entry.is_dir:
            if os.path.lexists(where) and not os.path.isdir(where):
                report.skipped.append((entry.dest, f"directory entry of {archive.name} clashes with a file"))
            continue
        if os.path.lexists(where):
            if not _same_content(where, entry.info):
                report.skipped.append(
                    (entry.dest, f"exists and differs from entry {entry.info.filename!r} of {archive.name}")
                )
            continue
        todo.append(entry)
    return todo


def _refusal(archive, todo, limits, on_disk):
    """Why this archive's new entries may not be extracted (limits, free space), or None."""
    refused = limits.check(archive, todo)
    if refused:
        return refused
    if todo:
        needed = sum(e.info.file_size for e in todo)
        free = shutil.disk_usage(on_disk(archive).parent).free
        if needed > free:
            return f"needs {needed} bytes, only {free} free; nothing extracted"
    return None


class _DirectoryMaker:
    """Creates missing directories inside a root and remembers them (to undo)."""

    def __init__(self, real_root):
        self.real_root = real_root
        self.created = []

    def __call__(self, directory):
        missing = []
        while not os.path.lexists(directory):
            missing.append(directory)
            directory = directory.parent
        if not os.path.isdir(directory) or not _inside(directory, self.real_root):
            raise NotADirectoryError(f"{directory} is not a directory inside {self.real_root}")
        for path in reversed(missing):
            os.mkdir(path)
            os.chmod(path, _DIR_BITS)
            self.created.append(path)


def _copy_entry(zf, entry, tmp):
    """Copy one entry to its temporary, with the entry's permissions and time."""
    with zf.open(entry.info) as src, open(tmp, "xb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
    os.chmod(tmp, _NEW_FILE_MODE)
    mtime = _zip_mtime(entry.info)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))


def _extract(zf, archive, entries, report, *, dry_run, real_root, on_disk, limits):
    """Extract all new entries of one archive, or none. Returns the new files (None on error)."""
    todo = _entries_to_extract(archive, entries, report, on_disk)
    refused = _refusal(archive, todo, limits, on_disk)
    if refused:
        report.errors.append((archive, refused))
        return None
    if dry_run:
        report.extracted += [(archive, entry.dest) for entry in todo]
        return [entry.dest for entry in todo]
    makedirs = _DirectoryMaker(real_root)
    temps = []
    try:
        for entry in entries:
            if entry.is_dir and not os.path.lexists(entry.dest):
                makedirs(entry.dest)
        for entry in todo:
            makedirs(entry.dest.parent)
            # astrophot's own temporary (names this host and process; a long name is shortened),
            # recorded before writing so that a failed copy is removed
            tmp = owned_temporary(entry.dest)
            temps.append((tmp, entry))
            _copy_entry(zf, entry, tmp)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        _undo(temps, [], makedirs.created)
        report.errors.append(
            (archive, f"cannot extract ({type(exc).__name__}: {exc}); left in place, nothing extracted")
        )
        return None
    return _publish(temps, makedirs.created, archive, report)


def _undo(temps, published, created_dirs):
    """Remove this archive's temporaries, published files and new directories."""
    for path in [tmp for tmp, _ in temps] + published:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    for path in reversed(created_dirs):
        try:
            os.rmdir(path)
        except OSError:
            pass


def _publish(temps, created_dirs, archive, report):
    """
    Link every temporary to its name, or, on an unexpected error, none (all or nothing).

    A name that appeared meanwhile is left alone and reported; it does not
    undo the others.
    """
    published, skipped = [], []
    try:
        for tmp, entry in temps:
            try:
                os.link(tmp, entry.dest)  # fails if the name appeared meanwhile: never overwrite
            except FileExistsError:
                skipped.append((entry.dest, f"appeared during extraction of {archive.name}; left alone"))
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                    raise
                if os.path.lexists(entry.dest):  # no hard links on this file system
                    skipped.append((entry.dest, f"appeared during extraction of {archive.name}"))
                    continue
                os.replace(tmp, entry.dest)
            published.append(entry.dest)
    except OSError as exc:
        _undo(temps, published, created_dirs)
        report.errors.append(
            (
                archive,
                f"cannot write {entry.dest} ({type(exc).__name__}: {exc}); left in place, nothing extracted",
            )
        )
        return None
    for tmp, _ in temps:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    report.skipped += skipped
    for path in published:
        log.info("extracted %s from %s", path, archive)
        report.extracted.append((archive, path))
    return published


def _unmapper(mapping, root):
    """Function giving where a post-rename path is on disk before the renames (dry runs)."""
    reverse = {(old.parent, new.name): old.name for old, new in mapping.items()}

    def on_disk(path):
        try:
            rel = path.relative_to(root)
        except ValueError:
            return path
        current = root
        for part in rel.parts:
            current = current / reverse.get((current, part), part)
        return current

    return on_disk


def prepare_download(directory, *, dry_run=False, max_ratio=MAX_RATIO, max_size=MAX_SIZE):
    """
    Prepare a directory downloaded from iTelescope.net for processing.

    Replaces the shell steps of the original workflow (fixing directory
    permissions, removing spaces from names, unzipping the night's archives):

    1. widen permissions so that every directory below ``directory`` is
       traversable (``u+rwx,go+rx``) and every file readable (``a+r``);
       nothing is ever narrowed;
    2. replace spaces (and tabs, newlines and other control characters,
       which would split the log and report lines) by ``_`` in file and
       directory names;
    3. extract every ``.zip`` archive into its own directory (names with
       spaces are extracted with ``_``), including archives found inside
       archives.

    Parameters
    ----------
    directory : str or path-like
        The download directory (for example ``T05/MyTarget/20240101``).
    dry_run : bool, optional
        Report what would be done without changing anything. A dry run
        checks each archive's table of contents but not its data, so a
        corrupt member is found only by a real run.
    max_ratio : float, optional
        Largest expansion (uncompressed over compressed size) of an entry
        over 1 MiB; an archive holding one that expands more is not
        extracted (a decompression bomb). FITS images deflate 2-10 times;
        the default is 200.
    max_size : int, optional
        Most bytes extracted by the call, nested archives included (default
        64 GiB); an archive that would pass it is not extracted.

    Returns
    -------
    PrepareReport
        What was done, what was skipped and why, and the errors.

    Raises
    ------
    PrepareError
        If ``directory`` does not exist or is not a directory.

    See Also
    --------
    parse_filename : Read the names of the extracted files.

    Notes
    -----
    Safety rules:

    - no archive entry may escape the directory: an archive with an absolute
      path, a ``..`` component, a symbolic link or special-file entry, or an
      entry that would be written through an existing symbolic link leading
      outside, is reported as unsafe (`~astrophot.exceptions.UnsafeArchiveError`
      message) and nothing is extracted from it;
    - nothing existing is overwritten: a rename or an entry whose name is
      taken is skipped and reported (an existing file with the same size and
      CRC-32 as the entry counts as already extracted);
    - a corrupt or truncated archive is reported and left in place; an
      archive's new files appear all together or not at all (each is
      written to a temporary name, then linked into place);
    - archives are never deleted or moved;
    - symbolic links already in the directory are not followed;
    - running it twice changes nothing the second time.

    This function writes to the disk by design: it is a preparation step,
    not a pipeline stage.

    Examples
    --------
    >>> import tempfile, zipfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     night = pathlib.Path(tmp, "My Night")
    ...     night.mkdir()
    ...     with zipfile.ZipFile(night / "lights.zip", "w") as zf:
    ...         zf.writestr("raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-300-001.fit", b"x")
    ...     report = prepare_download(tmp)
    ...     sorted(p.name for p in pathlib.Path(tmp, "My_Night").iterdir())
    ['lights.zip', 'raw-T20-jdoe-M31-20240101-201500-Ha-BIN1-E-300-001.fit']
    """
    root = pathlib.Path(os.path.abspath(os.fspath(directory)))
    if not root.exists():
        raise PrepareError(f"{directory}: no such directory")
    if not root.is_dir():
        raise PrepareError(f"{directory}: not a directory")
    if not max_ratio > 1 or not max_size > 0:
        raise ValueError(f"max_ratio must be > 1 and max_size > 0, not {max_ratio!r} and {max_size!r}")
    limits = _Limits(max_ratio=float(max_ratio), max_size=int(max_size))
    report = PrepareReport(directory=root, dry_run=bool(dry_run))
    real_root = os.path.realpath(root)
    dirs, files, links = _walk(root, report, dry_run)
    n_skipped = len(report.skipped)
    mapping = _rename_spaces(root, [*dirs, *files, *links], report, dry_run)
    # report every path where it is after the renames (the renamed item's old path stays as it was)
    report.renamed = [(old, _mapped(old, mapping, root)) for old, _ in report.renamed]
    report.permissions = [(_mapped(p, mapping, root), old, new) for p, old, new in report.permissions]
    report.skipped[n_skipped:] = [(_mapped(p, mapping, root), why) for p, why in report.skipped[n_skipped:]]
    on_disk = _unmapper(mapping, root) if dry_run else (lambda path: path)
    queue = [(p, 0) for p in files if p.suffix.lower() == ".zip"]
    done = set()
    while queue:
        original, depth = queue.pop(0)
        current = _mapped(original, mapping, root) if depth == 0 else original
        readable = original if dry_run and depth == 0 else current
        if current in done:
            continue
        done.add(current)
        try:
            zf = zipfile.ZipFile(readable)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            report.errors.append((current, f"not a readable zip archive ({reason}); left in place"))
            continue
        with zf:
            try:
                entries = _plan(zf, current, current.parent, real_root, report)
            except UnsafeArchiveError as exc:
                report.errors.append((current, f"unsafe archive, nothing extracted: {exc}"))
                continue
            new_files = _extract(
                zf, current, entries, report, dry_run=dry_run, real_root=real_root, on_disk=on_disk,
                limits=limits,
            )  # fmt: skip
        if new_files is None:
            continue
        report.archives.append(current)
        for path in new_files:
            if path.suffix.lower() == ".zip":
                if depth + 1 > _MAX_NESTING:
                    report.skipped.append((path, f"archive nested more than {_MAX_NESTING} deep"))
                elif not dry_run:
                    queue.append((path, depth + 1))
    report._sort()
    return report
