"""Sizing, copying and deleting folders a student controls: iterative, bounded, and never raising past a verdict.

A submission folder (and the folder its kernel writes in) may hold anything: a tree thousands of levels deep
(`shutil.rmtree` and `os.walk` recurse, and raise RecursionError), paths longer than PATH_MAX, millions of
entries, sparse files whose apparent size is far above what they hold on disk (copying one writes it out in
full), links, fifos (opening one blocks), sockets and device nodes (reading /dev/zero never ends). Everything
here works on directory file descriptors (`openat` with O_NOFOLLOW: no path is ever resolved through a link,
and no path is ever longer than one name), with an explicit stack instead of recursion:

- `tree_size` counts apparent and allocated bytes and entries, and stops at a byte, entry or depth limit;
- `tree_digest` hashes every entry's name and kind and every regular file's content (what resuming compares);
- `copy_tree` copies directories and regular files only, counting apparent sizes against a byte budget it
  never writes past, giving every copy to the sandbox's uid as it is made; links, special files, sparse
  files, hard links and anything deeper than its depth limit are skipped, each with a note for the feedback;
- `remove_tree` deletes any tree with at most `HOIST_DEPTH` directories open at once: a directory found
  deeper is first moved up to the top of the tree being deleted (a rename within one file system), so depth
  costs neither recursion nor file descriptors. It returns False instead of raising when something stays.
"""

from __future__ import annotations

import itertools
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
HOIST_DEPTH = 32  # directories open at once while deleting; deeper ones are moved up first
COPY_DEPTH = 32  # folder levels of a submission that are copied (an honest one has a handful)
COPY_ENTRIES = 20_000  # files and folders of a submission that are copied
CHUNK = 1 << 20


class TooBig(ValueError):
    """The tree holds more bytes than the budget allows."""


@dataclass
class TreeSize:
    apparent: int = 0  # bytes the regular files say they hold (st_size): what a copy writes
    allocated: int = 0  # bytes on disk (st_blocks * 512): what the tree costs where it is
    entries: int = 0
    too_deep: bool = False  # a folder deeper than max_depth was found (and not looked into)
    complete: bool = True  # False when a limit stopped the count or a folder could not be read


