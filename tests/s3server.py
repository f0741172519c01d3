"""A real S3 endpoint for tests: moto's server, started from the virtualenv on loopback.

Not moto's in-process mocks: the connector and the blob store talk HTTP to a separate process
exactly as they talk to AWS or MinIO, so timeouts, retries, streaming bodies and error
mapping are all exercised. One server per test session; state is wiped before each test.
Moto checks no signatures: any credentials work, and access rules cannot be tested here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Credentials and region boto3 picks up from the environment for the whole session.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-2",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata service for a role
    "AWS_CONFIG_FILE": os.devnull,  # and never read a developer's own profiles
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT`` as a child process, stopped by its own PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        executable = Path(sys.executable).parent / "moto_server"
        if not executable.exists():
            raise RuntimeError("moto_server not found: install the test extras (pip install -e '.[test]')")
        self._process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited at start-up:\n{self.output()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto_server did not listen on port {self.port} within {timeout} s")

    def reset(self) -> None:
        """Wipe every bucket and object (moto's own API), faster than a restart."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session, with boto3's environment pointed at fake credentials."""
    saved = {name: os.environ.get(name) for name in S3_ENV}
    os.environ.update(S3_ENV)
    from dsar.blobs import dispose_s3_clients

    dispose_s3_clients()  # clients built before this point hold other credentials
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        dispose_s3_clients()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def moto_endpoint(moto_server: MotoServer) -> str:
    """The endpoint URL of an empty S3 (every test starts with no buckets)."""
    moto_server.reset()
    return moto_server.endpoint
