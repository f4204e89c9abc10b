"""The catalog file during a build: a private copy beside it, swept when its build was killed,
renamed onto the catalog when done; and the store locks a build holds (docs/catalog.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from deeproot.files import alive

log = logging.getLogger(__name__)


def building_name(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.building-{pid}")


def remove_build_files(tmp: Path) -> None:
    for p in (tmp, tmp.with_name(tmp.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    shutil.rmtree(tmp.with_name(tmp.name + ".tmp"), ignore_errors=True)



def sweep_dead_builds(path: Path) -> int:
    """Remove the files of builds into `path` whose process is gone (killed); returns how many."""
    n = 0
    prefix = f".{path.name}.building-"
    for p in path.parent.glob(prefix + "*"):
        rest = p.name[len(prefix):]
        pid_s = rest.split(".", 1)[0]
        if not pid_s.isdigit() or rest != pid_s:
            continue
        if int(pid_s) != os.getpid() and not alive(int(pid_s)):
            log.warning("removing %s, left by a build that was killed", p.name)
            remove_build_files(p)
            n += 1
    return n


@contextlib.contextmanager
def locks(folders: Sequence[Path], what: str, wait: float | None) -> Iterator[None]:
    from deeproot.lock import StoreLock

    with contextlib.ExitStack() as stack:
        for folder in dict.fromkeys(f.resolve() for f in folders):
            stack.enter_context(StoreLock(folder, what, wait=wait))
        yield


def swap(tmp: Path, path: Path) -> None:
    """Rename the finished file onto the catalog (readers of the old one keep their snapshot)."""
    # a write-ahead log beside the target belongs to the old file and must not meet the new one
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + ".wal").unlink()
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
