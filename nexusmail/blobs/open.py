"""The blob store the settings name: `[blobs] url` a directory (default: the data dir's
blobs/) or s3://bucket/prefix."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.blobs.store import BlobStore
from nexusmail.config import BlobsSettings, ConfigError, Settings
from nexusmail.i18n import msg
from nexusmail.paths import blobs_path


def is_s3(settings: Settings) -> bool:
    return settings.blobs.url.lower().startswith("s3://")


def blobs_location(settings: Settings) -> str:
    """Where the blobs are, as a message says it."""
    if is_s3(settings):
        return settings.blobs.url
    return str(local_blobs_root(settings))


def local_blobs_root(settings: Settings) -> Path:
    """The directory of the embedded store (only when `[blobs] url` is not s3://)."""
    return Path(settings.blobs.url) if settings.blobs.url else blobs_path(settings)


def open_blob_store(settings: Settings) -> BlobStore:
    """The configured store (blocking: reads credential files, builds the S3 client).
    ConfigError, naming the key, for credentials that cannot be read."""
    if not is_s3(settings):
        return LocalBlobStore(local_blobs_root(settings))
    # Imported here: boto3 costs a third of a second at start, and only S3 needs it.
    from nexusmail.blobs.s3 import S3BlobStore

    bucket, _, prefix = settings.blobs.url[len("s3://"):].partition("/")
    return S3BlobStore(s3_client(settings.blobs), bucket, prefix)


def s3_client(blobs: BlobsSettings) -> object:
    import boto3
    from botocore.config import Config

    keys: dict[str, str] = {}
    if blobs.access_key_id_file is not None and blobs.secret_access_key_file is not None:
        keys = {"aws_access_key_id": _read_key(blobs.access_key_id_file, "access_key_id_file"),
                "aws_secret_access_key": _read_key(blobs.secret_access_key_file,
                                                   "secret_access_key_file")}
    # Otherwise boto3's own chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY first.
    config = Config(
        connect_timeout=blobs.timeout_s, read_timeout=blobs.timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
        # Servers other than AWS are mostly reached by address: bucket in the path.
        s3={"addressing_style": "path" if blobs.endpoint_url else "auto"},
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=blobs.endpoint_url or None,
                          region_name=blobs.region or None, config=config, **keys)


def _read_key(path: Path, key: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(msg("[blobs] {key}: cannot read {path}: {problem}", key=key,
                              path=str(path),
                              problem=str(getattr(exc, "strerror", None) or exc))) from None
    if not value:
        raise ConfigError(msg("[blobs] {key}: {path} is empty", key=key, path=str(path)))
    return value


async def open_reachable_blob_store(settings: Settings) -> BlobStore:
    """`open_blob_store` off the event loop, and for S3 one request to the bucket first:
    a wrong bucket, endpoint or key stops the start with the reason (BlobUnavailable)
    rather than the first mail with an attachment."""
    store = await asyncio.to_thread(open_blob_store, settings)
    check = getattr(store, "check", None)
    if check is not None:
        try:
            await asyncio.to_thread(check)
        except BaseException:
            store.close()
            raise
    return store
