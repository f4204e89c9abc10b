"""Where training images come from, and the order they are read in (numpy, PIL, stdlib only).

Three kinds of image location, all behind `read_bytes`:
- a file path (an extracted release);
- a zip member, written `ARCHIVE.zip::member/path.jpg` (the release as delivered, read in place);
- a prepared dataset (`deeproot dataset prepare`): images decoded once, resized to the training
  size, re-encoded as JPEG and packed into shards, either WebDataset-style tar files (stdlib
  `tarfile`; `<key>.jpg` + `<key>.json` per sample) or Parquet files (one row per image).

Epoch plans decide which sample every rank and every DataLoader worker reads, so that any number
of processes together see each sample exactly once per epoch (`epoch_order`, `rank_block`,
`worker_batches`). Shards are visited as wholes: a worker reads a shard once and serves all of its
samples from memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import shutil
import tarfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError
from deeproot.taxonomy import SYMPTOM_KEYS

log = logging.getLogger(__name__)

ZIP_SEP = "::"
PREPARED_FORMAT = "deeproot-prepared/1"
PREPARED_MANIFEST = "prepared.json"
SHARD_FORMATS = ("tar", "parquet")

# -- zip members -------------------------------------------------------------------------------

_ZIPS: OrderedDict[tuple[int, str], zipfile.ZipFile] = OrderedDict()


def zip_path(archive: str | Path, member: str) -> str:
    """The index form of a zip member: `ARCHIVE::member`."""
    return f"{archive}{ZIP_SEP}{member}"


def split_zip_path(path: str) -> tuple[str, str] | None:
    """(archive, member) for a zip member path, else None."""
    if ZIP_SEP not in path:
        return None
    archive, member = path.split(ZIP_SEP, 1)
    return archive, member


def open_zip(archive: str | Path) -> zipfile.ZipFile:
    """A per-process cached open ZipFile (DataLoader workers each open their own)."""
    key = (os.getpid(), str(archive))
    zf = _ZIPS.get(key)
    if zf is None:
        try:
            zf = zipfile.ZipFile(archive)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"cannot open archive {archive} ({exc})") from exc
        _ZIPS[key] = zf
        while len(_ZIPS) > 64:
            _ZIPS.popitem(last=False)[1].close()
    else:
        _ZIPS.move_to_end(key)
    return zf


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as written: zips made on Korean Windows store CP949 names without the
    UTF-8 flag, which Python decodes as CP437; undo that."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for enc in ("utf-8", "cp949"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return name


def zip_members(archive: str | Path) -> dict[str, zipfile.ZipInfo]:
    """Display name -> ZipInfo of every file member (folders left out)."""
    zf = open_zip(archive)
    return {member_name(i): i for i in zf.infolist() if not i.is_dir()}


def read_bytes(path: str) -> bytes:
    """The bytes of a file path or an `ARCHIVE::member` path."""
    z = split_zip_path(path)
    if z is None:
        with open(path, "rb") as f:
            return f.read()
    archive, member = z
    zf = open_zip(archive)
    info = _member_info(archive, member)
    try:
        return zf.read(info)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read {member} from {archive} ({exc})") from exc


_MEMBER_INFO: dict[tuple[int, str], dict[str, zipfile.ZipInfo]] = {}


def _member_info(archive: str, member: str) -> zipfile.ZipInfo:
    key = (os.getpid(), archive)
    table = _MEMBER_INFO.get(key)
    if table is None:
        table = _MEMBER_INFO[key] = zip_members(archive)
    info = table.get(member)
    if info is None:
        raise DataError(f"{archive} has no member {member}; rebuild the index")
    return info


def path_exists(path: str) -> bool:
    """Whether a file path or an `ARCHIVE::member` path exists."""
    z = split_zip_path(path)
    if z is None:
        return Path(path).is_file()
    try:
        _member_info(*z)
    except DataError:
        return False
    return True


# -- prepared shards -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset folder (see `prepare_dataset`).

    Attributes:
        root: the folder.
        size: (height, width) the images were resized to.
        resize: resize policy ("letterbox": aspect kept, no padding stored; "stretch").
        shard_format: "tar" or "parquet".
        shards: shard file names, in order.
        locations: image_file_name -> (shard number, position in the shard).
        meta: the whole manifest.
    """

    root: Path
    size: tuple[int, int]
    resize: str
    shard_format: str
    shards: tuple[str, ...]
    locations: dict[str, tuple[int, int]]
    meta: dict[str, Any]


