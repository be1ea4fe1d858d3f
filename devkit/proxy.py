"""A TCP proxy that passes replies on as a real network does: in small segments, with gaps between them.

On loopback a reply arrives in one piece; over a WAN or TLS it arrives in many. Tests put this between the
service and the simulator so that a client reading only what is buffered is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class SegmentingProxy:
    """Listens on a free loopback port and forwards to `target`.

    What comes back is cut into `segment`-byte writes `gap_s` apart; requests go through as they are.
    """

    def __init__(self, target_host: str, target_port: int, *, segment: int = 64, gap_s: float = 0.002) -> None:
        self._target = (target_host, target_port)
        self._segment = segment
        self._gap_s = gap_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.segments = 0  # reply segments written, to show the replies were cut

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port> of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            target_reader, target_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, target_writer, segmented=False),
                self._pipe(target_reader, client_writer, segmented=True),
            )
        finally:
            for writer in (client_writer, target_writer):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, segmented: bool) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if not segmented:
                    writer.write(data)
                    await writer.drain()
                    continue
                for start in range(0, len(data), self._segment):
                    writer.write(data[start : start + self._segment])
                    await writer.drain()
                    self.segments += 1
                    await asyncio.sleep(self._gap_s)
            if writer.can_write_eof():
                writer.write_eof()
