"""moto's S3 server on a free loopback port: a real HTTP endpoint that boto3 talks to
over a socket, as it would to MinIO or AWS, with one fresh bucket per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "nexusmail-test-key"
SECRET_ACCESS_KEY = "nexusmail-test-secret"  # moto accepts any; never a real one
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        """A plain boto3 client, for a test to look at (or tamper with) the bucket."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID,
                            aws_secret_access_key=SECRET_ACCESS_KEY)

    def new_bucket(self) -> str:
        name = f"nexusmail-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def blobs_section(self, bucket: str, prefix: str = "blobs") -> dict[str, Any]:
        """A `[blobs]` section for this server, with the keys in files under nothing:
        the environment variables carry them (see `s3_environment`)."""
        return {"url": f"s3://{bucket}/{prefix}", "endpoint_url": self.endpoint_url,
                "region": REGION}


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
