"""Lake test helpers (a module of its own: `conftest` names clash across test folders)."""

from __future__ import annotations

import os

CATS = "scalp_tonic,scalp_pack_scaler"


def make_bucket(endpoint: str, name: str) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        endpoint_override=endpoint.split("://", 1)[1],
        scheme="http",
        region="us-east-1",
        access_key=os.environ.get("AWS_ACCESS_KEY_ID", "x"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "y"),
        allow_bucket_creation=True,
    )
    fs.create_dir(name)
