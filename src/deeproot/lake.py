"""The crawl store on object storage: `s3://bucket/prefix` and other pyarrow/fsspec URLs.

The remote store has the local store's layout, a Hive-partitioned Parquet dataset:

    <url>/products/crawl_id=<id>/part-0.parquet   data files, written first
    <url>/products/crawl_id=<id>/_SUCCESS         written once every data file is in place
    <url>/crawls/<id>.json                        manifest, written last; "status": "complete"
                                                  and "lake": {"files": {name: size}}

Object stores have no rename, so a partition becomes visible by its manifest: readers trust only
partitions whose manifest says complete and whose `_SUCCESS` marker exists. A crawl killed or a
network failing midway leaves data files without a manifest: never read, overwritten by the next
publish of that crawl.

Nothing here talks to S3 beyond pyarrow's filesystem layer: no DuckDB extension, no download at
run time. The local code paths stay as they are:

- a crawl runs into a local staging folder (`<cache>/<slug>/stage`: checkpoint, partitions) and
  publishes the complete partition to the URL at the end; a crawl that completed but could not be
  published is published first by the next crawl or refresh of that URL;
- readers (catalog build, change report) sync the URL's complete partitions into a local read
  cache (`<cache>/<slug>/read`), keyed by crawl id (a complete partition never changes; sizes are
  checked against the manifest) and read that folder.

Locks are per machine: flock on `<cache>/<slug>/` (see deeproot.lock). Two machines publishing to
one URL are not serialised by deeproot; give each writer its own prefix, or run one writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deeproot.errors import DataError, DeeprootError, InputError, StoppedBySiteError

log = logging.getLogger(__name__)

ENDPOINT_ENVS = ("DEEPROOT_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CACHE_ENV = "DEEPROOT_LAKE_CACHE"
SUCCESS_MARKER = "_SUCCESS"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# pyarrow and libcurl wording of transport failures (retry later), as opposed to configuration
# problems (bad credentials, no such bucket, no permission: fix and rerun)
_NETWORK_WORDS = (
    "network_connection",
    "curlcode",
    "could not connect",
    "connection refused",
    "connection reset",
    "timed out",
    "timeout",
    "couldn't resolve",
    "could not resolve",
    "slow_down",
    "service_unavailable",
    "http status 5",
    "internal_failure",
    "broken pipe",
)


def is_url(store: object) -> bool:
    """True for `s3://…`, `gs://…`, `memory://…` (not for local paths or `file://`)."""
    if not isinstance(store, str):
        return False
    return bool(_URL_RE.match(store)) and not store.lower().startswith("file://")


def _redact(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1], 1)
    return url


def endpoint_from_env() -> str | None:
    for name in ENDPOINT_ENVS:
        v = os.environ.get(name)
        if v:
            return v
    return None


def cache_root() -> Path:
    """Where staging and read caches live: $DEEPROOT_LAKE_CACHE, else ~/.cache/deeproot/lake."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deeproot" / "lake"


def local_root(url: str, endpoint: str | None = None) -> Path:
    """The local folder of one remote store (same URL and endpoint: same folder)."""
    clean = _redact(url).rstrip("/")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", clean.split("://", 1)[-1])[:60].strip("_.") or "store"
    digest = hashlib.sha256(f"{clean}\0{endpoint or ''}".encode()).hexdigest()[:10]
    return cache_root() / f"{slug}-{digest}"


def _aws_credentials_configured() -> bool:
    """Whether the AWS SDK's usual sources name any credentials (env, profile, files, web
    identity, container). Checked up front so a missing key is one clear error instead of the
    SDK probing the EC2 metadata service; set DEEPROOT_S3_DEFAULT_CHAIN=1 to skip the check
    (instance roles)."""
    env = os.environ
    if env.get("DEEPROOT_S3_DEFAULT_CHAIN") == "1":
        return True
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return True
    files = [
        env.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path.home() / ".aws" / "credentials"),
        env.get("AWS_CONFIG_FILE") or str(Path.home() / ".aws" / "config"),
    ]
    for f in files:
        try:
            if "aws_access_key_id" in Path(f).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _is_network(exc: BaseException) -> bool:
    text = str(exc).lower()
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(w in text for w in _NETWORK_WORDS)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:240]


