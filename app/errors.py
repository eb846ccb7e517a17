"""One shape for every error the API returns: {"detail", "field", "reason"} with a 4xx status, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from sdunet_core import ConfigError
from sdunet_core.checkpoint.header import printable

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: the field at fault (null when the whole request is) and the reason."""

    detail: str
    field: str | None
    reason: str
    errors: list[dict[str, str]] | None = None


# Declared on every API router so that the OpenAPI schema describes the error bodies the API really returns.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "malformed request body, or a Host name this server does not serve"),
        (404, "not found"),
        (408, "the request body came too slowly"),
        (413, "over a size limit"),
        (415, "a request body that is not application/json"),
        (422, "invalid request or impossible config"),
        (429, "queue full; retry after Retry-After seconds"),
        (503, "too busy; retry after Retry-After seconds"),
    )
}


class ApiError(Exception):
    """A request the API refuses: status, the field at fault (or None) and why."""

    def __init__(self, status: int, field: str | None, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason
        self.headers = headers


SHUTTING_DOWN = "the server is shutting down"
SHUTDOWN_RETRY_AFTER = "5"  # seconds: about what a restart takes


def shutting_down() -> ApiError:
    """What work still running when the server ends answers (a fresh error each time: exceptions carry state)."""
    return ApiError(503, None, SHUTTING_DOWN, {"Retry-After": SHUTDOWN_RETRY_AFTER})


# An error quotes at most this much of what the request sent (a 1 MB preset name must not come back as 2 MB).
QUOTE_CHARS = 40
MAX_FIELD_CHARS = 80
MAX_REASON_CHARS = 600


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """repr() of a value, cut to a short prefix."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... (cut)"


def error_body(field: str | None, reason: str, **extra: object) -> dict[str, object]:
    # A backstop for messages built elsewhere (pydantic, the config's validation) that quote the input whole.
    # A lone surrogate from the request (a JSON key "\ud800") cannot be encoded as UTF-8: it goes back escaped.
    field = _cut(printable(field), MAX_FIELD_CHARS) if field is not None else None
    reason = _cut(printable(reason), MAX_REASON_CHARS)
    detail = f"{field}: {reason}" if field else reason
    return {"detail": detail, "field": field, "reason": reason, **extra}


def _field_of(loc: tuple) -> str:
    # loc starts with where the value came from ("body", "query", "path", "header"); the rest names the field,
    # which may itself be called "path" (GET /api/weights/stats?path=).
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.field, exc.reason), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(error_body(exc.field, exc.reason), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": "body", "reason": f"invalid JSON: {e.get('ctx', {}).get('error', 'cannot parse')}"}
            if e.get("type") == "json_invalid"
            else {
                "field": _cut(printable(_field_of(tuple(e.get("loc", ())))), MAX_FIELD_CHARS),
                "reason": _cut(printable(e.get("msg", "invalid")), MAX_REASON_CHARS),
            }
            for e in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"field": "body", "reason": "invalid request"}
        return JSONResponse(error_body(first["field"], first["reason"], errors=errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = exc.detail if isinstance(exc.detail, str) else "error"
        return JSONResponse(
            error_body(None, reason), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never leak a traceback; the log keeps it for whoever runs the server.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(None, "internal error: the server could not handle this request"), status_code=500
        )
