"""A pure ASGI fast path for repeated POST /api/trace requests.

Most trace requests repeat one another byte for byte (a page asking for sd1 at 512 px). Once a body has been
resolved and its trace cached, the same bytes are answered here from the cache, before routing, body validation and
dependency injection, which cost most of a cached request's time. Anything else, a new body or an evicted trace,
goes through the app as usual (the body is replayed to it unchanged).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class TraceFastPath:
    def __init__(self, app: ASGIApp, path: str = "/api/trace") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        cached = scope["app"].state.trace_cache.by_body(body)
        if cached is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            status, out_headers, content = cached.response_parts(
                headers.get("accept-encoding", ""), headers.get("if-none-match")
            )
            raw = [(k.encode(), v.encode()) for k, v in out_headers] + [(b"content-length", str(len(content)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": content})
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