@dataclass
class Lake:
    """One remote crawl store and its local folders."""

    url: str
    fs: Any  # pyarrow.fs.FileSystem
    base: str  # the store's path inside `fs` (bucket/prefix)
    root: Path  # local folder for this URL: stage/, read/, locks, catalog, reports
    endpoint: str | None = None
    _checked: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ paths

    @property
    def shown(self) -> str:
        return _redact(self.url)

    @property
    def stage(self) -> Path:
        """The crawl's local output folder (checkpoints, partitions before publishing)."""
        return self.root / "stage"

    @property
    def read(self) -> Path:
        """The read cache: only partitions complete on the remote store."""
        return self.root / "read"

    def _join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts]) if self.base else "/".join(parts)

    def _manifest_key(self, crawl_id: str) -> str:
        return self._join("crawls", f"{crawl_id}.json")

    def _partition_key(self, crawl_id: str) -> str:
        return self._join("products", f"crawl_id={crawl_id}")

    # ------------------------------------------------------------------ errors

    def error(self, action: str, exc: BaseException) -> DeeprootError:
        """The one-line error for a failed remote operation: exit 5 for the network (retry),
        3 for configuration (credentials, bucket, permissions)."""
        if _is_network(exc):
            return StoppedBySiteError(
                f"cannot {action} {self.shown}: network failure ({_reason(exc)}); nothing partial "
                "is visible there, run the same command again later"
            )
        return InputError(
            f"cannot {action} {self.shown}: {_reason(exc)}; check the URL, the bucket, the "
            "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the endpoint "
            "(--s3-endpoint or DEEPROOT_S3_ENDPOINT)"
        )

    @contextmanager
    def _remote(self, action: str) -> Iterator[None]:
        try:
            yield
        except DeeprootError:
            raise
        except (OSError, ValueError) as exc:  # pyarrow raises OSError for S3 failures
            raise self.error(action, exc) from exc

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Fail early with a one-line error when the store cannot be reached or does not exist."""
        if self._checked:
            return
        import pyarrow.fs as pafs

        bucket = self.base.split("/", 1)[0]
        with self._remote("reach"):
            info = self.fs.get_file_info(bucket if isinstance(self.fs, pafs.S3FileSystem) else
                                         (self.base or "/"))
        if isinstance(self.fs, pafs.S3FileSystem) and info.type == pafs.FileType.NotFound:
            raise InputError(
                f"cannot use {self.shown}: bucket {bucket!r} does not exist (or these credentials "
                "cannot see it); create it first, or check --s3-endpoint and the credentials"
            )
        self._checked = True

    # ------------------------------------------------------------------ reading the remote

    def _read_bytes(self, key: str) -> bytes:
        with self.fs.open_input_stream(key) as fh:
            return bytes(fh.read())

    def remote_manifests(self) -> dict[str, dict[str, Any]]:
        """Manifests on the remote store whose crawl is complete there, by crawl id (sorted)."""
        import pyarrow.fs as pafs

        from deeproot.crawler import storage

        self.check()
        with self._remote("list"):
            infos = self.fs.get_file_info(
                pafs.FileSelector(self._join("crawls"), allow_not_found=True)
            )
        out: dict[str, dict[str, Any]] = {}
        for info in sorted(infos, key=lambda i: i.path):
            name = info.path.rsplit("/", 1)[-1]
            if info.type != pafs.FileType.File or not name.endswith(".json"):
                continue
            cid = name[: -len(".json")]
            if not storage.valid_crawl_id(cid):
                continue
            with self._remote("read"):
                raw = self._read_bytes(info.path)
            try:
                m = json.loads(raw)
            except ValueError:
                log.warning("lake: unreadable manifest %s ignored", info.path)
                continue
            if not isinstance(m, dict) or m.get("crawl_id") != cid:
                continue
            files = (m.get("lake") or {}).get("files")
            if m.get("status") != "complete" or not isinstance(files, dict) or not files:
                continue
            out[cid] = m
        if not out:
            return out
        # a complete manifest also needs its partition's marker (written before the manifest)
        with self._remote("list"):
            marks = self.fs.get_file_info(
                [self._join("products", f"crawl_id={c}", SUCCESS_MARKER) for c in out]
            )
        for cid, info in zip(list(out), marks, strict=True):
            if info.type != pafs.FileType.File:
                log.warning("lake: crawl %s has a manifest but no %s; ignored", cid, SUCCESS_MARKER)
                del out[cid]
        return out

    # ------------------------------------------------------------------ pull (remote -> local)

    def pull(self, into: Path | None = None, *, mirror: bool | None = None) -> list[str]:
        """Copy the remote store's complete partitions into a local store folder.

        `into` defaults to the read cache, which mirrors the remote (a crawl gone from the remote
        is dropped from it); the staging folder only gains crawls. A partition already there
        with the manifest's sizes is kept as it is (complete partitions never change). Returns
        the crawl ids copied now.
        """
        from deeproot.crawler import storage

        target = into if into is not None else self.read
        mirror = (target == self.read) if mirror is None else mirror
        remote = self.remote_manifests()
        storage.crawls_dir(target).mkdir(parents=True, exist_ok=True)
        storage.products_dir(target).mkdir(parents=True, exist_ok=True)
        copied = []
        for cid, m in remote.items():
            files: dict[str, int] = {str(k): int(v) for k, v in m["lake"]["files"].items()}
            if self._local_matches(target, cid, files):
                continue
            self._pull_one(target, cid, m, files)
            copied.append(cid)
        if mirror:
            for local in storage.manifests(target):
                cid = local["crawl_id"]
                if cid not in remote:
                    log.info("lake: %s is no longer in %s; dropped from the cache", cid, self.shown)
                    storage.remove_crawl(target, cid)
        return copied

    @staticmethod
    def _local_matches(target: Path, cid: str, files: dict[str, int]) -> bool:
        from deeproot.crawler import storage

        part = storage.partition_dir(target, cid)
        if not storage.is_complete(target, cid):
            return False
        for name, size in files.items():
            try:
                if (part / name).stat().st_size != size:
                    return False
            except OSError:
                return False
        return True

    def _pull_one(self, target: Path, cid: str, m: dict[str, Any], files: dict[str, int]) -> None:
        from deeproot.crawler import storage

        tmp = storage.crawls_dir(target) / f".{cid}.pull.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            for name, size in files.items():
                if "/" in name or name.startswith(".") or not name.endswith(".parquet"):
                    raise DataError(f"manifest of {cid} in {self.shown} names a bad file {name!r}")
                dest = tmp / name
                local = storage.partition_dir(self.stage, cid) / name
                if target != self.stage and storage.is_complete(self.stage, cid) and (
                    local.is_file() and local.stat().st_size == size
                ):
                    shutil.copyfile(local, dest)  # published from this machine: no download
                else:
                    with self._remote(f"download crawl {cid} from"):
                        with self.fs.open_input_stream(
                            self._join("products", f"crawl_id={cid}", name)
                        ) as src, dest.open("wb") as out:
                            while chunk := src.read(1 << 20):
                                out.write(chunk)
                got = dest.stat().st_size
                if got != size:
                    raise StoppedBySiteError(
                        f"cannot download crawl {cid} from {self.shown}: {name} is {got} bytes, "
                        f"its manifest says {size}; run the same command again later"
                    )
            (tmp / SUCCESS_MARKER).write_text(cid + "\n", encoding="utf-8")
            final = storage.partition_dir(target, cid)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        storage.write_json_atomic(storage.manifest_path(target, cid), m)

    # ------------------------------------------------------------------ push (local -> remote)

    def push(self, crawl_id: str, source: Path | None = None) -> bool:
        """Publish one complete local crawl: data files, then `_SUCCESS`, then the manifest.

        Returns False when the remote already has it complete. A failure midway leaves data
        files without a manifest there, which no reader trusts; the next push overwrites them.
        """
        from deeproot.crawler import storage

        src = source if source is not None else self.stage
        if not storage.is_complete(src, crawl_id):
            raise DataError(f"crawl {crawl_id} is not complete in {src}; nothing to publish")
        self.check()
        with self._remote("read"):
            have = self.fs.get_file_info(self._manifest_key(crawl_id))
        import pyarrow.fs as pafs

        if have.type == pafs.FileType.File and crawl_id in self.remote_manifests():
            return False
        part = storage.partition_dir(src, crawl_id)
        names = sorted(
            p.name for p in part.iterdir() if p.suffix == ".parquet" and not p.name.startswith(".")
        )
        sizes = {n: (part / n).stat().st_size for n in names}
        m = storage.read_manifest(storage.manifest_path(src, crawl_id)) or {}
        m = dict(m)
        m["lake"] = {
            "files": sizes,
            "url": self.shown,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        action = f"publish crawl {crawl_id} to"
        with self._remote(action):
            self.fs.create_dir(self._partition_key(crawl_id), recursive=True)
            for n in names:
                with (part / n).open("rb") as fh, self.fs.open_output_stream(
                    self._join("products", f"crawl_id={crawl_id}", n)
                ) as out:
                    while chunk := fh.read(1 << 20):
                        out.write(chunk)
            with self.fs.open_output_stream(
                self._join("products", f"crawl_id={crawl_id}", SUCCESS_MARKER)
            ) as out:
                out.write((crawl_id + "\n").encode())
            self.fs.create_dir(self._join("crawls"), recursive=True)
            body = json.dumps(m, ensure_ascii=False, indent=2, default=str).encode()
            with self.fs.open_output_stream(self._manifest_key(crawl_id)) as out:
                out.write(body)  # the one write that makes the crawl visible
        storage.write_json_atomic(storage.manifest_path(src, crawl_id), m)
        log.info("lake: published crawl %s to %s", crawl_id, self.shown)
        return True

    def pending(self) -> list[str]:
        """Crawls complete in the staging folder but not (yet) on the remote store."""
        from deeproot.crawler import storage

        if not storage.crawls_dir(self.stage).is_dir():
            return []
        remote = self.remote_manifests()
        return [
            m["crawl_id"]
            for m in storage.manifests(self.stage)
            if storage.is_complete(self.stage, m["crawl_id"]) and m["crawl_id"] not in remote
        ]

    def push_pending(self) -> list[str]:
        done = []
        for cid in self.pending():
            log.info("lake: publishing crawl %s left unpublished by an earlier run", cid)
            self.push(cid)
            done.append(cid)
        return done

    def put_file(self, local: Path, *rel: str) -> None:
        """Copy one small local file (a change report) to `<url>/<rel…>`."""
        with self._remote("write to"):
            self.fs.create_dir(self._join(*rel[:-1]), recursive=True)
            with self.fs.open_output_stream(self._join(*rel)) as out:
                out.write(local.read_bytes())

    def lock(self, what: str, wait: float | None = None) -> Any:
        """This machine's writer lock on the URL (flock on the local folder; other machines are
        not serialised by it): crawls, refreshes and imports hold it while they stage and
        publish."""
        from deeproot.lock import StoreLock

        self.root.mkdir(parents=True, exist_ok=True)
        return StoreLock(self.root, f"{what} {self.shown}", wait=wait)

    def read_lock(self, what: str, wait: float | None = None) -> Any:
        """The read cache's lock (the one a catalog build takes on its store): a sync never
        waits for a crawl, only for another sync or a build reading the cache."""
        from deeproot.lock import StoreLock

        self.read.mkdir(parents=True, exist_ok=True)
        return StoreLock(self.read, f"{what} {self.shown}", wait=wait)


# ---------------------------------------------------------------------- opening


def _s3_filesystem(url: str, endpoint: str | None) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    parts = urlsplit(url)
    bucket = parts.netloc
    if not bucket:
        raise InputError(f"no bucket in {url!r}; write s3://BUCKET/PREFIX")
    if not _aws_credentials_configured():
        raise InputError(
            f"no AWS credentials for {_redact(url)}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (DEEPROOT_S3_DEFAULT_CHAIN=1 for an instance "
            "role)"
        )
    kwargs: dict[str, Any] = {}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    if endpoint:
        ep = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if not ep.netloc:
            raise InputError(f"bad S3 endpoint {endpoint!r}; write e.g. http://127.0.0.1:9000")
        kwargs["endpoint_override"] = ep.netloc
        kwargs["scheme"] = ep.scheme or "https"
        kwargs.setdefault("region", "us-east-1")
        # MinIO and most S3-compatible stores want path-style requests
        kwargs["force_virtual_addressing"] = False
    elif "region" not in kwargs:
        # AWS without a region: ask S3 where the bucket lives (one HEAD request) rather than let
        # the SDK guess; a bucket that does not exist is reported by check() below
        try:
            kwargs["region"] = pafs.resolve_s3_region(bucket)
        except (OSError, ValueError) as exc:
            if _is_network(exc):
                raise StoppedBySiteError(
                    f"cannot reach {_redact(url)}: network failure ({_reason(exc)}); run the same "
                    "command again later"
                ) from exc
            kwargs["region"] = "us-east-1"
    kwargs["connect_timeout"] = float(os.environ.get("DEEPROOT_S3_CONNECT_TIMEOUT", "10"))
    kwargs["request_timeout"] = float(os.environ.get("DEEPROOT_S3_REQUEST_TIMEOUT", "60"))
    try:
        fs = pafs.S3FileSystem(**kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot use {_redact(url)}: {_reason(exc)}") from exc
    base = (bucket + "/" + parts.path.strip("/")).rstrip("/")
    return fs, base


def open_lake(url: str, endpoint: str | None = None) -> Lake:
    """A remote store by URL. `s3://` goes through pyarrow's S3 filesystem (endpoint: the
    argument, else $DEEPROOT_S3_ENDPOINT / $AWS_ENDPOINT_URL); any other scheme pyarrow knows
    (gs://, hdfs://, abfs://) through pyarrow, then any scheme fsspec knows (memory://, ...)
    through fsspec."""
    import pyarrow.fs as pafs

    if not is_url(url):
        raise InputError(f"{url!r} is not a store URL (s3://BUCKET/PREFIX)")
    endpoint = endpoint or endpoint_from_env()
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a"):
        fs, base = _s3_filesystem(url, endpoint)
    else:
        try:
            fs, base = pafs.FileSystem.from_uri(url)
        except (ValueError, OSError):  # ArrowInvalid (a ValueError): a scheme pyarrow lacks
            fs, base = _fsspec_filesystem(url)
        base = base.rstrip("/")
    return Lake(url=url, fs=fs, base=base, root=local_root(url, endpoint), endpoint=endpoint)


def _fsspec_filesystem(url: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise InputError(f"cannot open {_redact(url)}: pyarrow does not know this scheme and "
                         "fsspec is not installed") from exc
    try:
        ffs, path = url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot open {_redact(url)}: {_reason(exc)}") from exc
    return pafs.PyFileSystem(pafs.FSSpecHandler(ffs)), str(path)


def local_store(
    store: str | os.PathLike[str], endpoint: str | None = None, wait: float | None = 300.0
) -> Path:
    """A folder the local readers (catalog build, change report) can read: `store` itself when
    it is local, else the URL's read cache after syncing its complete partitions (waiting up to
    `wait` seconds for another sync or a build reading the cache)."""
    if not is_url(store):
        return Path(store)
    lk = open_lake(str(store), endpoint)
    with lk.read_lock("deeproot sync", wait=wait):
        copied = lk.pull()
    if copied:
        log.info("lake: %d crawl(s) copied from %s to %s", len(copied), lk.shown, lk.read)
    return lk.read


# ---------------------------------------------------------------------- crawling into a URL


def run_crawl(
    lk: Lake,
    settings: Any,
    *,
    progress: Any = None,
    wait: float | None = None,
) -> Any:
    """Crawl into the URL's staging folder (settings.out must be `lk.stage`), then publish.

    Under this machine's lock on the URL: crawls complete here but not yet published are
    published first; the URL's complete crawls are copied into the staging folder (an
    incremental crawl carries from the newest one); the crawl runs as it does locally; a
    complete crawl is published (data files, `_SUCCESS`, manifest last). Returns the crawler's
    report; raises the lake's one-line error when publishing fails (the crawl stays staged and
    is published by the next run).
    """
    from deeproot.crawler import run_crawl as crawl_locally

    if Path(settings.out) != lk.stage:
        raise ValueError("settings.out must be the lake's staging folder")
    lk.check()
    with lk.lock("deeproot crawl", wait=wait):
        lk.push_pending()
        lk.pull(lk.stage)
        rep = crawl_locally(settings, progress=progress, wait=wait)
        if isinstance(getattr(rep, "settings", None), dict):
            # the report's hints (`--resume --out …`) name the URL, not the staging folder
            rep.settings["stage"] = str(lk.stage)
            rep.settings["out"] = lk.shown
        if getattr(rep, "status", None) == "complete":
            publish_staged(lk, rep.crawl_id)
    return rep


def publish_staged(lk: Lake, crawl_id: str) -> None:
    """Publish one staged crawl; on failure say that it is kept and published by the next run."""
    try:
        lk.push(crawl_id)
    except DeeprootError as exc:
        exc.args = (
            f"{exc.args[0] if exc.args else exc} (crawl {crawl_id} is kept in {lk.stage} and is "
            "published first by the next crawl or refresh of this URL)",
        )
        raise