def is_prepared(path: str | Path) -> bool:
    return (Path(path) / PREPARED_MANIFEST).is_file()


def load_prepared(path: str | Path) -> Prepared:
    """Read a prepared folder's manifest; DataError naming the problem when it is not one."""
    root = Path(path).resolve()
    try:
        meta = json.loads((root / PREPARED_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{root} is not a prepared dataset ({exc})") from exc
    if meta.get("format") != PREPARED_FORMAT or meta.get("shard_format") not in SHARD_FORMATS:
        raise DataError(f"{root} is not a {PREPARED_FORMAT} dataset")
    locations: dict[str, tuple[int, int]] = {}
    for s, shard in enumerate(meta["shards"]):
        if not (root / shard["file"]).is_file():
            raise DataError(f"prepared dataset {root} lacks shard {shard['file']}; prepare again")
        for pos, name in enumerate(shard["names"]):
            locations[name] = (s, pos)
    return Prepared(
        root=root,
        size=(int(meta["size"][0]), int(meta["size"][1])),
        resize=str(meta["resize"]),
        shard_format=str(meta["shard_format"]),
        shards=tuple(s["file"] for s in meta["shards"]),
        locations=locations,
        meta=meta,
    )


def read_shard(path: str | Path, shard_format: str) -> list[bytes]:
    """Every image of a shard, as JPEG bytes in shard order (one sequential read)."""
    p = Path(path)
    try:
        if shard_format == "tar":
            out: list[bytes] = []
            with tarfile.open(p, "r:") as tf:
                for m in tf:
                    if m.isfile() and m.name.endswith(".jpg"):
                        f = tf.extractfile(m)
                        assert f is not None
                        out.append(f.read())
            return out
        import pyarrow.parquet as pq

        return [b for b in pq.read_table(p, columns=["jpeg"]).column("jpeg").to_pylist()]
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"cannot read shard {p} ({exc}); prepare the dataset again") from exc


def resize_for_storage(image: Any, size: tuple[int, int], resize: str) -> Any:
    """RGB image at training size: letterbox keeps the aspect (long side fits, no padding stored:
    `preprocess.prepare` pads, and resizes a stored image by exactly 1x); stretch fills HxW."""
    from PIL import Image

    h, w = size
    img = image.convert("RGB")
    if resize == "stretch":
        return img.resize((w, h), Image.Resampling.BILINEAR)
    iw, ih = img.size
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    return img.resize((nw, nh), Image.Resampling.BILINEAR)


def _encode_one(args: tuple[str, tuple[int, int], str, int]) -> bytes | str:
    """JPEG bytes of one resized image, or an error line (runs in a worker process)."""
    from PIL import Image

    path, size, resize, quality = args
    try:
        with Image.open(io.BytesIO(read_bytes(path))) as im:
            small = resize_for_storage(im, size, resize)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=quality, subsampling=0)  # 4:4:4: keep the red
        return buf.getvalue()
    except (OSError, DataError) as exc:
        return f"{path}: {exc}"


def _key(name: str) -> str:
    """WebDataset sample key: the file stem (no dots, which WebDataset reads as extensions)."""
    return name.rsplit(".", 1)[0].replace(".", "_")


