"""The S3 blob store against moto's S3 server on loopback: content-addressed keys,
concurrent writers of one digest, bytes checked on every read, credentials from the
environment or from files."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server
from structlog.testing import capture_logs

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.blobs.open import open_blob_store
from nexusmail.blobs.s3 import S3BlobStore
from nexusmail.blobs.store import BlobCorrupt, BlobMissing, BlobStore, BlobUnavailable
from nexusmail.config import ConfigError, Settings


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard environment variables boto3 reads, as a deployment would set them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)


def s3_store(s3: S3Server, tmp_path: Path, bucket: str, **blobs: object) -> BlobStore:
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "blobs": {**s3.blobs_section(bucket), **blobs}})
    return open_blob_store(settings)


@pytest.mark.usefixtures("aws_keys")
def test_round_trip_keeps_bytes_under_their_sha256(s3: S3Server, tmp_path: Path) -> None:
    """A put returns the SHA-256, the object sits at prefix/ab/cd/<sha256> (the local
    layout), a get returns the same bytes and a scan lists it."""
    bucket = s3.new_bucket()
    store = s3_store(s3, tmp_path, bucket)
    data = b"%PDF-1.7 service report\n" * 100
    digest = store.put(data)
    assert digest == sha256_hex(data)
    key = f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert store.get(digest) == data
    assert [(b.digest, b.size) for b in store.scan()] == [(digest, len(data))]
    assert store.describe() == f"s3://{bucket}/blobs"
    store.close()


@pytest.mark.usefixtures("aws_keys")
def test_concurrent_writers_of_one_digest_all_succeed(s3: S3Server, tmp_path: Path) -> None:
    """Eight writers putting the same bytes at once (If-None-Match: *) all get the digest
    back, and one object holds the bytes: a 412 means it is already there."""
    bucket = s3.new_bucket()
    stores = [s3_store(s3, tmp_path, bucket) for _ in range(8)]
    data = b"the same photo of the same boiler" * 1000
    barrier = threading.Barrier(len(stores))
    results: list[str] = []
    errors: list[BaseException] = []

    def write(store: BlobStore) -> None:
        barrier.wait()
        try:
            results.append(store.put(data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == [sha256_hex(data)] * len(stores)
    listed = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 1
    assert stores[0].get(sha256_hex(data)) == data


@pytest.mark.usefixtures("aws_keys")
def test_a_second_put_never_overwrites(s3: S3Server, tmp_path: Path) -> None:
    """Once a digest is written, a later put of it uploads nothing over it: the object
    keeps its bytes and ETag (only its age is refreshed, for the orphan sweep)."""
    bucket = s3.new_bucket()
    store = s3_store(s3, tmp_path, bucket)
    digest = store.put(b"first")
    before = s3.client().head_object(Bucket=bucket, Key=f"blobs/{digest[:2]}/{digest[2:4]}/"
                                     f"{digest}")["ETag"]
    assert store.put(b"first") == digest
    after = s3.client().head_object(Bucket=bucket, Key=f"blobs/{digest[:2]}/{digest[2:4]}/"
                                    f"{digest}")["ETag"]
    assert before == after


@pytest.mark.usefixtures("aws_keys")
def test_a_tampered_object_is_refused_and_logged(s3: S3Server, tmp_path: Path) -> None:
    """An object overwritten behind our back (other bytes under the digest's key) is
    never handed out: BlobCorrupt, and a `blobs.corrupt` error in the log."""
    bucket = s3.new_bucket()
    store = s3_store(s3, tmp_path, bucket)
    digest = store.put(b"the real invoice")
    s3.client().put_object(Bucket=bucket, Key=f"blobs/{digest[:2]}/{digest[2:4]}/{digest}",
                           Body=b"a forged invoice")
    with capture_logs() as logs, pytest.raises(BlobCorrupt, match="fails its SHA-256 check"):
        store.get(digest)
    assert [e["sha256"] for e in logs if e["event"] == "blobs.corrupt"] == [digest]


@pytest.mark.usefixtures("aws_keys")
def test_a_missing_object_is_a_missing_file(s3: S3Server, tmp_path: Path) -> None:
    """A digest with no object raises BlobMissing, a FileNotFoundError like a missing
    local file, so callers treat both stores alike."""
    store = s3_store(s3, tmp_path, s3.new_bucket())
    with pytest.raises(FileNotFoundError):
        store.get(sha256_hex(b"never stored"))
    with pytest.raises(BlobMissing):
        store.get(sha256_hex(b"never stored"))


@pytest.mark.usefixtures("aws_keys")
def test_an_unreachable_store_is_unavailable_not_missing(tmp_path: Path) -> None:
    """Nothing listening at the endpoint: BlobUnavailable (try later), never BlobMissing."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "blobs": {"url": "s3://nowhere-bucket/p", "endpoint_url": f"http://127.0.0.1:{port}",
                  "region": "us-east-1", "timeout_s": 1}})
    store = open_blob_store(settings)
    with pytest.raises(BlobUnavailable):
        store.put(b"x")
    with pytest.raises(BlobUnavailable):
        store.get(sha256_hex(b"x"))


def test_keys_read_from_files(s3: S3Server, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With no AWS_* variables, the keys come from [blobs] access_key_id_file and
    secret_access_key_file; an unreadable one is a config error naming the key."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    (tmp_path / "key-id").write_text(ACCESS_KEY_ID + "\n")
    (tmp_path / "secret").write_text(SECRET_ACCESS_KEY + "\n")
    store = s3_store(s3, tmp_path, s3.new_bucket(), access_key_id_file=str(tmp_path / "key-id"),
                     secret_access_key_file=str(tmp_path / "secret"))
    assert isinstance(store, S3BlobStore)
    digest = store.put(b"signed with the keys from the files")
    assert store.get(digest) == b"signed with the keys from the files"
    with pytest.raises(ConfigError, match=r"\[blobs\] secret_access_key_file: cannot read"):
        s3_store(s3, tmp_path, "any-bucket", access_key_id_file=str(tmp_path / "key-id"),
                 secret_access_key_file=str(tmp_path / "absent"))


def test_the_local_store_refuses_a_tampered_file_too(tmp_path: Path) -> None:
    """The embedded store checks every read as well: a file whose bytes changed on disk
    raises BlobCorrupt instead of being served."""
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(b"original")
    path = store.path_for(digest)
    path.chmod(0o600)
    path.write_bytes(b"rotted")
    with pytest.raises(BlobCorrupt):
        store.get(digest)