@dataclass
class CopyReport:
    bytes: int = 0
    entries: int = 0
    skipped: list[str] = field(default_factory=list)  # "PATH (why)", the first few
    skipped_count: int = 0

    def skip(self, rel: str, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < 10:
            self.skipped.append(f"{rel} ({why})")

    def notes(self) -> list[str]:
        if not self.skipped_count:
            return []
        more = f" and {self.skipped_count - len(self.skipped)} more" if self.skipped_count > len(self.skipped) else ""
        return [
            f"{self.skipped_count} entr{'y' if self.skipped_count == 1 else 'ies'} of the submission folder "
            f"{'was' if self.skipped_count == 1 else 'were'} not copied (only folders and regular files are): "
            + "; ".join(self.skipped)
            + more
        ]


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def tree_size(
    path: str | os.PathLike, stop_at: int | None = None, max_depth: int = 256, max_entries: int = 1_000_000
) -> TreeSize:
    """Sizes of the tree at path (a link or a file at path: its own size). Never raises."""
    size = TreeSize()
    try:
        info = os.lstat(path)
    except OSError:
        size.complete = False
        return size
    if not stat.S_ISDIR(info.st_mode):
        size.entries, size.allocated = 1, info.st_blocks * 512
        size.apparent = info.st_size if stat.S_ISREG(info.st_mode) else 0
        return size
    stack: list[tuple[int, object]] = []
    top = None
    try:
        top = os.open(path, _DIR_FLAGS)
        stack.append((top, os.scandir(top)))
    except OSError:
        _close(top)
        size.complete = False
        return size
    try:
        while stack:
            fd, entries = stack[-1]
            try:
                entry = next(entries, None)
            except OSError:
                entry, size.complete = None, False
            if entry is None:
                entries.close()
                _close(stack.pop()[0])
                continue
            size.entries += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                size.complete = False
                continue
            size.allocated += info.st_blocks * 512
            if stat.S_ISREG(info.st_mode):
                size.apparent += info.st_size
            if size.entries >= max_entries or (stop_at is not None and max(size.apparent, size.allocated) > stop_at):
                size.complete = False
                return size
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= max_depth:
                    size.too_deep, size.complete = True, False
                    continue
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    size.complete = False
                    continue
                try:
                    stack.append((sub, os.scandir(sub)))
                except OSError:
                    _close(sub)
                    size.complete = False
    finally:
        for fd, entries in stack:
            entries.close()
            _close(fd)
    return size


DIGEST_BYTES = 512 * 1024 * 1024  # file content hashed per tree; past it, a file goes in by size and change time


def tree_digest(
    path: str | os.PathLike,
    hasher,
    max_depth: int = COPY_DEPTH + 1,
    max_entries: int = COPY_ENTRIES + 1,
    max_bytes: int = DIGEST_BYTES,
) -> None:
    """Feed `hasher` (hashlib-like) every entry of the tree at path, in name order: each one's path relative to it
    and kind, a regular file's content (the first `max_bytes` of them all; after that a file's size and change time
    only, so a hostile 10 GB file costs no more than that), a link's target (never followed), nothing more of a
    special file (a fifo is never opened). Stops at the depth and entry limits (just past what `copy_tree` copies)
    and says so in the hash. Never raises: an entry it cannot read goes in as unreadable."""

    def feed(*parts: bytes) -> None:
        for part in parts:
            hasher.update(len(part).to_bytes(8, "little") + part)  # length-prefixed: no two trees read alike

    entries, budget = 0, [max_bytes]
    stack: list[tuple[int, bytes, list[str]]] = []

    def enter(fd: int, rel: bytes) -> None:
        try:
            names = sorted(os.listdir(fd))
        except OSError:
            feed(rel, b"unreadable folder")
            names = []
        stack.append((fd, rel, names))

    try:
        top = os.open(path, _DIR_FLAGS)
    except OSError:
        feed(b"", b"not a folder")
        return
    enter(top, b"")
    try:
        while stack:
            fd, rel, names = stack[-1]
            if not names:
                _close(stack.pop()[0])
                continue
            name = names.pop(0)
            here = rel + b"/" + os.fsencode(name)
            entries += 1
            if entries > max_entries:
                feed(b"", b"more entries than counted")
                return
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                feed(here, b"unreadable")
                continue
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= max_depth:
                    feed(here, b"folder too deep")
                    continue
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    feed(here, b"unreadable folder")
                    continue
                feed(here, b"folder")
                enter(sub, here)
            elif stat.S_ISREG(info.st_mode) and info.st_size <= budget[0]:
                feed(here, b"file")
                budget[0] -= info.st_size
                _feed_file(fd, name, hasher, info.st_size)
            elif stat.S_ISREG(info.st_mode):
                feed(here, b"file not read", str((info.st_size, info.st_mtime_ns, info.st_ctime_ns)).encode())
            elif stat.S_ISLNK(info.st_mode):
                try:
                    target = os.fsencode(os.readlink(name, dir_fd=fd))
                except OSError:
                    target = b"?"
                feed(here, b"link", target)
            else:
                feed(here, _kind(info.st_mode).encode())
    finally:
        for fd, _, _ in stack:
            _close(fd)


def _feed_file(dir_fd: int, name: str, hasher, limit: int) -> None:
    fd = None
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since it was looked at
            hasher.update(b"\0changed")
            return
        size = 0
        while size <= limit and (chunk := os.read(fd, CHUNK)):  # it may have grown since: no more than counted
            hasher.update(chunk)
            size += len(chunk)
        hasher.update(b"\0" + size.to_bytes(8, "little"))
    except OSError:
        hasher.update(b"\0unreadable")
    finally:
        _close(fd)


def _copy_file(src_dir: int, name: str, info: os.stat_result, dst_dir: int, budget: int, owner) -> int:
    """Copy one regular file (at most budget bytes, TooBig past it); returns the bytes written. OSError, or
    ValueError with the reason it was skipped."""
    src = os.open(name, _FILE_FLAGS, dir_fd=src_dir)
    dst = None
    try:
        now = os.fstat(src)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            raise ValueError("it changed while being copied")
        if now.st_nlink > 1:
            raise ValueError("a hard link")
        if now.st_size:
            try:
                hole = os.lseek(src, 0, os.SEEK_HOLE)
            except (OSError, AttributeError):
                hole = now.st_size  # no hole detection on this file system: its apparent size still counts
            if hole < now.st_size:
                raise ValueError(f"a sparse file of {now.st_size / 1e9:.2f} GB")
            os.lseek(src, 0, os.SEEK_SET)
        if now.st_size > budget:
            raise TooBig(name)
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir)
        written = 0
        while True:
            chunk = os.read(src, min(CHUNK, budget - written + 1))
            if not chunk:
                break
            if written + len(chunk) > budget:
                raise TooBig(name)
            while chunk:
                n = os.write(dst, chunk)
                written += n
                chunk = chunk[n:]
        if owner is not None:
            os.fchown(dst, *owner)
        os.fchmod(dst, 0o755 if now.st_mode & 0o100 else 0o644)
        return written
    finally:
        _close(src)
        _close(dst)


