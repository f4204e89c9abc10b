"""Installing model bundles: `deeproot models install FILE_OR_URL` and `deeproot models list`.

A bundle (docs/models.md §5: a folder with `bundle.json` and its ONNX files) is installed from a
folder, a `.zip` or `.tar.gz` of one (recognised by content), or an http(s) URL of such an archive.
What is promised:

- a URL needs `--sha256` (the publisher's checksum); a file may be given one; the checksum is
  computed while the bytes are read and a mismatch installs nothing;
- archives are unpacked safely: no absolute paths, no `..`, no links or devices, at most
  `MAX_MEMBERS` entries and `MAX_UNPACKED` bytes (a zip bomb is refused, not unpacked);
- the bundle must load (`load_bundle`, all six symptoms) and every model must open in onnxruntime
  with the names and shapes `bundle.json` declares (`verify_onnx`) before it is installed;
- installation is atomic: the bundle is copied beside its destination under the models folder
  and renamed into place (a previous bundle of the same name is swapped out and removed); a
  failure or an interruption leaves the previous bundle as it was; the models folder is locked
  (`deeproot.lock.StoreLock`) so two installs never interleave;
- `.install.json` in the installed folder records the source, the checksum and the time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError, StoppedBySiteError

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 4 * 1024**3  # bytes of a downloaded archive
MAX_UNPACKED = 8 * 1024**3  # bytes of all files unpacked from an archive
MAX_MEMBERS = 10_000
DOWNLOAD_TIMEOUT = 60.0  # seconds without progress before a download is given up
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
INSTALL_RECORD = ".install.json"


@dataclass(frozen=True)
class InstalledBundle:
    """One bundle under `<data dir>/models/` (or the shipped demo)."""

    name: str
    path: Path
    demo: bool
    created: str
    classes: tuple[str, ...]
    n_models: int
    size_bytes: int
    source: str | None
    sha256: str | None
    installed: str | None
    used: bool  # the one `deeproot diagnose` uses without --models

    def to_json(self) -> dict[str, Any]:
        """JSON form (`deeproot models list --json`)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "demo": self.demo,
            "created": self.created,
            "classes": list(self.classes),
            "n_models": self.n_models,
            "size_bytes": self.size_bytes,
            "source": self.source,
            "sha256": self.sha256,
            "installed": self.installed,
            "used": self.used,
        }


def models_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """`<data dir>/models` ($DEEPROOT_DATA_DIR, else ./deeproot-data)."""
    return Path(data_dir or os.environ.get("DEEPROOT_DATA_DIR") or "deeproot-data") / "models"


