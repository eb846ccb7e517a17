"""/docs and /redoc render in Chromium under the app's Content-Security-Policy, offline: every script and style
comes from the server (a CSP violation or a failed load would show as a console error)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_renders(page, live_server: str, console_errors: list[str]) -> None:
    page.goto(f"{live_server}/docs")
    page.locator(".opblock-summary-path", has_text="/api/trace").first.wait_for(timeout=30_000)
    assert console_errors == []


def test_redoc_renders(page, live_server: str, console_errors: list[str]) -> None:
    page.goto(f"{live_server}/redoc")
    page.get_by_text("SD UNet Explorer", exact=False).first.wait_for(timeout=30_000)
    page.get_by_text("/api/trace", exact=False).first.wait_for(timeout=30_000)
    # Nothing loads from outside, Redoc's badge logo included (its CDN address is taken out of the served bundle).
    assert console_errors == []
