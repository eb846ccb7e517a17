"""A real uvicorn server and Debian's Chromium: the page loads and shows its heading."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_page_heading(page, live_server, console_errors) -> None:
    page.goto(live_server + "/")
    assert page.locator("h1").inner_text() == "SD UNet Explorer"
    assert console_errors == []
