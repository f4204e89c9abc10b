"""What one worker of the service is configured with, from arguments or environment variables.

`deeproot serve` passes its options to uvicorn workers through these variables, and a container
sets them directly (docs/web.md lists them):

| variable | meaning | default |
|---|---|---|
| `DEEPROOT_SERVE_MODELS` | model bundle folder | `$DEEPROOT_DATA_DIR/models/default`, else demo |
| `DEEPROOT_SERVE_DB` | catalog database (opened read-only) | `$DEEPROOT_DATA_DIR/catalog.duckdb` |
| `DEEPROOT_SERVE_DEMO_CATALOG` | `1`: the catalog is the bundled demo catalog | `0` |
| `DEEPROOT_SERVE_DEVICE` | `auto`, `cpu` or `cuda` | `auto` |
| `DEEPROOT_SERVE_MAX_UPLOAD_MB` | largest request body (all photos of one request) | `200` |
| `DEEPROOT_SERVE_MAX_PHOTOS` | photos per request | `10` |
| `DEEPROOT_SERVE_QUEUE` | requests waiting for the worker's one diagnosis slot | `16` |
| `DEEPROOT_SERVE_UPLOAD_IDLE_S` | an upload sending nothing this long gets 408 | `30` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deeproot.errors import InputError

ENV_PREFIX = "DEEPROOT_SERVE_"
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Settings:
    """One worker's configuration.

    Attributes:
        models: bundle folder; None: the installed bundle, else the demo bundle.
        db: catalog database; None: `$DEEPROOT_DATA_DIR/catalog.duckdb`.
        demo_catalog: the catalog is the bundled demo catalog (pages say so).
        device: onnxruntime device.
        max_upload_mb: largest request body in MB (the CLI's 200 MB photo limit by default).
        max_photos: photos per request.
        queue: requests that may wait while one diagnosis runs; more get 503 + Retry-After.
        upload_idle_s: seconds an upload may send nothing before it is refused (408).
    """

    models: Path | None = None
    db: Path | None = None
    demo_catalog: bool = False
    device: str = "auto"
    max_upload_mb: float = 200.0
    max_photos: int = 10
    queue: int = 16
    upload_idle_s: float = 30.0

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise InputError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if not 0 < self.max_upload_mb <= 4096:
            raise InputError(f"max upload {self.max_upload_mb} MB: give 0 < MB <= 4096")
        if not 1 <= self.max_photos <= 100:
            raise InputError(f"max photos {self.max_photos}: give 1 to 100")
        if not 0 <= self.queue <= 10_000:
            raise InputError(f"queue {self.queue}: give 0 to 10000")
        if not 0 < self.upload_idle_s <= 3600:
            raise InputError(f"upload idle timeout {self.upload_idle_s} s: give 0 < s <= 3600")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def to_env(self) -> dict[str, str]:
        """The environment variables that recreate these settings in a worker process."""
        env = {
            "DEVICE": self.device,
            "MAX_UPLOAD_MB": repr(self.max_upload_mb),
            "MAX_PHOTOS": str(self.max_photos),
            "QUEUE": str(self.queue),
            "UPLOAD_IDLE_S": repr(self.upload_idle_s),
            "DEMO_CATALOG": "1" if self.demo_catalog else "0",
            "MODELS": str(self.models) if self.models else "",
            "DB": str(self.db) if self.db else "",
        }
        return {ENV_PREFIX + k: v for k, v in env.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `DEEPROOT_SERVE_*` variables (unset or empty: the default).

        Raises:
            InputError: a value that is not a number where one is needed, or out of range.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(ENV_PREFIX + name, "").strip()

        def num(name: str, kind: type, default: float) -> float:
            raw = get(name)
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise InputError(f"{ENV_PREFIX}{name}={raw[:40]!r} is not a number") from None
            if value != value:  # NaN
                raise InputError(f"{ENV_PREFIX}{name}={raw[:40]!r} is not a number")
            return value

        return cls(
            models=Path(get("MODELS")) if get("MODELS") else None,
            db=Path(get("DB")) if get("DB") else None,
            demo_catalog=get("DEMO_CATALOG") == "1",
            device=get("DEVICE") or "auto",
            max_upload_mb=float(num("MAX_UPLOAD_MB", float, 200.0)),
            max_photos=int(num("MAX_PHOTOS", int, 10)),
            queue=int(num("QUEUE", int, 16)),
            upload_idle_s=float(num("UPLOAD_IDLE_S", float, 30.0)),
        )