def _check_sha(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    s = sha256.strip().lower()
    if s.startswith("sha256:"):
        s = s[7:]
    if not _HEX.fullmatch(s):
        raise InputError(f"--sha256 must be 64 hexadecimal digits, not {sha256[:80]!r}")
    return s


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, say: Callable[[str], None]) -> str:
    """Stream `url` into `dest` (size-capped), returning the sha256 of what was read."""
    req = urllib.request.Request(url, headers={"User-Agent": "deeproot-models-install"})
    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT) as resp, dest.open("wb") as out:  # noqa: S310
            total = resp.headers.get("Content-Length")
            if total and total.isdigit() and int(total) > MAX_DOWNLOAD:
                raise InputError(
                    f"{url}: {int(total) / 1024**2:.0f} MB is over the"
                    f" {MAX_DOWNLOAD / 1024**3:.0f} GB download limit"
                )
            last = time.monotonic()
            while block := resp.read(1 << 20):
                size += len(block)
                if size > MAX_DOWNLOAD:
                    raise InputError(
                        f"{url}: more than the {MAX_DOWNLOAD / 1024**3:.0f} GB download limit"
                    )
                h.update(block)
                out.write(block)
                if time.monotonic() - last > 2:
                    say(f"downloaded {size / 1024**2:.0f} MB")
                    last = time.monotonic()
    except urllib.error.HTTPError as exc:
        raise StoppedBySiteError(
            f"{url}: the server answered HTTP {exc.code}; retry later"
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        reason = getattr(exc, "reason", None) or exc
        raise StoppedBySiteError(f"{url}: download failed ({reason}); retry later") from exc
    say(f"downloaded {size / 1024**2:.1f} MB")
    return h.hexdigest()


def _safe_member(name: str) -> bool:
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts and not name.startswith(("/", "\\"))


def _unpack(archive: Path, into: Path, label: str) -> None:
    """Unpack a zip or gzip/plain tar archive safely into `into`."""
    with archive.open("rb") as fh:
        head = fh.read(512)
    into.mkdir()
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                _limits(label, len(infos), sum(i.file_size for i in infos))
                for i in infos:
                    mode = (i.external_attr >> 16) & 0o170000
                    if not _safe_member(i.filename) or mode in (stat.S_IFLNK,):
                        raise InputError(f"{label}: unsafe entry {i.filename!r} in the archive")
                zf.extractall(into)
        except zipfile.BadZipFile as exc:
            raise InputError(f"{label}: not a valid zip archive ({exc})") from exc
        return
    if head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar":
        try:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                _limits(label, len(members), sum(m.size for m in members if m.isfile()))
                for m in members:
                    if not _safe_member(m.name) or not (m.isfile() or m.isdir()):
                        raise InputError(f"{label}: unsafe entry {m.name!r} in the archive")
                tf.extractall(into, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{label}: not a valid tar archive ({exc})") from exc
        return
    raise InputError(
        f"{label}: not a bundle folder, a .zip or a .tar.gz archive; see docs/models.md"
    )


def _limits(label: str, members: int, unpacked: int) -> None:
    if members > MAX_MEMBERS:
        raise InputError(f"{label}: {members} entries is over the {MAX_MEMBERS} limit")
    if unpacked > MAX_UNPACKED:
        raise InputError(
            f"{label}: unpacks to {unpacked / 1024**3:.1f} GB, over the"
            f" {MAX_UNPACKED / 1024**3:.0f} GB limit"
        )


def _find_root(folder: Path, label: str) -> Path:
    """The folder holding bundle.json: the top, or its single subfolder."""
    if (folder / "bundle.json").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    if len(subs) == 1 and (subs[0] / "bundle.json").is_file():
        return subs[0]
    raise InputError(f"{label}: no bundle.json at the top or in a single folder inside it")


def install_bundle(
    source: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    name: str = "default",
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> InstalledBundle:
    """Verify and install a bundle as `<data dir>/models/<name>`.

    Args:
        source: a bundle folder, a .zip/.tar.gz of one, or an http(s) URL of such an archive.
        sha256: the expected SHA-256 of the file or download (required for a URL).
        name: the installed name; `default` is the one `deeproot diagnose` uses.
        data_dir: the data folder (default $DEEPROOT_DATA_DIR, else ./deeproot-data).
        progress: called with one line per step.

    Raises:
        InputError: a bad name, checksum, archive or source; DataError: the bundle does not
            load or verify (nothing installed); StoppedBySiteError: the download failed.
    """
    from deeproot.diagnose.bundle import load_bundle, verify_onnx
    from deeproot.files import scratch_dir
    from deeproot.lock import StoreLock

    say = progress or (lambda msg: None)
    if not _NAME.fullmatch(name):
        raise InputError(
            f"bundle name {name!r}: use letters, digits, '.', '_' or '-' (up to 64), e.g. default"
        )
    want = _check_sha(sha256)
    src = os.fspath(source)
    is_url = src.startswith(("http://", "https://"))
    if is_url and want is None:
        raise InputError(
            f"{src}: a download needs --sha256 HEX (the checksum its publisher gives) so that"
            " a changed or corrupted file is never installed"
        )
    if not is_url and "://" in src:
        raise InputError(f"{src}: only http(s) URLs or local files and folders can be installed")
    root = models_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with scratch_dir("models-install") as tmp:
        if is_url:
            label = urllib.parse.urlsplit(src)._replace(query="", fragment="").geturl()
            archive = tmp / "download"
            say(f"downloading {label}")
            got = _download(src, archive, say)
            folder = tmp / "unpacked"
        else:
            path = Path(src)
            label = str(path)
            if not path.exists():
                raise InputError(f"{label}: no such file or folder")
            if path.is_dir():
                if want is not None:
                    raise InputError(
                        f"{label}: --sha256 checks a file or a download; a folder is verified"
                        " by loading it"
                    )
                archive, got, folder = None, None, path
            else:
                archive, folder = path, tmp / "unpacked"
                got = _hash_file(path)
        if want is not None and got != want:
            raise InputError(
                f"{label}: SHA-256 is {got}, expected {want}; the file is not the one published"
                " (nothing installed)"
            )
        if archive is not None:
            say("unpacking")
            _unpack(archive, folder, label)
        bundle_dir = _find_root(folder, label)
        say("checking the bundle loads and its models open in onnxruntime")
        bundle = load_bundle(bundle_dir)
        verify_onnx(bundle)
        with StoreLock(root, "models install"):
            staging = root / f".{name}.installing-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                shutil.copytree(bundle_dir, staging, symlinks=False)
                record = {
                    "source": label,
                    "sha256": got,
                    "installed": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                (staging / INSTALL_RECORD).write_text(json.dumps(record, indent=2) + "\n")
                load_bundle(staging)  # the copy is whole
                dest = root / name
                old = root / f".{name}.replaced-{os.getpid()}"
                if dest.exists():
                    os.replace(dest, old)
                os.replace(staging, dest)
                shutil.rmtree(old, ignore_errors=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    say(f"installed as {dest}")
    return _info(name, dest, used=name == "default")


def _info(name: str, path: Path, *, used: bool) -> InstalledBundle:
    from deeproot.diagnose.bundle import load_bundle

    b = load_bundle(path)
    rec: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        rec = json.loads((path / INSTALL_RECORD).read_text(encoding="utf-8"))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return InstalledBundle(
        name=name,
        path=path,
        demo=b.demo,
        created=b.created,
        classes=b.classes,
        n_models=len(b.models),
        size_bytes=size,
        source=rec.get("source"),
        sha256=rec.get("sha256"),
        installed=rec.get("installed"),
        used=used,
    )


def list_bundles(data_dir: str | os.PathLike[str] | None = None) -> list[InstalledBundle]:
    """Installed bundles (name order), then the shipped demo; `used` marks diagnose's choice."""
    from deeproot.diagnose.bundle import DEMO_BUNDLE, installed_bundle_path

    used = installed_bundle_path(data_dir).resolve()
    root = models_root(data_dir)
    out = []
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.name.startswith(".") or not (p / "bundle.json").is_file():
                continue
            try:
                out.append(_info(p.name, p, used=p.resolve() == used))
            except DataError as exc:
                log.warning("%s: %s", p, exc)
    if (DEMO_BUNDLE / "bundle.json").is_file():
        out.append(_info("(demo, shipped)", DEMO_BUNDLE, used=DEMO_BUNDLE.resolve() == used))
    return out
