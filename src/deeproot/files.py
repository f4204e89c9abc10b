"""Files deeproot writes: output only to regular files, atomically; scratch space in one place.

- `atomic_output(path)` writes beside the target and renames into place, so a reader never sees a
  half-written file and a failed run leaves the old file; it refuses anything that is not a
  regular file (a device, a FIFO, a folder), so `--out /dev/full` is an error, not a replacement.
- `scratch_dir(kind)` makes a private folder under one root (`$TMPDIR/deeproot-<uid>/`) named
  after the owning pid; it is removed on exit, and folders of dead pids are swept at the next
  start, so killed runs do not leave litter behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deeproot.errors import InputError

_MAX_PATH = 4096


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Return `path` if it may be written as a regular file, else raise InputError."""
    p = Path(path)
    if len(os.fsencode(p)) >= _MAX_PATH or any(len(os.fsencode(part)) > 255 for part in p.parts):
        raise InputError(f"output path too long: {str(p)[:80]}…; use a shorter path")
    try:
        st = p.stat()
    except FileNotFoundError:
        if not p.parent.is_dir():
            raise InputError(
                f"output folder {p.parent} does not exist; create it first"
            ) from None
        return p
    except OSError as exc:
        raise InputError(f"cannot write {p}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InputError(f"output {p} is {kind}; give a regular file path (or - for stdout)")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else remove it."""
    target = check_output_path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def scratch_root() -> Path:
    """The one folder all deeproot scratch space lives in: `$TMPDIR/deeproot-<uid>`."""
    root = Path(tempfile.gettempdir()) / f"deeproot-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def sweep_scratch() -> int:
    """Remove scratch folders whose owning process is gone; return how many were removed."""
    removed = 0
    root = scratch_root()
    for entry in root.iterdir():
        try:
            pid = int(entry.name.split("-")[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A private scratch folder `<root>/<kind>-<pid>-<random>`, removed on exit."""
    sweep_scratch()
    path = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=scratch_root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
