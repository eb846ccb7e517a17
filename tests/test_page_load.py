"""The first load (issue 24): every ES module the page fetches was announced up front (`modulepreload`, from
app/modules.py), and plotly.js is asked for only after the U is drawn, when the first chart is. Measured from the
browser's own resource timing; the time itself is a benchmark (bench/first_draw_bench.py), not a test.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

LOADED = """() => ({
  preloaded: [...document.querySelectorAll('link[rel=modulepreload]')].map((l) => new URL(l.href).pathname),
  modules: performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)
    .filter((p) => p.startsWith('/static/js/')),
  plotly: performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/vendor/plotly.min.js'))
    .map((e) => e.startTime),
  firstDraw: parseFloat(document.body.dataset.firstDrawMs),
})"""


def test_modules_are_preloaded_and_plotly_waits_for_a_chart(page, live_server, console_errors) -> None:
    page.goto(f"{live_server}/#sd1")
    page.wait_for_function("() => document.body.dataset.ready === 'true' && Boolean(document.body.dataset.firstDrawMs)")
    page.wait_for_function("() => document.body.dataset.charts === 'true'")
    m = page.evaluate(LOADED)
    assert "/static/js/main.js" in m["preloaded"] and "/static/js/plotly-loader.js" in m["preloaded"]
    assert sorted(set(m["modules"]) - set(m["preloaded"])) == []  # nothing found one import after another
    # One request for plotly.js, made after the U was on screen; the charts are drawn with it.
    assert len(m["plotly"]) == 1 and m["plotly"][0] > m["firstDraw"], m
    assert page.locator("#chart-flops .main-svg").count() > 0
    assert console_errors == []
