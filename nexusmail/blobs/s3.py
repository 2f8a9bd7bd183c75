"""Blobs in an S3-compatible object store, shared by every daemon of a cluster.

Keys mirror the local layout under a prefix, <prefix>/ab/cd/<sha256>, so a local blobs/
directory copied into the bucket (any S3 sync tool) is read as it is. A put carries
`If-None-Match: *`: the first writer of a digest creates the object and every later or
concurrent one gets 412, which here means "already there" and succeeds too, so no
upload ever replaces an object (a 412 only refreshes its age for the orphan sweep, by
a server-side copy of the same bytes). A read checks the bytes against the key's
digest. boto3 blocks: callers run these methods in threads (the client is thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.store import (
    BlobMissing,
    BlobUnavailable,
    StoredBlob,
    check_digest,
    is_digest,
    verified,
)

log = structlog.get_logger(__name__)

# S3 answers 409 ConditionalRequestConflict while another conditional write of the same
# key is in flight; the documented cure is to try again, by which time it is there.
_CONFLICT_RETRIES = 5
_CONFLICT_PAUSE_S = 0.05
# What a request to the store may raise: an answer (ClientError) or no answer at all.
_FAILURES = (ClientError, BotoCoreError)


class S3BlobStore:
    holds_raw_mail = True

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key_for(self, digest: str) -> str:
        check_digest(digest)
        name = f"{digest[:2]}/{digest[2:4]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        key = self.key_for(digest)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
                return digest
            except _FAILURES as exc:
                status = _status(exc)
                if status == 412 and self._refresh(key):  # already there: these bytes
                    return digest
                if status == 412:  # swept away in between: write it again
                    continue
                if status == 409 and attempt + 1 < _CONFLICT_RETRIES:
                    time.sleep(_CONFLICT_PAUSE_S * (attempt + 1))
                    continue
                raise self._unavailable("put", digest, exc) from exc
        raise BlobUnavailable(f"put {digest} to {self.describe()}: still conflicting")

    def _refresh(self, key: str) -> bool:
        """Make an existing object young again (the orphan sweep's grace counts from its
        LastModified), by a server-side copy onto itself: the same bytes, no upload.
        False when it is gone (a sweep removed it between the put and now)."""
        try:
            self.client.copy_object(Bucket=self.bucket, Key=key, MetadataDirective="REPLACE",
                                    CopySource={"Bucket": self.bucket, "Key": key})
        except _FAILURES as exc:
            if _status(exc) == 404:
                return False
            raise self._unavailable("refresh", key.rpartition("/")[2], exc) from exc
        return True

    def get(self, digest: str) -> bytes:
        key = self.key_for(digest)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except _FAILURES as exc:
            if _status(exc) == 404:
                raise BlobMissing(f"no blob {digest} in {self.describe()}") from exc
            raise self._unavailable("get", digest, exc) from exc
        return verified(digest, data, self.describe())

    def scan(self) -> Iterator[StoredBlob]:
        paginator = self.client.get_paginator("list_objects_v2")
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", ()):
                    name = str(item["Key"]).rpartition("/")[2]
                    if is_digest(name) and self.key_for(name) == item["Key"]:
                        yield StoredBlob(name, int(item["Size"]),
                                         item["LastModified"].astimezone(UTC))
        except _FAILURES as exc:
            raise self._unavailable("list", "", exc) from exc

    def stat(self, digest: str) -> StoredBlob | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_for(digest))
        except _FAILURES as exc:
            if _status(exc) == 404:
                return None
            raise self._unavailable("stat", digest, exc) from exc
        return StoredBlob(digest, int(head["ContentLength"]),
                          head["LastModified"].astimezone(UTC))

    def delete(self, digest: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key_for(digest))
        except _FAILURES as exc:
            raise self._unavailable("delete", digest, exc) from exc

    def check(self) -> None:
        """BlobUnavailable unless the bucket can be reached with these credentials."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except _FAILURES as exc:
            raise self._unavailable("reach", "", exc) from exc

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def close(self) -> None:
        self.client.close()

    def _unavailable(self, action: str, digest: str, exc: BaseException) -> BlobUnavailable:
        # botocore's messages name the operation and the S3 error code, never the keys.
        what = f"{action} {digest}" if digest else action
        log.warning("blobs.s3_failed", action=action, sha256=digest or None,
                    store=self.describe(), error=str(exc))
        return BlobUnavailable(f"{what} in {self.describe()}: {exc}")


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ClientError, None for other failures."""
    if not isinstance(exc, ClientError):
        return None
    response = exc.response
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int):
        return status
    code = response.get("Error", {}).get("Code")
    return {"NoSuchKey": 404, "PreconditionFailed": 412}.get(str(code))