def copy_tree(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    max_bytes: int,
    owner: tuple[int, int] | None = None,
    max_depth: int = COPY_DEPTH,
    max_entries: int = COPY_ENTRIES,
) -> CopyReport:
    """Copy the folders and regular files of src into the new folder dst (see the module docstring).

    Raises TooBig when the regular files together are over max_bytes (nothing past the budget is written; dst is
    left for the caller to delete), OSError when src is not a folder or dst cannot be made. Everything else that
    goes wrong with one entry skips that entry, with a note."""
    report = CopyReport()
    src_top = os.open(src, _DIR_FLAGS)
    dst_top = None
    stack: list[tuple[int, object, int, str]] = []  # (source dir fd, its entries, copy dir fd, relative path)
    try:
        os.mkdir(dst, 0o700)
        dst_top = os.open(dst, _DIR_FLAGS)
        if owner is not None:
            os.fchown(dst_top, *owner)
        stack.append((src_top, os.scandir(src_top), dst_top, ""))
        src_top = dst_top = None  # closed with the stack from here on
        while stack:
            src_fd, entries, dst_fd, rel_dir = stack[-1]
            try:
                entry = next(entries, None)
            except OSError:
                entry = None
            if entry is None:
                entries.close()
                _close(src_fd)
                _close(dst_fd)
                stack.pop()
                continue
            rel = f"{rel_dir}{entry.name}"
            if report.entries >= max_entries:
                report.skip(rel, f"more than {max_entries} files and folders")
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                report.skip(rel, exc.strerror or "unreadable")
                continue
            report.entries += 1
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= max_depth:
                    report.skip(rel + "/", f"deeper than {max_depth} folders")
                    continue
                sub_src = sub_dst = None
                try:
                    sub_src = os.open(entry.name, _DIR_FLAGS, dir_fd=src_fd)
                    os.mkdir(entry.name, 0o700, dir_fd=dst_fd)
                    sub_dst = os.open(entry.name, _DIR_FLAGS, dir_fd=dst_fd)
                    if owner is not None:
                        os.fchown(sub_dst, *owner)
                    os.fchmod(sub_dst, 0o755)
                    stack.append((sub_src, os.scandir(sub_src), sub_dst, rel + "/"))
                except OSError as exc:
                    _close(sub_src)
                    _close(sub_dst)
                    report.skip(rel + "/", exc.strerror or "unreadable")
            elif stat.S_ISREG(info.st_mode):
                try:
                    report.bytes += _copy_file(src_fd, entry.name, info, dst_fd, max_bytes - report.bytes, owner)
                except TooBig:
                    raise TooBig(f"the submission folder holds more than {max_bytes / 1e9:g} GB") from None
                except ValueError as exc:
                    report.skip(rel, str(exc))
                except OSError as exc:
                    report.skip(rel, exc.strerror or "unreadable")
            else:
                report.skip(rel, _kind(info.st_mode))
    finally:
        for src_fd, entries, dst_fd, _ in stack:
            entries.close()
            _close(src_fd)
            _close(dst_fd)
        _close(src_top)
        _close(dst_top)
    return report


def _clear(top: int, names: itertools.count) -> tuple[bool, bool]:
    """One pass over the tree below the open folder top: (something was removed, something is left)."""
    removed = left = False
    stack: list[tuple[int, object, str | None]] = []  # (dir fd, its entries, its name in the folder above)
    try:
        stack.append((top, os.scandir(top), None))
    except OSError:
        return False, True
    try:
        while stack:
            fd, entries, _ = stack[-1]
            try:
                entry = next(entries, None)
            except OSError:
                entry, left = None, True
            if entry is None:
                entries.close()
                _, _, name = stack.pop()
                if name is not None:  # the folder is empty now (or as empty as it gets): remove it
                    _close(fd)
                    try:
                        os.rmdir(name, dir_fd=stack[-1][0])
                        removed = True
                    except FileNotFoundError:
                        pass
                    except OSError:
                        left = True
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                try:
                    os.unlink(entry.name, dir_fd=fd)
                    removed = True
                except FileNotFoundError:
                    pass
                except OSError:
                    left = True
                continue
            if len(stack) > HOIST_DEPTH:  # too deep to open: move it up to the top, a later pass deletes it
                left = True
                for _ in range(5):
                    try:
                        os.rename(
                            entry.name, f".course-lib-rm-{os.getpid()}-{next(names)}", src_dir_fd=fd, dst_dir_fd=top
                        )
                        removed = True  # progress: the chain got shorter
                        break
                    except OSError:
                        continue
                continue
            try:
                sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                try:  # a folder the grader's user may not enter (chmod 000 by a sandbox running as that user)
                    os.chmod(entry.name, 0o700, dir_fd=fd)
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except (OSError, NotImplementedError):
                    left = True
                    continue
            try:
                stack.append((sub, os.scandir(sub), entry.name))
            except OSError:
                _close(sub)
                left = True
    finally:
        for fd, entries, name in stack:
            entries.close()
            if name is not None:
                _close(fd)
    return removed, left


def remove_tree(path: str | os.PathLike, max_passes: int = 1_000_000) -> bool:
    """Delete path and everything below it without following links; True when it is gone. Never raises."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    try:
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return True
        top = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    names = itertools.count()
    try:
        for _ in range(max_passes):
            removed, left = _clear(top, names)
            if not left or not removed:
                break
    except Exception:  # noqa: BLE001 - whatever a tree does, deleting it never takes a verdict down with it
        return False
    finally:
        _close(top)
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
