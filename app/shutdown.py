"""How the server ends while requests still run (SIGTERM, SIGINT): each finishes within a grace period or is
answered 503 with Retry-After; nothing is cancelled under a handler's feet, so the log holds no traceback.

uvicorn's own graceful shutdown waits `timeout_graceful_shutdown` for the connections to close and then cancels
every task still running: a handler awaiting a worker got a 500 and a traceback, and the work it waited for was
settled later on a cancelled future (InvalidStateError). Here, instead:

1. `app.server` tells the app when uvicorn's shutdown begins (`Shutdown.begin`): the app keeps serving what runs;
2. after `grace_s`, `stop_work` ends the worker processes, which fails every future still waited on with the
   503 of `app.errors.shutting_down`: the handlers answer it through the ordinary error path, and the running
   profiles are cancelled, which ends their event streams;
3. uvicorn's own limit is set past that (`UVICORN_MARGIN_S`), as a backstop only. Should it still cancel a task
   (work in the threadpool cannot be interrupted), `ShutdownMiddleware` answers 503, or ends a response already
   under way, rather than letting uvicorn log a traceback and answer 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import SHUTDOWN_RETRY_AFTER, SHUTTING_DOWN, error_body

log = logging.getLogger(__name__)
# Past the grace period: time for the workers to stop and the handlers to write their 503.
UVICORN_MARGIN_S = 5.0


class Shutdown:
    """The app's end: `begin()` when the server starts shutting down, `stop_work()` when the grace is over (or
    the lifespan ends, whichever comes first; it runs once)."""

    def __init__(self, grace_s: float, steps: Sequence[Callable[[], None]]) -> None:
        self.grace_s = grace_s
        self.began = False
        self._steps = steps
        self._stopped: asyncio.Task[None] | None = None

    async def begin(self) -> None:
        self.began = True
        await asyncio.sleep(self.grace_s)
        log.info("shutdown: %.3g s of grace are over; requests still running are answered 503", self.grace_s)
        await self.stop_work()

    async def stop_work(self) -> None:
        self.began = True
        if self._stopped is None:
            self._stopped = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopped)

    async def _stop(self) -> None:
        # Each step blocks (it joins threads and processes): in threads, side by side, so that the event loop
        # goes on writing the 503s the steps cause.
        await asyncio.gather(*(asyncio.to_thread(step) for step in self._steps))


class ShutdownMiddleware:
    """The backstop: a request cancelled by uvicorn during its shutdown is answered 503 (or its response ended)."""

    def __init__(self, app: ASGIApp, *, shutdown: Shutdown) -> None:
        self.app = app
        self.shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not self.shutdown.began:
                raise
            # The task was cancelled by the server's end: answer here, since nothing will after.
            if started:  # a stream under way: end it where it is
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            body = json.dumps(error_body(None, SHUTTING_DOWN)).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", SHUTDOWN_RETRY_AFTER.encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