class _ShardWriter:
    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder, self.fmt = folder, fmt
        self.rows: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], jpeg: bytes) -> None:
        self.rows.append({**row, "_jpeg": jpeg})

    def flush(self) -> None:
        if not self.rows:
            return
        n = len(self.shards)
        file = f"shard-{n:05d}.{self.fmt}"
        path = self.folder / file
        if self.fmt == "tar":
            with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
                for r in self.rows:
                    key = _key(r["image_file_name"])
                    label = {k: int(r[k]) for k in SYMPTOM_KEYS}
                    label["image_file_name"] = r["image_file_name"]
                    for ext, data in (
                        ("jpg", r["_jpeg"]),
                        ("json", json.dumps(label, ensure_ascii=False).encode()),
                    ):
                        info = tarfile.TarInfo(f"{key}.{ext}")
                        info.size = len(data)
                        info.mtime = 0
                        tf.addfile(info, io.BytesIO(data))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table(
                {
                    "key": [_key(r["image_file_name"]) for r in self.rows],
                    "image_file_name": [r["image_file_name"] for r in self.rows],
                    "jpeg": pa.array([r["_jpeg"] for r in self.rows], pa.binary()),
                    **{k: pa.array([r[k] for r in self.rows], pa.int8()) for k in SYMPTOM_KEYS},
                }
            )
            pq.write_table(table, path, row_group_size=256, compression="none")
        self.shards.append(
            {
                "file": file,
                "n": len(self.rows),
                "bytes": path.stat().st_size,
                "names": [r["image_file_name"] for r in self.rows],
            }
        )
        self.rows = []


@dataclass(frozen=True)
class PrepareResult:
    root: Path
    n_images: int
    n_shards: int
    n_failed: int
    bytes: int
    seconds: float


