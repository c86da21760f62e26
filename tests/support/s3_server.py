"""A real S3-compatible HTTP server on 127.0.0.1 for the bucket mirror tests (moto's server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import IN_CI

BUCKET = "incidex-backups"
KEYS = {"AWS_ACCESS_KEY_ID": "incidex-test", "AWS_SECRET_ACCESS_KEY": "incidex-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True, slots=True)
class S3Server:
    """Where the server answers, and a client on it."""

    endpoint: str
    client: Any


def require_server() -> Any:
    """moto's server class; a failure in CI (the dev extra installs it), else a skip."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        if IN_CI:
            pytest.fail("moto[server] must be installed in CI (make .venv/.installed-dev)")
        pytest.skip("moto[server] is not installed (pip install -e '.[dev]')")
    return ThreadedMotoServer


@contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """Start the server on a free port with one bucket, and the AWS_* keys for it (in this
    process and the processes it starts)."""
    server_class = require_server()
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    server = server_class(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("INCIDEX_BACKUP_S3_ENDPOINT", endpoint)
        yield S3Server(endpoint, client)
    finally:
        server.stop()
