"""How `sdunet-explorer serve` runs uvicorn: one process, timeouts for slow and idle connections, a bound on
connections, and on SIGTERM / SIGINT a grace period for the requests still running (app.shutdown).

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`), but has no limit
for a connection that never completes its request headers: 600 half-open connections would stay open for ever.
`HeaderTimeoutProtocol` adds one: from the moment a connection opens, and again after each response, the
client has `header_timeout_s` to send complete headers, or the connection is closed. (A slow body is bounded
by app.middleware.)
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings
from app.shutdown import UVICORN_MARGIN_S, Shutdown

HEADER_TIMEOUT_S = 10.0  # set from the settings by run()


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections that do not send their headers in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers are due in time too (beside the keep-alive timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when its shutdown begins: the app's grace period starts then."""

    def __init__(self, config: uvicorn.Config, shutdown: Shutdown) -> None:
        super().__init__(config)
        self._app_shutdown = shutdown
        self._grace: asyncio.Task[None] | None = None  # held: the loop keeps only weak references to tasks

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._grace = asyncio.create_task(self._app_shutdown.begin())
        await super().shutdown(sockets)


def run(settings: Settings, *, access_log: bool = False) -> None:
    from app.main import create_app

    global HEADER_TIMEOUT_S
    HEADER_TIMEOUT_S = float(settings.header_timeout_s)
    app = create_app()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,  # a torch app keeps its models and caches in one process
        http=HeaderTimeoutProtocol,
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        # A backstop only: the app answers what still runs after its own grace period (app.shutdown).
        timeout_graceful_shutdown=settings.shutdown_grace_s + UVICORN_MARGIN_S,
        log_level="info",
        access_log=access_log,
    )
    _Server(config, app.state.shutdown).run()
