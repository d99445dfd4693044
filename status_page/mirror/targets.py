"""Where the mirror goes: an S3-compatible bucket, or a local directory.

A bucket (AWS S3, Cloudflare R2, MinIO, Backblaze B2, anything speaking the S3 API) is written
with boto3, the AWS SDK, in a small thread pool: a push is a handful of PUTs, so threads cost
nothing, and boto3 follows every provider's signing and endpoint quirks (README, dependencies).
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a
profile, an instance or task role). A directory is written file by file through a temporary name
and a rename, so a reader never sees half a file.

Failures are the fan-out's errors: a refused connection, a timeout, a 5xx or a throttle is a
``RetryableError`` (the ledger retries with backoff), a refusal (403, no such bucket) a
``PermanentError``; each names the target, never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from broadcaster.errors import DeliveryError, PermanentError, RetryableError
from status_page.mirror.site import Layout

T = TypeVar("T")
_RETRYABLE_CODES = {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable"}
DELETE_BATCH = 1000  # the most DeleteObjects takes at once


class Target(Protocol):
    """One place the mirror is pushed to."""

    name: str
    """Stable and free of secrets: the key of its state in ``mirror_objects`` and ``mirror_targets``."""
    layout: Layout

    async def keys(self) -> set[str]:
        """The keys the target holds now: one that went missing is sent again."""
        ...

    async def put(self, key: str, body: bytes, content_type: str, cache_control: str) -> None: ...

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def check(self) -> str:
        """Verify the target can be written without writing anything; what was verified."""
        ...

    async def aclose(self) -> None: ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PermanentError(f"refusing the object key {key!r}")
    return key


class S3Target:
    """A bucket (and an optional key prefix) at AWS or any S3-compatible endpoint."""

    layout = Layout.BUCKET

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_s: float = 15.0,
        concurrency: int = 8,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        where = urlsplit(endpoint_url).netloc.rpartition("@")[2] if endpoint_url else ""  # never a userinfo part
        self.name = f"s3://{bucket}/{self.prefix}" + (f" at {where}" if where else "")
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mirror-s3")
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _s3(self) -> Any:
        """The boto3 client, made on first use (in a pool thread: building one reads files)."""
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=self.timeout_s,
                    read_timeout=self.timeout_s,
                    retries={"total_max_attempts": 1, "mode": "standard"},  # the ledger retries, with its backoff
                    max_pool_connections=self.concurrency,
                    # Checksums only where the API requires them: R2, B2 and MinIO differ on the optional ones.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    # Every S3-compatible service takes path-style requests; MinIO needs them (no bucket host names).
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                )
                session = boto3.session.Session()
                self._client = session.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
                )
            return self._client

    async def _call(self, action: str, fn: Callable[..., T], **kwargs: Any) -> T:
        def run() -> T:
            return fn(self._s3(), **kwargs)

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, run)
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._error(action, exc) from exc

    def _error(self, action: str, exc: Exception) -> DeliveryError:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = str(error.get("Code") or status)
            reason = f"{self.name}: {action} answered {status} {code}" + (
                f" ({error['Message']})" if error.get("Message") else ""
            )
            if status >= 500 or status in (408, 429) or code in _RETRYABLE_CODES:
                return RetryableError(reason)
            return PermanentError(reason)
        if isinstance(exc, NoCredentialsError):
            return PermanentError(f"{self.name}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
        if isinstance(exc, BotoCoreError):
            return RetryableError(f"{self.name}: {action} failed: {type(exc).__name__}")
        return RetryableError(f"{self.name}: {action} failed: {type(exc).__name__}: {exc}")

    async def keys(self) -> set[str]:
        def list_all(s3: Any) -> set[str]:
            found: set[str] = set()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                found.update(item["Key"].removeprefix(self.prefix) for item in page.get("Contents", []))
            return found

        return await self._call("LIST", list_all)

    async def put(self, key: str, body: bytes, content_type: str, cache_control: str) -> None:
        await self._call(
            f"PUT {key}",
            lambda s3, **kw: s3.put_object(**kw),
            Bucket=self.bucket,
            Key=self.prefix + _safe_key(key),
            Body=body,
            ContentType=content_type,
            CacheControl=cache_control,
        )

    async def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = [{"Key": self.prefix + _safe_key(k)} for k in keys[start : start + DELETE_BATCH]]
            await self._call(
                "DELETE",
                lambda s3, **kw: s3.delete_objects(**kw),
                Bucket=self.bucket,
                Delete={"Objects": chunk, "Quiet": True},
            )

    async def check(self) -> str:
        await self._call("HEAD bucket", lambda s3, **kw: s3.head_bucket(**kw), Bucket=self.bucket)
        return f"{self.name} is reachable and ours"

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))


def write_atomic(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class DirectoryTarget:
    """A local directory, for a web server or a sync job (rsync, rclone) to take from."""

    layout = Layout.DIRECTORY

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.name = f"dir:{self.root}"

    async def _io(self, action: str, fn: Callable[[], None]) -> None:
        try:
            await asyncio.to_thread(fn)
        except OSError as exc:
            raise RetryableError(f"{self.name}: {action} failed: {exc.strerror or exc}") from exc

    async def keys(self) -> set[str]:
        def walk() -> set[str]:
            if not self.root.is_dir():
                return set()
            return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

        found: set[str] = set()

        def collect() -> None:
            found.update(walk())

        await self._io("listing", collect)
        return found

    async def put(self, key: str, body: bytes, content_type: str, cache_control: str) -> None:
        path = self.root / _safe_key(key)
        await self._io(f"writing {key}", lambda: write_atomic(path, body))

    async def delete(self, keys: Sequence[str]) -> None:
        def remove() -> None:
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / _safe_key(key)).unlink()

        await self._io("removing old files", remove)

    async def check(self) -> str:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(13, "not writable")

        await self._io("checking", probe)
        return f"{self.name} is writable"

    async def aclose(self) -> None:
        return None
