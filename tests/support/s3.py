"""A local S3 for the mirror's tests: moto's server in a thread on loopback, with its request log.

    s3 = LocalS3(); s3.start()          # s3.url is the endpoint; s3.bucket() makes a fresh bucket
    s3.requests                          # every request it answered: method, path, status
    s3.refusing = True                   # answer every request 503 SlowDown (an outage), until False
    async with serve_bucket(s3, name) as url: ...   # the bucket as a website (S3 website hosting's rules)

The bucket's objects live in this process (moto's memory): worker processes started by a test
reach them through the endpoint, and so does the static server, which needs neither the app
nor its database.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


@dataclass(frozen=True, slots=True)
class Logged:
    method: str
    path: str  # /bucket/key
    status: int
    at: float = field(default_factory=time.monotonic)


def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for moto, for this process and the workers it starts; never a metadata endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class _Server(ThreadedMotoServer):
    """moto's threaded server, its WSGI app wrapped to log each request and to refuse on demand."""

    def __init__(self, owner: LocalS3) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.owner = owner

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, self.owner.wrap(app), True)
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalS3:
    def __init__(self) -> None:
        self.requests: list[Logged] = []
        self.refusing = False
        self._server = _Server(self)
        self.url = ""

    def wrap(self, app: Any) -> Any:
        def logged(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            if self.refusing:
                self.requests.append(Logged(method, path, 503))
                start_response("503 Slow Down", [("Content-Type", "application/xml")])
                return [SLOW_DOWN]

            def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
                self.requests.append(Logged(method, path, int(status.split()[0])))
                return start_response(status, headers, exc_info)

            return app(environ, recording)  # type: ignore[no-any-return]

        return logged

    def start(self) -> None:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def bucket(self) -> str:
        name = f"mirror-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def puts(self, bucket: str, since: int = 0) -> list[str]:
        """The keys of the successful PUTs into ``bucket`` logged from index ``since`` on, in order."""
        prefix = f"/{bucket}/"
        return [
            r.path.removeprefix(prefix)
            for r in self.requests[since:]
            if r.method == "PUT" and r.status == 200 and r.path.startswith(prefix)
        ]

    def objects(self, bucket: str) -> dict[str, tuple[bytes, str, str]]:
        """Every object: key -> (body, Content-Type, Cache-Control)."""
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                got = client.get_object(Bucket=bucket, Key=item["Key"])
                found[item["Key"]] = (got["Body"].read(), got["ContentType"], got.get("CacheControl", ""))
        return found

    def get(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        try:
            got = self.client().get_object(Bucket=bucket, Key=key)
        except self.client().exceptions.NoSuchKey:
            return None
        return got["Body"].read(), got["ContentType"]


@contextlib.asynccontextmanager
async def serve_bucket(s3: LocalS3, bucket: str) -> AsyncIterator[str]:
    """The bucket as a static website, as S3 website hosting serves one: ``/`` and ``dir/`` are their
    ``index.html``, any other path the object of that key, a missing one ``404.html`` with status 404."""
    client = s3.client()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            key = path.lstrip("/")
            key = key + "index.html" if key == "" or key.endswith("/") else key
            status = 200
            try:
                got = client.get_object(Bucket=bucket, Key=key)
            except client.exceptions.NoSuchKey:
                status, got = 404, client.get_object(Bucket=bucket, Key="404.html")
            body = got["Body"].read()
            self.send_response(status)
            self.send_header("Content-Type", got["ContentType"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
