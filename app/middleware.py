"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request), the safe defaults of a loopback tool:

- only `Host` values that name this server are served (the bind address, localhost names, configured names):
  a page on another site cannot reach the server through DNS rebinding;
- a POST/PUT/PATCH body must be `application/json`: cross-site forms and `text/plain` posts, which browsers send
  without asking, are refused with 415;
- bodies are limited in size (from Content-Length before reading, or counted while streaming) and in time
  between their parts;
- HEAD is answered on every GET route, as GET without the body;
- security headers on every response (a route may set its own Content-Security-Policy, as the API docs do).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body

# script-src 'self' keeps data from ever running as code; plotly needs inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_BODY_METHODS = ("POST", "PUT", "PATCH")


def allowed_hosts(bind: str, configured: tuple[str, ...]) -> frozenset[str]:
    """Host names served: the bind address, localhost names and the configured ones (ports are not compared)."""
    names = {bind.strip("[]").lower(), *LOCAL_NAMES, *(h.lower() for h in configured)}
    return frozenset(names - {"0.0.0.0", "::"})


def _host_name(value: bytes) -> str:
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8000
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class SecurityMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, hosts: frozenset[str], body_timeout_s: float = 30.0
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hosts = hosts
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host")
        if host is None or _host_name(host) not in self.hosts:
            await _refuse(send, 400, "host", "this server does not serve that Host name")
            return
        method = scope["method"]
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _refuse(send, 413, "body", f"request body over the limit of {self.max_body_bytes // 2**20} MiB")
            return
        if method in _BODY_METHODS and (length is None or length != b"0"):
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                await _refuse(send, 415, "content-type", "request bodies must be application/json")
                return
            receive = self._limited(receive)
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
            send = _without_body(send)

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in present
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except _BodyRefused as exc:
            if not started:
                await _refuse(send, exc.status, "body", exc.reason)

    def _limited(self, receive: Receive) -> Receive:
        """Count a body as it arrives, and give each part at most body_timeout_s (a slow-body attack waits for
        ever otherwise). Once the body is complete, receive() is passed through (it then waits for a disconnect)."""
        seen = 0
        complete = False

        async def wrapped() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except TimeoutError:
                raise _BodyRefused(408, f"no part of the body came in {self.body_timeout_s:.0f} s") from None
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise _BodyRefused(413, f"request body over the limit of {self.max_body_bytes // 2**20} MiB")
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return wrapped


def _without_body(send: Send) -> Send:
    """HEAD: the GET response's status and headers, then an empty body; whatever the route sends after is dropped."""
    done = False

    async def wrapped(message: Message) -> None:
        nonlocal done
        if done:
            return
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body":
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return wrapped


async def _refuse(send: Send, status: int, field: str, reason: str) -> None:
    body = json.dumps(error_body(field, reason)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