def prepare_dataset(
    index: str | Path,
    out: str | Path,
    *,
    size: tuple[int, int],
    resize: str = "letterbox",
    shard_format: str = "tar",
    shard_size: int = 1000,
    quality: int = 95,
    workers: int = 0,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PrepareResult:
    """Decode, resize and re-encode every image of an index once, into shards in `out`.

    Samples are written in a seeded random order, so every shard is a mix of sites and visits
    (a worker reading one shard at a time still gets varied batches). The folder also holds the
    index rows (`index.parquet`, so `deeproot train --index OUT` splits by visit as before) and
    `prepared.json` (size, resize policy, shard list with the image names in each).
    Images that cannot be read are left out and counted. Written beside `out` and renamed into
    place at the end, so a failure leaves no half-prepared folder.
    """
    import time
    from concurrent.futures import ProcessPoolExecutor

    from deeproot.training.dataset import read_index, write_index_rows

    if shard_format not in SHARD_FORMATS:
        raise InputError(f"--format must be tar or parquet, got {shard_format!r}")
    if resize not in ("letterbox", "stretch"):
        raise InputError(f"--resize must be letterbox or stretch, got {resize!r}")
    if shard_size < 1 or not 50 <= quality <= 100:
        raise InputError("--shard-size must be >= 1 and --quality in 50..100")
    rows, report = read_index(index)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise InputError(f"{out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    t0 = time.perf_counter()
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    writer = _ShardWriter(tmp, shard_format)
    kept: list[dict[str, Any]] = []
    failed: list[str] = []
    jobs = [(rows[i]["path"], size, resize, quality) for i in order]
    n_workers = workers if workers > 0 else max(1, min(16, os.cpu_count() or 1))
    try:
        if n_workers == 1:
            results: Any = map(_encode_one, jobs)
            pool = None
        else:
            pool = ProcessPoolExecutor(n_workers)
            results = pool.map(_encode_one, jobs, chunksize=16)
        try:
            for done, (i, res) in enumerate(zip(order, results, strict=True), 1):
                if isinstance(res, str):
                    failed.append(res)
                else:
                    writer.add(rows[i], res)
                    kept.append(rows[i])
                    if len(writer.rows) >= shard_size:
                        writer.flush()
                if progress and (done % 200 == 0 or done == len(jobs)):
                    progress(done, len(jobs))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        writer.flush()
        if not kept:
            raise DataError(f"no image of {index} could be read (e.g. {failed[:1]})")
        for f in failed[:5]:
            log.warning("left out: %s", f)
        write_index_rows(kept, report, tmp / "index.parquet")
        manifest = {
            "format": PREPARED_FORMAT,
            "size": list(size),
            "resize": resize,
            "shard_format": shard_format,
            "quality": quality,
            "seed": seed,
            "index": str(Path(index).resolve()),
            "index_sha256": report.get("sha256", ""),
            "n_images": len(kept),
            "n_failed": len(failed),
            "failed": failed[:100],
            "shards": writer.shards,
        }
        (tmp / PREPARED_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(s["bytes"] for s in writer.shards)
    return PrepareResult(
        out, len(kept), len(writer.shards), len(failed), total, time.perf_counter() - t0
    )


# -- where a sample's bytes come from ------------------------------------------------------------


class RawSource:
    """Images read from their original files (or zip members), one by one."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.paths = [r["path"] for r in rows]
        self.groups = None  # no shards: plans shuffle samples freely

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return self.paths[i]

    def read(self, i: int) -> bytes:
        try:
            return read_bytes(self.paths[i])
        except OSError as exc:
            raise DataError(
                f"cannot read image {self.paths[i]} ({exc}); rebuild the index"
            ) from exc


class ShardSource:
    """Images of a prepared dataset; a worker keeps the last two shards it read in memory."""

    def __init__(self, rows: Sequence[dict[str, Any]], prepared: Prepared) -> None:
        self.prepared = prepared
        try:
            loc = [prepared.locations[r["image_file_name"]] for r in rows]
        except KeyError as exc:
            raise DataError(
                f"image {exc} is not in the prepared dataset {prepared.root}; prepare again"
            ) from exc
        self.groups = [s for s, _ in loc]
        self.pos = [p for _, p in loc]
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self.shard_reads = 0

    def __len__(self) -> int:
        return len(self.pos)

    def name(self, i: int) -> str:
        return f"{self.prepared.shards[self.groups[i]]}#{self.pos[i]}"

    def read(self, i: int) -> bytes:
        s = self.groups[i]
        data = self._cache.get(s)
        if data is None:
            p = self.prepared
            data = read_shard(p.root / p.shards[s], p.shard_format)
            self.shard_reads += 1
            self._cache[s] = data
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(s)
        return data[self.pos[i]]


# -- epoch plans ---------------------------------------------------------------------------------


def epoch_order(n: int, groups: Sequence[int] | None, seed: int, epoch: int, shuffle: bool) -> Any:
    """The global sample order of one epoch (numpy int64 array).

    Without shuffling: 0..n-1 grouped by shard. With shuffling: a seeded permutation; for shards,
    the shard order is permuted and the samples within each shard, so each shard is read once.
    """
    import numpy as np

    if groups is None:
        if not shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    g = np.asarray(groups, np.int64)
    if not shuffle:
        return np.argsort(g, kind="stable").astype(np.int64)
    rng = np.random.default_rng([seed, epoch])
    shard_ids = np.unique(g)
    out = []
    for s in rng.permutation(shard_ids):
        members = np.flatnonzero(g == s)
        out.append(rng.permutation(members))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def rank_block(order: Any, rank: int, world: int, batch: int, drop_last: bool) -> Any:
    """This rank's contiguous part of the epoch order.

    Training (`drop_last`): the order is cut to a multiple of world x batch, so every rank runs
    the same number of full batches (DistributedDataParallel needs equal steps) and the dropped
    remainder (< world x batch samples, different each epoch) matches what one process with
    batch world x batch would drop. Evaluation: nothing is dropped or padded; ranks differ by at
    most one sample, and every sample is evaluated exactly once.
    """
    import numpy as np

    if drop_last:
        per = len(order) // (world * batch) * batch
        if per == 0 and len(order) >= world:
            per = len(order) // world  # fewer samples than one global batch: one smaller batch
        return order[rank * per : (rank + 1) * per]
    return np.array_split(order, world)[rank]


def worker_batches(block: Any, batch: int, worker: int, n_workers: int) -> list[Any]:
    """The batches one DataLoader worker builds: contiguous runs of whole batches (so a worker
    walks through shards in order), the workers' shares differing by at most one batch."""
    batches = [block[i : i + batch] for i in range(0, len(block), batch)]
    k, r = divmod(len(batches), n_workers)
    start = worker * k + min(worker, r)
    return batches[start : start + k + (1 if worker < r else 0)]


def digest(names: Sequence[str]) -> str:
    """Order-independent digest of a set of sample names (coverage checks)."""
    h = hashlib.sha256()
    for n in sorted(names):
        h.update(n.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
