"""A small asyncio TCP proxy on a loopback port, to cut a connection on purpose.

    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()            # clients connect to proxy.port
    await proxy.cut()              # drop live connections, refuse new ones (port closed)
    await proxy.cut(reset=True)    # drop live connections, accept new ones and close them at once
    await proxy.restore()          # pass traffic again, on the same port

It runs in the test's event loop; processes started by the test (workers) reach the
upstream through it. Works for any TCP protocol: PostgreSQL, Redis, SMTP, HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from sandbox.serve import free_port


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self.mode = "pass"  # pass | reset | refuse
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode != "pass":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._pipes.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    def _drop_live(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def cut(self, reset: bool = False) -> None:
        """Drop every live connection; refuse new ones (or accept and reset them with ``reset``)."""
        self.mode = "reset" if reset else "refuse"
        self._drop_live()
        if not reset and self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    async def restore(self) -> None:
        self.mode = "pass"
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        self._drop_live()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        for task in list(self._pipes):
            task.cancel()
